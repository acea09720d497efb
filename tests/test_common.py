"""scikit-learn's estimator checks on every sersk step, with the checks that cannot apply listed.

The checks feed 2-D float arrays; sersk's steps read each row as one clip (a waveform or, for the
classifier, a feature sequence). The expected failures all come from what sersk is, not from bugs:
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from sersk import AudioLoader, CNNLSTMClassifier, LogMelTransformer
from sersk.features import BandStandardizer

RAGGED_OUTPUT = (
    "the output is a 1-D object array of per-clip arrays (clips differ in length), which the check "
    "compares as a numeric 2-D array"
)
NOT_TABULAR = "clips are sequences of samples, not rows of features: there is no n_features_in_"
FLOAT_ONLY = "integer samples are rejected on purpose: their scale (PCM range) is ambiguous"
OWN_MESSAGE = "sersk raises ValueError with its own message naming the clip, not scikit-learn's wording"

WAVEFORM_STEP_FAILURES = {
    "check_n_features_in_after_fitting": NOT_TABULAR,
    "check_n_features_in": NOT_TABULAR,
    "check_estimators_dtypes": FLOAT_ONLY,
    "check_dtype_object": "an object array of numbers is read as clips of dtype object and rejected",
    "check_complex_data": OWN_MESSAGE,
    "check_estimators_empty_data_messages": OWN_MESSAGE,
    "check_fit2d_predict1d": OWN_MESSAGE,
    "check_fit2d_1feature": "a 1-sample clip is shorter than one analysis window: " + OWN_MESSAGE,
    "check_pipeline_consistency": RAGGED_OUTPUT,
    "check_estimators_pickle": RAGGED_OUTPUT,
    "check_transformer_data_not_an_array": RAGGED_OUTPUT,
    "check_transformer_general": RAGGED_OUTPUT,
    "check_transformer_preserve_dtypes": RAGGED_OUTPUT,
    "check_methods_sample_order_invariance": RAGGED_OUTPUT,
    "check_methods_subset_invariance": RAGGED_OUTPUT,
    "check_fit_idempotent": RAGGED_OUTPUT,
}

# The classifier reads each row of the checks' 2-D arrays as a single-band sequence.
CLASSIFIER_FAILURES = {
    "check_no_attributes_set_in_init": "skorch's __init__ sets history_, initialized_ and virtual_params_ by design",
    "check_do_not_raise_errors_in_init_or_set_params": "skorch's set_params compares the check's array values",
    "check_n_features_in_after_fitting": "sequences, not rows of features: the classifier records n_mels_",
    "check_n_features_in": "sequences, not rows of features: the classifier records n_mels_",
    "check_complex_data": OWN_MESSAGE,
    "check_dtype_object": "an object array of numbers is read as sequences of dtype object and rejected",
    "check_estimators_empty_data_messages": OWN_MESSAGE,
    "check_fit2d_1sample": OWN_MESSAGE + " (a single class)",
    "check_fit2d_predict1d": OWN_MESSAGE,
    "check_classifiers_train": "a one-epoch, four-unit network on the check's tabular data stays below its accuracy bar",
    "check_class_weight_classifiers": (
        "the same one-epoch network does not move far enough for the check's bar (87 % of predictions in the "
        "heavily weighted class); tests/test_nn.py checks that the weights reach the loss"
    ),
    "check_supervised_y_2d": "skorch emits its own warnings beside the DataConversionWarning the check counts",
}

# BandStandardizer reads each row as a single-band sequence, as the classifier does.
SEQUENCE_STEP_FAILURES = {
    "check_n_features_in_after_fitting": "sequences, not rows of features: n_features_in_ counts bands (1 here)",
    "check_n_features_in": "sequences, not rows of features: n_features_in_ counts bands (1 here)",
    "check_complex_data": OWN_MESSAGE,
    "check_dtype_object": "an object array of numbers is read as sequences of dtype object and rejected",
    "check_estimators_empty_data_messages": OWN_MESSAGE,
    "check_fit2d_predict1d": OWN_MESSAGE,
    **{check: RAGGED_OUTPUT for check, why in WAVEFORM_STEP_FAILURES.items() if why == RAGGED_OUTPUT},
}

ESTIMATORS = [
    # clips of any length, since the checks' clips are a few samples long
    AudioLoader(min_samples=1),
    # a tiny analysis window, since the checks' clips are a few samples long
    LogMelTransformer(n_fft=2, hop_length=1, n_mels=1),
    BandStandardizer(),
    # a tiny network for single-band sequences, so the checks run in seconds
    CNNLSTMClassifier(
        module__filters=(2,), module__pools=((1, 1),), module__hidden_size=4, max_epochs=1, verbose=0,
        random_state=0, device="cpu",
    ),
]


def _expected_failures(estimator):
    if isinstance(estimator, CNNLSTMClassifier):
        return CLASSIFIER_FAILURES
    if isinstance(estimator, BandStandardizer):
        return SEQUENCE_STEP_FAILURES
    failures = dict(WAVEFORM_STEP_FAILURES)
    if isinstance(estimator, AudioLoader):
        failures.pop("check_fit2d_1feature")  # one sample is a valid (if short) waveform
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
