"""Speaker-independent evaluation: leave-one-speaker-out over Emo-DB's 10 actors.

Augmentation happens inside each training fold only. Pass --n-augmentations 2 for a quick look.

    python examples/leave_one_speaker_out.py --n-augmentations 2
"""

import argparse

from sklearn.model_selection import LeaveOneGroupOut, cross_validate

from sersk import make_pipeline
from sersk.datasets import fetch_emodb

parser = argparse.ArgumentParser()
parser.add_argument("--n-augmentations", type=int, default=75)
args = parser.parse_args()

emodb = fetch_emodb()
scores = cross_validate(
    make_pipeline(n_augmentations=args.n_augmentations, random_state=0),
    emodb.filenames,
    emodb.target,
    groups=emodb.speaker,
    cv=LeaveOneGroupOut(),
    scoring=["accuracy", "balanced_accuracy"],
    verbose=2,
)
for name in ("accuracy", "balanced_accuracy"):
    values = scores[f"test_{name}"]
    print(f"{name}: {values.mean():.1%} +- {values.std():.1%} over {len(values)} speakers")
