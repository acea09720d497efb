"""The recipe's 2-D CNN-LSTM as a torch module, with batch-independent ("masked") left padding."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .. import _recipe

PADDING_MODES = ("masked", "reference")


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose training statistics count only the real (unpadded) time steps.

    ``mask`` has shape ``(batch, 1, 1, time)`` and is True on real steps. Without a mask, or in
    eval mode, it is ``nn.BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if mask is None or not self.training:
            return super().forward(x)
        weights = mask.to(x.dtype).reshape(x.shape[0], 1, -1)  # (batch, 1, time)
        count = weights.sum() * x.shape[2]
        # reduce frequency first (one pass each), then the small (batch, channel, time) sums
        mean = (x.sum(dim=2) * weights).sum(dim=(0, 2)) / count
        mean_sq = (x.square().sum(dim=2) * weights).sum(dim=(0, 2)) / count
        var = (mean_sq - mean.square()).clamp(min=0)
        with torch.no_grad():
            self.num_batches_tracked += 1
            unbiased = var * count / (count - 1).clamp(min=1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(unbiased, self.momentum)
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        return torch.addcmul(shift[None, :, None, None], x, scale[None, :, None, None])


class ConvBlock(nn.Module):
    """conv 3x3 "same" -> batch norm -> ReLU -> max-pool, over (frequency, time)."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = MaskedBatchNorm2d(out_channels, eps=1e-5)
        self.pool = nn.MaxPool2d(kernel_size=pool, stride=pool)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, pooled_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``mask``/``pooled_mask``: real time steps before/after pooling, shape (batch, 1, 1, time)."""
        x = self.pool(torch.relu(self.bn(self.conv(x), mask)))
        if pooled_mask is not None:
            # zero the padding, so the next conv sees exactly what an unpadded clip's edge shows it.
            # A pooling window straddling the edge mixes in one frame computed from the clip's own
            # first frames and zeros: the same for the clip alone, since padding keeps the alignment.
            x = x * pooled_mask.to(x.dtype)
        return x


class CNNLSTM(nn.Module):
    """Four conv blocks over frequency x time, an LSTM over the pooled time steps, a linear head.

    Parameters
    ----------
    n_mels : int, default=128
        Frequency bands of the input.
    n_classes : int, default=7
        Output logits.
    filters : sequence of int, default=(64, 64, 128, 128)
        Output channels of each conv block.
    pools : sequence of (int, int), default=((2, 2), (4, 2), (4, 2), (4, 2))
        (frequency, time) max-pool size and stride of each block.
    hidden_size : int, default=256
        LSTM units; the output of its last real step feeds the head.
    padding : {"masked", "reference"}, default="masked"
        ``"reference"``: zeros on the left, nothing masked (a clip's output depends on its batch).
        ``"masked"``: padding is zeroed after each block, excluded from batch-norm statistics, and
        skipped by the LSTM; with :class:`~sersk.nn.LeftPadCollate` padding to a multiple of the
        time-pooling factor, a clip's output does not depend on the rest of its batch.

    Notes
    -----
    ``forward(x, lengths)`` takes ``x`` of shape (batch, n_mels, time), left-padded, and the number
    of real frames of each clip; it returns logits of shape (batch, n_classes).
    """

    def __init__(
        self,
        n_mels: int = _recipe.N_MELS,
        n_classes: int = 7,
        filters: Sequence[int] = _recipe.CONV_FILTERS,
        pools: Sequence[tuple[int, int]] = _recipe.POOL_SIZES,
        hidden_size: int = _recipe.HIDDEN_SIZE,
        padding: str = "masked",
    ):
        super().__init__()
        if padding not in PADDING_MODES:
            raise ValueError(f"padding={padding!r}; expected one of {PADDING_MODES}")
        if len(filters) != len(pools):
            raise ValueError(f"filters has {len(filters)} blocks but pools has {len(pools)}")
        self.padding = padding
        channels = [1, *filters]
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out, tuple(pool)) for c_in, c_out, pool in zip(channels[:-1], channels[1:], pools)
        )
        self.time_factors = [math.prod(p[1] for p in pools[: i + 1]) for i in range(len(pools))]
        self.time_factor = self.time_factors[-1] if pools else 1
        n_freq = n_mels
        for f_pool, _ in pools:
            n_freq //= f_pool
        if n_freq < 1:
            raise ValueError(f"n_mels={n_mels} is too few for frequency pools {[p[0] for p in pools]}")
        self.lstm = nn.LSTM(channels[-1] * n_freq, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, n_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform conv/FC/LSTM input weights, orthogonal recurrent weights, zero biases,
        LSTM forget-gate bias 1 (the reference's initialisation)."""
        for block in self.blocks:
            nn.init.xavier_uniform_(block.conv.weight)
            nn.init.zeros_(block.conv.bias)
            block.bn.reset_parameters()
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        hidden = self.lstm.hidden_size
        for gate in range(4):  # glorot per gate, as Keras/MATLAB initialise each gate's matrix
            nn.init.xavier_uniform_(self.lstm.weight_ih_l0[gate * hidden : (gate + 1) * hidden])
            nn.init.orthogonal_(self.lstm.weight_hh_l0[gate * hidden : (gate + 1) * hidden])
        nn.init.zeros_(self.lstm.bias_ih_l0)
        nn.init.zeros_(self.lstm.bias_hh_l0)
        with torch.no_grad():
            self.lstm.bias_ih_l0[hidden : 2 * hidden] = 1.0  # forget gate (PyTorch order: i, f, g, o)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        batch, _, n_frames = x.shape
        h = x.unsqueeze(1)
        masked = self.padding == "masked" and lengths is not None
        pad = (n_frames - lengths.to(x.device)) if masked else None
        masks: list[torch.Tensor | None] = [None] * (len(self.blocks) + 1)
        if masked:
            # real steps at each resolution start at pad // (time pooling so far)
            for level, factor in enumerate([1, *self.time_factors]):
                steps = torch.arange(n_frames // factor, device=x.device)
                masks[level] = (steps[None, :] >= (pad // factor)[:, None])[:, None, None, :]
        for level, block in enumerate(self.blocks):
            h = block(h, masks[level], masks[level + 1])
        seq = h.permute(0, 3, 1, 2).flatten(2)  # (batch, steps, channels * frequency)
        if not masked:
            out, _ = self.lstm(seq)
            return self.fc(out[:, -1])
        n_steps = seq.shape[1]
        real = n_steps - pad // self.time_factor
        # move each clip's real steps to the front, so that packing runs the LSTM on them alone
        index = (torch.arange(n_steps, device=x.device)[None, :] + (n_steps - real)[:, None]) % n_steps
        seq = seq.gather(1, index[:, :, None].expand(-1, -1, seq.shape[2]))
        packed = pack_padded_sequence(seq, real.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.fc(h_n[-1])
