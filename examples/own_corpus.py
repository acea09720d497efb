"""sersk on a corpus of your own: a CSV of path,label[,speaker].

    python examples/own_corpus.py my_corpus.csv

Paths may be relative to the CSV's folder; any format libsndfile reads, at any sample rate
(resampled to 16 kHz), mono or stereo.
"""

import csv
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score

from sersk import make_pipeline

table = Path(sys.argv[1])
with table.open(newline="") as f:
    rows = list(csv.DictReader(f))
paths = np.array([str((table.parent / row["path"]).resolve()) for row in rows])
labels = np.array([row["label"] for row in rows])
speakers = np.array([row["speaker"] for row in rows]) if rows and "speaker" in rows[0] else None

pipe = make_pipeline(n_augmentations=10, random_state=0)
cv = GroupKFold(n_splits=5) if speakers is not None else StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
scores = cross_val_score(pipe, paths, labels, groups=speakers, cv=cv, scoring="balanced_accuracy")
print(f"UAR {scores.mean():.1%} +- {scores.std():.1%}")
joblib.dump(pipe.fit(paths, labels), table.with_suffix(".joblib"))
