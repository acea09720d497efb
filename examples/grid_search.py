"""A GridSearchCV sweep over network parameters under speaker-grouped cross-validation.

With memory=, each fold's clips are decoded, augmented and featurised once for all candidates.

    python examples/grid_search.py
"""

import tempfile

from sklearn.model_selection import GridSearchCV, GroupKFold

from sersk import make_pipeline
from sersk.datasets import fetch_emodb

emodb = fetch_emodb()
with tempfile.TemporaryDirectory() as cache:
    pipe = make_pipeline(n_augmentations=2, random_state=0, memory=cache)
    grid = {"net__lr": [0.001, 0.005], "net__max_epochs": [3, 6]}
    search = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=5), scoring="balanced_accuracy", verbose=2)
    search.fit(emodb.filenames, emodb.target, groups=emodb.speaker)
print("best:", search.best_params_, f"UAR {search.best_score_:.1%}")
