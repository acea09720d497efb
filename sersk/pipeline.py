"""The recipe's steps as one pipeline that validates on held-out, never-augmented clips; its presets."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np
from imblearn.pipeline import Pipeline
from sklearn import get_config
from sklearn.pipeline import _final_estimator_has
from sklearn.utils import Bunch, _safe_indexing
from sklearn.utils._user_interface import _print_elapsed_time
from sklearn.utils.metaestimators import available_if
from sklearn.utils.metadata_routing import UNUSED, MetadataRouter, get_routing_for_object

from . import _recipe
from .augment import AugmentingResampler
from .features import BandStandardizer, LogMelTransformer
from .io import AudioLoader, _as_items, _is_path
from .model_selection import _validation_split
from .nn import CNNLSTM, CNNLSTMClassifier
from .nn.module import min_bands
from .utils._state import restore_attributes
from .utils._version import RecordsSerskVersion
from .utils.validation import (
    check_classes, check_collection, check_labels, check_matches_labels, is_integer, plain_path, ravel_column_vector,
)


def _routing_enabled() -> bool:
    return bool(get_config().get("enable_metadata_routing", False))


def _check_metadata_routable(method: str, params: dict[str, Any]) -> None:
    """Refuse metadata (``groups=``) given to ``method`` while scikit-learn's routing is off."""
    if params and not _routing_enabled():
        raise TypeError(
            f"{method}() got {', '.join(map(repr, params))}, which reach the steps only with scikit-learn's metadata "
            "routing on: sklearn.set_config(enable_metadata_routing=True) (docs: 'Speaker-independent evaluation')"
        )


def speaker_scoped_steps(pipeline: Any) -> list[str]:
    """Names of the steps of ``pipeline`` that standardise each speaker by itself (``scope="speaker"``).

    Parameters
    ----------
    pipeline : Pipeline
        Any pipeline (its ``steps`` are read).

    Returns
    -------
    names : list of str
    """
    return [name for name, step in pipeline.steps if getattr(step, "scope", None) == "speaker"]


class _FileStampedPaths(list):
    """Audio paths that joblib's ``Memory`` hashes with each file's size and modification time, so
    that a file rewritten under the same name misses the cache instead of returning its old audio."""

    def __init__(self, paths: list[Any]):
        super().__init__(paths)
        self.stamps = [_file_stamp(path) for path in paths]

    def __reduce__(self) -> tuple[Any, ...]:
        return _without_stamps, (list(self), self.stamps)


def _without_stamps(paths: list[Any], stamps: list[Any]) -> list[Any]:
    return paths


def _file_stamp(path: Any) -> tuple[int, int] | None:
    """``(size, modification time in ns)`` of the file, or None where it cannot be read (the loader
    then says why)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_size, info.st_mtime_ns


class EmotionPipeline(RecordsSerskVersion, Pipeline):
    """imbalanced-learn's Pipeline (samplers run in ``fit`` only) with per-epoch validation data.

    The final step gets ``validation_data`` passed through the fitted non-sampler steps (decoded
    and featurised, never augmented). It comes from ``fit(..., validation_data=(X_val, y_val))`` or,
    with ``validation_fraction``, from clips held out of ``X`` *before* augmentation: whole groups
    when ``fit`` gets ``groups`` (speakers), else a stratified fraction of the clips. Either way no
    copy of a training clip reaches the validation data. With scikit-learn's metadata routing on,
    ``fit`` requests ``groups``, so a search's or ``cross_validate``'s speakers reach it (see
    :meth:`get_metadata_routing`).

    Parameters
    ----------
    steps : list of (str, estimator)
        As in :class:`imblearn.pipeline.Pipeline`; the last step's ``fit`` must take ``validation_data``
        when validation is used.
    validation_fraction : float, default=None
        Fraction of the clips (or groups) held out for validation when no ``validation_data`` is given.
    random_state : int, RandomState instance or None, default=None
        Seeds the held-out split.
    memory : str or joblib.Memory, default=None
        As in :class:`imblearn.pipeline.Pipeline`: caches the fitted transformers.
    verbose : bool, default=False
        As in :class:`imblearn.pipeline.Pipeline`: print the time each step takes to fit.

    Attributes
    ----------
    validation_indices_ : ndarray of int
        Positions in ``fit``'s ``X`` of the clips held out by ``validation_fraction`` (empty when
        none were).
    """

    # see get_metadata_routing; the other arguments of fit and score are not metadata to route
    __metadata_request__fit = {"groups": True, "validation_data": UNUSED}  # noqa: RUF012
    __metadata_request__score = {"sample_weight": UNUSED}  # noqa: RUF012

    def __init__(
        self,
        steps: list[tuple[str, Any]],
        *,
        validation_fraction: float | None = None,
        random_state: int | np.random.RandomState | None = None,
        memory: Any = None,
        verbose: bool = False,
    ):
        super().__init__(steps, memory=memory, verbose=verbose)
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def set_params(self, **params: Any) -> "EmotionPipeline":
        """Set parameters of the pipeline and its steps (``step__param``), as scikit-learn's Pipeline.

        When a step refuses a value, the pipeline and its steps are left as they were: the values
        set before the refused one are set back, keys new to a step removed, and a fitted network
        keeps its weights even if a ``net__module__*`` value had rebuilt it. Estimators nested in a
        step (an ensemble's members) are not put back, nor is a step object given in the same call.
        On a fitted pipeline each call copies the network's weights and history first.

        Parameters
        ----------
        **params :
            ``param`` of the pipeline, or ``step__param`` of a step.

        Returns
        -------
        self : EmotionPipeline
            The pipeline itself.
        """
        with ExitStack() as stack:
            stack.enter_context(self._unchanged_on_error())
            for _, step in self.steps:  # its weights, optimizer and keys new to it (skorch adds any key)
                if isinstance(step, CNNLSTMClassifier):
                    stack.enter_context(step._unchanged_on_error())
            return super().set_params(**params)

    def fit(
        self, X: Any, y: Any = None, *, groups: Any = None, validation_data: tuple[Any, Any] | None = None, **params
    ) -> "EmotionPipeline":
        """Fit every step; validate the final one on held-out clips once per epoch.

        Parameters
        ----------
        X : sequence of str, os.PathLike or waveforms
            Training clips.
        y : array-like of shape (n_samples,)
            Labels.
        groups : array-like of shape (n_samples,), optional
            Speaker of each clip: for a speaker-disjoint ``validation_fraction`` split, and passed to
            the steps before any sampler whose ``fit`` takes ``groups`` (a
            :class:`~sersk.features.BandStandardizer` with ``scope="speaker"`` needs them).
        validation_data : (X_val, y_val), optional
            Held-out clips in the same form as ``X``.
        **params :
            ``step__param`` fit parameters, as in scikit-learn's Pipeline.

        Returns
        -------
        self : EmotionPipeline
            The fitted pipeline.
        """
        check_collection(X, "audio paths or waveforms")
        if y is not None:
            y = check_labels(ravel_column_vector(y), "y", n_clips=len(X))
        check_matches_labels(X, y, noun="clip")
        if y is not None:
            check_classes(y)  # before any decoding
        routing = _routing_enabled()
        if routing and self._get_metadata_request().fit.requests.get("groups") is False:
            groups = None  # set_fit_request(groups=False): the speakers a search routes here are not used
        self.check_speaker_scope_order()
        self._check_sample_rates()
        self._check_network_options()
        self._check_network_validation(validation_data)
        self._check_speakers_given(groups, params)
        # from the hold-out on: a RandomState random_state it draws from is set back if the fit fails
        with self._unchanged_on_error():
            takes_groups = self.steps_taking_groups()
            held_groups, held = None, np.array([], dtype=int)
            if validation_data is None and self.validation_fraction is not None:
                train, held = self._hold_out(y, groups)
                validation_data = (_safe_indexing(X, held), _safe_indexing(y, held))
                X, y = _safe_indexing(X, train), _safe_indexing(y, train)
                if groups is not None:
                    groups, held_groups = np.asarray(groups)[train], np.asarray(groups)[held]
            elif groups is not None and not takes_groups and not routing:  # with routing, sent by request
                raise ValueError(
                    "groups are used by validation_fraction and by steps whose fit takes groups (before any sampler); "
                    "this pipeline has neither: set validation_fraction, or drop groups"
                )
            if groups is not None:
                params = {**params, **{f"{name}__groups": groups for name in takes_groups}}
            if validation_data is None:
                super().fit(X, y, **params)
            else:
                self._fit_validating(X, y, params, validation_data, takes_groups, held_groups)
            self.validation_indices_ = np.sort(held)
        return self

    def _check_sample_rates(self) -> None:
        """Refuse steps that disagree on the sample rate: the loader resamples to its rate, and the
        augmentation and the log-mels take the audio to be at theirs (the features were wrong, with
        no error)."""
        rates = {
            name: step.sample_rate for name, step in self.steps
            if isinstance(step, (AudioLoader, AugmentingResampler, LogMelTransformer))
        }
        if len(set(rates.values())) > 1:
            settings = ", ".join(f"{name}__sample_rate={rate!r}" for name, rate in rates.items())
            raise ValueError(
                f"the steps disagree on the sample rate ({settings}): the loader resamples the audio to its rate, "
                "and the steps after it take the audio to be at theirs; set them to one rate"
            )

    def _check_network_options(self) -> None:
        """Name a bad training option of the network, or too few bands for its frequency pools, before
        the decoding, augmentation and log-mels that come before the network's own checks."""
        net = self._final_estimator
        if not isinstance(net, CNNLSTMClassifier):
            return
        net._check_params()
        module = net.module if isinstance(net.module, type) else type(net.module)
        if not issubclass(module, CNNLSTM):  # a network of the user's: its own checks
            return
        declared = inspect.signature(module).parameters.get("pools")  # a subclass may take **kwargs
        unknown = declared is None or declared.default is inspect.Parameter.empty
        default = _recipe.POOL_SIZES if unknown or declared is None else declared.default
        pools = net.get_params_for("module").get("pools", default)
        needed = min_bands(pools)
        for name, step in self.steps:
            n_mels = step.n_mels if isinstance(step, LogMelTransformer) else None
            if is_integer(n_mels) and n_mels < needed:
                raise ValueError(
                    f"{name}__n_mels={n_mels} is too few bands for the network's frequency pools "
                    f"{[int(pool[0]) for pool in pools]}: they need at least {needed} (net__module__pools sets them)"
                )

    def _check_network_validation(self, validation_data: Any) -> None:
        """Refuse the network's own ``validation_fraction`` after a sampler (augmentation) when the pipeline
        passes it no validation data: it would hold out augmented copies, and copies of the same source
        clips would stay in its training data (a validation score of clips it was trained on). Other
        final steps (scikit-learn's, whose ``validation_fraction`` serves early stopping) are theirs."""
        net = self._final_estimator
        if not isinstance(net, CNNLSTMClassifier) or net.validation_fraction is None:
            return
        if validation_data is not None or self.validation_fraction is not None:
            return
        samplers = [name for name, step in self.steps[:-1] if hasattr(step, "fit_resample")]
        if samplers:
            name, fraction = self.steps[-1][0], net.validation_fraction
            raise ValueError(
                f"{name}__validation_fraction={fraction!r} would hold out samples made by the {samplers[0]!r} step "
                "(augmented copies, for an AugmentingResampler), whose source clips can have others in the training "
                "data; set the pipeline's validation_fraction instead (it holds clips out before any sampler) and "
                f"{name}__validation_fraction=None"
            )

    @contextmanager
    def _unchanged_on_error(self) -> Iterator[None]:
        """Within the block, an error (or an interrupt) puts the pipeline and its steps back as they
        were (``fit``, ``set_params``). imbalanced-learn refits the steps in place, one after the
        other (or, with ``memory``, puts fitted clones in ``steps``): a failure in the final step left
        the new transformers before the network of the fit before, which then predicted from features
        it was not trained on.
        Each step's attributes are restored (not those of estimators nested in a step), but the
        network's: it restores itself (its weights, optimizer and history, which skorch changes in
        place). imbalanced-learn works on a new list of the steps, so ``steps`` itself is kept. A
        ``RandomState`` given as a ``random_state`` is set back to its draws before the block."""
        saved = dict(self.__dict__)
        states = [
            (step, dict(vars(step))) for _, step in self.steps
            if hasattr(step, "__dict__") and not isinstance(step, CNNLSTMClassifier)
        ]
        generators = {id(value): value for value in self.get_params().values() if isinstance(value, np.random.RandomState)}
        draws = [(generator, generator.get_state()) for generator in generators.values()]
        try:
            yield
        except BaseException:
            for step, state in states:
                restore_attributes(step, state)
            restore_attributes(self, saved)
            for generator, state in draws:  # a retried fit draws what the failed one drew
                generator.set_state(state)
            raise

    def _fit_validating(
        self, X: Any, y: Any, params: dict[str, Any], validation_data: tuple[Any, Any], takes_groups: list[str],
        held_groups: np.ndarray | None,
    ) -> None:
        """Fit every step, the final one with ``validation_data`` passed through the fitted non-sampler steps."""
        routed = self._check_method_params(method="fit", props=params)
        Xt, yt = self._fit(X, y, routed, raw_params=params)
        X_val, y_val = validation_data
        for _, name, step in self._iter(with_final=False, filter_resample=True):
            by_speaker = name in takes_groups and held_groups is not None
            X_val = step.transform(X_val, groups=held_groups) if by_speaker else step.transform(X_val)
        last = self._get_metadata_for_step(
            step_idx=len(self) - 1, step_params=routed[self.steps[-1][0]], all_params=params
        )
        with _print_elapsed_time("Pipeline", self._log_message(len(self.steps) - 1)):  # as imbalanced-learn's fit
            self._final_estimator.fit(Xt, yt, validation_data=(X_val, y_val), **last["fit"])

    def _fit(self, X: Any, y: Any = None, routed_params: Any = None, raw_params: Any = None) -> Any:
        """imbalanced-learn's ``_fit``; with ``memory``, the paths an ``AudioLoader`` decodes are
        cached by their files' sizes and modification times too, not by their names alone."""
        if self.memory is not None and self.steps and isinstance(self.steps[0][1], AudioLoader):
            items = _as_items(X)  # as the loader reads X (its errors, for X it cannot read)
            if all(_is_path(item) for item in items):
                X = _FileStampedPaths([plain_path(item) for item in items])  # a list and an array hit alike
        return super()._fit(X, y, routed_params, raw_params=raw_params)

    @available_if(_final_estimator_has("predict"))  # as imbalanced-learn's: hasattr tells what the last step has
    def predict(self, X: Any, **params: Any) -> np.ndarray:
        """Predict the label of each clip with the fitted steps (samplers skipped).

        As imbalanced-learn's ``predict``; ``groups`` and other metadata need routing (see :meth:`score`).

        Parameters
        ----------
        X : sequence of str, os.PathLike or waveforms
            Clips in the form ``fit`` took.
        **params : dict
            Metadata for the steps (``groups=`` for a ``scope="speaker"`` step), routed by scikit-learn's
            metadata routing; a TypeError while routing is off.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The predicted label of each clip.
        """
        _check_metadata_routable("predict", params)
        self._check_sample_rates()
        return super().predict(X, **params)

    @available_if(_final_estimator_has("predict_proba"))  # as imbalanced-learn's: hasattr tells what the last step has
    def predict_proba(self, X: Any, **params: Any) -> np.ndarray:
        """Class probabilities of each clip from the fitted steps (samplers skipped).

        As imbalanced-learn's ``predict_proba``; ``groups`` and other metadata need routing (see
        :meth:`score`).

        Parameters
        ----------
        X : sequence of str, os.PathLike or waveforms
            Clips in the form ``fit`` took.
        **params : dict
            Metadata for the steps (``groups=`` for a ``scope="speaker"`` step), routed by scikit-learn's
            metadata routing; a TypeError while routing is off.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        _check_metadata_routable("predict_proba", params)
        self._check_sample_rates()
        return super().predict_proba(X, **params)

    @available_if(_final_estimator_has("score"))  # as imbalanced-learn's: hasattr tells what the last step has
    def score(self, X: Any, y: Any = None, sample_weight: Any = None, **params: Any) -> float:
        """Score the final step on ``X`` and ``y`` (its ``score``: accuracy for the network).

        As imbalanced-learn's ``score``; ``groups`` (or other metadata) reach the steps that request
        them only with scikit-learn's metadata routing on. Without it the Pipeline dropped them
        silently (and ``predict`` failed inside the network): refused here, by name.

        Parameters
        ----------
        X : sequence of str, os.PathLike or waveforms
            Clips in the form ``fit`` took.
        y : array-like of shape (n_samples,), default=None
            Their true labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the final step's ``score``.
        **params : dict
            Metadata for the steps (``groups=`` for a ``scope="speaker"`` step), routed by scikit-learn's
            metadata routing; a TypeError while routing is off.

        Returns
        -------
        score : float
            The final step's score.
        """
        _check_metadata_routable("score", params)
        self._check_sample_rates()
        return super().score(X, y, sample_weight=sample_weight, **params)

    def get_metadata_routing(self) -> MetadataRouter:
        """The steps' metadata routing, and the pipeline's own request for ``groups`` in ``fit``.

        With scikit-learn's metadata routing on, a search or ``cross_validate`` sends its ``groups``
        (speakers) to ``fit`` itself, which uses them as without routing: for a speaker-disjoint
        ``validation_fraction`` and for the steps before any sampler whose ``fit`` takes them.

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRouter
            The steps' routing, with the pipeline's own request added.
        """
        return super().get_metadata_routing().add_self_request(self)

    def _check_method_params(self, method: str, props: dict[str, Any], **kwargs: Any) -> Any:
        # With routing on, the ``<step>__groups`` that fit adds for its own steps are routed here,
        # past scikit-learn's routing, which knows only of the steps' own requests. An override of
        # imbalanced-learn's private hook (written against imbalanced-learn 0.14, scikit-learn 1.9):
        # tests/test_pipeline.py's routing tests fail if it stops being called.
        if not _routing_enabled():
            return super()._check_method_params(method, props, **kwargs)
        own = {name: props[f"{name}__groups"] for name in self.steps_taking_groups() if f"{name}__groups" in props}
        routed = super()._check_method_params(
            method, {k: v for k, v in props.items() if k.removesuffix("__groups") not in own}, **kwargs
        )
        if not isinstance(routed, Bunch):  # process_routing's stand-in when nothing is routed: new dicts on each read
            routed = Bunch(**{name: routed[name] for name, _ in self.steps})
        for name, groups in own.items():
            request = get_routing_for_object(self.named_steps[name]).fit.requests.get("groups")
            if request is False or isinstance(request, str):  # opted out, or takes them under another name
                continue
            for step_method in ("fit", "fit_transform"):
                routed[name].setdefault(step_method, Bunch()).setdefault("groups", groups)
        return routed

    def check_speaker_scope_order(self) -> None:
        """Refuse a ``scope="speaker"`` step after a sampler, which does not pass the speakers on.

        ``fit`` checks this before any work; so can a caller that builds a pipeline long before
        fitting it (the command line does).

        Raises
        ------
        ValueError
            If a step named by :func:`speaker_scoped_steps` is not among :meth:`steps_taking_groups`.
        """
        takes_groups = self.steps_taking_groups()
        for name in speaker_scoped_steps(self):
            if name not in takes_groups:
                raise ValueError(
                    f"step {name!r} has scope='speaker' but comes after a sampler (the augment step), which "
                    "does not pass the speakers on; set the augment step to 'passthrough' (the tuned preset "
                    "has none unless n_augmentations is given), or use scope='corpus' or 'clip'"
                )

    def _check_speakers_given(self, groups: Any, params: dict[str, Any]) -> None:
        """Refuse, before any work, a fit whose ``scope="speaker"`` steps get no speakers."""
        for name in speaker_scoped_steps(self):
            if groups is None and f"{name}__groups" not in params:
                raise ValueError(
                    f"step {name!r} has scope='speaker' and needs the speaker of each clip: fit(X, y, groups=speakers). "
                    "scikit-learn's searches and cross_validate give their groups to the splitter only: give them "
                    f"also as {name}__groups=speakers to a search's fit or params={{'groups': speakers}} to "
                    "cross_validate, or turn on metadata routing (sklearn.set_config(enable_metadata_routing=True); "
                    "an ensemble of seeds needs it)"
                )

    def steps_taking_groups(self) -> list[str]:
        """Names of the steps that ``fit(X, y, groups=...)`` passes the groups to.

        These are the steps before the first sampler whose ``fit`` takes ``groups`` (a
        :class:`~sersk.features.BandStandardizer`, which uses them with ``scope="speaker"``). When
        the list is empty and ``validation_fraction`` is None, ``fit`` refuses groups, as nothing
        would use them (unless scikit-learn's metadata routing, which sends them by request, is on).

        Returns
        -------
        names : list of str
            The step names, in pipeline order.
        """
        names = []
        for name, step in self.steps[:-1]:
            if hasattr(step, "fit_resample"):
                break
            if step not in (None, "passthrough") and "groups" in inspect.signature(step.fit).parameters:
                names.append(name)
        return names

    def _hold_out(self, y: Any, groups: Any) -> tuple[np.ndarray, np.ndarray]:
        if y is None:
            raise ValueError("validation_fraction holds out labelled clips to validate on: fit needs y")
        return _validation_split(y, groups, self.validation_fraction, self.random_state, every_label_trained=True)


# What each preset sets, as ordinary step parameters (step__param); anything else keeps the steps'
# defaults, which are the recipe's. "tuned" has no stored waveform copies (no "augment" step; its
# augmentation is drawn afresh every epoch by the classifier) and standardises the log-mels (a
# "scale" step). docs/results.md has the ablation behind each tuned value.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {},
    "tuned": {
        "scale__scope": "corpus",
        "net__max_epochs": 60,
        "net__crop_frames": 64,
        "net__freq_mask_bands": 16,
        "net__time_mask_frames": 12,
        "net__lr_schedule": "cosine",
        "net__criterion__label_smoothing": 0.1,
    },
}

# Whether leave-one-speaker-out with a preset holds out one training speaker per fold for the
# per-epoch validation (run_leave_one_speaker_out's validation_speaker): the reference does, as the
# recipe validates once per epoch; the tuned preset chooses nothing on validation data, so it
# trains on every other speaker.
VALIDATION_SPEAKER: dict[str, bool] = {"reference": True, "tuned": False}


def make_pipeline(
    preset: str = "reference",
    *,
    n_augmentations: int | None = None,
    max_epochs: int | None = None,
    batch_size: int = _recipe.BATCH_SIZE,
    lr: float = _recipe.LR,
    padding: str = "masked",
    validation_fraction: float | None = None,
    device: str = "auto",
    n_jobs: int | None = None,
    random_state: int | np.random.RandomState | None = None,
    memory: Any = None,
    verbose: int = 0,
) -> EmotionPipeline:
    """The recipe end to end: load -> augment (fit only) -> log-mel -> CNN-LSTM, or a preset's variant.

    Every step keeps its own parameters (``augment__noise_p``, ``logmel__n_mels``,
    ``net__module__hidden_size``, ...); the arguments here set the common ones, and ``preset``
    picks values for the rest.

    Parameters
    ----------
    preset : {"reference", "tuned"}, default="reference"
        ``"reference"``: the recipe as published (75 stored copies per clip, 3 epochs, whole clips),
        with the steps' documented departures (masked padding, a ``top_db`` floor, a cheaper pitch
        shifter, peak-normalised input; the user guide lists the parameters that undo them).
        ``"tuned"``: the same network, fed and trained for speaker-independent accuracy on a small
        budget: no stored waveform copies; log-mels standardised per band with the training data's
        statistics (a ``scale`` step, :class:`~sersk.features.BandStandardizer`); random 64-frame
        crops with frequency and time masks drawn afresh every epoch; 60 epochs with a cosine
        learning rate; label smoothing 0.1; predictions averaged over half-overlapping 64-frame
        windows. Each is an ordinary step parameter (``sersk.pipeline.PRESETS["tuned"]``), so
        ``get_params``, ``set_params`` and ``GridSearchCV`` see and change it.
    n_augmentations : int, default=None
        Stored augmented copies per training clip; None keeps the preset's (75; none for
        ``"tuned"``); 0 leaves the ``augment`` step out (no stored copies). With ``"tuned"``, a
        positive number adds the step, which then keeps the original clips beside their copies.
    max_epochs : int, default=None
        Training epochs; None keeps the preset's (3, or 60 for ``"tuned"``).
    batch_size, lr : default=32, 0.005
        The network's mini-batch size and Adam learning rate.
    padding : {"masked", "reference"}, default="masked"
        See :class:`~sersk.CNNLSTMClassifier`.
    validation_fraction : float, default=None
        Clips (or speakers, with ``fit(..., groups=...)``) held out before augmentation for the
        per-epoch validation. Speakers are drawn again while they would hold a label's every clip
        (a rare class spoken by one training speaker).
    device : str, default="auto"
        Where log-mels and the network run; ``"auto"`` picks CUDA when available, at run time.
    n_jobs : int, default=None
        Workers for decoding and augmentation.
    random_state : int, RandomState instance or None, default=None
        Seeds the augmentation, the network and the validation split. The same seed gives the same
        model on the same device and torch thread count; fits in threads of one process share
        torch's generator, so run seeded fits side by side in processes (loky, Dask workers of one
        thread), not threads. A ``RandomState`` is shared by the three steps as given (``clone``
        gives each step a copy of its own, so a clone fits another model): give an int to
        reproduce a model.
    memory : str or joblib.Memory, default=None
        Caches fitted steps, e.g. decoding and featurising a fold once for a sweep of network parameters.
        With ``random_state=None`` a cached fit returns the augmented copies of the first one.
    verbose : int, default=0
        When > 0, report the fit as it goes: the time each step took, progress bars over the
        decoded files, the augmented copies and each epoch's batches (on a terminal or in a
        notebook), and a table row per epoch with the losses and accuracies.

    Returns
    -------
    pipeline : EmotionPipeline
        The unfitted pipeline: ``load``, ``augment`` (when it stores copies), ``logmel``, ``scale``
        (``"tuned"``) and ``net``.

    Examples
    --------
    >>> from sersk import make_pipeline
    >>> pipe = make_pipeline("tuned", random_state=0)
    >>> [name for name, _ in pipe.steps]
    ['load', 'logmel', 'scale', 'net']
    >>> pipe.get_params()["net__crop_frames"]
    64
    """
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r}; expected one of {', '.join(map(repr, PRESETS))}")
    if n_augmentations is not None and not (is_integer(n_augmentations) and n_augmentations >= 0):
        raise ValueError(f"n_augmentations={n_augmentations!r}; expected an integer >= 0 (0: no stored copies) or None")
    stored_copies = (preset == "reference" and n_augmentations != 0) or bool(n_augmentations)
    steps = [
        ("load", AudioLoader(n_jobs=n_jobs, verbose=bool(verbose))),
        *([(
            "augment",
            AugmentingResampler(
                keep_original=preset == "tuned", n_jobs=n_jobs, random_state=random_state, verbose=bool(verbose)
            ),
        )] if stored_copies else []),
        ("logmel", LogMelTransformer(device=device)),
        *([("scale", BandStandardizer())] if preset == "tuned" else []),
        (
            "net",
            CNNLSTMClassifier(
                batch_size=batch_size, lr=lr, padding=padding, device=device, random_state=random_state, verbose=verbose,
            ),
        ),
    ]
    pipeline = EmotionPipeline(
        steps, validation_fraction=validation_fraction, random_state=random_state, memory=memory, verbose=bool(verbose)
    )
    pipeline.set_params(**PRESETS[preset])
    if stored_copies and n_augmentations is not None:
        pipeline.set_params(augment__n_augmentations=n_augmentations)
    if max_epochs is not None:
        pipeline.set_params(net__max_epochs=max_epochs)
    return pipeline
