"""A GridSearchCV sweep over network parameters under speaker-grouped cross-validation.

With memory=, each fold's clips are decoded, augmented and featurised once for all candidates.
Four candidates x --folds fits, plus a refit: size it with --n-augmentations, --folds and --epochs
(the two epoch counts of the grid):

    python examples/grid_search.py --n-augmentations 2 --folds 5
    python examples/grid_search.py --n-augmentations 1 --folds 2 --epochs 1 2

On a 2-core AMD EPYC, the first command (the defaults) took 7 min 42 s, peak 1.4 GB
(benchmarks/results/timings_2026-12-01_zen5_full.txt); with --folds 2, 2 min 9 s, peak 1.2 GB
(benchmarks/results/timings_2026-12-01_zen5_examples.txt); the second command, 47 s, peak 1.3 GB
(benchmarks/results/grid_search_quick_2026-12-01_zen5.txt). Not yet timed on a GPU.
<!-- TIME: python examples/grid_search.py --n-augmentations 2 --folds 5  (GPU) -->
"""

import argparse
import tempfile

from sklearn.model_selection import GridSearchCV, GroupKFold

from sersk import make_pipeline
from sersk.datasets import fetch_emodb

parser = argparse.ArgumentParser(description="A grid search over the learning rate and the epochs.")
parser.add_argument("--n-augmentations", type=int, default=2, help="augmented copies per training clip")
parser.add_argument("--folds", type=int, default=5, help="speaker-grouped folds")
parser.add_argument("--epochs", type=int, nargs=2, default=[3, 6], metavar="N", help="the grid's two epoch counts")
args = parser.parse_args()

emodb = fetch_emodb()
with tempfile.TemporaryDirectory() as cache:
    pipe = make_pipeline(n_augmentations=args.n_augmentations, random_state=0, memory=cache)
    grid = {"net__lr": [0.001, 0.005], "net__max_epochs": args.epochs}
    search = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=args.folds), scoring="balanced_accuracy", verbose=2)
    search.fit(emodb.filenames, emodb.target, groups=emodb.speaker)
# the winner's mean over the folds that chose it: optimistic, not a held-out score
print("best:", search.best_params_, f"mean cross-validated UAR {search.best_score_:.1%} (chose it)")
