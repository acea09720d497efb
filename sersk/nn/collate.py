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


class SimilarLengthBatchSampler(torch.utils.data.Sampler):
    """Shuffled mini-batches of clips of similar length, to cut padding.

    Each epoch: shuffle all indices, sort each pool of ``pool_batches * batch_size`` of them by
    length, cut the pools into batches, and shuffle the order of the batches. Randomness comes from
    torch's global generator (seeded by the classifier's ``random_state``).

    Parameters
    ----------
    lengths : sequence of int
        Frames of each clip.
    batch_size : int
        Clips per batch.
    pool_batches : int, default=50
        Batches per sorting pool: larger pools give more uniform batches, smaller ones more randomness.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, pool_batches: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.pool_batches = pool_batches

    def __iter__(self):
        order = torch.randperm(len(self.lengths)).numpy()
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        for b in torch.randperm(len(batches)).tolist():
            yield batches[b]

    def __len__(self) -> int:
        pool = self.batch_size * self.pool_batches
        full, rest = divmod(len(self.lengths), pool)
        return full * self.pool_batches + -(-rest // self.batch_size)
