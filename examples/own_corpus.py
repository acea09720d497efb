"""sersk on a corpus of your own: a CSV of path,label[,speaker] (or a folder of Emo-DB-named WAVs).

    python examples/own_corpus.py my_corpus.csv --n-augmentations 10 --folds 5

Paths may be relative to the CSV's folder; any format libsndfile reads, at any sample rate
(resampled to 16 kHz), mono or stereo. Cross-validation is grouped by speaker when the CSV has a
speaker column. The model trained on all the clips is saved next to the CSV (my_corpus.joblib).
Its time grows with the corpus, --n-augmentations, --epochs and --folds.

On Emo-DB as a CSV (535 clips, 10 speakers), on a 2-core AMD EPYC: as written above it took
8 min 18 s, peak 1.5 GB, for 5 cross-validation fits and the final one (UAR 57.8 % +- 7.4 %;
benchmarks/results/timings_2026-12-01_zen5_full.txt); --n-augmentations 2 --folds 2 took 43 s, peak 1.3 GB
(benchmarks/results/timings_2026-12-01_zen5_examples.txt). Not yet timed on a GPU.
<!-- TIME: python examples/own_corpus.py <Emo-DB as a CSV> --n-augmentations 10 --folds 5  (GPU) -->
"""

import argparse
from pathlib import Path

import joblib
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score

from sersk import make_pipeline
from sersk.datasets import load_corpus

parser = argparse.ArgumentParser(description="Cross-validate and train sersk on a corpus of your own.")
parser.add_argument("data", help="a CSV file path,label[,speaker], or a folder of Emo-DB-named WAVs")
parser.add_argument("--n-augmentations", type=int, default=10, help="augmented copies per training clip")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--folds", type=int, default=5)
args = parser.parse_args()

out = Path(args.data).absolute().with_suffix(".joblib")  # beside the CSV or folder; known before training
corpus = load_corpus(args.data)  # filenames, target, speaker (or None), ...
pipe = make_pipeline(n_augmentations=args.n_augmentations, max_epochs=args.epochs, random_state=0)
if corpus.speaker is not None:
    cv = GroupKFold(n_splits=args.folds)
else:
    cv = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0)
scores = cross_val_score(pipe, corpus.filenames, corpus.target, groups=corpus.speaker, cv=cv,
                         scoring="balanced_accuracy")
print(f"UAR {scores.mean():.1%} +- {scores.std(ddof=1):.1%} (mean +- sample std) over {args.folds} folds")
joblib.dump(pipe.fit(corpus.filenames, corpus.target), out)
print(f"wrote {out} (fitted on all {len(corpus.filenames)} clips)")
