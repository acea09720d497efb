"""Time of the tuned preset's training collation (crops + SpecAugment masks), per batch and per epoch.

The baseline is the collation as shipped before the batched masks (commit 6f91501): each clip
cropped and masked on its own, four ``torchaudio.functional.mask_along_axis`` calls per clip.
Both run in this process on the same Emo-DB-length clips; then one epoch of the tuned preset's
network on the CPU with each (best of three, alternating), to show what the collation weighs in a training step. On a GPU the
collation runs on the CPU while the GPU waits: there it weighs far more (see docs/results.md).

Run: python benchmarks/bench_collate.py [--n-clips 480]
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import numpy as np
import torch
from bench_train import emodb_length_sequences
from torchaudio.functional import mask_along_axis

from sersk import make_pipeline
from sersk.nn.collate import LeftPadCollate, TrainingCollate


class PerClipTrainingCollate(TrainingCollate):
    """The baseline: every clip cropped and masked alone (sersk before the batched masks)."""

    def __call__(self, batch):
        return LeftPadCollate.__call__(self, [(self._augment_one(x), y) for x, y in batch])

    def _augment_one(self, x):
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        n_frames = x.shape[-1]
        if self.crop_frames is not None and n_frames > self.crop_frames:
            start = int(torch.randint(n_frames - self.crop_frames + 1, ()))
            x = x[:, start : start + self.crop_frames]
        for _ in range(self.n_masks):
            x = mask_along_axis(x, min(self.freq_mask_bands, x.shape[0]), 0.0, axis=0)
            x = mask_along_axis(x, min(self.time_mask_frames, x.shape[1]), 0.0, axis=1)
        return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-clips", type=int, default=480)
    args = parser.parse_args()
    X, y, _ = emodb_length_sequences(args.n_clips)
    net = make_pipeline("tuned", random_state=0, device="cpu")[-1].set_params(max_epochs=1)
    options = dict(freq_mask_bands=net.freq_mask_bands, time_mask_frames=net.time_mask_frames, min_frames=16,
                   multiple=16)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.n_clips} clips of Emo-DB lengths; "
          f"tuned preset: crop_frames={net.crop_frames}, masks {options['freq_mask_bands']} bands / "
          f"{options['time_mask_frames']} frames, batches of {net.batch_size}")
    batches = [list(zip(X[i : i + 32], y[i : i + 32])) for i in range(0, args.n_clips, 32)]
    collates = [("baseline: per clip (as shipped)", PerClipTrainingCollate), ("batched masks (new)", TrainingCollate)]
    per_batch, epochs = {}, {name: [] for name, _ in collates}
    for name, cls in collates:
        fn = cls(net.crop_frames, **options)
        torch.manual_seed(0)
        t0 = time.perf_counter()
        for batch in batches:
            fn(batch)
        per_batch[name] = (time.perf_counter() - t0) / len(batches)
    for _ in range(3):  # alternating, best of three: a training epoch's time varies by several percent
        for name, cls in collates:
            with mock.patch("sersk.nn.classifier.TrainingCollate", cls):
                clf = net.__class__(**net.get_params())
                clf.fit(X[:64], y[:64])  # warm-up
                t0 = time.perf_counter()
                clf.fit(X, y)
                epochs[name].append(time.perf_counter() - t0)
    rows = [(name, per_batch[name], min(epochs[name])) for name, _ in collates]
    print()
    print(f"{'collation':34s} {'ms/batch':>9s} {'speed-up':>8s} {'epoch, CPU':>11s} {'speed-up':>8s}")
    for name, per_batch, epoch in rows:
        print(f"{name:34s} {per_batch * 1e3:9.2f} {rows[0][1] / per_batch:7.1f}x {epoch:9.2f} s {rows[0][2] / epoch:7.2f}x")


if __name__ == "__main__":
    main()
