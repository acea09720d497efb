"""Left-padding collation: a list of (n_mels, n_frames_i) sequences -> one padded batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .. import _recipe


class LeftPadCollate:
    """Collate variable-length sequences, zero-padded on the left so that real frames end the batch.

    The batch is padded to its longest sequence, at least ``min_frames``, rounded up to a multiple
    of ``multiple``. With ``multiple`` equal to the network's time-pooling factor, a sequence's real
    frames meet the pooling windows at the same offsets whatever its batch (what
    ``padding="masked"`` needs); ``multiple=1`` is the reference's padding.

    Parameters
    ----------
    min_frames : int, default=16
        The shortest padded batch (the network's time-pooling factor).
    multiple : int, default=1
        Pad the batch length up to a multiple of this.

    Returns
    -------
    (inputs, y) : tuple
        ``inputs`` is a dict with ``x`` (float32 tensor of shape (batch, n_mels, time)) and
        ``lengths`` (int64 tensor of shape (batch,)); ``y`` a tensor, or None at predict time.
    """

    def __init__(self, min_frames: int = _recipe.MIN_FRAMES, multiple: int = 1):
        self.min_frames = min_frames
        self.multiple = multiple

    def __call__(self, batch: Sequence[tuple[Any, Any]]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Left-pad the sequences of ``batch`` into one tensor.

        Parameters
        ----------
        batch : sequence of (array-like of shape (n_mels, n_frames_i), label)
            The dataset's items; labels of None (prediction) give ``y=None``.

        Returns
        -------
        (inputs, y) : tuple
            As in the class description.
        """
        xs = [torch.as_tensor(np.asarray(x), dtype=torch.float32) for x, _ in batch]
        lengths = torch.tensor([x.shape[-1] for x in xs], dtype=torch.int64)
        n_frames = padded_frames(lengths.tolist(), self.min_frames, self.multiple)
        out = xs[0].new_zeros(len(xs), xs[0].shape[0], n_frames)
        for row, x in enumerate(xs):
            out[row, :, n_frames - x.shape[-1] :] = x
        labels = [y for _, y in batch]
        y = None if all(label is None for label in labels) else torch.utils.data.default_collate(labels)
        return {"x": out, "lengths": lengths}, y

    def __repr__(self) -> str:
        return f"LeftPadCollate(min_frames={self.min_frames}, multiple={self.multiple})"


def warp_bands(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Stretch (``factor > 1``) or squeeze the band axis of ``x`` (bands, frames), anchored at band 0.

    Band ``b`` of the result is band ``b / factor`` of ``x``, linearly interpolated; positions past
    the top band take the top band. On a mel axis this moves formants and harmonics up or down, as
    a shorter or longer vocal tract moves formants (a simplified vocal tract length perturbation;
    harmonics move too).
    """
    if not factor > 0:
        raise ValueError(f"factor={factor!r}; expected a positive number")
    n = x.shape[0]
    return interpolate_rows(x, (torch.arange(n, dtype=torch.float64, device=x.device) / factor).clamp_(max=n - 1))


def interpolate_rows(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` at fractional positions ``pos`` (in ``[0, len(x) - 1]``), linearly interpolated."""
    lo = pos.floor().long()
    hi = (lo + 1).clamp_(max=x.shape[0] - 1)
    w = (pos - lo).to(x.dtype).reshape(-1, *[1] * (x.dim() - 1))
    return x[lo] * (1 - w) + x[hi] * w


def random_band_offset(n_bands: int, scale: float, n_knots: int = 5) -> torch.Tensor:
    """A smooth random curve over ``n_bands`` bands, shape (n_bands, 1), to add to a clip's log-mels.

    ``n_knots`` values drawn from N(0, ``scale``²), evenly spaced over the band axis and
    linearly interpolated between: a slow tilt or bump of the spectral envelope, constant in time,
    as another voice or microphone puts on every frame.
    """
    knots = torch.randn(n_knots) * scale
    return interpolate_rows(knots, torch.linspace(0, n_knots - 1, n_bands))[:, None]


class TrainingCollate(LeftPadCollate):
    """:class:`LeftPadCollate` for training batches, with fresh random crops, warps and masks every time.

    Each clip longer than ``crop_frames`` is cut to a random window of that many frames (shorter
    clips stay whole); with ``freq_warp``, its band axis is stretched by a factor drawn uniformly
    from ``[1 - freq_warp, 1 + freq_warp]`` (:func:`warp_bands`); with ``band_offset``, a smooth
    random curve over the bands (:func:`random_band_offset`) is added to all its frames; then
    ``n_masks`` frequency masks of fewer than ``freq_mask_bands`` bands and ``n_masks`` time masks
    of fewer than ``time_mask_frames`` frames (SpecAugment, drawn as
    :func:`torchaudio.functional.mask_along_axis` draws them, for the whole batch at once by
    :func:`random_spans`) are set to 0 in each clip's real frames. The draws use torch's random
    generator, which the classifier seeds in ``fit``.

    Parameters
    ----------
    crop_frames : int or None, default=None
        Length of the random training windows; None keeps whole clips.
    freq_warp : float, default=0.0
        The largest relative stretch of the band axis, in [0, 1); 0 warps nothing.
    band_offset : float, default=0.0
        The standard deviation of the random band offsets; 0 adds none.
    freq_mask_bands, time_mask_frames : int, default=0
        The widest frequency and time mask; 0 draws none.
    n_masks : int, default=2
        Masks of each kind per clip.
    min_frames, multiple :
        As in :class:`LeftPadCollate`.
    """

    def __init__(
        self, crop_frames: int | None = None, *, freq_warp: float = 0.0, band_offset: float = 0.0,
        freq_mask_bands: int = 0, time_mask_frames: int = 0, n_masks: int = 2, min_frames: int = _recipe.MIN_FRAMES,
        multiple: int = 1,
    ):
        super().__init__(min_frames=min_frames, multiple=multiple)
        self.crop_frames = crop_frames
        self.freq_warp = freq_warp
        self.band_offset = band_offset
        self.freq_mask_bands = freq_mask_bands
        self.time_mask_frames = time_mask_frames
        self.n_masks = n_masks

    def __call__(self, batch: Sequence[tuple[Any, Any]]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        xs = [np.asarray(x) for x, _ in batch]
        if self.crop_frames is not None:
            xs = self._crop(xs)
        clips: list[np.ndarray] | list[torch.Tensor] = xs
        if self.freq_warp or self.band_offset:
            clips = [self._warp_and_offset_bands(torch.as_tensor(x, dtype=torch.float32)) for x in xs]
        inputs, y = super().__call__([(x, label) for x, (_, label) in zip(clips, batch)])
        if self.n_masks and (self.freq_mask_bands or self.time_mask_frames):
            self._mask(inputs["x"], inputs["lengths"])
        return inputs, y

    def _crop(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        """Each clip longer than ``crop_frames`` cut to a window starting at a uniformly drawn frame."""
        assert self.crop_frames is not None  # called only with crop_frames set
        lengths = torch.tensor([x.shape[-1] for x in xs])
        room = (lengths - self.crop_frames + 1).clamp(min=1)
        starts = (torch.rand(len(xs), dtype=torch.float64) * room).long().tolist()
        return [x[:, s : s + self.crop_frames] for x, s in zip(xs, starts)]

    def _warp_and_offset_bands(self, x: torch.Tensor) -> torch.Tensor:
        """One clip's band axis warped by a drawn factor, then offset by a drawn curve (each when asked)."""
        if self.freq_warp:
            x = warp_bands(x, float(torch.empty(()).uniform_(1 - self.freq_warp, 1 + self.freq_warp)))
        if self.band_offset:
            x = x + random_band_offset(x.shape[0], self.band_offset)
        return x

    def _mask(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """Zero ``n_masks`` random spans of bands and of frames in each clip's real frames, in place."""
        batch, n_bands, n_frames = x.shape
        if self.freq_mask_bands:
            sizes = torch.full((batch,), n_bands)
            bands = random_spans(sizes, min(self.freq_mask_bands, n_bands), self.n_masks, n_bands)
            x.masked_fill_(bands[:, :, None], 0.0)
        if self.time_mask_frames:
            # widths capped at the clip's size: a wider mask would blank the whole clip
            frames = random_spans(lengths, self.time_mask_frames, self.n_masks, n_frames, offsets=n_frames - lengths)
            x.masked_fill_(frames[:, None, :], 0.0)

    def __repr__(self) -> str:
        return (
            f"TrainingCollate(crop_frames={self.crop_frames}, freq_warp={self.freq_warp}, band_offset={self.band_offset}, "
            f"freq_mask_bands={self.freq_mask_bands}, time_mask_frames={self.time_mask_frames}, n_masks={self.n_masks}, min_frames={self.min_frames}, "
            f"multiple={self.multiple})"
        )


def random_spans(
    sizes: torch.Tensor, max_width: int, n_spans: int, n_positions: int, offsets: torch.Tensor | None = None
) -> torch.Tensor:
    """Boolean masks of ``n_spans`` random spans per row, as :func:`torchaudio.functional.mask_along_axis` draws them.

    In row ``i`` each span has a width drawn uniformly from ``[0, min(max_width, sizes[i]))`` and a
    start drawn uniformly so that it fits in ``sizes[i]`` positions; those positions begin at
    ``offsets[i]`` (default 0) of ``n_positions``.

    Returns
    -------
    mask : bool tensor of shape (len(sizes), n_positions)
    """
    sizes = sizes.to(torch.float64)
    widths = torch.rand(len(sizes), n_spans, dtype=torch.float64) * sizes.clamp(max=max_width)[:, None]
    starts = (torch.rand(len(sizes), n_spans, dtype=torch.float64) * (sizes[:, None] - widths)).long()
    ends = starts + widths.long()
    pos = torch.arange(n_positions)[None, :] - (0 if offsets is None else offsets[:, None])
    return ((pos[:, None, :] >= starts[:, :, None]) & (pos[:, None, :] < ends[:, :, None])).any(dim=1)


def crop_windows(lengths: Sequence[int], size: int) -> list[tuple[int, int, int]]:
    """Windows of ``size`` frames, overlapping by half, that cover each clip: (clip, start, stop).

    A clip no longer than ``size`` is one window, whole; the last window of a longer clip ends
    at the clip's end.
    """
    hop = max(size // 2, 1)
    windows: list[tuple[int, int, int]] = []
    for clip, n in enumerate(lengths):
        starts = list(range(0, max(n - size, 0) + 1, hop))
        if starts[-1] + size < n:
            starts.append(n - size)
        windows.extend((clip, start, min(start + size, n)) for start in starts)
    return windows


def padded_frames(lengths: Sequence[int] | np.ndarray, min_frames: int = _recipe.MIN_FRAMES, multiple: int = 1) -> int:
    """The frames :class:`LeftPadCollate` pads a batch of these lengths to."""
    return round_up(max(max(lengths), min_frames), multiple)


def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple``."""
    return -(-n // multiple) * multiple


def split_to_budget(
    batch: Sequence[int], lengths: np.ndarray, max_frames: int | None, *, min_frames: int = 1, multiple: int = 1
) -> list[list[int]]:
    """Split one batch of clip indices so that each part pads to at most ``max_frames`` frames in all.

    A batch within the budget is returned as it is. Otherwise it is cut, in its own order, into the
    fewest parts of equal size (within one clip) that each fit; a single clip longer than the
    budget makes a part of its own, and the clips between such clips are split as above. Keeping
    the order keeps predictions in input order; equal parts keep every part's batch-norm
    statistics from as many clips as the budget allows.
    """
    batch = list(batch)
    if max_frames is None:
        return [batch]
    if batch and padded_frames(lengths[batch], min_frames, multiple) <= max_frames:
        # every clip fits alone (the usual case): the loop below would give the same, clip by clip
        return _fewest_equal_parts(batch, lengths, max_frames, min_frames, multiple)
    parts: list[list[int]] = []
    run: list[int] = []  # consecutive clips that each fit alone
    for index in batch:
        if padded_frames([lengths[index]], min_frames, multiple) > max_frames:
            parts += _fewest_equal_parts(run, lengths, max_frames, min_frames, multiple) + [[index]]
            run = []
        else:
            run.append(index)
    return parts + _fewest_equal_parts(run, lengths, max_frames, min_frames, multiple)


def _fewest_equal_parts(
    batch: list[int], lengths: np.ndarray, max_frames: int, min_frames: int, multiple: int
) -> list[list[int]]:
    """``batch`` (clips that each fit alone) in the fewest parts of equal size, in order, that fit."""
    for n_parts in range(1, len(batch) + 1):
        parts = [part.tolist() for part in np.array_split(np.asarray(batch), n_parts)]
        if all(len(part) * padded_frames(lengths[part], min_frames, multiple) <= max_frames for part in parts):
            return parts
    return []  # no clips


class BudgetedBatchSampler(torch.utils.data.Sampler):
    """Mini-batches of ``batch_size`` clips, each split if it would pad to more than ``max_frames``.

    Bounds the memory of a training step whatever the clip lengths: long clips come in smaller
    batches instead of taking more memory (a batch of 32 of Emo-DB's longest clips pads to 9,216
    frames). With ``shuffle``, the order is drawn from torch's global generator
    (seeded by the classifier's ``random_state``) every epoch.

    Parameters
    ----------
    lengths : sequence of int
        Frames of each clip.
    batch_size : int
        Clips per batch.
    max_frames : int or None
        The most frames one padded batch may hold; ``None``: no limit.
    shuffle : bool, default=True
        Shuffle the clips every epoch; else keep their order.
    min_frames, multiple : int, default=1
        The padding rule of the collation (:class:`LeftPadCollate`).
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, max_frames: int | None, *, shuffle: bool = True,
        min_frames: int = 1, multiple: int = 1,
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.max_frames = max_frames
        self.shuffle = shuffle
        self.min_frames = min_frames
        self.multiple = multiple

    def _split(self, batch: Sequence[int]) -> list[list[int]]:
        return split_to_budget(batch, self.lengths, self.max_frames, min_frames=self.min_frames, multiple=self.multiple)

    def __iter__(self):
        n = len(self.lengths)
        order = torch.randperm(n).tolist() if self.shuffle else list(range(n))
        for start in range(0, n, self.batch_size):
            yield from self._split(order[start : start + self.batch_size])

    def __len__(self) -> int:
        """Batches in the clips' own order (with ``shuffle`` and a binding budget, an estimate)."""
        n = len(self.lengths)
        return sum(len(self._split(list(range(start, min(start + self.batch_size, n))))) for start in range(0, n, self.batch_size))


class SimilarLengthBatchSampler(BudgetedBatchSampler):
    """Shuffled mini-batches of clips of similar length, to cut padding.

    Each epoch: shuffle all indices, sort each pool of ``pool_batches * batch_size`` of them by
    length, cut the pools into batches (split further where one would pad to more than
    ``max_frames``, see :func:`split_to_budget`), and shuffle the order of the batches. Randomness
    comes from torch's global generator (seeded by the classifier's ``random_state``).

    Parameters
    ----------
    lengths : sequence of int
        Frames of each clip.
    batch_size : int
        Clips per batch.
    pool_batches : int, default=50
        Batches per sorting pool: larger pools give more uniform batches, smaller ones more randomness.
    max_frames : int or None, default=None
        The most frames one padded batch may hold; ``None``: no limit.
    min_frames, multiple : int, default=1
        The padding rule of the collation (:class:`LeftPadCollate`).
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, pool_batches: int = 50, *, max_frames: int | None = None,
        min_frames: int = 1, multiple: int = 1,
    ):
        super().__init__(lengths, batch_size, max_frames, shuffle=True, min_frames=min_frames, multiple=multiple)
        self.pool_batches = pool_batches

    def __iter__(self):
        order = torch.randperm(len(self.lengths)).numpy()
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            for i in range(0, len(chunk), self.batch_size):
                batches += self._split(chunk[i : i + self.batch_size].tolist())
        for b in torch.randperm(len(batches)).tolist():
            yield batches[b]

    def __len__(self) -> int:
        """Batches per epoch (with a binding ``max_frames``, an estimate: the split depends on the draw)."""
        pool = self.batch_size * self.pool_batches
        full, rest = divmod(len(self.lengths), pool)
        n_batches = full * self.pool_batches + -(-rest // self.batch_size)
        if self.max_frames is None:
            return n_batches
        padded = np.array([padded_frames([n], self.min_frames, self.multiple) for n in self.lengths])
        return max(n_batches, int(np.ceil(padded.sum() / self.max_frames)))
