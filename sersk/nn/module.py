"""The recipe's 2-D CNN-LSTM as a torch module, with batch-independent ("masked") left padding."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import cast, overload

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torchaudio.functional import compute_deltas

from .. import _recipe
from ..utils.validation import is_integer
from .collate import round_up

PADDING_MODES = ("masked", "reference")

# Elements of a full-size tensor (batch, channels, frequency, time) made at once where a block works
# a few clips at a time (a conv's output that is recomputed, the squares for the statistics): 16 MiB
# in float32.
CHUNK_ELEMENTS = 1 << 22
# A conv with at most this many input channels is run again in the backward pass instead of keeping
# its output, in training on the CPU (:class:`_RecomputedConvBNReLUPool`): the first block's.
RECOMPUTED_MAX_IN_CHANNELS = 3
# On the CPU a masked batch runs as groups of clips of similar length, each cropped to its own
# padding (:func:`length_groups`), so the convs skip most of the padding; a group costs about this
# many frames' work of its own (its calls in every block).
GROUP_COST_FRAMES = 64
# In eval mode, a clip alone in its batch with more frames than this (about 4.4 minutes at the
# recipe's hop) runs through the conv blocks in overlapping windows of this many frames, so that
# predicting a long recording needs bounded memory (the first block's output is 32 KiB a frame).
WINDOW_FRAMES = 8192


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose training statistics count only the real (unpadded) time steps.

    Holds the parameters and running statistics; the network's conv blocks apply it, fused with the
    ReLU and the pooling that follow. Called on its own, it is ``nn.BatchNorm2d``, whose
    parameters it takes.
    """


class _MaskedBNReLUPool(torch.autograd.Function):
    """``pool(relu(batchnorm(x))) * pooled_mask`` in training, statistics over real steps only.

    The batch comes as groups of clips, each padded to its own length (``groups`` is ``x``,
    ``time_mask``, ``pooled_mask`` for each group in turn); the statistics are the whole batch's.
    Exact rewrites of the eager composition, to touch full-size tensors as rarely as possible:
    - ``pool(relu(z)) == relu(pool(z))`` (max commutes with a monotone map), so the ReLU runs on the
      pooled tensor and the normalised full-size tensor is freed as soon as it is pooled;
    - the statistics' sums come from reductions over frequency, weighted by the time mask (no
      full-size temporaries), and in the backward pass the gradient's sums are taken on the pooled
      tensor (each pooled value comes from exactly one position), so the only full-size work is
      the input gradient itself;
    - on the CPU, when every channel's scale is positive, ``x`` is pooled before the affine map:
      a positive scale keeps the order, so the pooled values are the same, each rounded once
      (within a ulp of the full-size form's); where two inputs round to the same normalised value,
      the gradient may go to the other one, which is as valid a max;
    - with ``consume_input`` (a conv's output, read by nothing else), ``x`` is kept on ``ctx``
      instead of saved, and the backward pass writes the input gradient into it. Autograd's
      checks and hooks on saved tensors (``saved_tensors_hooks``, ``save_on_cpu``) do not see it,
      and the graph can be differentiated once.
    """

    @staticmethod
    def forward(ctx, weight, bias, pool, eps, consume_input, *groups):  # type: ignore[override]
        # per group: x, time_mask (batch, time) 0/1, pooled_mask (batch, 1, 1, pooled time) 0/1
        # consume_input: each x is used by nothing else, and backward overwrites it with its gradient
        xs, time_masks, pooled_masks = _split_group_inputs(groups)
        if consume_input and any(x.is_leaf for x in xs):
            raise ValueError("consume_input=True overwrites x in the backward pass: x must be an intermediate result")
        count, mean, var, rstd = _masked_moments([_frequency_sums(x) for x in xs], time_masks, xs[0].shape[2], eps)
        scale = weight * rstd
        shift = bias - mean * scale
        scale_, shift_ = scale[None, :, None, None], shift[None, :, None, None]
        # pool first: no full-size normalised tensor (on CUDA the test would wait for the device)
        pool_first = xs[0].device.type == "cpu" and bool((scale > 0).all())
        outs, indices = [], []
        for x, pooled_mask in zip(xs, pooled_masks):
            if pool_first:
                pooled, where = nn.functional.max_pool2d_with_indices(x, pool, pool)
                pooled = torch.addcmul(shift_, pooled, scale_)
            else:
                pooled, where = nn.functional.max_pool2d_with_indices(torch.addcmul(shift_, x, scale_), pool, pool)
            outs.append(pooled.clamp_(min=0).mul_(pooled_mask))
            indices.append(where)
        ctx.consumed_inputs = list(xs) if consume_input else None
        ctx.save_for_backward(
            weight, mean, rstd, count, *time_masks, *indices, *outs, *(() if consume_input else xs)
        )
        ctx.mark_non_differentiable(mean, var, count)
        return (*outs, mean, var, count)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):  # type: ignore[override]
        weight, mean, rstd, count, *saved = ctx.saved_tensors
        n_groups = len(grads) - 3
        time_masks, indices, outs, saved_xs = _per_group_saved(saved, n_groups, 4)
        consume_input = not saved_xs
        xs = saved_xs or ctx.consumed_inputs
        ctx.consumed_inputs = None
        if xs is None:
            raise RuntimeError("a conv block's backward runs once per forward here (retain_graph is not supported)")
        grads_pooled, sum_g, sum_gx = [], 0, 0
        for x, where, out, grad_out in zip(xs, indices, outs, grads):
            # the mask and the ReLU both leave 0 where out is 0; laid out as the pooling indices
            grad_pooled = torch.empty_like(where, dtype=out.dtype)
            torch.mul(grad_out, out > 0, out=grad_pooled)
            channels_last = _is_channels_last(x)
            x_at_max = _values_at_maxima(x, where, channels_last)
            # sums over every position of the full-size gradient, taken where it is non-zero
            sum_g = sum_g + grad_pooled.sum(dim=(0, 2, 3))
            planes = x_at_max.mul_(_planes(grad_pooled, channels_last))
            sum_gx = sum_gx + planes.sum(dim=(0, 1) if channels_last else (0, 2))
            grads_pooled.append(grad_pooled)
            del x_at_max, planes
        sum_g_xhat, scale, k0, k1 = _normalisation_backward(weight, mean, rstd, count, sum_g, sum_gx)
        grad_xs = []
        for x, time_mask, where, grad_pooled in zip(xs, time_masks, indices, grads_pooled):
            # consumed, x's memory takes the gradient: a step then holds one full-size tensor per block, not two
            grad_x = x if consume_input else torch.empty_like(x)  # in x's layout, which _planes reads
            torch.addcmul(k0[None, :, None, None], x, k1[None, :, None, None], out=grad_x)
            grad_x.mul_(time_mask[:, None, None, :])  # the statistics see real steps only
            _add_at_maxima(grad_x, where, grad_pooled.mul_(scale[None, :, None, None]), _is_channels_last(x))
            grad_xs.append(grad_x)
        return (sum_g_xhat, sum_g, None, None, None, *_per_group_inputs(grad_xs))


def _group_inputs(
    xs: Sequence[torch.Tensor], time_masks: Sequence[torch.Tensor], pooled_masks: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """A fused function's ``groups`` inputs: ``x``, ``time_mask``, ``pooled_mask`` of each group in turn."""
    return [t for group in zip(xs, time_masks, pooled_masks) for t in group]


def _split_group_inputs(groups: Sequence[torch.Tensor]) -> tuple[Sequence[torch.Tensor], ...]:
    """The ``xs``, ``time_masks`` and ``pooled_masks`` of :func:`_group_inputs`' list."""
    return groups[0::3], groups[1::3], groups[2::3]


def _per_group_saved(saved: Sequence[torch.Tensor], n_groups: int, n_kinds: int) -> list[Sequence[torch.Tensor]]:
    """Saved tensors stored as ``n_kinds`` runs of one tensor per group, split into those runs."""
    return [saved[kind * n_groups : (kind + 1) * n_groups] for kind in range(n_kinds)]


def _per_group_inputs(grad_xs: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """The gradients of a fused function's ``groups`` inputs: each group's ``x``, none for its masks."""
    return [grad for grad_x in grad_xs for grad in (grad_x, None, None)]


def _is_channels_last(t: torch.Tensor) -> bool:
    return not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def _planes(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """(batch, channels, height, width) with each channel's plane flattened along dim ``1 if
    channels_last else 2``: (batch, height * width, channels) or (batch, channels, height * width).

    A view when ``t`` is laid out so; max-pooling indices count positions within a plane in both
    layouts. The layout is the block input's, passed in: a pooled tensor of one position per plane
    is channels-last and contiguous at once, and read the other way it would mix channels.
    """
    if channels_last:
        return t.permute(0, 2, 3, 1).flatten(1, 2)
    return t.flatten(2)


def _values_at_maxima(full: torch.Tensor, indices: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``full``'s values at the max-pooling ``indices``, laid out as :func:`_planes`."""
    return _planes(full, channels_last).gather(1 if channels_last else 2, _planes(indices, channels_last))


def _add_at_maxima(full: torch.Tensor, indices: torch.Tensor, pooled: torch.Tensor, channels_last: bool) -> None:
    """Add each of ``pooled``'s values into ``full`` (in place) at its max-pooling index."""
    _planes(full, channels_last).scatter_add_(
        1 if channels_last else 2, _planes(indices, channels_last), _planes(pooled, channels_last)
    )


def _frequency_sums(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums of ``x`` and ``x**2`` over frequency, each of shape (batch, channels, time), read in ``x``'s layout.

    The squares are made a few clips at a time (:func:`_clip_chunks`), never as a full-size tensor.
    """
    channels_last = _is_channels_last(x)
    rows = x.permute(0, 2, 3, 1) if channels_last else x.transpose(1, 2)  # (batch, frequency, ...), dense
    sum_x = rows.sum(1)
    sum_sq = torch.empty_like(sum_x)
    for clips in _clip_chunks(x.shape[0], x[0].numel()):
        part = rows[clips]
        torch.sum(part * part, 1, out=sum_sq[clips])
    return (sum_x.transpose(1, 2), sum_sq.transpose(1, 2)) if channels_last else (sum_x, sum_sq)


def _clip_chunks(n_clips: int, per_clip: int) -> list[slice]:
    """Slices of a batch of ``n_clips`` clips of ``per_clip`` elements each, of at most
    ``CHUNK_ELEMENTS`` elements each (at least one clip)."""
    step = max(1, CHUNK_ELEMENTS // max(1, per_clip))
    return [slice(start, start + step) for start in range(0, n_clips, step)]


def _conv_chunks(x: torch.Tensor, weight: torch.Tensor) -> list[slice]:
    """:func:`_clip_chunks` of the output of a conv of ``weight`` over ``x`` (a "same" conv)."""
    return _clip_chunks(x.shape[0], weight.shape[0] * x.shape[2] * x.shape[3])


def _conv_part(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding, clips: slice) -> torch.Tensor:
    """The output of a conv of stride 1 over some clips of ``x``."""
    return nn.functional.conv2d(x[clips], weight, bias, padding=padding)


def _masked_moments(
    sums: Sequence[tuple[torch.Tensor, torch.Tensor]], time_masks: Sequence[torch.Tensor], n_freq: int, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Count, mean, (biased) variance and ``1/sqrt(var + eps)`` per channel over the real steps of
    every group of clips, from each group's sums over frequency (:func:`_frequency_sums`) and time mask."""
    # sums of tensors (never empty: one group at least), which the checker takes for ``Tensor | int``
    count = cast(torch.Tensor, sum(time_mask.sum() for time_mask in time_masks)) * n_freq
    sum_x = cast(torch.Tensor, sum(torch.einsum("bct,bt->c", s, m) for (s, _), m in zip(sums, time_masks)))
    sum_sq = cast(torch.Tensor, sum(torch.einsum("bct,bt->c", s, m) for (_, s), m in zip(sums, time_masks)))
    mean, mean_sq = sum_x / count, sum_sq / count
    var = (mean_sq - mean.square()).clamp_(min=0)
    return count, mean, var, torch.rsqrt(var + eps)


def _normalisation_backward(
    weight: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor, count: torch.Tensor,
    sum_g: torch.Tensor, sum_gx: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch norm's backward pass, from two sums per channel of the gradient ``g`` at its output.

    ``sum_g`` is the sum of ``g``, ``sum_gx`` the sum of ``g * x``, over all positions (``g`` is
    zero but where the pooling took a maximum). Returns the weight's gradient (the sum of ``g``
    times the normalised ``x``), the scale ``weight * rstd``, and ``k0``, ``k1``: on real steps the
    input's gradient is ``k0 + k1 * x + scale * g``.
    """
    sum_g_xhat = rstd * (sum_gx - mean * sum_g)
    scale = weight * rstd
    grad_var = -0.5 * weight * rstd.square() * sum_g_xhat  # d loss / d var
    grad_mean = -scale * sum_g  # d loss / d mean, through z (var's own dependence is below)
    k1 = 2 * grad_var / count
    k0 = grad_mean / count - k1 * mean
    return sum_g_xhat, scale, k0, k1


@overload
def masked_bn_relu_pool(
    x: torch.Tensor, bn: MaskedBatchNorm2d, pool: nn.MaxPool2d, time_mask: torch.Tensor, pooled_mask: torch.Tensor,
    *, consume_input: bool = False,
) -> torch.Tensor: ...


@overload
def masked_bn_relu_pool(
    x: Sequence[torch.Tensor], bn: MaskedBatchNorm2d, pool: nn.MaxPool2d, time_mask: Sequence[torch.Tensor],
    pooled_mask: Sequence[torch.Tensor], *, consume_input: bool = False,
) -> list[torch.Tensor]: ...


def masked_bn_relu_pool(
    x: torch.Tensor | Sequence[torch.Tensor], bn: MaskedBatchNorm2d, pool: nn.MaxPool2d,
    time_mask: torch.Tensor | Sequence[torch.Tensor], pooled_mask: torch.Tensor | Sequence[torch.Tensor],
    *, consume_input: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """``pool(relu(bn(x))) * pooled_mask`` with batch-norm statistics over real time steps only.

    Parameters
    ----------
    x : Tensor of shape (batch, channels, frequency, time), or a list of them
        A list holds groups of one batch's clips, each group padded to its own length; the
        statistics are the whole batch's. The masks are then lists too, one per group.
    bn : MaskedBatchNorm2d
        Its parameters and running statistics (updated in training, used in eval mode).
    pool : nn.MaxPool2d
        Non-overlapping pooling (stride equal to the kernel).
    time_mask : Tensor of shape (batch, time), or a list of them
        1 on real steps, 0 on padding, in ``x``'s dtype.
    pooled_mask : Tensor of shape (batch, 1, 1, pooled time), or a list of them
        The same after pooling.
    consume_input : bool, default=False
        ``x`` is used by nothing else (a conv's output): in training, the backward pass overwrites
        it with its own gradient instead of allocating one, and runs once per forward; in eval mode
        without autograd, the affine map overwrites it. In training, an ``x`` that autograd holds as
        a leaf (nothing before it needs a gradient: frozen layers, or a forward under
        ``torch.no_grad``) is saved as usual instead.

    Returns
    -------
    out : Tensor of shape (batch, channels, pooled frequency, pooled time), or a list of them
    """
    if isinstance(x, torch.Tensor):  # the masks are tensors too (the overloads)
        masks = [cast(torch.Tensor, time_mask)], [cast(torch.Tensor, pooled_mask)]
        return masked_bn_relu_pool([x], bn, pool, *masks, consume_input=consume_input)[0]
    time_mask, pooled_mask = cast(Sequence[torch.Tensor], time_mask), cast(Sequence[torch.Tensor], pooled_mask)
    kernel = _pool_kernel(pool)
    if bn.training:
        groups = _group_inputs(x, time_mask, pooled_mask)
        consume_input = consume_input and not any(part.is_leaf for part in x)
        *outs, mean, var, count = _MaskedBNReLUPool.apply(bn.weight, bn.bias, kernel, bn.eps, consume_input, *groups)
        _update_running_statistics(bn, mean, var, count)
        return outs
    assert bn.running_mean is not None and bn.running_var is not None  # ConvBlock's batch norm tracks them
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    shift, scale = shift[None, :, None, None], scale[None, :, None, None]
    # without autograd, a consumed input takes the affine map in place: no second full-size tensor
    in_place = consume_input and not torch.is_grad_enabled()
    return [
        nn.functional.max_pool2d(torch.addcmul(shift, part, scale, out=part if in_place else None), kernel, kernel)
        .clamp_(min=0).mul_(mask)
        for part, mask in zip(x, pooled_mask)
    ]


def _is_same_conv(conv: nn.Module) -> bool:
    """Whether ``conv`` is a stride-1 "same" Conv2d: its output has its input's frequency and time."""
    return (
        isinstance(conv, nn.Conv2d) and conv.stride == (1, 1) and conv.dilation == (1, 1)
        and isinstance(conv.padding, tuple) and all(2 * p + 1 == k for p, k in zip(conv.padding, conv.kernel_size))
    )


def _pair(value: int | tuple[int, ...]) -> tuple[int, ...]:
    """A pooling setting as a pair (an int stands for both sides)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _pool_kernel(pool: nn.MaxPool2d) -> tuple[int, int]:
    return cast(tuple[int, int], _pair(pool.kernel_size))


def _update_running_statistics(bn: MaskedBatchNorm2d, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor) -> None:
    # tracked: ConvBlock makes its batch norm with track_running_stats=True
    assert bn.running_mean is not None and bn.running_var is not None
    assert bn.num_batches_tracked is not None
    with torch.no_grad():
        bn.num_batches_tracked += 1
        # momentum=None: a cumulative average, as nn.BatchNorm2d takes it
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        unbiased = var * count / (count - 1).clamp(min=1)
        bn.running_mean.lerp_(mean, momentum)
        bn.running_var.lerp_(unbiased, momentum)


class _RecomputedConvBNReLUPool(torch.autograd.Function):
    """``pool(relu(batchnorm(conv(x)))) * pooled_mask`` in training, the conv's output never kept whole.

    For a conv that costs little next to the size of its output (the first block's: one to three
    input channels, 64 output channels at the input's full resolution). The batch comes as groups
    of clips, as in :class:`_MaskedBNReLUPool` (``groups`` is ``x``, ``time_mask``,
    ``pooled_mask`` for each group in turn). The output is made a few clips at a time
    (:func:`_clip_chunks`), and each part gives its sums for the statistics and is pooled before
    the next is made; the backward pass makes each part again, turns it into its gradient in place
    and takes the conv's gradients from it. What is kept for the backward pass is pooled-size: the
    conv's values at the maxima, their positions (int32), and where the output is positive. The
    arithmetic is :class:`_MaskedBNReLUPool`'s; a negative batch-norm scale costs a second pass over
    the parts in the forward pass (pooling after the affine map).
    """

    @staticmethod
    def forward(ctx, weight, bias, bn_weight, bn_bias, padding, pool, eps, *groups):  # type: ignore[override]
        xs, time_masks, pooled_masks = _split_group_inputs(groups)
        # (group, clips) of every part, in order
        parts = [(g, clips) for g, x in enumerate(xs) for clips in _conv_chunks(x, weight)]

        def conv(g: int, clips: slice) -> torch.Tensor:
            return _conv_part(xs[g], weight, bias, padding, clips)

        sums: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in xs]
        at_max: list[torch.Tensor] = []
        indices: list[torch.Tensor] = []
        for g, clips in parts:
            y = conv(g, clips)
            sums[g].append(_frequency_sums(y))
            pooled, where = nn.functional.max_pool2d_with_indices(y, pool, pool)
            if g == len(at_max):  # the group's first part
                shape, layout = (xs[g].shape[0], *pooled.shape[1:]), _memory_format(y)
                at_max.append(torch.empty(shape, dtype=y.dtype, device=y.device, memory_format=layout))
                indices.append(torch.empty(shape, dtype=torch.int32, device=y.device, memory_format=layout))
            at_max[g][clips] = pooled  # max-pooling picks the conv's own values
            indices[g][clips] = where
        group_sums = [(torch.cat([s[0] for s in part]), torch.cat([s[1] for s in part])) for part in sums]
        count, mean, var, rstd = _masked_moments(group_sums, time_masks, xs[0].shape[2], eps)
        del sums, group_sums
        scale = bn_weight * rstd
        shift_, scale_ = (bn_bias - mean * scale)[None, :, None, None], scale[None, :, None, None]
        if bool((scale > 0).all()):  # a positive scale keeps the order: the maxima are those of the affine map
            outs = [torch.addcmul(shift_, values, scale_) for values in at_max]
        else:
            outs = [torch.empty_like(values) for values in at_max]
            for g, clips in parts:
                y = conv(g, clips)
                pooled, where = nn.functional.max_pool2d_with_indices(torch.addcmul(shift_, y, scale_), pool, pool)
                outs[g][clips] = pooled
                indices[g][clips] = where
                channels_last = _is_channels_last(y)
                _planes(at_max[g][clips], channels_last).copy_(_values_at_maxima(y, where, channels_last))
        for out, pooled_mask in zip(outs, pooled_masks):
            out.clamp_(min=0).mul_(pooled_mask)
        ctx.conv_args = (padding, parts)
        ctx.save_for_backward(
            weight, bias, bn_weight, mean, rstd, count,
            *xs, *time_masks, *indices, *(out > 0 for out in outs), *at_max,
        )
        ctx.mark_non_differentiable(mean, var, count)
        return (*outs, mean, var, count)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grad_outs):  # type: ignore[override]
        weight, bias, bn_weight, mean, rstd, count, *saved = ctx.saved_tensors
        n_groups = len(grad_outs) - 3
        xs, time_masks, indices, positive, at_max = _per_group_saved(saved, n_groups, 5)
        padding, parts = ctx.conv_args
        # the mask and the ReLU both leave 0 where the output is not positive
        grads = [grad_outs[g][clips] * positive[g][clips] for g, clips in parts]
        sum_g = sum(grad.sum(dim=(0, 2, 3)) for grad in grads)
        sum_gx = sum((grad * at_max[g][clips]).sum(dim=(0, 2, 3)) for grad, (g, clips) in zip(grads, parts))
        sum_g_xhat, scale, k0, k1 = _normalisation_backward(bn_weight, mean, rstd, count, sum_g, sum_gx)
        k0_, k1_, scale_ = k0[None, :, None, None], k1[None, :, None, None], scale[None, :, None, None]
        need_x = [ctx.needs_input_grad[7 + 3 * g] for g in range(n_groups)]
        grad_xs = [torch.empty_like(x) if need else None for x, need in zip(xs, need_x)]
        grad_weight = grad_bias = None
        for grad, (g, clips) in zip(grads, parts):
            y = _conv_part(xs[g], weight, bias, padding, clips)
            grad_y = torch.addcmul(k0_, y, k1_, out=y)  # the part's memory takes its gradient
            grad_y.mul_(time_masks[g][clips, None, None, :])  # the statistics see real steps only
            _add_at_maxima(grad_y, indices[g][clips].long(), grad.mul_(scale_), _is_channels_last(grad_y))
            part_x, part_weight, part_bias = torch.ops.aten.convolution_backward(
                grad_y, xs[g][clips], weight, None if bias is None else [bias.shape[0]], [1, 1], list(padding),
                [1, 1], False, [0, 0], 1, [need_x[g], True, bias is not None],
            )
            if need_x[g]:
                grad_xs[g][clips] = part_x
            grad_weight = part_weight if grad_weight is None else grad_weight.add_(part_weight)
            if bias is not None:
                grad_bias = part_bias if grad_bias is None else grad_bias.add_(part_bias)
        return (grad_weight, grad_bias, sum_g_xhat, sum_g, None, None, None, *_per_group_inputs(grad_xs))


def _memory_format(t: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if _is_channels_last(t) else torch.contiguous_format


def _replicate_first_real_frame(x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """``x`` (batch, bands, time) with each clip's left padding replaced by its first real frame."""
    steps = torch.arange(x.shape[-1], device=x.device)
    index = torch.maximum(steps[None, :], pad[:, None])
    return x.gather(2, index[:, None, :].expand(-1, x.shape[1], -1))


def with_deltas(x: torch.Tensor, pad: torch.Tensor | None = None, win_length: int = 5) -> torch.Tensor:
    """Stack log-mels, their deltas and delta-deltas as 3 channels: (batch, bands, time) -> (batch, 3, bands, time).

    Deltas are :func:`torchaudio.functional.compute_deltas` (a regression over ``win_length``
    frames, edges replicated). With ``pad`` (left-padded frames of each clip), each clip's deltas
    replicate its own first real frame, so they equal the deltas of the clip alone, and they are 0
    on the padding (as the log-mels are, from :class:`~sersk.nn.LeftPadCollate`). On the CPU the result is channels-last, the layout the convolutions
    read fastest.
    """
    if pad is None:
        delta = compute_deltas(x, win_length=win_length)
        delta2 = compute_deltas(delta, win_length=win_length)
    else:
        delta = compute_deltas(_replicate_first_real_frame(x, pad), win_length=win_length)
        delta2 = compute_deltas(_replicate_first_real_frame(delta, pad), win_length=win_length)
        real = (torch.arange(x.shape[-1], device=x.device)[None, :] >= pad[:, None]).to(x.dtype)[:, None, :]
        delta, delta2 = delta * real, delta2 * real
    if x.device.type == "cpu":
        return torch.stack([x, delta, delta2], dim=-1).permute(0, 3, 1, 2)
    return torch.stack([x, delta, delta2], dim=1)


class ConvBlock(nn.Module):
    """conv 3x3 "same" -> batch norm -> ReLU -> max-pool, over (frequency, time).

    With masks the conv's output is consumed (:func:`masked_bn_relu_pool`): in training the backward
    pass overwrites it with its gradient, and in eval mode without autograd the batch norm's affine
    map does, so a forward hook on ``conv`` that keeps it must clone it.
    On the CPU, a conv of at most ``RECOMPUTED_MAX_IN_CHANNELS`` input channels (the first block's)
    never makes its whole output at once: in training it is computed inside the fused block, a few
    clips at a time and again in the backward pass (:class:`_RecomputedConvBNReLUPool`); in eval
    mode the block runs on a few clips at a time. A conv with hooks (pruning, weight norm, a
    probe) is always called as a module, on its own input. With masks, :class:`CNNLSTM` calls each
    block with lists, one tensor per group of clips of similar length: a hook on the block sees
    lists, and a hook on ``conv`` runs once per group (a long clip predicted in windows of time:
    tensors, once per window).
    """

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = MaskedBatchNorm2d(out_channels, eps=1e-5)
        self.pool = nn.MaxPool2d(kernel_size=pool, stride=pool)

    def _conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The conv's input; on the CPU, a one-channel input gets a second, all-zero channel.

        oneDNN treats a one-channel input as NCHW and answers in NCHW, where the pooling that
        follows is ~10x slower; with two channels (the second zero, as is its filter,
        :meth:`_conv_weight`) it reads and writes channels-last, at the same speed. The sums gain
        only zero terms.
        """
        if x.device.type != "cpu" or self.conv.in_channels != 1:
            return x
        return torch.stack([x[:, 0], torch.zeros_like(x[:, 0])], dim=-1).permute(0, 3, 1, 2)

    def _conv_weight(self, device: torch.device) -> torch.Tensor:
        """The conv's weight, for inputs from :meth:`_conv_input` on ``device``."""
        weight = self.conv.weight
        if device.type != "cpu" or self.conv.in_channels != 1:
            return weight
        return torch.cat([weight, torch.zeros_like(weight)], dim=1).contiguous(memory_format=torch.channels_last)

    def _conv_recomputable(self) -> bool:
        """Whether the block may run the conv itself, a few clips at a time (in training, again in the
        backward pass): a plain 3x3 "same" conv of at most ``RECOMPUTED_MAX_IN_CHANNELS`` input
        channels, with no hooks (pruning, weight norm) on it."""
        conv = self.conv
        return (
            _is_same_conv(conv) and conv.in_channels <= RECOMPUTED_MAX_IN_CHANNELS and conv.groups == 1
            and conv.padding_mode == "zeros" and not self._conv_hooked()
        )

    def _conv_hooked(self) -> bool:
        return bool(self.conv._forward_hooks or self.conv._forward_pre_hooks)

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        """The conv's output; called as a module (its hooks run) unless it takes the zero channel."""
        conv = self.conv
        if self._conv_hooked():
            return conv(x)
        weight = self._conv_weight(x.device)
        if weight is conv.weight:
            return conv(x)
        x = self._conv_input(x)
        return nn.functional.conv2d(x, weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)

    def forward(
        self, x: torch.Tensor | Sequence[torch.Tensor], mask: torch.Tensor | Sequence[torch.Tensor] | None = None,
        pooled_mask: torch.Tensor | Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        """``mask``/``pooled_mask``: real time steps before/after pooling, shape (batch, 1, 1, time).

        With masks, the padding is excluded from the batch-norm statistics and zeroed after pooling,
        so the next conv sees exactly what an unpadded clip's edge shows it. A pooling window
        straddling the edge mixes in one frame computed from the clip's own first frames and zeros:
        the same for the clip alone, since padding keeps the alignment.
        With masks, ``x`` may also be a list of groups of one batch's clips, each padded to its own
        length, with a list of masks each: the statistics are the whole batch's, and the output is
        a list too.
        """
        if mask is None or pooled_mask is None:  # without masks, x is a tensor
            return self.pool(torch.relu(self.bn(self._convolve(cast(torch.Tensor, x)))))
        if isinstance(x, torch.Tensor):  # the masks are tensors too
            return self._masked_groups([x], [cast(torch.Tensor, mask)], [cast(torch.Tensor, pooled_mask)])[0]
        return self._masked_groups(x, cast(Sequence[torch.Tensor], mask), cast(Sequence[torch.Tensor], pooled_mask))

    def _check_maskable(self) -> None:
        """Refuse a block the masked path would run as something else: it max-pools (with the pool's
        kernel) and normalises itself, fused, and needs a stride-1 "same" conv to keep the padding's
        alignment (a subclass's other pooling, say, was silently replaced by max-pooling)."""
        conv, pool, bn = self.conv, self.pool, self.bn
        tiling = type(pool) is nn.MaxPool2d and (  # windows side by side: stride = kernel, no padding
            _pair(pool.stride) == _pair(pool.kernel_size) and _pair(pool.padding) == (0, 0)
            and _pair(pool.dilation) == (1, 1) and not pool.ceil_mode
        )
        normalising = isinstance(bn, MaskedBatchNorm2d) and bn.affine and bn.track_running_stats
        if not (_is_same_conv(conv) and tiling and normalising):
            raise TypeError(
                "padding='masked' runs each block as a stride-1 'same' Conv2d, a MaskedBatchNorm2d (affine, tracking "
                "its statistics) and an nn.MaxPool2d whose windows tile the input, fused; this block has "
                f"{conv!r}, {bn!r} and {pool!r}: keep those, or train it with padding='reference'"
            )

    def _masked_groups(
        self, x: Sequence[torch.Tensor], mask: Sequence[torch.Tensor], pooled_mask: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """The masked block over groups of one batch's clips (:meth:`forward`)."""
        self._check_maskable()
        time_masks = [m.reshape(m.shape[0], -1).to(part.dtype) for m, part in zip(mask, x)]
        pooled_masks = [m.to(part.dtype) for m, part in zip(pooled_mask, x)]
        conv = self.conv
        if x[0].device.type != "cpu" or not self._conv_recomputable():
            convolved = [self._convolve(part) for part in x]
            return masked_bn_relu_pool(convolved, self.bn, self.pool, time_masks, pooled_masks, consume_input=True)
        inputs, weight = [self._conv_input(part) for part in x], self._conv_weight(x[0].device)
        if not self.bn.training:  # the same block, a few clips at a time
            return [
                torch.cat([
                    masked_bn_relu_pool(
                        _conv_part(part, weight, conv.bias, conv.padding, clips), self.bn, self.pool,
                        time_mask[clips], pooled[clips], consume_input=True,
                    )
                    for clips in _conv_chunks(part, weight)
                ])
                for part, time_mask, pooled in zip(inputs, time_masks, pooled_masks)
            ]
        groups = _group_inputs(inputs, time_masks, pooled_masks)
        *outs, mean, var, count = _RecomputedConvBNReLUPool.apply(
            weight, conv.bias, self.bn.weight, self.bn.bias, conv.padding, _pool_kernel(self.pool), self.bn.eps,
            *groups,
        )
        _update_running_statistics(self.bn, mean, var, count)
        return outs


def min_bands(pools: Sequence[tuple[int, int]]) -> int:
    """The fewest mel bands that leave a frequency row after ``pools``: the product of their
    frequency factors."""
    return math.prod(int(pool[0]) for pool in pools)


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
    deltas : bool, default=False
        Feed the first conv 3 channels, the log-mels, their deltas and their delta-deltas
        (:func:`with_deltas`, computed per clip inside the network; the "3-D log-mels" of ACRNN),
        instead of the log-mels alone. Adds ``2 * 9 * filters[0]`` weights to the first conv.

    Notes
    -----
    ``forward(x, lengths)`` takes ``x`` of shape (batch, n_mels, time), left-padded with zeros, and
    the number of real frames of each clip; it returns logits of shape (batch, n_classes).

    With masked padding on the CPU, the clips run through the conv blocks in groups of similar
    length (:func:`length_groups`), each group cropped to its own longest clip (rounded up to the
    time pooling): the padding the masks would discard is not computed, and the batch norm's
    statistics are still the whole batch's. A clip's padding keeps its alignment to the pooling
    windows, so the result is the same, up to the order of floating-point sums, as long as the
    padding is zeros (:class:`~sersk.nn.LeftPadCollate`'s). The gradient with respect to ``x`` is
    zero on the padding frames a group drops (the whole batch's first conv reads one or two of them).

    In eval mode, a clip alone in its batch with more than ``WINDOW_FRAMES`` frames runs through the
    conv blocks in overlapping windows of time (the same logits, in bounded memory): a long recording
    can be predicted. Forward hooks on the blocks then run once per window, on tensors (not lists).
    """

    deltas = False  # what a network pickled before the option existed uses

    def __init__(
        self,
        n_mels: int = _recipe.N_MELS,
        n_classes: int = len(_recipe.EMOTIONS),
        filters: Sequence[int] = _recipe.CONV_FILTERS,
        pools: Sequence[tuple[int, int]] = _recipe.POOL_SIZES,
        hidden_size: int = _recipe.HIDDEN_SIZE,
        padding: str = "masked",
        deltas: bool = False,
    ):
        super().__init__()
        if padding not in PADDING_MODES:
            raise ValueError(f"padding={padding!r}; expected one of {PADDING_MODES}")
        if len(filters) != len(pools):
            raise ValueError(f"filters has {len(filters)} blocks but pools has {len(pools)}")
        if not all(is_integer(f) and f >= 1 for f in filters):
            raise ValueError(f"filters={tuple(filters)!r}; expected a positive integer per block")
        if not all(len(p) == 2 and all(is_integer(k) and k >= 1 for k in p) for p in map(tuple, pools)):
            raise ValueError(f"pools={tuple(map(tuple, pools))!r}; expected a pair of positive integers "
                             "(frequency, time) per block")
        if not (is_integer(hidden_size) and hidden_size >= 1):
            raise ValueError(f"hidden_size={hidden_size!r}; expected a positive integer")
        if not (is_integer(n_mels) and n_mels >= 1):
            raise ValueError(f"n_mels={n_mels!r}; expected a positive integer")
        # plain ints: torch's LSTM refuses numpy's ("hidden_size should be of type int, got: int64")
        n_mels, filters, hidden_size = int(n_mels), [int(f) for f in filters], int(hidden_size)
        pools = [(int(f), int(t)) for f, t in map(tuple, pools)]
        self.padding = padding
        self.n_mels = n_mels
        self.deltas = bool(deltas)
        channels = [3 if self.deltas else 1, *filters]
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out, pool) for c_in, c_out, pool in zip(channels[:-1], channels[1:], pools)
        )
        self.time_factors = [math.prod(p[1] for p in pools[: i + 1]) for i in range(len(pools))]
        self.time_factor = self.time_factors[-1] if pools else 1
        if n_mels < (needed := min_bands(pools)):
            raise ValueError(
                f"n_mels={n_mels} is too few bands for the frequency pools {[int(p[0]) for p in pools]}: "
                f"they need at least {needed} (pools sets them: module__pools in a CNNLSTMClassifier)"
                + ("; a 2-D array of shape (clips, frames) is read as one single-band clip per row" if n_mels == 1 else "")
            )
        n_freq = n_mels // needed  # rows left after the pools (flooring at each pool floors the product's)
        self.lstm = nn.LSTM(channels[-1] * n_freq, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, n_classes)
        self.reset_parameters()

    def __setstate__(self, state: dict) -> None:
        # unpickled on CUDA (joblib.load of a fitted model), the LSTM's weights are separate tensors:
        # cuDNN would copy them into one block on every call, with a warning each time
        super().__setstate__(state)
        for layer in self.modules():  # a subclass's recurrent layer may sit inside a module of its own
            if isinstance(layer, nn.RNNBase):
                layer.flatten_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform conv/FC/LSTM input weights, orthogonal recurrent weights, zero biases,
        LSTM forget-gate bias 1 (the reference's initialisation)."""
        for block in self._conv_blocks():
            nn.init.xavier_uniform_(block.conv.weight)
            nn.init.zeros_(block.conv.bias)  # type: ignore[arg-type]  # Conv2d(bias=True)
            block.bn.reset_parameters()
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        hidden = self.lstm.hidden_size
        # the LSTM's parameters, set by name at runtime (the checker sees ``Tensor | Module``)
        weight_ih, weight_hh = cast(torch.Tensor, self.lstm.weight_ih_l0), cast(torch.Tensor, self.lstm.weight_hh_l0)
        bias_ih, bias_hh = cast(torch.Tensor, self.lstm.bias_ih_l0), cast(torch.Tensor, self.lstm.bias_hh_l0)
        for gate in range(4):  # glorot per gate, as Keras/MATLAB initialise each gate's matrix
            nn.init.xavier_uniform_(weight_ih[gate * hidden : (gate + 1) * hidden])
            nn.init.orthogonal_(weight_hh[gate * hidden : (gate + 1) * hidden])
        nn.init.zeros_(bias_ih)
        nn.init.zeros_(bias_hh)
        with torch.no_grad():
            bias_ih[hidden : 2 * hidden] = 1.0  # forget gate (PyTorch order: i, f, g, o)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the logits of a batch of left-padded log-mel sequences.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_mels, time)
            Log-mels, left-padded with zeros.
        lengths : torch.Tensor of shape (batch,), default=None
            The number of real frames of each clip, for ``padding="masked"``; None (or
            ``padding="reference"``) takes every frame as real.

        Returns
        -------
        logits : torch.Tensor of shape (batch, n_classes)
            The head's output at each clip's last real step.
        """
        if x.shape[0] == 1 and x.shape[2] > WINDOW_FRAMES and not self._batch_statistics_used():
            return self._forward_in_windows(x, lengths)
        if self.padding != "masked" or lengths is None:
            h = with_deltas(x) if self.deltas else x.unsqueeze(1)
            for block in self.blocks:
                h = block(h)
            return self._last_step_logits(h)
        if x.shape[2] % self.time_factor:  # whole pooling windows, as LeftPadCollate(multiple=time_factor) pads
            x = nn.functional.pad(x, (round_up(x.shape[2], self.time_factor) - x.shape[2], 0))
        n_frames = x.shape[2]
        lengths = lengths.to(x.device)
        groups = self._length_groups(lengths, n_frames) if x.device.type == "cpu" else [(None, n_frames)]
        hs, pads, masks = [], [], []
        for clips, frames in groups:
            part = (x if clips is None else x[clips])[:, :, n_frames - frames :]
            pad = frames - (lengths if clips is None else lengths[clips])
            hs.append(with_deltas(part, pad) if self.deltas else part.unsqueeze(1))
            pads.append(pad)
            masks.append(self._step_masks(pad, frames))
        for level, block in enumerate(self.blocks):
            hs = block(hs, [m[level] for m in masks], [m[level + 1] for m in masks])
        seqs, last = [], []
        for h, pad in zip(hs, pads):
            seq = h.permute(0, 3, 1, 2).flatten(2)  # (clips, steps, channels * frequency)
            n_steps = seq.shape[1]
            real = n_steps - pad // self.time_factor
            # move each clip's real steps to the front; the LSTM is causal, so its output at a clip's
            # last real step ignores the padding behind it (exactly what packing would compute)
            index = (torch.arange(n_steps, device=x.device)[None, :] + (n_steps - real)[:, None]) % n_steps
            seqs.append(seq.gather(1, index[:, :, None].expand(-1, -1, seq.shape[2])))
            last.append(real - 1)
        if len(seqs) > 1:
            n_steps = max(seq.shape[1] for seq in seqs)
            seqs = [nn.functional.pad(seq, (0, 0, 0, n_steps - seq.shape[1])) for seq in seqs]
        self._check_causal_recurrence()
        out, _ = self.lstm(torch.cat(seqs))
        logits = self.fc(out[torch.arange(x.shape[0], device=x.device), torch.cat(last)])
        if groups[0][0] is None:
            return logits
        order = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
        # several groups: each holds its clips' indices (None only for a single group)
        order[torch.cat([cast(torch.Tensor, clips) for clips, _ in groups])] = torch.arange(x.shape[0], device=x.device)
        return logits[order]

    def _check_causal_recurrence(self) -> None:
        """Refuse a recurrent layer the masked path cannot run as written: it moves each clip's padding
        behind its real steps, which a one-directional, batch-first layer leaves out of its output at the
        last real step (a subclass's bidirectional LSTM read the padding: batched predictions differed).
        The layer itself, and every torch recurrent layer inside it, are checked; other layers of one's
        own are taken to be causal unless they declare ``bidirectional``."""
        lstm = self.lstm  # the layer sersk calls takes batch-first steps; none inside it may read ahead
        if (getattr(lstm, "bidirectional", False) or not getattr(lstm, "batch_first", True)
                or any(layer.bidirectional for layer in lstm.modules() if isinstance(layer, nn.RNNBase))):
            raise TypeError(
                "padding='masked' moves each clip's padding behind its real steps and reads the recurrent layer at "
                "the last real one, which only a one-directional, batch-first layer computes without the padding; "
                f"this network has {self.lstm!r}: keep it so, or train it with padding='reference'"
            )

    def _batch_statistics_used(self) -> bool:
        """Whether the network trains, or a batch norm normalises by the batch's own statistics (one
        left in training mode, as test-time adaptation does): then no window may stand alone."""
        return self.training or any(block.bn.training for block in self._conv_blocks())

    def _forward_in_windows(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """``forward`` of one long clip in eval mode, its conv blocks run over windows of time.

        Each window of ``WINDOW_FRAMES`` frames is computed with a margin on both sides covering the
        blocks' receptive field, and starts at a multiple of the time pooling: the steps it keeps
        are those of the whole clip (up to the order of floating-point sums). The batch norm uses
        its running statistics, so no window depends on another. Forward hooks on the blocks run
        once per window.
        """
        pad = None
        if self.padding == "masked" and lengths is not None:
            length = int(lengths[0])
            if not 0 < length <= x.shape[2]:
                raise ValueError(f"lengths[0]={length}; expected 1 to the {x.shape[2]} frames of the input")
            x = x[:, :, x.shape[2] - length :]  # the clip alone: its output does not depend on the padding
            x = nn.functional.pad(x, (round_up(length, self.time_factor) - length, 0))
            pad = torch.tensor([x.shape[2] - length], device=x.device)
        h = with_deltas(x, pad) if self.deltas else x.unsqueeze(1)
        n_frames, factor = x.shape[2], self.time_factor
        margin = round_up(self._receptive_margin(), factor)
        window = max(factor, WINDOW_FRAMES // factor * factor)  # windows start on a pooling window's edge
        steps = []
        for start in range(0, n_frames, window):
            stop = min(start + window, n_frames)
            first, last = max(0, start - margin), min(n_frames, stop + margin)
            out = h[..., first:last]
            if pad is None:
                for block in self.blocks:
                    out = block(out)
            else:
                window_pad = (pad - first).clamp(min=0)
                masks = self._step_masks(window_pad, last - first)
                for level, block in enumerate(self.blocks):
                    out = block(out, masks[level], masks[level + 1])
            keep = (start - first) // factor
            steps.append(out[..., keep : keep + (stop - start) // factor])
        return self._last_step_logits(torch.cat(steps, dim=-1))  # a masked clip's padding is under one step

    def _last_step_logits(self, h: torch.Tensor) -> torch.Tensor:
        """The head on the LSTM's last step, over the conv output ``h`` (batch, channels, frequency,
        steps) whose every step is real."""
        out, _ = self.lstm(h.permute(0, 3, 1, 2).flatten(2))  # (batch, steps, channels * frequency)
        return self.fc(out[:, -1])

    def _receptive_margin(self) -> int:
        """Frames on each side of a window that reach its kept steps through the "same" convs (the
        pooling windows do not overlap, and a window starts on their edges)."""
        margin, factor = 0, 1
        for block, block_factor in zip(self._conv_blocks(), self.time_factors):
            margin += cast(tuple[int, int], block.conv.padding)[1] * factor  # padding=1: (1, 1)
            factor = block_factor
        return margin

    def _conv_blocks(self) -> Iterable[ConvBlock]:
        """``blocks``, typed: a ModuleList's items are plain Modules to the checker."""
        return cast(Iterable[ConvBlock], self.blocks)

    def _step_masks(self, pad: torch.Tensor, n_frames: int) -> list[torch.Tensor]:
        """Real time steps, shape (batch, 1, 1, steps), at the input's resolution and after each block:
        a clip's real steps start at ``pad // (time pooling so far)``."""
        return [
            (torch.arange(n_frames // factor, device=pad.device)[None, :] >= (pad // factor)[:, None])[:, None, None, :]
            for factor in [1, *self.time_factors]
        ]

    def _length_groups(self, lengths: torch.Tensor, n_frames: int) -> list[tuple[torch.Tensor | None, int]]:
        """The batch's clips as :func:`length_groups`, each group's clips as an index tensor (``None``:
        the whole batch in order) and the frames it is cropped to (``n_frames``, a multiple of the
        time pooling, as ``forward`` pads)."""
        groups = length_groups(lengths.tolist(), self.time_factor, n_frames, GROUP_COST_FRAMES)
        if len(groups) == 1:
            return [(None, groups[0][1])]
        return [(torch.tensor(clips, device=lengths.device), frames) for clips, frames in groups]


def length_groups(
    lengths: Sequence[int], multiple: int, max_frames: int, group_cost: int
) -> list[tuple[list[int], int]]:
    """Clips of a batch in groups of similar length, each with the frames it is padded to.

    A group's frames are its longest clip's rounded up to ``multiple`` (at most ``max_frames``).
    The groups minimise the frames computed (clips x frames, summed over the groups) plus
    ``group_cost`` frames per group; each holds clips of consecutive lengths, in order of length.

    Returns
    -------
    groups : list of (clip indices, frames), shortest first
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    frames = [min(max_frames, max(multiple, round_up(int(lengths[i]), multiple))) for i in order]
    # groups begin and end only where the padded length changes: splitting equal lengths never pays
    ends = [k for k in range(1, len(order) + 1) if k == len(order) or frames[k] != frames[k - 1]]
    # best[j]: the least cost of the j shortest clips; start[j]: where the last of their groups begins
    best: dict[int, int] = {0: 0}
    start: dict[int, int] = {}
    for j in ends:
        best[j], start[j] = min((best[i] + (j - i) * frames[j - 1] + group_cost, i) for i in [0, *ends] if i < j)
    groups, j = [], len(order)
    while j > 0:
        groups.append((order[start[j] : j], frames[j - 1]))
        j = start[j]
    return groups[::-1]
