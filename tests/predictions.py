"""Comparing two predictions of the same clips that should agree up to rounding."""

import numpy as np


def assert_labels_agree_where_decided(proba, other_proba, labels, other_labels) -> None:
    """The labels are equal wherever ``proba``'s top two classes are further apart than the two
    predictions' probabilities differ anywhere.

    Two ways of computing the same prediction (batched or alone, on a worker or here) round
    differently, by amounts that depend on the processor's kernels, and the model trained differs
    from processor to processor: a clip whose top two classes tie to within that difference may
    take either label. Most clips must be decided, or the comparison would say nothing.
    """
    proba, other_proba = np.asarray(proba), np.asarray(other_proba)
    top_two = np.sort(proba, axis=1)[:, -2:]
    decided = top_two[:, 1] - top_two[:, 0] > 2 * np.abs(proba - other_proba).max()
    assert decided.mean() > 0.9, f"only {decided.sum()} of {len(decided)} clips decided"
    np.testing.assert_array_equal(np.asarray(labels)[decided], np.asarray(other_labels)[decided])
