"""Reproduce the reference example: 70/15/15 per label over files (speaker-dependent), with figures.

75 augmented copies of each training clip and 3 epochs by default, validation once per epoch, test
accuracy. That is 27,825 augmented clips to train on, long on a CPU. Size it with
--n-augmentations (and --epochs) for a first try:

    python examples/reference_split.py --n-augmentations 5 --figures figures/

With --n-augmentations 5 it took 49 s on a 2-core AMD EPYC, peak 1.3 GB
(benchmarks/results/timings_2026-12-01_zen5_examples.txt); not yet timed on a GPU. At full size (as written, no options) it took 8 min 23 s, peak
2.6 GB, there, and scored 80.5 % test accuracy (seed 0; benchmarks/results/timings_2026-12-01_zen5_full.txt);
`sersk reproduce` trains the same in 9-10 minutes (README).
<!-- TIME: python examples/reference_split.py --n-augmentations 5  (GPU) -->
<!-- TIME: python examples/reference_split.py  (GPU) -->
"""

import argparse

from sersk import make_pipeline
from sersk.datasets import fetch_emodb
from sersk.evaluation import REFERENCE_ACCURACY, run_reference_protocol

parser = argparse.ArgumentParser(description="The reference protocol on Emo-DB.")
parser.add_argument("--n-augmentations", type=int, default=75, help="augmented copies per training clip")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--figures", metavar="DIR", help="write the figures to this folder")
args = parser.parse_args()

emodb = fetch_emodb()
pipe = make_pipeline(n_augmentations=args.n_augmentations, max_epochs=args.epochs, random_state=args.seed, verbose=1)
results = run_reference_protocol(emodb.filenames, emodb.target, pipeline=pipe, random_state=args.seed,
                                 figures_dir=args.figures, verbose=1)
print(f"test accuracy {results['accuracy']:.1%}, UAR {results['uar']:.1%} "
      f"(the reference: {REFERENCE_ACCURACY:.2%} with 75 augmentations)")
