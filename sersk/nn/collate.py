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

    def __call__(self, batch: Sequence[tuple[Any, Any]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        xs = [torch.as_tensor(np.asarray(x), dtype=torch.float32) for x, _ in batch]
        lengths = torch.tensor([x.shape[-1] for x in xs], dtype=torch.int64)
        n_frames = max(int(lengths.max()), self.min_frames)
        n_frames = -(-n_frames // self.multiple) * self.multiple
        out = xs[0].new_zeros(len(xs), xs[0].shape[0], n_frames)
        for row, x in enumerate(xs):
            out[row, :, n_frames - x.shape[-1] :] = x
        y = torch.utils.data.default_collate([y for _, y in batch])
        return {"x": out, "lengths": lengths}, y

    def __repr__(self) -> str:
        return f"LeftPadCollate(min_frames={self.min_frames}, multiple={self.multiple})"


def padded_frames(lengths: Sequence[int], min_frames: int = _recipe.MIN_FRAMES, multiple: int = 1) -> int:
    """The frames :class:`LeftPadCollate` pads a batch of these lengths to."""
    n_frames = max(max(lengths), min_frames)
    return -(-n_frames // multiple) * multiple


def split_to_budget(
    batch: Sequence[int], lengths: np.ndarray, max_frames: int | None, *, min_frames: int = 1, multiple: int = 1
) -> list[list[int]]:
    """Split one batch of clip indices so that each part pads to at most ``max_frames`` frames in all.

    A batch within the budget is returned as it is. Otherwise it is cut, in its own order, into the
    fewest parts of equal size (within one clip) that each fit; a single clip longer than the
    budget makes a part of its own. Keeping the order keeps predictions in input order; equal
    parts keep every part's batch-norm statistics from as many clips as the budget allows.
    """
    batch = list(batch)
    if max_frames is None:
        return [batch]
    for n_parts in range(1, len(batch) + 1):
        parts = [part.tolist() for part in np.array_split(np.asarray(batch), n_parts)]
        if all(len(part) * padded_frames(lengths[part], min_frames, multiple) <= max_frames for part in parts):
            return parts
    return [[i] for i in batch]


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
