"""Where a training step's time goes on the CPU: torch.profiler over steps of the default network.

Batches of 32 clips with Emo-DB's log-mel lengths (drawn from the real corpus's frame counts),
fully shuffled as the recipe draws them, trained with the recipe's optimiser inside sersk's
allocator setting, as ``CNNLSTMClassifier.fit`` runs them. Prints the operators by their own time,
and the share of the convolutions (forward and backward) in the profiled time.

Run: python benchmarks/profile_train_step.py [--steps 12] [--rows 25]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from sersk import CNNLSTM
from sersk.utils._malloc import reuse_freed_memory

from _machine import cpu_line  # benchmarks/_machine.py, beside this script
from bench_train import emodb_frame_counts

CONVOLUTIONS = ("aten::mkldnn_convolution", "aten::convolution_backward")
FIRST_BLOCK = ("_RecomputedConvBNReLUPool", "_RecomputedConvBNReLUPoolBackward")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    frames = emodb_frame_counts()
    rng = np.random.default_rng(0)
    batches = [rng.choice(frames, 32, replace=False) for _ in range(args.steps + 4)]
    inputs = []
    for lengths in batches:
        x = torch.zeros(32, 128, int(-(-lengths.max() // 16) * 16))
        for row, n in enumerate(lengths):
            x[row, :, x.shape[2] - n :] = torch.randn(128, int(n))
        inputs.append((x, torch.as_tensor(lengths), torch.as_tensor(rng.integers(0, 7, 32))))
    torch.manual_seed(0)
    net = CNNLSTM().train()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.005, weight_decay=5e-4)

    def step(x: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor) -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x, lengths), target).backward()
        optimizer.step()

    with reuse_freed_memory():
        for batch in inputs[:4]:  # warm-up
            step(*batch)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            for batch in inputs[4:]:
                step(*batch)
            seconds = time.perf_counter() - t0
    events = prof.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    convs = sum(event.self_cpu_time_total for event in events if event.key in CONVOLUTIONS)
    print(cpu_line())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.steps} steps of 32 clips, "
          f"{32 * args.steps / seconds:.1f} clips/s under the profiler")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    print(f"convolutions (forward and backward): {convs / total:.1%} of the profiled time")
    first = sum(event.cpu_time_total for event in events if event.key in FIRST_BLOCK)
    print(f"first block (its fused function, forward and backward, convs included): {first / total:.1%}")


if __name__ == "__main__":
    main()
