"""The fused training path computes what the plain eager recipe computes.

``EagerCNNLSTM`` is the recipe's masked network written the obvious way (batch norm with masked
statistics, ReLU, max-pool, mask; a packed LSTM), as sersk shipped it before the fused block. With
the parameters of a ``CNNLSTM``, on random batches of clips of different lengths, the logits,
every parameter's gradient and the running statistics must agree.
"""

from __future__ import annotations

import copy
import gc

import pytest
import torch
from torch import nn
from torchaudio.functional import compute_deltas

from sersk import CNNLSTM
from sersk.nn._eager import EagerCNNLSTM
import sersk.nn.module
from sersk.nn.module import (
    _MaskedBNReLUPool, _RecomputedConvBNReLUPool, length_groups, masked_bn_relu_pool, with_deltas,
)
from sersk.utils._device import float32_cudnn


def random_batch(seed: int, dtype: torch.dtype, n_mels: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded clips of 16-120 frames, padded to a multiple of 16 as the masked collation does."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(16, 121, (6,), generator=gen)
    n_frames = -(-int(lengths.max()) // 16) * 16
    x = torch.zeros(6, n_mels, n_frames, dtype=dtype)
    for row, n in enumerate(lengths.tolist()):
        x[row, :, n_frames - n :] = torch.randn(n_mels, n, generator=gen, dtype=dtype) * 3 - 5
    return x, lengths


def logits_and_grads(model: nn.Module, params: dict[str, torch.Tensor], x, lengths, target):
    logits = model(x, lengths)
    loss = nn.functional.cross_entropy(logits, target)
    grads = torch.autograd.grad(loss, list(params.values()))
    return logits.detach(), dict(zip(params, grads))


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


@pytest.fixture
def no_tf32():
    """Plain float32 arithmetic on CUDA, as sersk's classifier sets it (cuDNN's TF32 keeps 10-bit mantissas)."""
    with float32_cudnn(deterministic=False):
        yield


CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))


def recipe_pass(net: nn.Module, x, lengths, dtype: torch.dtype, device="cpu") -> dict[str, torch.Tensor]:
    """Logits, every parameter's gradient and buffer, then eval-mode logits, of one training pass of
    a copy of ``net`` in ``dtype`` on ``device``; all returned in float64 on the CPU."""
    net = copy.deepcopy(net).to(device=device, dtype=dtype).train()
    x, lengths = x.to(device=device, dtype=dtype), lengths.to(device)
    params = dict(net.named_parameters())
    logits, grads = logits_and_grads(net, params, x, lengths, (torch.arange(len(x)) % 7).to(device))
    out = {"logits": logits, **{f"grad {name}": grad for name, grad in grads.items()}}
    out.update({f"buffer {name}": buffer for name, buffer in net.named_buffers()})
    net.eval()
    with torch.no_grad():
        out["eval logits"] = net(x, lengths)
    return {name: value.detach().cpu().double() for name, value in out.items()}


def compare(result: dict[str, torch.Tensor], exact: dict[str, torch.Tensor], name: str) -> float:
    """Relative error of one output; a conv bias's gradient (0 but for rounding: batch norm removes
    the bias) on the scale of its conv's weight gradient."""
    if name.startswith("grad ") and name.endswith("conv.bias"):
        scale = exact[name.replace("bias", "weight")].norm()
        return float((result[name] - exact[name]).norm() / scale)
    return relative_error(result[name], exact[name])


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize(
    "seed, dtype, tolerance, deltas",
    [(0, torch.float32, 1e-4, False), (1, torch.float32, 1e-4, False), (2, torch.float64, 1e-10, False),
     (3, torch.float32, 1e-4, True)],
)
def test_fused_training_pass_equals_the_eager_recipe(seed, dtype, tolerance, deltas, device, no_tf32):
    """The fused network on ``device`` against the eager recipe computed in float64 on the CPU.

    Every output is within ``tolerance`` of it, or, in float32, within twice the rounding error of
    the eager recipe itself in float32 on the CPU where that is larger: with delta channels, the
    first conv's weight gradient cancels heavily and float32 eager is 3.7e-4 from float64 there.
    """
    torch.manual_seed(seed)
    net = CNNLSTM(deltas=deltas)
    reference = EagerCNNLSTM(deltas=deltas)
    reference.load_state_dict(net.state_dict())
    assert sum(p.numel() for p in net.parameters()) == 656_839 + (2 * 9 * 64 if deltas else 0)
    x, lengths = random_batch(seed, dtype)
    if device == "cpu":  # the clips run in groups of similar length there
        assert len(net._length_groups(lengths, x.shape[2])) > 1
    exact = recipe_pass(reference, x, lengths, torch.float64)
    rounding = {}
    if dtype != torch.float64:
        eager = recipe_pass(reference, x, lengths, dtype)
        rounding = {name: compare(eager, exact, name) for name in exact}
    fused = recipe_pass(net, x, lengths, dtype, device)
    assert fused.keys() == exact.keys()
    for name in exact:
        assert compare(fused, exact, name) <= max(tolerance, 2 * rounding.get(name, 0.0)), name


@pytest.mark.parametrize("seed, dtype, tolerance", [(0, torch.float32, 1e-4), (2, torch.float64, 1e-10)])
def test_first_block_made_a_clip_at_a_time_equals_the_eager_recipe(seed, dtype, tolerance, monkeypatch):
    """The first block's conv output, made and pooled one clip at a time and made again in the
    backward pass, gives the recipe's logits, gradients and running statistics."""
    monkeypatch.setattr(sersk.nn.module, "CHUNK_ELEMENTS", 1)
    test_fused_training_pass_equals_the_eager_recipe(seed, dtype, tolerance, False, "cpu", None)


@pytest.mark.parametrize("frozen", ["blocks.0.", "blocks."])
@pytest.mark.parametrize("recomputed", [True, False])  # False: the path every block takes on CUDA
def test_frozen_conv_blocks_give_the_recipes_gradients(frozen, recomputed, monkeypatch):
    """Frozen conv blocks (fine-tuning the rest) make their conv outputs autograd leaves, which the
    fused block saves instead of consuming: the parameters still training get the eager recipe's
    gradients, and a training-mode forward under ``no_grad`` (as ``swa_utils.update_bn`` runs) the
    recipe's logits."""
    if not recomputed:
        monkeypatch.setattr(sersk.nn.module, "RECOMPUTED_MAX_IN_CHANNELS", 0)
    torch.manual_seed(0)
    net = CNNLSTM().double().train()
    reference = EagerCNNLSTM().double().train()
    reference.load_state_dict(net.state_dict())
    for model in (net, reference):
        for name, param in model.named_parameters():
            param.requires_grad_(not name.startswith(frozen))
    x, lengths = random_batch(0, torch.float64)
    target = torch.arange(len(x)) % 7
    results = []
    for model in (net, reference):
        logits, grads = logits_and_grads(model, {n: p for n, p in model.named_parameters() if p.requires_grad}, x,
                                         lengths, target)
        with torch.no_grad():
            results.append({"logits": logits, "no_grad logits": model(x, lengths),
                            **{f"grad {name}": grad for name, grad in grads.items()}})
    fused, exact = results
    assert fused.keys() == exact.keys() and "grad lstm.weight_ih_l0" in exact
    for name in exact:
        assert compare(fused, exact, name) <= 1e-10, name


@pytest.mark.parametrize("recomputed", [True, False])
def test_first_block_keeps_nothing_full_size_for_the_backward_pass(recomputed, monkeypatch):
    """On the CPU the first conv's output (64 channels at the input's resolution) is not kept for
    the backward pass, neither saved nor held by the graph; the other blocks' path keeps it."""
    if not recomputed:
        monkeypatch.setattr(sersk.nn.module, "RECOMPUTED_MAX_IN_CHANNELS", 0)
    torch.manual_seed(0)
    net = CNNLSTM().train()
    x, lengths = random_batch(0, torch.float32)
    full_size = x.numel() * 64
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        out = net.blocks[0](x.unsqueeze(1), *first_block_masks(net, x, lengths))
    gc.collect()
    held = [obj.numel() for obj in gc.get_objects() if type(obj) in (torch.Tensor, nn.Parameter)]
    assert out.requires_grad and saved
    assert any(n >= full_size for n in saved + held) != recomputed


def test_a_first_conv_with_a_hook_runs_as_a_module():
    """A hook on the first conv (pruning, weight norm, a user's probe) sees its output: the block
    then keeps the conv's output instead of running the conv itself."""
    net = CNNLSTM().train()
    x, lengths = random_batch(0, torch.float32)
    seen = []
    net.blocks[0].conv.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    net.blocks[0](x.unsqueeze(1), *first_block_masks(net, x, lengths))
    assert seen == [(x.shape[0], 64, *x.shape[1:])]


def test_first_block_in_eval_mode_makes_its_conv_output_a_few_clips_at_a_time(monkeypatch):
    """In eval mode on the CPU the first conv's output is made and pooled one part at a time (one
    clip per part here), and the block's output is that of the whole batch at once."""
    torch.manual_seed(0)
    net = CNNLSTM().eval()
    x, lengths = random_batch(0, torch.float32)
    block_input = (x.unsqueeze(1), *first_block_masks(net, x, lengths))
    with torch.no_grad():
        whole = net.blocks[0](*block_input)
    conv2d, batch_sizes = nn.functional.conv2d, []

    def recorded_conv2d(*args, **kwargs):
        out = conv2d(*args, **kwargs)
        batch_sizes.append(out.shape[0])
        return out

    monkeypatch.setattr(nn.functional, "conv2d", recorded_conv2d)
    monkeypatch.setattr(sersk.nn.module, "CHUNK_ELEMENTS", 1)
    with torch.no_grad():
        parts = net.blocks[0](*block_input)
    assert batch_sizes == [1] * len(x)
    torch.testing.assert_close(parts, whole)


def test_eval_block_without_autograd_takes_the_affine_map_in_its_consumed_input():
    """In eval mode without autograd, a consumed conv output is overwritten by the batch norm's
    affine map instead of a second full-size tensor being made; with autograd it is left alone."""
    torch.manual_seed(0)
    bn = sersk.nn.module.MaskedBatchNorm2d(4).eval()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2)
    pool = nn.MaxPool2d((2, 2))
    x = torch.randn(3, 4, 8, 6)
    time_mask, pooled_mask = torch.ones(3, 6), torch.ones(3, 1, 1, 3)
    expected = pool(torch.relu(bn(x)))
    kept = x.clone()
    torch.testing.assert_close(masked_bn_relu_pool(kept, bn, pool, time_mask, pooled_mask, consume_input=True), expected)
    assert torch.equal(kept, x)  # autograd is on: the input stays
    consumed = x.clone()
    with torch.no_grad():
        out = masked_bn_relu_pool(consumed, bn, pool, time_mask, pooled_mask, consume_input=True)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(consumed, bn(x).detach())


def first_block_masks(net: CNNLSTM, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pad = x.shape[-1] - lengths
    masks = []
    for factor in (1, net.time_factors[0]):
        steps = torch.arange(x.shape[-1] // factor)
        masks.append((steps[None, :] >= (pad // factor)[:, None])[:, None, None, :])
    return masks[0], masks[1]


def gradcheck_batch_norm(n_clips: int, signs: tuple[int, ...]):
    """Float64 batch-norm parameters for 3 channels (scales of the given signs) and the masks of
    ``n_clips`` clips of 6 frames, the first padded by 3: a 2 x 2 pooling window straddles its edge."""
    weight = ((torch.rand(3, dtype=torch.float64) + 0.5) * torch.tensor(signs)).requires_grad_()
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    time_mask = torch.ones(n_clips, 6, dtype=torch.float64)
    time_mask[0, :3] = 0
    pooled_mask = torch.ones(n_clips, 1, 1, 3, dtype=torch.float64)
    pooled_mask[0, ..., 0] = 0
    return weight, bias, time_mask, pooled_mask


@pytest.mark.parametrize("signs", [(1, 1, 1), (1, -1, 1)], ids=["positive-scales", "a-negative-scale"])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_recomputed_conv_block_backward_matches_finite_differences(memory_format, signs, monkeypatch):
    """gradcheck in float64 of conv -> masked batch norm -> ReLU -> pool made one clip at a time,
    for the input, the conv's weight and bias and the batch norm's parameters."""
    monkeypatch.setattr(sersk.nn.module, "CHUNK_ELEMENTS", 1)
    torch.manual_seed(0)
    x = torch.randn(3, 2, 8, 6, dtype=torch.float64).contiguous(memory_format=memory_format).requires_grad_()
    conv_weight = torch.randn(3, 2, 3, 3, dtype=torch.float64).contiguous(memory_format=memory_format)
    conv_weight.requires_grad_()
    conv_bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    weight, bias, time_mask, pooled_mask = gradcheck_batch_norm(3, signs)

    def block(x, conv_weight, conv_bias, weight, bias):
        return _RecomputedConvBNReLUPool.apply(
            conv_weight, conv_bias, weight, bias, (1, 1), (2, 2), 1e-5, x, time_mask, pooled_mask
        )[0]

    def composed(x, conv_weight, conv_bias, weight, bias):
        y = nn.functional.conv2d(x, conv_weight, conv_bias, padding=1)
        return _MaskedBNReLUPool.apply(weight, bias, (2, 2), 1e-5, False, y, time_mask, pooled_mask)[0]

    inputs = (x, conv_weight, conv_bias, weight, bias)
    torch.testing.assert_close(block(*inputs), composed(*inputs))
    assert torch.autograd.gradcheck(block, inputs)


def two_groups(signs: tuple[int, ...]):
    """Float64 batch-norm parameters and a batch of 3 clips in two groups: one clip of 6 frames and
    two of 2 and 4 frames padded to 4 (a 2 x 2 pooling window straddles the 2-frame clip's edge)."""
    weight, bias, _, _ = gradcheck_batch_norm(1, signs)
    time_masks = [torch.ones(1, 6, dtype=torch.float64), torch.ones(2, 4, dtype=torch.float64)]
    time_masks[1][0, :3] = 0
    pooled_masks = [mask[:, 1::2, None, None].permute(0, 2, 3, 1).clone() for mask in time_masks]
    return weight, bias, time_masks, pooled_masks


@pytest.mark.parametrize("signs", [(1, 1, 1), (1, -1, 1)], ids=["positive-scales", "a-negative-scale"])
@pytest.mark.parametrize("recomputed", [False, True])
def test_groups_of_clips_share_the_batch_statistics(recomputed, signs, monkeypatch):
    """A batch in two groups of different padded lengths gives each clip what the whole batch,
    padded to the longest clip, gives it; gradcheck in float64 through both groups."""
    monkeypatch.setattr(sersk.nn.module, "CHUNK_ELEMENTS", 1)
    torch.manual_seed(0)
    weight, bias, time_masks, pooled_masks = two_groups(signs)
    xs = [torch.randn(1, 2, 8, 6, dtype=torch.float64), torch.randn(2, 2, 8, 4, dtype=torch.float64)]
    xs = [(x * m[:, None, None, :]).requires_grad_() for x, m in zip(xs, time_masks)]
    conv_weight = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    conv_bias = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def grouped(conv_weight, conv_bias, weight, bias, x0, x1):
        groups = [x0, time_masks[0], pooled_masks[0], x1, time_masks[1], pooled_masks[1]]
        if recomputed:
            return _RecomputedConvBNReLUPool.apply(conv_weight, conv_bias, weight, bias, (1, 1), (2, 2), 1e-5, *groups)[:2]
        groups[0::3] = [nn.functional.conv2d(x, conv_weight, conv_bias, padding=1) for x in (x0, x1)]
        return _MaskedBNReLUPool.apply(weight, bias, (2, 2), 1e-5, False, *groups)[:2]

    def whole(conv_weight, conv_bias, weight, bias, x0, x1):
        x = torch.cat([x0, nn.functional.pad(x1, (2, 0))])
        time_mask = torch.cat([time_masks[0], nn.functional.pad(time_masks[1], (2, 0))])
        pooled_mask = torch.cat([pooled_masks[0], nn.functional.pad(pooled_masks[1], (1, 0))])
        y = nn.functional.conv2d(x, conv_weight, conv_bias, padding=1)
        return _MaskedBNReLUPool.apply(weight, bias, (2, 2), 1e-5, False, y, time_mask, pooled_mask)[0]

    inputs = (conv_weight, conv_bias, weight, bias, *xs)
    out = whole(*inputs)
    first, second = grouped(*inputs)
    torch.testing.assert_close(first, out[:1])
    torch.testing.assert_close(second, out[1:, ..., 1:])
    assert torch.autograd.gradcheck(grouped, inputs)


def test_convs_skip_the_padding_a_group_does_not_need():
    """On the CPU each group's convs run on its own padded length, not the batch's: the second
    block's conv sees, in all, fewer frames than the whole padded batch holds."""
    torch.manual_seed(0)
    net = CNNLSTM().eval()
    x, lengths = random_batch(0, torch.float32)
    seen = []
    net.blocks[1].conv.register_forward_hook(lambda module, args, out: seen.append(out.shape[0] * out.shape[3]))
    with torch.no_grad():
        net(x, lengths)
    assert len(seen) > 1
    assert sum(seen) < len(x) * x.shape[2] // net.time_factors[0]


def test_length_groups_cover_the_batch_in_groups_of_similar_length():
    lengths = [100, 20, 35, 277, 90, 16, 33, 260]
    groups = length_groups(lengths, 16, 288, 64)
    assert sorted(i for clips, _ in groups for i in clips) == list(range(len(lengths)))
    for clips, frames in groups:
        assert frames % 16 == 0 and max(lengths[i] for i in clips) <= frames < max(lengths[i] for i in clips) + 16
    assert [frames for _, frames in groups] == sorted(frames for _, frames in groups)
    assert len(groups) > 1
    assert length_groups(lengths, 16, 288, 10**9) == [(sorted(range(8), key=lengths.__getitem__), 288)]
    alone = length_groups(lengths, 16, 288, 0)  # free groups: one per padded length
    assert [frames for _, frames in alone] == [16, 32, 48, 96, 112, 272, 288]
    assert length_groups([5, 40], 16, 32, 0) == [([0], 16), ([1], 32)]  # at most the batch's frames


def test_delta_channels_of_a_padded_clip_are_the_clip_alones():
    gen = torch.Generator().manual_seed(0)
    clip, other = torch.randn(128, 37, generator=gen), torch.randn(128, 48, generator=gen)
    batch = torch.zeros(2, 128, 48)
    batch[0, :, 11:], batch[1] = clip, other
    stacked = with_deltas(batch, torch.tensor([11, 0]))
    alone = with_deltas(clip[None])[0]
    assert stacked.shape == (2, 3, 128, 48)
    torch.testing.assert_close(stacked[0, :, :, 11:], alone)
    assert not stacked[0, :, :, :11].any()  # the padding stays 0 in every channel
    delta = compute_deltas(clip[None], win_length=5)[0]
    torch.testing.assert_close(alone[0], clip)
    torch.testing.assert_close(alone[1], delta)
    torch.testing.assert_close(alone[2], compute_deltas(delta[None], win_length=5)[0])
    # a ramp's delta is its slope away from the replicated edges
    ramp = with_deltas(torch.arange(20.0).repeat(4, 1)[None])[0]
    torch.testing.assert_close(ramp[1, :, 2:-2], torch.ones(4, 16))


def test_fused_block_counts_real_frames_only():
    torch.manual_seed(0)
    block = CNNLSTM(n_mels=8, filters=(4,), pools=((2, 2),)).blocks[0].train()
    plain = nn.BatchNorm2d(4).train()
    real = torch.randn(3, 4, 8, 6)
    padded = torch.cat([torch.full((3, 4, 8, 2), 1e3), real], dim=-1)  # garbage on the left
    time_mask = torch.ones(3, 8)
    time_mask[:, :2] = 0
    pooled_mask = time_mask[:, ::2, None, None].permute(0, 2, 3, 1)
    out = masked_bn_relu_pool(padded, block.bn, block.pool, time_mask, pooled_mask)
    torch.testing.assert_close(out[..., 1:], block.pool(torch.relu(plain(real))), atol=1e-5, rtol=1e-5)
    assert torch.all(out[..., :1] == 0)
    torch.testing.assert_close(block.bn.running_mean, plain.running_mean)
    torch.testing.assert_close(block.bn.running_var, plain.running_var)


@pytest.mark.parametrize("signs", [(1, 1, 1), (1, -1, 1)], ids=["positive-scales", "a-negative-scale"])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_fused_block_backward_matches_finite_differences(memory_format, signs):
    """gradcheck in float64, in both layouts (channels-last on the CPU, NCHW on CUDA), pooling first
    (every batch-norm scale positive) and after the affine (one negative)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64).contiguous(memory_format=memory_format).requires_grad_()
    weight, bias, time_mask, pooled_mask = gradcheck_batch_norm(2, signs)

    def fused(x, weight, bias):  # the batch norm's parameters as inputs, for gradcheck
        return _MaskedBNReLUPool.apply(weight, bias, (2, 2), 1e-5, False, x, time_mask, pooled_mask)[0]

    assert fused(x, weight, bias).shape == (2, 3, 4, 3)
    assert torch.autograd.gradcheck(fused, (x, weight, bias))


@pytest.mark.parametrize("signs", [(1, 1, 1, 1), (1, -1, 1, 1)], ids=["positive-scales", "a-negative-scale"])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_a_consumed_input_takes_its_gradient_once(memory_format, signs):
    """``consume_input=True`` (a conv's output): the same gradients, written into the input's memory;
    a second backward through the same graph fails with a clear message instead of reading it. A
    leaf (a tensor of the caller's) is saved, not overwritten."""
    torch.manual_seed(0)
    bn = CNNLSTM(n_mels=8, filters=(4,), pools=((2, 2),)).blocks[0].bn.train()
    with torch.no_grad():
        bn.weight.mul_(torch.tensor(signs, dtype=torch.float32))
    pool = nn.MaxPool2d(2, 2)
    time_mask = torch.ones(2, 6)
    time_mask[0, :2] = 0
    pooled_mask = time_mask[:, ::2, None, None].permute(0, 2, 3, 1)
    source = torch.randn(2, 4, 8, 6).contiguous(memory_format=memory_format).requires_grad_()
    kept = source.detach().clone()
    out = masked_bn_relu_pool(source, bn, pool, time_mask, pooled_mask, consume_input=True)
    grads = [torch.autograd.grad(out.square().sum(), source)[0]]
    assert torch.equal(source.detach(), kept)
    with pytest.raises(ValueError, match="intermediate"):  # the function itself refuses to overwrite a leaf
        _MaskedBNReLUPool.apply(bn.weight, bn.bias, (2, 2), bn.eps, True, source, time_mask, pooled_mask)
    for consume in (False, True):
        x = source * 1.0  # an intermediate, as a conv's output is
        out = masked_bn_relu_pool(x, bn, pool, time_mask, pooled_mask, consume_input=consume)
        before = x.detach().clone()
        grads.append(torch.autograd.grad(out.square().sum(), source, retain_graph=True)[0])
        assert torch.equal(x.detach(), before) != consume  # overwritten only when consumed
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grads[2], grads[0], rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError, match="runs once per forward"):
        torch.autograd.grad(out.square().sum(), source)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_fused_block_backward_with_one_pooled_position_per_plane(memory_format):
    """A clip of at most 16 frames leaves the last block one pooled position per channel, a tensor
    that is channels-last and contiguous at once: its gradient must still be read in ``x``'s layout
    (it mixed channels on the CPU until the layout was taken from ``x`` alone)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64).contiguous(memory_format=memory_format).requires_grad_()
    weight = (torch.rand(3, dtype=torch.float64) + 0.5).requires_grad_()
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    time_mask = torch.ones(2, 2, dtype=torch.float64)
    pooled_mask = torch.ones(2, 1, 1, 1, dtype=torch.float64)

    def fused(x, weight, bias):
        return _MaskedBNReLUPool.apply(weight, bias, (2, 2), 1e-5, False, x, time_mask, pooled_mask)[0]

    assert fused(x, weight, bias).shape == (2, 3, 1, 1)
    assert torch.autograd.gradcheck(fused, (x, weight, bias))


def long_clip_net(padding: str, deltas: bool, pools) -> CNNLSTM:
    """A small network in eval mode, its running statistics drawn so that no batch norm is the identity."""
    torch.manual_seed(0)
    net = CNNLSTM(n_mels=32, filters=(4, 4, 8, 8), pools=pools, hidden_size=8, padding=padding, deltas=deltas)
    for block in net.blocks:
        block.bn.running_mean.uniform_(-1, 1)
        block.bn.running_var.uniform_(0.5, 2)
        nn.init.uniform_(block.bn.weight, 0.5, 2)
        nn.init.uniform_(block.bn.bias, -0.5, 0.5)
    return net.eval()


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("padding, deltas, pad", [("masked", False, 5), ("masked", True, 11), ("masked", False, 0),
                                                  ("reference", False, 7), ("reference", True, 0)])
@pytest.mark.parametrize("pools", [((2, 2), (2, 2), (2, 2), (2, 2)), ((2, 3), (2, 1), (2, 2), (4, 1))])
def test_a_long_clip_run_in_windows_gives_the_whole_clips_steps(padding, deltas, pad, pools, device, monkeypatch,
                                                                no_tf32):
    """In eval mode a clip longer than WINDOW_FRAMES runs through the convs in windows (bounded memory
    for a long recording): every step the LSTM reads is the whole clip's, on every window's edge."""
    net = long_clip_net(padding, deltas, pools).to(device)
    length = 1000 + 7
    x = torch.zeros(1, 32, length + pad)
    x[..., pad:] = torch.randn(32, length, generator=torch.Generator().manual_seed(1)) * 3 - 5
    x, lengths = x.to(device), torch.tensor([length], device=device)
    lstm_inputs = []
    net.lstm.register_forward_pre_hook(lambda module, args: lstm_inputs.append(args[0]))
    with torch.no_grad():
        whole = net(x, lengths)
        first_convs = []  # the widths of the first block's conv calls
        conv2d = nn.functional.conv2d

        def recorded_conv2d(input, *args, **kwargs):
            if input.shape[1] <= 3:  # the first block's input: the log-mels (with a zero channel on the CPU)
                first_convs.append(input.shape[-1])
            return conv2d(input, *args, **kwargs)

        monkeypatch.setattr(nn.functional, "conv2d", recorded_conv2d)
        for window in (64, 100, 333):
            monkeypatch.setattr(sersk.nn.module, "WINDOW_FRAMES", window)
            first_convs.clear()
            torch.testing.assert_close(net(x, lengths), whole, rtol=1e-5, atol=1e-5)  # convs of other widths
            torch.testing.assert_close(lstm_inputs[-1], lstm_inputs[0], rtol=1e-5, atol=1e-5)
            margin = net._receptive_margin() + net.time_factor  # rounded up to the pooling
            assert len(first_convs) >= length // window and max(first_convs) <= window + 2 * margin
        net.blocks[1].bn.train()  # a batch norm on the batch's statistics (test-time adaptation): no windows
        first_convs.clear()
        net(x, lengths)
        assert first_convs == [length + pad if padding == "reference" else -(-length // net.time_factor) * net.time_factor]
        if padding == "masked":
            net.eval()
            with pytest.raises(ValueError, match="lengths\\[0\\]=2000; expected 1 to the"):
                net(x, torch.tensor([2000], device=device))
