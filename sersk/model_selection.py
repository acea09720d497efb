"""Seeded train/validation/test splits: the reference's per-label split and a speaker-disjoint one."""

from __future__ import annotations

import itertools
from numbers import Real
from typing import Any, NamedTuple

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state

from .utils.validation import check_labels, check_matches_labels, count


class Split(NamedTuple):
    """Indices of a train/validation/test split.

    Attributes
    ----------
    train, validation, test : ndarray of int
        Positions of each part's clips (``validation`` may be empty): index a pandas Series with
        ``.iloc[split.train]`` (``series[split.train]`` reads them as index labels).
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def __repr__(self) -> str:
        return f"Split(train={len(self.train)}, validation={len(self.validation)}, test={len(self.test)} clips)"


_GROUP_DRAWS = 100
"""Draws of the speakers to hold out, until one leaves every label of theirs in training."""


def _validation_split(
    y: Any, groups: Any, fraction: Any, random_state: Any, *, every_label_trained: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, held)`` of a per-epoch validation hold-out (``validation_fraction`` of a
    pipeline or a network): whole groups when ``groups`` is given (speakers; drawn again while
    they hold a label's every clip), else a stratified share of each label's clips; errors name
    ``validation_fraction``. When every draw of speakers holds a label's every clip, the first is
    returned, or with ``every_label_trained`` (a pipeline's, whose network learns its classes from
    the clips left to train on) refused."""
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0 < fraction < 1:  # type: ignore[operator]
        raise ValueError(f"validation_fraction={fraction!r}; expected a float in (0, 1)")
    y = np.asarray(y)
    if groups is None:
        splitter = StratifiedShuffleSplit(1, test_size=fraction, random_state=random_state)
        try:
            return next(splitter.split(np.zeros(len(y)), y))
        except ValueError as exc:  # a label of one clip; fewer held-out clips than labels
            raise ValueError(
                f"validation_fraction={fraction} holds out a share of each label's clips, which these labels "
                f"cannot give ({exc}); give each label more clips, another validation_fraction, or the "
                "speakers (groups) to hold out whole speakers instead"
            ) from None
    groups = check_labels(groups, "groups", what="speaker", n_clips=len(y), mixed_as_text=True)
    check_matches_labels(groups, y, name="groups", noun="entry", plural="entries")
    if len(np.unique(groups)) < 2:
        raise ValueError("validation_fraction with groups needs at least two distinct groups")
    # The first draw is GroupShuffleSplit's with one split; one that takes a label's every clip out of
    # training (a rare class spoken by one training speaker) is drawn again: behind a pipeline's hold-out
    # the network's classes are those of its training clips, so that validation could not be scored.
    draws = GroupShuffleSplit(_GROUP_DRAWS, test_size=fraction, random_state=random_state).split(np.zeros(len(y)), y, groups)
    first = next(draws)
    for train, held in itertools.chain([first], draws):
        if np.isin(y[held], y[train]).all():
            return train, held
    if not every_label_trained:  # a network holding out its own: its classes are all of y's
        return first
    # the network would then report the training's labels alone ("y holds a single class"), not the cause
    train, held = first
    lost = ", ".join(map(str, np.setdiff1d(y[held], y[train]).tolist()))
    raise ValueError(
        f"validation_fraction={fraction} holds out {len(np.unique(groups[held]))} of the {len(np.unique(groups))} "
        f"speakers (groups), and each of {_GROUP_DRAWS} draws of them took a label's every clip out of training "
        f"(the first: {lost}); hold out fewer (a smaller validation_fraction), or give more speakers"
    )


def _check_fractions(train_size: float, validation_size: float) -> None:
    if not (0 < train_size < 1 and 0 <= validation_size < 1 and train_size + validation_size < 1):
        raise ValueError(
            f"need 0 < train_size, 0 <= validation_size and train_size + validation_size < 1; "
            f"got train_size={train_size}, validation_size={validation_size}"
        )


def reference_split(
    y: Any, *, train_size: float = 0.7, validation_size: float = 0.15, random_state: Any = None
) -> Split:
    """The reference's split: per label, at random over files (speaker-dependent).

    For each label with ``n`` files, ``floor(train_size * n)`` go to training,
    ``floor(validation_size * n)`` to validation and the rest to test (as MATLAB's
    ``splitEachLabel``; on Emo-DB: 371 / 77 / 87 files). The products are taken in floating point,
    as MATLAB takes them: ``0.7 * 90`` is 62.99999999999999, so 62 of 90 files train.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels.
    train_size, validation_size : float, default=0.7, 0.15
        Fractions of each label's files.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling.

    Returns
    -------
    split : Split
        Sorted index arrays ``train``, ``validation``, ``test``.

    Examples
    --------
    >>> from sersk.model_selection import reference_split
    >>> split = reference_split(["a"] * 10 + ["b"] * 20, random_state=0)
    >>> len(split.train), len(split.validation), len(split.test)
    (21, 4, 5)
    """
    _check_fractions(train_size, validation_size)
    y = check_labels(y, "y")
    if len(y) == 0:
        raise ValueError("y is empty: no files to split")
    rng = check_random_state(random_state)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_train = int(np.floor(train_size * len(idx)))
        n_val = int(np.floor(validation_size * len(idx)))
        if len(idx) - n_train - n_val < 1 or n_train < 1:
            raise ValueError(
                f"label {str(label)!r} has {count(len(idx), 'file')}: too few to split {train_size}/{validation_size}"
            )
        for part, chunk in zip(parts, np.split(idx, [n_train, n_train + n_val])):
            part.append(chunk)
    return Split(*(np.sort(np.concatenate(p)) for p in parts))


def speaker_disjoint_split(
    y: Any, groups: Any, *, train_size: float = 0.7, validation_size: float = 0.15, random_state: Any = None
) -> Split:
    """A split of the same proportions over speakers: no speaker is in two parts.

    Speakers are shuffled and dealt to test, then validation, until each holds at least its share
    of the files or only the speakers the later parts need are left; the rest train. With
    ``validation_size=0`` the validation part is empty.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels (only their number is used).
    groups : array-like of shape (n_samples,)
        Speaker of each file.
    train_size, validation_size : float, default=0.7, 0.15
        Fractions of the files.
    random_state : int, RandomState instance or None, default=None
        Seeds the speaker order.

    Returns
    -------
    split : Split
        Sorted index arrays ``train``, ``validation``, ``test``.
    """
    _check_fractions(train_size, validation_size)
    y, groups = check_labels(y, "y"), check_labels(groups, "groups", what="speaker", mixed_as_text=True)
    check_matches_labels(groups, y, name="groups", noun="entry", plural="entries")
    speakers = list(check_random_state(random_state).permutation(np.unique(groups)))
    with_validation = validation_size > 0
    if len(speakers) < 2 + with_validation:
        raise ValueError(
            f"{count(len(speakers), 'speaker')}: a speaker-disjoint split into "
            f"{'train, validation and test' if with_validation else 'train and test'} needs at least {2 + with_validation}"
        )
    counts = {s: int(np.sum(groups == s)) for s in speakers}
    test_share = (1 - train_size - validation_size) * len(y)
    assigned: dict[str, list] = {"test": [], "validation": []}
    # each part takes speakers until it holds its share, leaving one for each part still to fill
    for part, share, keep in (("test", test_share, 1 + with_validation), ("validation", validation_size * len(y), 1)):
        total = 0
        while total < share and len(speakers) > keep:
            speaker = speakers.pop(0)
            assigned[part].append(speaker)
            total += counts[speaker]
    assigned["train"] = speakers
    idx = {part: np.flatnonzero(np.isin(groups, members)) for part, members in assigned.items()}
    return Split(idx["train"], idx["validation"], idx["test"])
