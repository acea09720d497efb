"""Reproduce the reference example: 70/15/15 per label over files (speaker-dependent).

75 augmented copies of each training clip, 3 epochs, validation once per epoch, test accuracy.
Heavy on a CPU (27,825 augmented clips); pass a smaller --n-augmentations for a first try.

    python examples/reference_split.py --n-augmentations 5
"""

import argparse

import numpy as np

from sersk import make_pipeline
from sersk.datasets import fetch_emodb
from sersk.model_selection import reference_split

parser = argparse.ArgumentParser()
parser.add_argument("--n-augmentations", type=int, default=75)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

emodb = fetch_emodb()
split = reference_split(emodb.target, random_state=args.seed)
pipe = make_pipeline(n_augmentations=args.n_augmentations, random_state=args.seed, verbose=1)
pipe.fit(
    emodb.filenames[split.train],
    emodb.target[split.train],
    validation_data=(emodb.filenames[split.validation], emodb.target[split.validation]),
)
accuracy = np.mean(pipe.predict(emodb.filenames[split.test]) == emodb.target[split.test])
print(f"test accuracy {accuracy:.1%} (the reference: 63.29 %)")
