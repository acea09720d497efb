"""The recipe's masked network written the plain eager way: the reference the fused one is checked against.

``EagerCNNLSTM`` is :class:`~sersk.CNNLSTM` (same parameters, initialisation and state dict) whose
masked training pass composes batch norm with masked statistics, ReLU, max-pool and the mask as
separate eager operations and runs a packed LSTM, as sersk did before the fused block. The
equivalence tests and ``benchmarks/bench_train.py`` (its baseline) use it; it is not part of the
public API.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .module import CNNLSTM, ConvBlock, with_deltas


def eager_masked_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Training-mode batch norm of ``x`` with statistics over the steps where ``mask`` is True."""
    weights = mask.to(x.dtype).reshape(x.shape[0], 1, -1)
    count = weights.sum() * x.shape[2]
    mean = (x.sum(dim=2) * weights).sum(dim=(0, 2)) / count
    mean_sq = (x.square().sum(dim=2) * weights).sum(dim=(0, 2)) / count
    var = (mean_sq - mean.square()).clamp(min=0)
    assert bn.running_mean is not None and bn.running_var is not None and bn.num_batches_tracked is not None
    with torch.no_grad():
        bn.num_batches_tracked += 1
        # momentum=None: a cumulative average, as nn.BatchNorm2d takes it
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        bn.running_mean.lerp_(mean, momentum)
        bn.running_var.lerp_(var * count / (count - 1).clamp(min=1), momentum)
    scale = bn.weight * torch.rsqrt(var + bn.eps)
    return torch.addcmul((bn.bias - mean * scale)[None, :, None, None], x, scale[None, :, None, None])


class EagerCNNLSTM(CNNLSTM):
    """:class:`~sersk.CNNLSTM` computed without fusion, with a packed LSTM (masked padding only)."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.padding != "masked" or lengths is None:
            return super().forward(x, lengths)
        n_frames = x.shape[2]
        pad = n_frames - lengths.to(x.device)
        masks = []
        for factor in [1, *self.time_factors]:
            steps = torch.arange(n_frames // factor, device=x.device)
            masks.append((steps[None, :] >= (pad // factor)[:, None])[:, None, None, :])
        h = with_deltas(x, pad).contiguous() if self.deltas else x.unsqueeze(1)
        for level, block in enumerate(cast(list[ConvBlock], self.blocks)):
            h = block.conv(h)
            h = eager_masked_batch_norm(block.bn, h, masks[level]) if block.bn.training else block.bn(h)
            h = block.pool(torch.relu(h)) * masks[level + 1].to(h.dtype)
        seq = h.permute(0, 3, 1, 2).flatten(2)
        n_steps = seq.shape[1]
        real = n_steps - pad // self.time_factor
        index = (torch.arange(n_steps, device=x.device)[None, :] + (n_steps - real)[:, None]) % n_steps
        seq = seq.gather(1, index[:, :, None].expand(-1, -1, seq.shape[2]))
        _, (h_n, _) = self.lstm(pack_padded_sequence(seq, real.cpu(), batch_first=True, enforce_sorted=False))
        return self.fc(h_n[-1])
