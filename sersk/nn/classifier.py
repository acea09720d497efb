"""CNNLSTMClassifier: the recipe's training as a skorch NeuralNetClassifier."""

from __future__ import annotations

import copy
import dis
import inspect
import re
import secrets
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import (
    Callback, Checkpoint, EarlyStopping, EpochScoring, EpochTimer, LRScheduler, PassthroughScoring, PrintLog, ProgressBar,
)
from skorch.dataset import Dataset, unpack_data
from skorch.exceptions import DeviceWarning
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted
from torch.optim.lr_scheduler import CosineAnnealingLR, ReduceLROnPlateau, StepLR
from torch.utils.data import DataLoader

from .. import _recipe
from ..exceptions import InvalidSignalError, TrainingDiverged
from ..model_selection import _validation_split
from ..utils._device import float32_cudnn, generators_restored, missing_cuda_device, resolve_device
from ..utils._malloc import reuse_freed_memory, step_done
from ..utils._state import held_across_forks, restore_attributes
from ..utils._terminal import colours_wanted, shown_live, widget_bars
from ..utils._version import RecordsSerskVersion
from ..utils.validation import (
    check_bool, check_classes, check_labels, check_matches_labels, check_sequences, is_integer, is_real,
    check_seed, ravel_column_vector, rows_as_sequences, to_object_array,
)
from .collate import (
    BudgetedBatchSampler, LeftPadCollate, SimilarLengthBatchSampler, TrainingCollate, crop_windows, padded_frames,
)
from .module import PADDING_MODES, CNNLSTM

LR_SCHEDULES = ("step", "cosine")

# Coupled L2 (Adam's weight_decay) applies to conv/FC/LSTM weights and batch-norm scale and offset,
# not to conv/FC/LSTM biases.
NO_DECAY_ON_BIASES = (
    ("blocks.*.conv.bias", {"weight_decay": 0.0}),
    ("lstm.bias_*", {"weight_decay": 0.0}),
    ("fc.bias", {"weight_decay": 0.0}),
)


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_MASKS = 2  # SpecAugment masks of each kind per training clip (TrainingCollate's n_masks)
_DEVICE_LOCK = threading.RLock()  # guards the device an estimator resolves while it runs
held_across_forks(_DEVICE_LOCK)


class _Interrupted(Exception):
    """Carries a KeyboardInterrupt past skorch, which would otherwise swallow it."""


_RAISES = {dis.opmap["RAISE_VARARGS"], dis.opmap["RERAISE"]}


def _stops_training(exc: KeyboardInterrupt) -> bool:
    """Whether ``exc`` is a request to stop training, skorch's way (``EarlyStopping`` raises
    KeyboardInterrupt), rather than Ctrl-C: raised by a ``raise`` instruction, where Ctrl-C's
    handler raises it at whatever instruction runs then, never at a ``raise``."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    code = tb.tb_frame.f_code.co_code
    return 0 <= tb.tb_lasti < len(code) and code[tb.tb_lasti] in _RAISES


def _learning_rate(net: Any) -> Any:
    """The rate the optimizer trains with now (a schedule or a warm start's setting may have changed it)."""
    groups = getattr(getattr(net, "optimizer_", None), "param_groups", None)
    return groups[0].get("lr", net.lr) if groups else net.lr


@contextmanager
def _ctrl_c_deliveries() -> Iterator[list[int]]:
    """Within the block, Ctrl-C's deliveries are recorded in the list yielded, each passed on to the
    handler there was (which a Python handler may turn into a KeyboardInterrupt raised by a raise
    instruction: asyncio's second Ctrl-C). Only the main thread receives signals, and only a
    callable handler is wrapped; the handler is set back after."""
    delivered: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield delivered
        return

    def record(signum: int, frame: Any) -> Any:
        delivered.append(signum)
        return previous(signum, frame)

    try:
        signal.signal(signal.SIGINT, record)
    except ValueError:  # not the main interpreter
        yield delivered
        return
    try:
        yield delivered
    finally:
        if signal.getsignal(signal.SIGINT) is record:  # unless something set another meanwhile
            signal.signal(signal.SIGINT, previous)


class StopOnNonFiniteLoss(Callback):
    """Raise :class:`TrainingDiverged` as soon as a training batch's loss is NaN or infinite."""

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        loss = kwargs.get("loss")
        if training and loss is not None and not torch.isfinite(loss).all():
            raise TrainingDiverged(
                f"training diverged: the loss is {loss.item()} at epoch {len(net.history)}; "
                f"lower the learning rate (lr={_learning_rate(net)}) or check the features for extreme values"
            )


class TrainAccuracy(Callback):
    """The epoch's training accuracy, counted batch by batch from the training steps' predictions.

    skorch's ``EpochScoring(on_train=True)`` keeps every training batch's predictions until the
    epoch ends. On the CPU, each of those small tensors lands in the large blocks that its step
    freed, so the next step's large tensors no longer fit there: the process grew by one first-block
    tensor (about 300 MB) per step until the heap was trimmed. This callback keeps two counts.
    """

    def on_epoch_begin(self, net, **kwargs):
        self.correct_, self.seen_ = 0, 0

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if training and y_pred is not None:
            y = batch[1]
            self.correct_ += int((y_pred.argmax(dim=1).cpu() == torch.as_tensor(y).cpu()).sum())
            self.seen_ += len(y)

    def on_epoch_end(self, net, **kwargs):
        net.history.record("train_acc", self.correct_ / self.seen_ if self.seen_ else float("nan"))


class EpochLRScheduler(LRScheduler):
    """skorch's ``LRScheduler`` for a schedule stepped once per epoch, resumable and picklable.

    - Each fit starts the torch scheduler from the rates the optimizer's groups were built with
      (``lr``, or skorch's ``optimizer__lr`` and per-group rates) and replays the epochs already in
      the history, so a warm start continues the schedule of one long fit. skorch's own restart
      stepped it once more: after two epochs of the recipe, the third ran at 5e-05 instead of
      5e-04. A rate set between warm starts (``set_params`` of ``lr``, ``optimizer__lr`` or a group's
      rate) is the new start of its groups' schedule; a rate another callback changed is not kept
      (the schedule's own rate is taken up again).
    - It is pickled without the torch scheduler, which refers to the optimizer. Pickled inside
      ``callbacks_`` it stored a second copy of the optimizer and its state, outside skorch's
      handling of CUDA tensors, so a model trained on CUDA failed to load on a machine without
      CUDA (skorch issue #1096, fixed after skorch 1.4 by skorch PR #1150).
    """

    def on_train_begin(self, net, **kwargs):
        if self.step_every != "epoch":  # set to step per batch: skorch's own restart
            super().on_train_begin(net, **kwargs)
            return
        for group in net.optimizer_.param_groups:  # a new optimizer's groups hold the rates skorch built them with
            if "initial_lr" in group:  # a warm start: the rate the earlier fit's schedule began at
                group["lr"] = group.pop("initial_lr")  # (set_params drops it from a group given a new rate)
        self.lr_scheduler_ = self._get_scheduler(net, self.policy_, last_epoch=-1, **self.kwargs)
        if not len(net.history):  # a fresh fit: nothing to replay
            return
        # The epochs replayed stepped the optimizer in the earlier fits: torch's wrapper of optimizer.step
        # records that in this flag, and without it warns of a schedule stepped before its optimizer
        # (silencing the warning instead, with a process-wide filter, is not safe across threads)
        net.optimizer_._opt_called = True
        for _ in range(len(net.history)):
            self.lr_scheduler_.step()

    def __getstate__(self):
        return {**self.__dict__, "lr_scheduler_": None}


class PlainPrintLog(PrintLog):
    """skorch's per-epoch table, with its colour codes only when it prints to a terminal or a
    notebook (and no ``NO_COLOR``), and none at all without a stdout (``pythonw``, a service)."""

    def format_row(self, row, key, color):
        coloured = self.sink is print and colours_wanted()
        text = super().format_row(row, key, color)
        return text if coloured or not isinstance(text, str) else _ANSI_ESCAPE.sub("", text)

    def on_epoch_end(self, net, **kwargs):
        if self.sink is print and sys.stdout is None:  # skorch flushes sys.stdout after printing
            return
        super().on_epoch_end(net, **kwargs)


def _encoded_labels_hint(labels: np.ndarray, names: np.ndarray) -> str:
    """Why text ``names`` (``classes=``, ``class_weight`` keys) can miss integer ``labels`` 0, 1, ...:
    the wrappers that encode the labels before fitting their members; else an empty string."""
    if not all(type(code) is int and code >= 0 for code in labels.tolist()):  # not bools
        return ""
    if not all(isinstance(name, str) for name in names.tolist()):
        return ""
    return (
        "; y holds integers and these names are text: give both of one kind (integer codes are what "
        "VotingClassifier, StackingClassifier and other wrappers that encode the labels pass: inside such a "
        "wrapper leave classes= unset and give class_weight='balanced' or none)"
    )


def balanced_class_weights(y_enc: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" weights, ``n_samples / (n_classes * count)``; 0 for an absent class."""
    counts = np.bincount(y_enc, minlength=n_classes)
    return np.where(counts > 0, len(y_enc) / (n_classes * np.maximum(counts, 1)), 0.0)


def _callback_name(callback: Any) -> str:
    """The name skorch gives a callback listed without one: its class's."""
    return callback.__name__ if isinstance(callback, type) else type(callback).__name__


def _reads_a_monitored_score(callback: Any) -> bool:
    """Whether the built ``callback`` is one of skorch's that read the history entry ``monitor`` names
    every epoch: EarlyStopping, Checkpoint, or an LRScheduler of ReduceLROnPlateau."""
    if isinstance(callback, (EarlyStopping, Checkpoint)):
        return True
    policy = getattr(callback, "policy", None)
    return isinstance(callback, LRScheduler) and (policy is ReduceLROnPlateau or policy == "ReduceLROnPlateau")


def _no_partial_fit(net: Any) -> bool:
    """``available_if``'s check for ``partial_fit``: never available; the cause scikit-learn chains to
    its AttributeError says what to use instead."""
    raise AttributeError(
        "CNNLSTMClassifier offers no partial_fit (skorch's would skip sersk's checks and label encoding): "
        "fit with warm_start=True continues training, and max_epochs=1 makes that one epoch"
    )


_UNSET = object()
# the parameters (by prefix) whose new value rebuilds a built network's parts (module, criterion, optimizer)
_REBUILT_BY = ("module", "compile", "criterion", "optimizer")


def _same(current: Any, new: Any) -> bool:
    """Whether a parameter's new value is the one it has: an equal value of the same type. A list,
    dict or set counts as new (it may have been changed in place since the network was built), and
    so does anything whose equality is not a plain bool (arrays)."""
    if type(current) is not type(new) or isinstance(new, (list, dict, set)):
        return False
    try:
        return bool(current == new)
    except Exception:  # arrays and other values without a single truth value
        return False


def _takes_generator(iterator: Any) -> bool:
    """Whether ``iterator`` (a loader class or function) takes a ``generator`` argument, as a
    ``DataLoader`` does; one whose signature cannot be read is assumed to."""
    try:
        parameters = inspect.signature(iterator).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "generator" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def mix_batch(
    inputs: dict[str, torch.Tensor], y: torch.Tensor, alpha: float
) -> tuple[dict[str, torch.Tensor], torch.Tensor, float]:
    """Mixup of a left-padded batch with a shuffled copy of itself (torch's global generator).

    Returns the mixed inputs (each clip as long as the longer of its pair), the labels of the
    shuffled copy, and the weight ``lam ~ Beta(alpha, alpha)`` of the original labels.
    """
    lam = float(torch.distributions.Beta(float(alpha), float(alpha)).sample())
    perm = torch.randperm(len(y))
    x = inputs["x"]
    mixed = {**inputs, "x": lam * x + (1 - lam) * x[perm], "lengths": torch.maximum(inputs["lengths"], inputs["lengths"][perm])}
    return mixed, y[perm], lam


def encoded_accuracy(net: "CNNLSTMClassifier", X: Any, y: Any) -> float:  # fitted models pickle it by this name
    """Accuracy as skorch's epoch scoring gives it ``X`` and ``y``: class indices against the
    batches' encoded labels (cached predictions, ``X`` a dataset, or a ``dataset`` class of one's
    own, which gets encoded labels), else predicted labels against the labels of the clips.
    """
    if isinstance(X, torch.utils.data.Dataset) or not net._datasets_keep_labels():
        return float(np.mean(NeuralNetClassifier.predict_proba(net, X).argmax(axis=1) == np.asarray(y)))
    return float(np.mean(net.predict(X) == np.asarray(y)))


class LabelledClips(Dataset):
    """skorch's dataset of clips and their labels as given (what skorch's scoring callbacks, without
    caching, compare ``predict`` with); each item's label is encoded as its index in ``classes``,
    as the loss takes it.

    Parameters
    ----------
    X : sequence of array-like of shape (n_mels, n_frames_i)
        The clips' log-mels.
    y : array-like of shape (n_clips,)
        Their labels, each one of ``classes``.
    classes : ndarray
        The sorted labels the network outputs.
    """

    def __init__(self, X: Any, y: Any, classes: np.ndarray):
        super().__init__(X, y)
        self.classes = classes

    def transform(self, X: Any, y: Any) -> tuple[Any, Any]:
        """The item, its label encoded."""
        return super().transform(X, np.searchsorted(self.classes, y))


class CNNLSTMClassifier(RecordsSerskVersion, NeuralNetClassifier):
    """The recipe's 2-D CNN-LSTM, trained as the reference trains it, as a scikit-learn classifier.

    Input: log-mel sequences, one ``(n_mels, n_frames_i)`` array per clip (the output of
    :class:`~sersk.LogMelTransformer`; a 3-D array of equal-length clips works too, and a 2-D numeric
    array is read as one single-band sequence per row); labels all text or all integers.
    Each mini-batch is left-padded to its longest sequence (rounded up to a multiple of the time
    pooling, 16 frames, with ``padding="masked"``). Defaults: Adam, lr 0.005, coupled L2 5e-4 (not
    on biases), mini-batch 32, 3 epochs, lr x0.1 every 2 epochs, shuffled every epoch, no internal validation split.

    Parameters
    ----------
    module : torch.nn.Module class, default=CNNLSTM
        The network; ``n_mels`` and ``n_classes`` are set from the data unless given as
        ``module__n_mels`` / ``module__n_classes``. Sizes: ``module__filters``, ``module__pools``,
        ``module__hidden_size``. Another class must take ``n_mels``, ``n_classes`` and ``padding``,
        and offer ``time_factor`` and ``forward(x, lengths)``, as :class:`~sersk.nn.CNNLSTM` does:
        it is called as ``forward(x=..., lengths=...)``, ``x`` float32 of shape (clips, bands,
        frames), each clip left-padded with zeros, ``lengths`` each clip's real frames.
    criterion : torch.nn.Module class, default=torch.nn.CrossEntropyLoss
        The loss; ``criterion__*`` parameters reach it (``criterion__label_smoothing=0.1``), and
        ``class_weight`` sets its ``weight``.
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        The optimiser; ``optimizer__*`` parameters reach it.
    lr : float, default=0.005
        Learning rate (the start of ``lr_schedule``).
    max_epochs : int, default=3
        Training epochs per ``fit``.
    batch_size : int, default=32
        Clips per mini-batch, in training and prediction; -1 puts all the clips in one batch.
    padding : {"masked", "reference"}, default="masked"
        ``"masked"``: padded frames never influence real ones, so ``predict(X)[i]`` equals
        ``predict(X[i:i+1])[0]``. ``"reference"``: the reference's zero padding, unmasked, where a
        clip's prediction depends on the other clips of its batch.
    batch_by_length : bool, default=False
        Train on shuffled batches of clips of similar length (less padding; see
        :class:`~sersk.nn.collate.SimilarLengthBatchSampler`) instead of fully shuffled batches. On
        the CPU with masked padding, fully shuffled batches already run in groups of similar length
        inside the network, so this gains only 1.1-1.3x there; elsewhere, about 1.9x.
        Off by default: on Emo-DB it cost 10 points of test accuracy (``docs/performance.md``).
    max_batch_frames : int or None, default=9216
        The most frames a padded mini-batch may hold, which bounds the memory of a step whatever the
        clip lengths (but for one clip longer than this, which is a batch of its own: in training its
        memory grows with its length, and ``fit`` warns; in prediction :class:`~sersk.nn.CNNLSTM`
        runs it in windows of time). A batch that would pad to more is cut into the fewest equal parts that fit
        (smaller batches: batch-norm statistics over fewer clips, and more optimiser steps for
        those clips). The default, 32 clips of 288 frames (9.2 s at 16 kHz), keeps the recipe's
        batches of 32 on all of Emo-DB (its longest clip has 277 frames) and bounds a step on
        longer clips to what Emo-DB's longest batch takes; lower it to bound memory further
        (``docs/performance.md`` has measurements). ``None`` never splits (long clips then share
        batches in prediction too, and are not run in windows). When ``batch_size`` clips of the
        longest length would pad to more, the fit shuffles with its own sampler: the same seed then
        orders every epoch differently from a fit whose clips all fit.
    crop_frames : int or None, default=None
        Train on a random window of this many frames of each longer clip, drawn afresh every epoch
        (64 frames are 2.1 s at the recipe's hop); predictions then average the probabilities of
        half-overlapping windows of this length over the whole clip (``predict_windows``). None
        (the recipe) trains and predicts on whole clips.
    predict_windows : bool, default=True
        With ``crop_frames``, predict from the window average (True) or from the whole clip (False).
        The per-epoch ``valid_loss`` and ``valid_acc`` in the history score whole clips.
    freq_warp : float, default=0.0
        In training, stretch or squeeze each clip's band axis by a factor drawn afresh every epoch
        from ``[1 - freq_warp, 1 + freq_warp]``, with ``freq_warp`` in [0, 1)
        (:func:`~sersk.nn.collate.warp_bands`: formants move as with another vocal tract length);
        0 (the recipe) warps nothing.
    band_offset : float, default=0.0
        In training, add to each clip a smooth random curve over its bands, constant in time, drawn
        afresh every epoch (:func:`~sersk.nn.collate.random_band_offset`: 5 knots from
        N(0, ``band_offset``²), linearly interpolated), as another voice or microphone
        tilts the spectral envelope; in the units of the log-mels (standard deviations after
        :class:`~sersk.features.BandStandardizer`). 0 (the recipe) adds nothing.
    freq_mask_bands, time_mask_frames : int, default=0
        SpecAugment: in training, set two bands of fewer than ``freq_mask_bands`` rows and two spans
        of fewer than ``time_mask_frames`` frames of each clip to 0, drawn afresh every epoch (0 = none; see
        :class:`~sersk.nn.collate.TrainingCollate`). 0 is the band's mean after
        :class:`~sersk.features.BandStandardizer`.
    mixup_alpha : float, default=0.0
        Mixup: in training, each batch is mixed with a shuffled copy of itself,
        ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(mixup_alpha, mixup_alpha)`` drawn per
        batch, and the loss is ``lam * loss(y) + (1 - lam) * loss(y[perm])``; a mixed clip is as long
        as the longer of its two. 0 (the recipe) mixes nothing. The history's ``train_acc`` then
        counts the first label of each pair.
    lr_schedule : {"step", "cosine"}, default="step"
        ``"step"``: the recipe's x0.1 every 2 epochs (``callbacks__lr_scheduler__step_size``,
        ``callbacks__lr_scheduler__gamma``); ``"cosine"``: from ``lr`` down to 0 over ``max_epochs``,
        stepped every epoch. A warm start continues either schedule from the epochs already in the
        history. The cosine's length stays the ``max_epochs`` the callbacks were built with (at the
        first fit; ``set_params(max_epochs=...)`` does not change it), and past it the rate rises
        again (torch's ``CosineAnnealingLR``): for one long cosine over several fits, set
        ``callbacks__lr_scheduler__T_max`` to the total.
    class_weight : None, "balanced" or dict, default=None
        Weights of each class's loss. ``"balanced"``: ``n_samples / (n_classes * n_class_samples)``
        over the training labels, as scikit-learn does, so that rare classes count as much as
        common ones (what the unweighted average recall measures); a dict ``{label: weight}``
        (1 for labels it leaves out).
    validation_fraction : float, default=None
        When set and no ``validation_data`` is passed to ``fit``, hold out this fraction of the
        training data for the per-epoch validation: whole groups when ``groups`` is passed to ``fit``
        (e.g. speakers, or the source clip of augmented copies; drawn again while they would hold
        a label's every clip), else a stratified random fraction. After an augmentation step in an
        :class:`~sersk.pipeline.EmotionPipeline`, set the pipeline's ``validation_fraction`` instead
        (it holds clips out before they are copied; the pipeline refuses this one there).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling and the validation split; ``None`` draws fresh entropy at
        each fit, so unseeded fits differ, and a ``RandomState`` gives each fit a seed it draws. The
        global torch RNG is left as it was, by ``fit`` and by prediction: ``fit`` seeds it and sets it
        back once no fit runs (fits in several threads at once share it), so another thread drawing
        from it during a fit gets the fit's numbers, and the fit is then not reproducible (fit in
        processes side by side, as joblib's default backend does). The same seed gives the same
        model on the same device and torch thread count (float sums run in another order on
        another count, so the weights differ by rounding, which training amplifies).
    device : str, default="auto"
        Torch device for training and prediction; ``"auto"`` (or ``None``) picks ``"cuda"`` when
        available, else ``"cpu"``, at each ``fit`` and ``predict`` (so a model fitted on a GPU loads
        and predicts on a machine without one, and a pipeline built on a CPU client trains on a GPU
        worker).
    train_split : callable or None, default=None
        skorch's internal validation split. None (not skorch's default) holds nothing out: use
        ``validation_fraction`` or ``fit(..., validation_data=...)``.
    iterator_train__shuffle : bool, default=True
        Shuffle the training clips every epoch.
    optimizer__weight_decay : float, default=5e-4
        The coupled L2 penalty (the optimiser's ``weight_decay``).
    optimizer__param_groups : sequence of (str, dict), default=NO_DECAY_ON_BIASES
        skorch's per-group optimiser settings; the default spares the conv, LSTM and linear biases
        the weight decay.
    verbose : int, default=1
        When > 0, print a table row per epoch (losses, accuracies, duration; coloured on a
        terminal or in a notebook only) and, there, a progress bar over each epoch's batches.
    iterator_train, iterator_valid, dataset, callbacks, predict_nonlinearity, warm_start, compile, use_caching, torch_load_kwargs : optional
        As in skorch's ``NeuralNetClassifier``, with its defaults. A warm start needs the same
        classes and bands as the fit before; with an int ``random_state`` it draws the same
        shuffles (and crops and masks) as the fit before, as scikit-learn's warm starts do. The
        validation and prediction loaders get a ``generator`` of their own when they take one, as a
        ``DataLoader`` does (unless ``iterator_valid__generator`` is given), so that validating
        draws nothing from the training's.
    classes : array-like, default=None
        Every label the network outputs, ``classes_`` (sorted); ``None``: the labels of ``y``. A fit
        whose ``y`` lacks some of them keeps an output for each (a warm start over data of
        different label sets needs it).
    **kwargs :
        Other skorch parameters (``callbacks``, ``module__*``, ``callbacks__lr_scheduler__step_size``, ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels the network outputs, sorted: those of ``y`` in ``fit``, or ``classes`` when given.
    n_mels_ : int
        Feature rows per sequence seen in ``fit``.
    class_weight_ : ndarray of shape (n_classes,) or None
        The loss weight of each class, in the order of ``classes_`` (None without ``class_weight``).
    module_, optimizer_, history_ :
        As in skorch.

    Examples
    --------
    >>> import numpy as np
    >>> from sersk import CNNLSTMClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = [rng.normal(size=(16, 20 + i % 7)).astype("float32") for i in range(40)]
    >>> y = ["low", "high"] * 20
    >>> clf = CNNLSTMClassifier(module__filters=(4, 4), module__pools=((2, 2), (2, 2)),
    ...                         module__hidden_size=8, max_epochs=1, verbose=0, random_state=0)
    >>> clf.fit(X, y).predict(X[:3]).shape
    (3,)
    """

    # what a classifier pickled before these options existed uses
    freq_warp = 0.0
    band_offset = 0.0
    mixup_alpha = 0.0

    def __init__(
        self,
        module: type[torch.nn.Module] = CNNLSTM,
        *,
        criterion: type[torch.nn.Module] = torch.nn.CrossEntropyLoss,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        lr: float = _recipe.LR,
        max_epochs: int = _recipe.MAX_EPOCHS,
        batch_size: int = _recipe.BATCH_SIZE,
        padding: str = "masked",
        batch_by_length: bool = False,
        max_batch_frames: int | None = _recipe.MAX_BATCH_FRAMES,
        crop_frames: int | None = None,
        predict_windows: bool = True,
        freq_warp: float = 0.0,
        band_offset: float = 0.0,
        freq_mask_bands: int = 0,
        time_mask_frames: int = 0,
        mixup_alpha: float = 0.0,
        lr_schedule: str = "step",
        class_weight: str | dict | None = None,
        validation_fraction: float | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str | None = "auto",
        train_split: Any = None,
        iterator_train__shuffle: bool = True,
        optimizer__weight_decay: float = _recipe.WEIGHT_DECAY,
        optimizer__param_groups: Any = NO_DECAY_ON_BIASES,
        verbose: int = 1,
        # skorch's own parameters, with skorch's defaults, listed so that a repr shows what was changed
        iterator_train: Any = DataLoader,
        iterator_valid: Any = DataLoader,
        dataset: Any = Dataset,
        callbacks: Any = None,
        predict_nonlinearity: Any = "auto",
        warm_start: bool = False,
        compile: bool = False,
        use_caching: Any = "auto",
        torch_load_kwargs: Any = None,
        classes: Any = None,
        **kwargs: Any,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            device=device,
            train_split=train_split,
            iterator_train__shuffle=iterator_train__shuffle,
            optimizer__weight_decay=optimizer__weight_decay,
            optimizer__param_groups=optimizer__param_groups,
            verbose=verbose,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            dataset=dataset,
            callbacks=callbacks,
            predict_nonlinearity=predict_nonlinearity,
            warm_start=warm_start,
            compile=compile,
            use_caching=use_caching,
            torch_load_kwargs=torch_load_kwargs,
            classes=classes,
            **kwargs,
        )
        self.padding = padding
        self.batch_by_length = batch_by_length
        self.max_batch_frames = max_batch_frames
        self.crop_frames = crop_frames
        self.predict_windows = predict_windows
        self.freq_warp = freq_warp
        self.band_offset = band_offset
        self.freq_mask_bands = freq_mask_bands
        self.time_mask_frames = time_mask_frames
        self.mixup_alpha = mixup_alpha
        self.lr_schedule = lr_schedule
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    # scikit-learn's repr, the parameters set (skorch's names the module only, so that nets of other
    # settings, in a search's cv_results_ for one, printed alike); the network itself: ``module_``
    __repr__ = BaseEstimator.__repr__

    @property
    def _default_callbacks(self):
        callbacks = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("train_acc", TrainAccuracy()),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("valid_acc", EpochScoring(encoded_accuracy, name="valid_acc", lower_is_better=False)),
            ("lr_scheduler", self._lr_scheduler()),
            ("stop_on_non_finite_loss", StopOnNonFiniteLoss()),
            ("print_log", PlainPrintLog()),
        ]
        if self.verbose and shown_live(sys.stderr):  # a bar per epoch where seen live; none in a log
            callbacks.insert(-1, ("progress_bar", ProgressBar(detect_notebook=widget_bars())))
        return callbacks

    def _get_params_callbacks(self, deep: bool = True) -> dict[str, Any]:
        """skorch's, but a callback parameter given to ``__init__`` or ``set_params``
        (``callbacks__lr_scheduler__T_max=100``) is reported as given, not as a fresh default
        callback has it: skorch listed the defaults last, so the value read back as the default,
        and a search or a ``set_params(**get_params())`` copy set the default back."""
        params = super()._get_params_callbacks(deep=deep)
        given = {name for name in list(vars(self)) if name.startswith("callbacks__")}  # get_params reports them itself
        return {name: value for name, value in params.items() if name not in given}

    def _lr_scheduler(self) -> LRScheduler:
        if self.lr_schedule == "cosine":
            return EpochLRScheduler(CosineAnnealingLR, T_max=self.max_epochs, step_every="epoch")
        return EpochLRScheduler(StepLR, step_size=_recipe.LR_STEP_EPOCHS, gamma=_recipe.LR_GAMMA, step_every="epoch")

    def set_params(self, **params):
        """skorch's ``set_params``, all or nothing: on an error, the estimator is left as it was.

        skorch sets the attributes, then rebuilds the parts they feed (callbacks, module,
        optimizer); an error there left the new, bad values set. On a built network, new
        ``callbacks`` and ``padding`` take effect at once (skorch rebuilt the callbacks from the old
        list, which a warm start then kept, and left the network's padding as built), and an
        optimizer setting is recorded and spares the groups that ``optimizer__param_groups`` sets
        apart. A new ``device`` is set first, and a built network rebuilt or moved onto it as
        resolved (``"auto"``: CUDA when available).

        On a built network, a ``module*``, ``compile``, ``criterion*`` or ``optimizer*`` value it
        already has changes nothing (skorch rebuilt the network, with new random weights, for any
        ``module*`` or ``compile`` key, and the criterion and optimizer, their state lost, for a
        ``criterion*`` one); a list, dict or set counts as new, as it may have changed in place.
        The loaders' and the dataset's settings take effect at the next loader, and a new
        ``optimizer`` class starts afresh, the weights kept (skorch refused both). A new ``module*``
        or ``compile`` value builds the network anew, with new random weights, as in skorch: fit
        again before predicting.

        Parameters
        ----------
        **params : dict
            Estimator parameters, skorch's prefixed ones included (``module__hidden_size``,
            ``optimizer__weight_decay``, ``callbacks__lr_scheduler__gamma``, ...).

        Returns
        -------
        self : CNNLSTMClassifier
            The estimator itself.
        """
        with self._unchanged_on_error():
            if self.initialized_:  # a value it has already would make skorch rebuild the network (new weights)
                params = {
                    key: value for key, value in params.items()
                    if not (key.split("__", 1)[0] in _REBUILT_BY and _same(getattr(self, key, _UNSET), value))
                }
            if "device" in params:  # first, and set here: the parts skorch rebuilds go to the resolved device
                self._set_device(params.pop("device"))
            if self.initialized_:
                self._set_loader_params(params)
            group_settings = self._all_group_settings(params)
            if self.initialized_:  # recorded first: skorch may rebuild the optimizer from these attributes
                for key in group_settings:
                    setattr(self, key, params[key])
            with self._resolved_device() if self.initialized_ else nullcontext():
                super().set_params(**params)
            if self.initialized_:
                if "callbacks" in params:  # skorch rebuilt callbacks_ from the old list; a warm start uses it
                    self._initialize_callbacks()
                if "padding" in params:  # the built network takes either mode with the same weights
                    self._check_padding()
                    self.module_.padding = self.padding
                self._keep_group_settings(group_settings)
                self._restart_schedule_of_new_rates(params)
            return self

    def _restart_schedule_of_new_rates(self, params: dict[str, Any]) -> None:
        """Drop torch's record of the rate a group's schedule began at (``initial_lr``) from the groups
        ``params`` give a new rate: the next warm start begins their schedule at it."""
        groups = self.optimizer_.param_groups
        for key in params:
            if key in ("lr", "optimizer__lr"):
                chosen = groups
            elif match := re.fullmatch(r"optimizer__param_groups__(\d+)__lr", key):
                chosen = groups[int(match[1]) : int(match[1]) + 1]
            else:
                continue
            for group in chosen:
                group.pop("initial_lr", None)

    def _set_device(self, device: Any) -> None:
        """Set the device asked for; while a fit or prediction runs (a callback, another thread), it
        takes effect when they end: the running ones keep the device they resolved."""
        with _DEVICE_LOCK:
            if self.__dict__.get("_device_users"):
                self._device_requested = device
            else:
                self.device = device

    def _set_loader_params(self, params: dict[str, Any]) -> None:
        """Set, and take out of ``params``, what skorch would refuse on a built network ("Something
        went wrong"): the loaders' and the dataset's classes and settings, read when the next loader
        is made, and the optimizer's class, built anew here (its state starts afresh)."""
        keys = [
            key for key in params  # optimizer__* keys: skorch applies them to the built optimizer itself
            if key.split("__", 1)[0] in ("iterator_train", "iterator_valid", "dataset") or key == "optimizer"
        ]
        for key in keys:
            setattr(self, key, params.pop(key))
        self._params_to_validate.update(key for key in keys if "__" in key)
        if set(keys) - {"optimizer"}:
            self._validate_params()  # skorch's checks of its own keys, made at once
        if "optimizer" in keys:
            with self._resolved_device():
                self._initialize_optimizer()

    @staticmethod
    def _all_group_settings(params: dict[str, Any]) -> list[str]:
        """The ``optimizer__<name>`` keys of ``params``, which skorch applies to every param group of
        a built optimizer without recording them (``get_params`` and a clone kept the old value)."""
        return [key for key in params if re.fullmatch(r"optimizer__(?!param_groups)[^_]\w*", key)]

    def _keep_group_settings(self, group_settings: list[str]) -> None:
        """Give the groups that ``optimizer__param_groups`` sets apart their own value of the settings
        (``optimizer__<name>`` keys) skorch applied to every group (biases keep no decay)."""
        changed = {key.split("__", 1)[1] for key in group_settings}
        if not changed:
            return
        # the groups as skorch builds them, with the settings optimizer__param_groups gives each
        (built,), _ = self.get_params_for_optimizer("optimizer", self.get_all_learnable_params())
        for group, settings in zip(self.optimizer_.param_groups, built):
            group.update({name: settings[name] for name in changed if name in settings})

    @contextmanager
    def _unchanged_on_error(self) -> Iterator[None]:
        """Within the block, an error (or an interrupt) restores the estimator's attributes, and the
        state of its network, optimizer and criterion, which a warm start and skorch's
        ``set_params`` change in place, the callbacks' attributes (epoch counts, best scores; not
        the files a checkpoint wrote), and a ``random_state`` RandomState's draws. The device
        bookkeeping stays that of the blocks running now (a prediction in another thread)."""
        # skorch adds each new special key to the set _params_to_validate in place, before it checks
        # the key: kept, a refused key failed every later initialize (and so fit)
        saved = {name: set(value) if isinstance(value, set) else value for name, value in self.__dict__.items()}
        if getattr(self, "history_", None) is not None:
            saved["history_"] = copy.deepcopy(self.history_)  # skorch clears the history in place
        generator = self.random_state if isinstance(self.random_state, np.random.RandomState) else None
        drawn = generator.get_state() if generator is not None else None
        # the callbacks count epochs and keep the best scores in place (early stopping, checkpoints)
        callbacks = [
            (callback, dict(vars(callback))) for _, callback in self.__dict__.get("callbacks_", [])
            if hasattr(callback, "__dict__")  # None: a callback switched off
        ]
        states = {
            name: copy.deepcopy(part.state_dict())  # type: ignore[union-attr]  # hasattr: not None
            for name in ("module_", "optimizer_", "criterion_")
            if hasattr(part := self.__dict__.get(name), "state_dict")
        }
        try:
            yield
        except BaseException:
            with _DEVICE_LOCK:
                self._restore_keeping_device_blocks(saved)
            if generator is not None and drawn is not None:  # drawn is set with generator
                generator.set_state(drawn)
            for callback, state in callbacks:
                restore_attributes(callback, state)
            for name, state in states.items():
                getattr(self, name).load_state_dict(state)
            raise

    def _restore_keeping_device_blocks(self, saved: dict[str, Any]) -> None:
        """Put back the attributes ``saved``, but the device bookkeeping of the blocks resolving the
        device now (:meth:`_resolved_device`; a prediction in another thread), which may have begun
        or ended since ``saved`` was taken. Called under ``_DEVICE_LOCK``."""
        state = {name: value for name, value in saved.items() if name not in ("_device_requested", "_device_users")}
        state["device"] = saved.get("_device_requested", saved.get("device"))  # the device as the user set it
        if self.__dict__.get("_device_users"):  # the device stays resolved until the last block ends
            state.update(_device_requested=state["device"], device=self.device, _device_users=self._device_users)
        restore_attributes(self, state)

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_", its private bookkeeping included
        return [name for name in super()._get_param_names() if not name.startswith("_")]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """skorch's, with the device as given (``"auto"``), also while a fit or prediction runs on
        the device it resolved to: a clone taken then (a callback, another thread) keeps ``"auto"``.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of the sub-objects (``module__*``, ``callbacks__*``, ...).

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        with _DEVICE_LOCK:  # a block that ends meanwhile would put the device back between the two reads
            params = super().get_params(deep=deep)
            if "_device_requested" in self.__dict__:
                params["device"] = self.__dict__["_device_requested"]
        return params

    @property
    def classes_(self) -> np.ndarray:
        """The labels the network outputs, sorted (a NotFittedError before ``fit``)."""
        check_is_fitted(self, "classes_seen_")
        return self.classes_seen_

    # ---- fitting -------------------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        validation_data: tuple[Any, Any] | None = None,
        groups: Any = None,
    ) -> "CNNLSTMClassifier":
        """Train the network: from scratch, or on from the last fit with ``warm_start=True``.

        Parameters
        ----------
        X : sequence of array-like of shape (n_mels, n_frames_i)
            Training sequences.
        y : array-like of shape (n_samples,)
            Labels: all text, or all integers (whole-number floats and bools count as such).
        validation_data : (X_val, y_val), optional
            Held-out sequences scored once per epoch (never augmented copies of training clips).
        groups : array-like of shape (n_samples,), optional
            Group of each training sequence, for the ``validation_fraction`` split.

        Returns
        -------
        self : CNNLSTMClassifier
            The fitted estimator.
        """
        try:
            with self._unchanged_on_error():
                X, y_enc, classes, valid, n_mels, seed = self._check_fit_input(X, y, validation_data, groups)
                self.classes_seen_ = classes
                self.n_mels_ = n_mels
                self.class_weight_ = self._class_weights(classes, y_enc)
                self._valid_dataset = valid
                with self._resolved_device(), generators_restored(self._cuda_devices()):
                    self._seed_torch(seed)
                    if not self.warm_start or not self.initialized_:
                        NeuralNetClassifier.initialize(self)  # checked, on the device, seeded: here
                    elif self.class_weight is not None or getattr(self.criterion_, "weight", None) is not None:
                        self._initialize_criterion()  # this fit's labels set the class weights, or none
                    NeuralNetClassifier.partial_fit(self, X, classes[y_enc])  # LabelledClips encodes them
        except _Interrupted:
            raise KeyboardInterrupt("fit was interrupted; the estimator is as it was before") from None
        finally:
            self.__dict__.pop("_valid_dataset", None)
        return self

    def _check_padding(self) -> None:
        if self.padding not in PADDING_MODES:
            raise ValueError(f"padding={self.padding!r}; expected one of {PADDING_MODES}")

    def _fit_seed(self) -> int:
        """This fit's seed: ``random_state`` itself, one drawn from a ``RandomState``, or fresh entropy
        when it is None, so that unseeded fits differ from one another."""
        if self.random_state is None:
            return secrets.randbits(63)
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(np.iinfo(np.int32).max))
        return int(self.random_state)

    def _seed_torch(self, seed: int) -> None:
        """Seed the generators a fit draws from, the CPU's and its CUDA device's, and no other (the
        caller restores them)."""
        torch.default_generator.manual_seed(seed)
        for index in self._cuda_devices():
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)

    def _check_params(self) -> None:
        """Refuse a bad training option by name, before any data is touched."""
        if not (is_integer(self.max_epochs) and self.max_epochs >= 1):
            raise ValueError(f"max_epochs={self.max_epochs!r}; expected a positive integer")
        sizes = {"batch_size": self.batch_size}
        sizes.update({f"{prefix}__batch_size": self.get_params_for(prefix).get("batch_size", 1)
                      for prefix in ("iterator_train", "iterator_valid")})
        for name, size in sizes.items():
            if not (is_integer(size) and (size >= 1 or size == -1)):
                raise ValueError(f"{name}={size!r}; expected a positive integer, or -1 (one batch of all clips)")
        if not (is_real(self.lr) and 0 <= self.lr < np.inf):
            raise ValueError(f"lr={self.lr!r}; expected a non-negative number")
        for name in ("warm_start", "compile", "batch_by_length", "predict_windows"):
            check_bool(getattr(self, name), name)
        self._check_padding()
        check_seed(self.random_state)
        if self.max_batch_frames is not None and not (
            is_integer(self.max_batch_frames) and self.max_batch_frames >= 1
        ):
            raise ValueError(f"max_batch_frames={self.max_batch_frames!r}; expected a positive integer or None")
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight={self.class_weight!r}; expected None, 'balanced' or a dict {{label: weight}}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule={self.lr_schedule!r}; expected one of {LR_SCHEDULES}")
        for name in ("freq_mask_bands", "time_mask_frames"):
            value = getattr(self, name)
            if not (is_integer(value) and value >= 0):
                raise ValueError(f"{name}={value!r}; expected a non-negative integer")
        if not (is_real(self.freq_warp) and 0 <= self.freq_warp < 1):
            raise ValueError(f"freq_warp={self.freq_warp!r}; expected a number in [0, 1)")
        for name in ("band_offset", "mixup_alpha"):
            value = getattr(self, name)
            if not (is_real(value) and 0 <= value < np.inf):
                raise ValueError(f"{name}={value!r}; expected a non-negative number")
        crop = self.crop_frames
        if crop is not None and not (is_integer(crop) and crop >= 1):
            raise ValueError(f"crop_frames={self.crop_frames!r}; expected a positive integer or None")
        for name in ("module", "criterion", "optimizer"):
            if not callable(value := getattr(self, name)):
                raise ValueError(f"{name}={value!r}; expected a class")
        if not (self.train_split is None or callable(self.train_split)):
            raise ValueError(f"train_split={self.train_split!r}; expected None or a callable (validation_fraction "
                             "holds clips out)")
        self._check_callback_settings()

    def _check_callback_settings(self) -> None:
        """Refuse ``callbacks__<name>__*`` settings of no callback (skorch ignored a misspelled name
        given to the constructor) and bad values of the learning-rate schedule (torch divided by zero
        in the first epoch)."""
        if isinstance(self.callbacks, str):  # "disable": skorch runs none
            return
        self._check_one_schedule()  # before skorch's "duplicate user-set callback name 'lr_scheduler'"
        names = [name for name, *_ in self._uniquely_named_callbacks()]
        names += [] if "progress_bar" in names else ["progress_bar"]  # the default's where seen live only
        for key in vars(self):
            if key.startswith("callbacks__") and key.split("__")[1] not in names:  # callbacks__<name>=None too
                raise ValueError(f"{key}: there is no callback named {key.split('__')[1]!r}; the callbacks are {names}")
        schedule = self.get_params_for("callbacks__lr_scheduler")
        own = self._lr_scheduler().policy  # StepLR or CosineAnnealingLR, as lr_schedule says
        policy = schedule.get("policy", own)
        policy = getattr(torch.optim.lr_scheduler, policy, policy) if isinstance(policy, str) else policy
        same = isinstance(policy, type) and issubclass(policy, own)  # its own, or a subclass of it
        if not same and "callbacks__lr_scheduler" not in vars(self):
            raise ValueError(  # torch's TypeError ('last_epoch') at the first epoch
                f"callbacks__lr_scheduler__policy={schedule['policy']!r}: the network's own schedule is lr_schedule's "
                "('step' or 'cosine'); put another in its place with callbacks__lr_scheduler=LRScheduler(<policy>, ...)"
            )
        for name in ("step_size", "T_max"):
            if name in schedule and not (is_integer(schedule[name]) and schedule[name] >= 1):
                raise ValueError(f"callbacks__lr_scheduler__{name}={schedule[name]!r}; expected a positive integer")
        if "gamma" in schedule and not (is_real(schedule["gamma"]) and 0 < schedule["gamma"] < np.inf):
            raise ValueError(f"callbacks__lr_scheduler__gamma={schedule['gamma']!r}; expected a positive number")

    def _check_one_schedule(self) -> None:
        """Refuse a learning-rate scheduler in ``callbacks`` beside the network's own (``lr_scheduler``,
        still there unless ``callbacks__lr_scheduler`` replaces it): both changed the rate each epoch,
        compounding (a user's ExponentialLR halved and the recipe's step cut it tenfold at once)."""
        own = "callbacks__lr_scheduler" not in vars(self)  # the default, as lr_schedule makes it
        for item in self.callbacks or []:
            if isinstance(item, (tuple, list)) and item[0] == "lr_scheduler":  # skorch: a duplicate name
                kind = item[1] if isinstance(item[1], type) else type(item[1])
                instead = ("pass yours as callbacks__lr_scheduler=<your scheduler>, or give it another name (with "
                           "callbacks__lr_scheduler=None, so that it runs alone)" if issubclass(kind, LRScheduler)
                           else "give it another name")
                raise ValueError(
                    f"callbacks names one lr_scheduler ({_callback_name(item[1])}), the name of the network's own "
                    f"schedule: {instead}"
                )
        if not own:
            return
        for name, callback in self._uniquely_named_callbacks():  # the names skorch gives, duplicates numbered
            callback = vars(self).get(f"callbacks__{name}", callback)  # replaced (or dropped) by set_params
            scheduler = isinstance(callback, LRScheduler) or (isinstance(callback, type) and issubclass(callback, LRScheduler))
            if name != "lr_scheduler" and scheduler:
                self._refuse_a_second_schedule(callback)

    def _refuse_a_second_schedule(self, callback: Any) -> None:
        """Raise, naming ``callback`` (a scheduler beside the network's own) and what to do instead."""
        kind = _callback_name(callback)
        policy = getattr(callback, "policy", None)
        if policy is not None:
            kind += f" of {getattr(policy, '__name__', policy)}"
        raise ValueError(
            f"callbacks holds a learning-rate scheduler ({kind}) beside the network's own schedule, lr_scheduler "
            f"(lr_schedule={self.lr_schedule!r}), which would change the rate each epoch too; put yours in its place "
            "with callbacks__lr_scheduler=<your scheduler>, or drop it with callbacks__lr_scheduler=None (and to keep "
            "the recipe's step beside yours, add LRScheduler(StepLR, step_size=2, gamma=0.1) too)"
        )

    def _check_fit_input(
        self, X: Any, y: Any, validation_data: tuple[Any, Any] | None, groups: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None, int, int]:
        """Checked training data: the sequences and encoded labels to train on, the classes, the
        encoded validation set (given, or held out by ``validation_fraction``), the bands and the
        fit's seed."""
        self._check_params()
        seed = self._fit_seed()
        X = check_sequences(rows_as_sequences(X))
        y, labels = self._checked_labels(X, y)
        classes = labels if self.classes is None else self._given_classes(labels)
        y_enc = np.searchsorted(classes, y)
        n_mels = X[0].shape[0]
        self._check_network_fits(classes, n_mels)
        self._warn_of_clips_over_the_budget(X)
        valid = None
        if validation_data is not None:
            valid = self._encoded_validation_data(validation_data, classes, n_mels)
        elif self.validation_fraction is not None:
            train, held = _validation_split(
                y_enc, groups, self.validation_fraction, None if self.random_state is None else seed
            )
            valid = (X[held], y_enc[held])
            if len(untrained := np.setdiff1d(y_enc[held], y_enc[train])):  # every draw took a label's clips out
                warnings.warn(
                    f"validation_fraction={self.validation_fraction} holds out every clip of "
                    f"{', '.join(map(str, classes[untrained]))}: the network trains on none of them, and validation "
                    "scores them as errors (hold out fewer, or pass validation_data)", UserWarning, stacklevel=3,
                )
            X, y_enc = X[train], y_enc[train]
        elif groups is not None:
            raise ValueError("groups are only used with validation_fraction; set it, or drop groups")
        return X, y_enc.astype(np.int64), classes, valid, n_mels, seed

    def _check_nothing_monitors_validation(self) -> None:
        """Refuse, before the first epoch, skorch's callbacks that read a validation score when the fit
        validates on nothing (EarlyStopping or Checkpoint failed at the first epoch's end: "Key
        'valid_loss' was not found in history"; skorch's own default splits off a validation set,
        sersk's does not). They are read as skorch built them, its ``callbacks__<name>*`` settings
        applied; callbacks of one's own are theirs to handle."""
        for name, callback in self.callbacks_:
            monitor = getattr(callback, "monitor", None)
            if _reads_a_monitored_score(callback) and isinstance(monitor, str) and monitor.startswith("valid"):
                raise ValueError(
                    f"the callback {name!r} watches {monitor!r}, which only a validation set records, and this fit "
                    "validates on nothing: set validation_fraction (the pipeline's, in an EmotionPipeline), or pass "
                    "validation_data to fit"
                )

    def _warn_of_clips_over_the_budget(self, X: np.ndarray) -> None:
        """Warn that training clips longer than ``max_batch_frames`` (after ``crop_frames``) each
        train as a batch of their own, whose memory the budget does not bound."""
        if self.max_batch_frames is None:
            return
        frames = np.array([x.shape[-1] for x in X])
        if self.crop_frames is not None:
            frames = np.minimum(frames, self.crop_frames)
        if (over := np.flatnonzero(frames > self.max_batch_frames)).size:
            longest = over[np.argmax(frames[over])]
            warnings.warn(
                f"training clips longer than max_batch_frames={self.max_batch_frames} ({over.size}; the longest, "
                f"clip {longest}: {frames[longest]} frames) train one to a batch, with memory that grows with their "
                "length: crop_frames=N trains on windows of at most N frames",
                UserWarning,
                stacklevel=4,
            )

    @staticmethod
    def _checked_labels(X: np.ndarray, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """``y`` as a 1-D array of class labels, one per sequence of ``X``, and its classes (two or more)."""
        if y is None:
            raise ValueError("CNNLSTMClassifier requires y to be passed, but the target y is None")
        given = ravel_column_vector(y, stacklevel=5)  # the warning points at the caller of fit
        y = np.asarray(given)
        check_matches_labels(X, y)
        if y.ndim != 1:
            raise ValueError(f"y has shape {y.shape}; expected one label per sequence (1-D)")
        y = check_labels(given, "y")  # as given: np.asarray turned NaN or None among strings into text
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: {kind!r}; expected class labels (strings or integers)")
        return y, check_classes(y)

    @staticmethod
    def _encoded_validation_data(
        validation_data: tuple[Any, Any], classes: np.ndarray, n_mels: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``validation_data`` checked against the training's classes and bands, its labels encoded."""
        X_val, y_val = validation_data
        try:
            X_val = check_sequences(rows_as_sequences(X_val), n_features=n_mels)
        except InvalidSignalError as exc:  # "clip 0 ..." read as a training clip
            raise InvalidSignalError(f"validation_data[0]: {exc}") from None
        y_val = check_labels(y_val, "validation_data[1]")
        check_matches_labels(X_val, y_val, name="validation_data[0]", labels_name="validation_data[1]")
        if len(unknown := np.setdiff1d(y_val, classes)):
            raise ValueError(
                f"validation labels {unknown.tolist()} are not among the classes {classes.tolist()} the "
                "training clips hold (held-out speakers can take a rare class's only clips out of training: "
                "hold out fewer, or pass classes=)"
            )
        return X_val, np.searchsorted(classes, y_val)

    def _given_classes(self, labels: np.ndarray) -> np.ndarray:
        """The ``classes`` parameter, sorted, checked to hold every training label."""
        classes = np.asarray(self.classes)
        distinct = np.unique(classes)  # sorted
        if classes.ndim != 1 or len(distinct) != len(classes):
            raise ValueError(f"classes={self.classes!r}; expected a 1-D sequence of distinct labels")
        if len(unknown := np.setdiff1d(labels, classes)):
            raise ValueError(
                f"labels {unknown.tolist()} of y are not among classes={classes.tolist()}{_encoded_labels_hint(labels, classes)}"
            )
        return distinct

    def _check_network_fits(self, classes: np.ndarray, n_mels: int) -> None:
        """Refuse a network whose given sizes, or whose warm-started weights, do not fit this data, and
        frequency masks that could blank all its bands."""
        self._check_module_sizes(classes, n_mels)
        if (most := _MASKS * (self.freq_mask_bands - 1)) >= n_mels:
            raise ValueError(
                f"freq_mask_bands={self.freq_mask_bands} masks up to {most} bands of each training clip ({_MASKS} masks "
                f"of fewer than {self.freq_mask_bands}), but the features have {n_mels}: every band could be blanked "
                f"(the tuned preset's 16 are for 128 log-mel bands); set fewer, e.g. freq_mask_bands={max(1, n_mels // 8)}"
            )
        if not (self.warm_start and self.initialized_):
            return
        self._check_optimizer_settings()
        self._warm_start_fits(classes, n_mels)

    def _check_module_sizes(self, classes: np.ndarray, n_mels: int) -> None:
        """Refuse a module instance, and ``module__*`` sizes or padding that contradict the data's."""
        if isinstance(self.module, torch.nn.Module):  # skorch would build a new one of its class, losing its weights
            raise ValueError(
                f"module= takes a class, built with the data's bands and classes; got an instance of "
                f"{type(self.module).__name__}: pass the class, its other sizes as module__* parameters, and "
                "load trained weights with load_params"
            )
        module_params = self.get_params_for("module")
        for name, needed in (("n_classes", len(classes)), ("n_mels", n_mels)):
            given = module_params.get(name)
            if given is not None and given != needed:
                raise ValueError(f"module__{name}={given}, but the data has {needed}; leave it unset to take it from the data")
        if module_params.get("padding", self.padding) != self.padding:  # the network takes padding=
            raise ValueError(f"module__padding={module_params['padding']!r}, but padding={self.padding!r} sets the "
                             "network's: set padding= instead")

    def _warm_start_fits(self, classes: np.ndarray, n_mels: int) -> None:
        """Refuse a warm start whose network was trained (or built) for other classes or bands."""
        # a network fitted here knows its classes and bands; one built by initialize() or
        # load_params() only its sizes
        trained = getattr(self, "classes_seen_", None)
        if trained is not None and not np.array_equal(classes, trained):
            raise ValueError(
                f"warm_start=True continues a network trained on classes {trained.tolist()}; this fit's "
                f"are {classes.tolist()}: fit without warm_start, or give classes= with every label"
            )
        outputs = getattr(getattr(self.module_, "fc", None), "out_features", None)
        if trained is None and outputs is not None and outputs != len(classes):
            raise ValueError(f"warm_start=True continues a network of {outputs} outputs; this fit has {len(classes)} classes")
        bands = getattr(self, "n_mels_", None) or getattr(self.module_, "n_mels", None)
        if bands is not None and n_mels != bands:
            raise ValueError(f"warm_start=True continues a network trained on {bands} bands; this fit's sequences have {n_mels}")

    def _check_optimizer_settings(self) -> None:
        """Refuse optimizer settings that torch would refuse, for a warm start: ``set_params`` writes
        ``optimizer__*`` into the fitted optimizer, where torch never checks them (a negative learning
        rate trained the network backwards). A throwaway optimizer of the same kind checks them."""
        optimizer = self.__dict__.get("optimizer_")
        if not isinstance(optimizer, torch.optim.Optimizer):
            return
        accepted = inspect.signature(type(optimizer)).parameters
        for group in optimizer.param_groups:
            settings = {key: value for key, value in group.items() if key in accepted and key != "params"}
            try:
                type(optimizer)([torch.zeros(1, requires_grad=True)], **settings)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"warm_start=True continues with optimizer settings {type(optimizer).__name__} refuses: {exc}; "
                    "set valid ones with set_params(optimizer__...)"
                ) from None

    @contextmanager
    def _resolved_device(self) -> Iterator[None]:
        """Within the block, ``self.device`` is a concrete device (skorch reads it everywhere).

        The device's settings hold within the block too. On the CPU, freed memory is kept for reuse
        (:func:`~sersk.utils._malloc.reuse_freed_memory`): each training step allocates the same
        large activations again. On CUDA, cuDNN computes in float32, not TF32, and with a
        ``random_state`` picks deterministic kernels (:func:`~sersk.utils._device.float32_cudnn`).
        """
        with _DEVICE_LOCK:  # blocks of several threads (predictions of one model) are counted
            if not self.__dict__.get("_device_users"):
                requested, self.device = self.device, resolve_device(self.device)  # a clear error for no CUDA
                try:
                    self._move_to_device()
                except BaseException:  # out of GPU memory, say: the device asked for stays
                    self.device = requested
                    raise
                self._device_requested = requested
            self._device_users = self.__dict__.get("_device_users", 0) + 1
        try:
            if torch.device(self.device).type == "cpu":
                settings = reuse_freed_memory()
            else:
                settings = float32_cudnn(deterministic=self.random_state is not None)
            with settings:
                yield
        finally:
            with _DEVICE_LOCK:
                self._device_users -= 1
                if self._device_users == 0:
                    self.device = self.__dict__.pop("_device_requested")
                    del self._device_users

    def _move_to_device(self) -> None:
        """Move a built network, its criterion and its optimizer's state to ``self.device``.

        skorch's ``set_params(device=...)`` leaves them where they are: a model fitted on the CPU
        and then set to ``"auto"`` on a machine with a GPU (or fitted on CUDA and set to ``"cpu"``)
        would be fed inputs on one device and hold weights on the other.
        """
        module = self._built_module()
        parameter = next(module.parameters(), None) if module is not None else None
        target = torch.device(self.device)
        if target.type == "cuda" and target.index is None:
            target = torch.device("cuda", torch.cuda.current_device())
        if module is None or parameter is None or parameter.device == target:  # (no module: no parameter)
            return
        module.to(target)
        if isinstance(criterion := self.__dict__.get("criterion_"), torch.nn.Module):
            criterion.to(target)
        if isinstance(optimizer := self.__dict__.get("optimizer_"), torch.optim.Optimizer):
            optimizer.load_state_dict(optimizer.state_dict())  # casts its state to its parameters' device

    def _built_module(self) -> torch.nn.Module | None:
        """The network, once built (``module_``); None before."""
        module = self.__dict__.get("module_")
        return module if isinstance(module, torch.nn.Module) else None

    def load_params(self, *args: Any, **kwargs: Any) -> None:
        """skorch's ``load_params``, with the tensors loaded onto the device ``device`` resolves to; all
        or nothing (skorch loads the history, the weights and the optimizer one after the other).

        Parameters
        ----------
        *args, **kwargs
            As skorch's ``load_params``: ``f_params``, ``f_optimizer``, ``f_criterion``,
            ``f_history``, ``checkpoint``, ``use_safetensors``.
        """
        with self._unchanged_on_error(), self._resolved_device():  # skorch maps the loaded tensors to self.device
            return super().load_params(*args, **kwargs)

    def initialize(self):
        """Check the parameters, then build the network and its parts on the resolved device (skorch's).

        The weights are drawn as a fit draws them, seeded by ``random_state``, and the global torch
        generator is left as it was. With ``classes`` given, the network then predicts, its outputs
        labelled with them (weights from ``load_params``: skorch's save and load); without, a fit
        tells it its labels.

        Returns
        -------
        self : CNNLSTMClassifier
            The initialised estimator.
        """
        self._check_params()
        labelled = {}
        if self.classes is not None:  # the outputs' labels, before the network is built with one each
            labelled = {
                "classes_seen_": self._given_classes(np.asarray([], dtype=np.asarray(self.classes).dtype)),
                "n_mels_": int(self.get_params_for("module").get("n_mels", getattr(self, "n_mels_", _recipe.N_MELS))),
            }
            self._check_module_sizes(labelled["classes_seen_"], labelled["n_mels_"])  # module__n_classes among them
        with self._unchanged_on_error():
            vars(self).update(labelled)
            with self._resolved_device(), generators_restored(self._cuda_devices()):
                self._seed_torch(self._fit_seed())
                super().initialize()
        return self

    def forward_iter(self, X, training=False, device="cpu"):
        """Yield the module's output for each batch of ``X``, run on the device ``device`` resolves to (skorch's).

        Parameters
        ----------
        X : sequence of array-like of shape (n_mels, n_frames_i), or Dataset
            The sequences.
        training : bool, default=False
            Run the module in training mode.
        device : str, default="cpu"
            Where each output is put (not where the module runs).

        Yields
        ------
        y_infer : torch.Tensor
            The logits of one batch.
        """
        # the loader draws its seed from a generator of its own (get_iterator), not the global one,
        # which a fit in another thread may be drawing from
        with self._resolved_device():
            yield from super().forward_iter(X, training=training, device=device)

    def __setstate__(self, state):
        requested = state.get("device")
        if requested in (None, "auto"):
            state = {**state, "device": resolve_device(requested)}
            super().__setstate__(state)
            self.device = requested
        elif missing_cuda_device(requested):
            # skorch falls back to the CPU only when there is no CUDA at all; torch's load then failed
            warnings.warn(
                f"the network was saved on device={str(requested)!r}, which this machine lacks "
                f"({torch.cuda.device_count()} CUDA device(s)); it is loaded on the CPU, with device='cpu' "
                "(set_params(device='auto') runs it on CUDA)",
                DeviceWarning,
            )
            super().__setstate__({**state, "device": "cpu"})
        else:
            super().__setstate__(state)

    def _cuda_devices(self) -> list[int]:
        """The CUDA device the estimator runs on (``"cuda"`` alone: the current one), as a list."""
        if not str(self.device).startswith("cuda"):
            return []
        index = torch.device(self.device).index
        return [torch.cuda.current_device() if index is None else index]

    def __getstate__(self):
        with _DEVICE_LOCK:  # no fit or prediction starts meanwhile; one running keeps its weights as they are
            running = bool(self.__dict__.get("_device_users"))
            with nullcontext() if running else self._recurrent_weights_apart():
                state = super().__getstate__()
        # pickled while another thread predicts: keep the device asked for, not the resolved one
        if "_device_requested" in state:
            state["device"] = state.pop("_device_requested")
        state.pop("_device_users", None)
        state.pop("_valid_dataset", None)  # a fit's validation data, while it runs (a checkpoint pickled mid-fit)
        return state

    @contextmanager
    def _recurrent_weights_apart(self) -> Iterator[None]:
        """Within the block, each LSTM weight has its own storage; cuDNN's single block is rebuilt after.

        On CUDA, cuDNN keeps an LSTM's weights as views of one block, and pickle writes the whole
        block once per weight: four copies in the file, and four separate blocks once loaded.
        """
        module = self._built_module()
        recurrent = [] if module is None else [m for m in module.modules() if isinstance(m, torch.nn.RNNBase)]
        shared = []
        for rnn in recurrent:
            weights = [w for w in rnn._flat_weights if w is not None]
            if len({w.untyped_storage().data_ptr() for w in weights}) < len(weights):
                shared.append(rnn)
                for weight in weights:
                    weight.data = weight.data.clone()  # the same Parameter: the optimizer still refers to it
        try:
            yield
        finally:
            for rnn in shared:
                rnn.flatten_parameters()  # one block again on CUDA; nothing to do on the CPU

    @available_if(_no_partial_fit)
    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Not offered: skorch's partial_fit would skip sersk's checks and label encoding; use ``fit``.

        Parameters
        ----------
        X, y, classes, **fit_params : ignored
            Never used: the method is not available (``hasattr(net, "partial_fit")`` is False).
        """

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Run skorch's fit loop, carrying an interrupt (Ctrl-C) past skorch so that ``fit`` restores the estimator.

        Parameters
        ----------
        X : sequence of array-like of shape (n_mels, n_frames_i), or Dataset
            Training sequences.
        y : array-like of shape (n_samples,), default=None
            Labels, as given (the datasets encode each item's).
        epochs : int, default=None
            Epochs to train; None means ``max_epochs``.
        **fit_params : dict
            As in skorch.

        Returns
        -------
        self : CNNLSTMClassifier
            The estimator itself.
        """
        with _ctrl_c_deliveries() as delivered:
            try:
                return super().fit_loop(X, y, epochs=epochs, **fit_params)
            except KeyboardInterrupt as exc:
                if not delivered and _stops_training(exc):  # EarlyStopping's way: ends the fit, the network as trained
                    return self
                raise _Interrupted() from exc

    def train_step(self, batch, **fit_params):
        """Take one optimiser step on ``batch`` (skorch's), then let the CPU allocator setting trim the heap.

        Parameters
        ----------
        batch : tuple
            ``(inputs, y)`` from the training loader.
        **fit_params : dict
            As in skorch.

        Returns
        -------
        step : dict
            ``{"loss": loss, "y_pred": y_pred}``.
        """
        step = super().train_step(batch, **fit_params)
        step_done()  # lets the CPU allocator setting trim the heap every few steps
        return step

    def infer(self, x, **fit_params):
        """Run the network on a batch (skorch's), checking it returns one logit per class.

        Parameters
        ----------
        x : dict or torch.Tensor
            The batch's inputs (``x`` and ``lengths`` from the collation).
        **fit_params : dict
            As in skorch.

        Returns
        -------
        logits : torch.Tensor of shape (n_clips, n_classes)
            The network's output.
        """
        y_pred = super().infer(x, **fit_params)
        expected = getattr(self, "_n_outputs", None)  # None: a network pickled before it was recorded
        if expected is None:
            return y_pred
        if not isinstance(y_pred, torch.Tensor) or y_pred.ndim != 2 or y_pred.shape[1] != expected:
            clips = len(x["lengths"]) if isinstance(x, dict) and "lengths" in x else "the"
            network = type(getattr(self.module_, "_orig_mod", self.module_)).__name__  # compiled: the user's class
            got = f"shape {tuple(y_pred.shape)}" if isinstance(y_pred, torch.Tensor) else f"a {type(y_pred).__name__}"
            raise ValueError(
                f"module={network} returned {got} for a batch of {clips} clips; expected a tensor of shape "
                f"({clips}, {expected}): one logit per class, n_classes={expected} as sersk builds it"
            )
        return y_pred

    def train_step_single(self, batch, **fit_params):
        """Compute the loss of ``batch`` and its gradients; with ``mixup_alpha``, of the mixed batch.

        Parameters
        ----------
        batch : tuple
            ``(inputs, y)`` from the training loader.
        **fit_params : dict
            As in skorch.

        Returns
        -------
        step : dict
            ``{"loss": loss, "y_pred": y_pred}``.
        """
        if not self.mixup_alpha:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi, y_other, lam = mix_batch(Xi, yi, self.mixup_alpha)
        y_pred = self.infer(Xi, **fit_params)
        loss = lam * self.get_loss(y_pred, yi, X=Xi, training=True) + (1 - lam) * self.get_loss(
            y_pred, y_other, X=Xi, training=True
        )
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def get_split_datasets(self, X, y=None, **fit_params):
        """Return the training dataset and the validation one: this fit's validation data when it has some, else skorch's.

        Parameters
        ----------
        X : sequence of array-like of shape (n_mels, n_frames_i), or Dataset
            Training sequences.
        y : array-like of shape (n_samples,), default=None
            Labels, as given (the datasets encode each item's).
        **fit_params : dict
            Passed to ``train_split``.

        Returns
        -------
        dataset_train, dataset_valid : Dataset
            ``dataset_valid`` is None without validation data (``validation_data``,
            ``validation_fraction`` or a ``train_split``).
        """
        dataset = self.get_dataset(X, y)
        valid = getattr(self, "_valid_dataset", None)
        if valid is not None:
            return dataset, self.get_dataset(valid[0], self.classes_seen_[valid[1]])  # as the training's
        dataset, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        if dataset_valid is None:
            self._check_nothing_monitors_validation()
        if type(dataset_valid) is Dataset and dataset_valid.y is not None:
            # a train_split's (predefined_split), of labels as fit takes them
            labels = check_labels(dataset_valid.y, "the validation dataset's y")
            if unknown := sorted(set(labels.tolist()) - set(self.classes_seen_.tolist()), key=str):
                indices = all(is_integer(u) and 0 <= u < len(self.classes_seen_) for u in unknown)
                hint = " (they look like class indices: give the labels themselves)" if indices else ""
                raise ValueError(f"the validation dataset has labels {unknown} the training data has not "
                                 f"({self.classes_seen_.tolist()}); give labels as fit's y gives them{hint}")
            dataset_valid = self.get_dataset(dataset_valid.X, labels)  # the training's kind
        return dataset, dataset_valid

    def get_dataset(self, X, y=None):
        """skorch's dataset of ``X``; with labels, and skorch's own ``Dataset`` class, a
        :class:`LabelledClips` (another ``dataset`` gets the labels' class indices, as before).

        Parameters
        ----------
        X : sequence of array-like of shape (n_mels, n_frames_i), or Dataset
            Sequences.
        y : array-like of shape (n_samples,), default=None
            Their labels.

        Returns
        -------
        dataset : Dataset
        """
        if y is None or isinstance(X, torch.utils.data.Dataset) or not hasattr(self, "classes_seen_"):
            return super().get_dataset(X, y)
        if self._datasets_keep_labels():
            return LabelledClips(X, y, self.classes_seen_)
        return super().get_dataset(X, np.searchsorted(self.classes_seen_, y))

    def _datasets_keep_labels(self) -> bool:
        """Whether the training and validation datasets are :class:`LabelledClips` (skorch's own
        ``dataset`` class, unset), or of a class of one's own, given the labels' class indices."""
        return self.dataset is Dataset and not self.get_params_for("dataset")

    def _class_weights(self, classes: np.ndarray, y_enc: np.ndarray) -> np.ndarray | None:
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, dict):
            known = set(classes.tolist())
            unknown = [label for label in self.class_weight if label not in known]
            # as scikit-learn: a label absent from this fit's y is fine while every class has a weight
            if unknown and len(self.class_weight) - len(unknown) < len(classes):
                raise ValueError(
                    f"class_weight names {unknown}, which are not among the classes {classes.tolist()}"
                    + _encoded_labels_hint(classes, np.array(unknown, dtype=object))
                )
            weights = [self.class_weight.get(label, 1.0) for label in classes.tolist()]
            for label, weight in zip(classes.tolist(), weights):
                if not (is_real(weight) and 0 <= weight < np.inf):
                    raise ValueError(f"class_weight[{label!r}]={weight!r}; expected a non-negative number")
            if not any(weights):
                raise ValueError(f"class_weight={self.class_weight!r} weighs every class 0; expected one above 0")
            return np.array(weights, dtype=float)
        return balanced_class_weights(y_enc, len(classes))

    def initialize_criterion(self):
        """Build the criterion, weighted by ``class_weight_`` with ``class_weight`` (unless ``criterion__weight`` is given).

        Returns
        -------
        self : CNNLSTMClassifier
            The estimator itself.
        """
        kwargs = self.get_params_for("criterion")
        weight = getattr(self, "class_weight_", None)
        if self.class_weight is not None and weight is not None:
            kwargs.setdefault("weight", torch.as_tensor(weight, dtype=torch.float32))
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
        return self

    def initialize_module(self):
        """Build the network with ``padding`` and the fitted data's bands and classes (128 and 7 before a fit).

        ``module__n_mels`` and ``module__n_classes`` take precedence when given.

        Returns
        -------
        self : CNNLSTMClassifier
            The estimator itself.
        """
        kwargs = self.get_params_for("module")
        kwargs.setdefault("n_mels", getattr(self, "n_mels_", _recipe.N_MELS))
        kwargs.setdefault("n_classes", len(getattr(self, "classes_seen_", ())) or len(_recipe.EMOTIONS))
        kwargs["padding"] = self.padding
        try:
            self.module_ = self.initialized_instance(self.module, kwargs)
        except TypeError as exc:  # a network of one's own that takes other arguments
            name = getattr(self.module, "__name__", type(self.module).__name__)
            raise TypeError(f"module={name} is built as {name}({', '.join(f'{k}=...' for k in kwargs)}) "
                            f"(n_mels, n_classes and padding from sersk, the rest from module__*): {exc}") from exc
        self._check_forward_takes_the_batch()
        self._n_outputs = int(kwargs["n_classes"])  # the logits infer checks the network returns
        return self

    def _check_forward_takes_the_batch(self) -> None:
        """Refuse, when it is built, a network of one's own whose ``forward`` cannot take a batch as sersk
        passes it (torch's TypeError came from deep inside the first training step)."""
        forward = self.module_.forward
        try:
            inspect.signature(forward).bind(x=None, lengths=None)
        except (TypeError, ValueError):
            name = type(self.module_).__name__
            raise TypeError(
                f"module={name}: sersk calls forward(x=..., lengths=...), x the batch's features as float32 of shape "
                "(clips, bands, frames), each clip left-padded with zeros to the batch's length, and lengths each "
                f"clip's real frames (an int64 tensor); {name}.forward{inspect.signature(forward)} cannot take them"
            ) from None

    def get_iterator(self, dataset, training=False):
        """Return the data loader over ``dataset``, left-padding each batch.

        In training it crops, warps, offsets and masks (:class:`~sersk.nn.collate.TrainingCollate`)
        and batches by length with ``batch_by_length``; batches over ``max_batch_frames`` are split.
        The validation and prediction loader gets a ``generator`` of its own when it takes one.

        Parameters
        ----------
        dataset : torch.utils.data.Dataset
            The sequences (and labels).
        training : bool, default=False
            Build ``iterator_train`` (True) or ``iterator_valid`` (False).

        Returns
        -------
        iterator : torch.utils.data.DataLoader
            The loader (of the ``iterator_train`` or ``iterator_valid`` class).
        """
        prefix, iterator = ("iterator_train", self.iterator_train) if training else ("iterator_valid", self.iterator_valid)
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        factor = getattr(self.module_, "time_factor", 1)  # a network of one's own may not pool over time
        multiple = factor if self.padding == "masked" else 1
        lengths = np.array([x.shape[-1] for x in dataset.X] if isinstance(dataset, Dataset) else [
            dataset[i][0].shape[-1] for i in range(len(dataset))
        ])
        if training:
            kwargs.setdefault("collate_fn", TrainingCollate(
                self.crop_frames, freq_warp=self.freq_warp, band_offset=self.band_offset,
                freq_mask_bands=self.freq_mask_bands, time_mask_frames=self.time_mask_frames, n_masks=_MASKS,
                min_frames=factor, multiple=multiple,
            ))
            if self.crop_frames is not None:
                lengths = np.minimum(lengths, self.crop_frames)
        else:
            kwargs.setdefault("collate_fn", LeftPadCollate(min_frames=factor, multiple=multiple))
            # a loader draws its base seed from this generator at each pass; from the global one, the
            # validation within fit would shift the seeded training's draws (it only reports)
            if _takes_generator(iterator):  # not a loader of one's own that has no such argument
                kwargs.setdefault("generator", torch.Generator())
        batch_size = kwargs["batch_size"]
        sampler = None
        if training and self.batch_by_length:
            sampler = SimilarLengthBatchSampler(
                lengths, batch_size, max_frames=self.max_batch_frames, min_frames=factor, multiple=multiple
            )
        elif self.max_batch_frames is not None and len(lengths) and (
            batch_size * padded_frames(lengths, factor, multiple) > self.max_batch_frames
        ):
            sampler = BudgetedBatchSampler(
                lengths, batch_size, self.max_batch_frames, shuffle=bool(kwargs.get("shuffle", False)),
                min_frames=factor, multiple=multiple,
            )
        if sampler is not None:
            kwargs["batch_sampler"] = sampler
            for key in ("batch_size", "shuffle", "drop_last"):
                kwargs.pop(key, None)
        return iterator(dataset, **kwargs)

    # ---- prediction ----------------------------------------------------------------------------

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax of the logits).

        Parameters
        ----------
        X : sequence of array-like of shape (n_mels, n_frames_i), or a torch Dataset
            Log-mel sequences with the ``n_mels_`` bands seen in ``fit``; or the dataset that
            skorch's scoring callbacks (``EpochScoring``) pass, predicted as skorch predicts it.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; with ``crop_frames`` and ``predict_windows``, the
            mean over the clip's half-overlapping windows (:func:`~sersk.nn.collate.crop_windows`).
            Each clip's probabilities depend on that clip only (with ``padding="masked"``).
        """
        if "classes_seen_" not in vars(self) and self.initialized_:
            raise NotFittedError(
                "this network was built by initialize() (or loaded with load_params()) but knows no labels: give "
                "classes= (every label) before initialize() to predict with it, or fit it"
            )
        check_is_fitted(self, "classes_seen_")
        if isinstance(X, torch.utils.data.Dataset):  # what skorch's scoring callbacks pass (EpochScoring)
            return NeuralNetClassifier.predict_proba(self, X)
        X = check_sequences(rows_as_sequences(X), n_features=self.n_mels_)
        if self.crop_frames is None or not self.predict_windows:
            return self._proba(X)
        windows = crop_windows([x.shape[1] for x in X], self.crop_frames)
        owner = np.array([clip for clip, _, _ in windows])
        proba = self._proba(to_object_array([X[clip][:, start:stop] for clip, start, stop in windows]))
        sums = np.zeros((len(X), proba.shape[1]), dtype=np.float64)
        np.add.at(sums, owner, proba)
        return (sums / np.bincount(owner, minlength=len(X))[:, None]).astype(np.float32)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        if self.padding != "masked":
            return super().predict_proba(X)  # the reference's padding depends on the batch: keep the order
        # predictions do not depend on the batch, so batch clips of similar length (less padding)
        order = np.argsort([x.shape[1] for x in X], kind="stable")
        proba = np.empty((len(X), len(self.classes_)), dtype=np.float32)
        proba[order] = super().predict_proba(X[order])
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each sequence.

        Parameters
        ----------
        X : sequence of array-like of shape (n_mels, n_frames_i), or a torch Dataset
            Log-mel sequences with the ``n_mels_`` bands seen in ``fit``; or the dataset that
            skorch's scoring callbacks (``EpochScoring``) pass.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            The label of ``classes_`` of highest probability (see :meth:`predict_proba`); for a
            dataset, its index in ``classes_``, as skorch's cached scoring compares them with the
            batches' encoded labels.
        """
        proba = self.predict_proba(X)
        if isinstance(X, torch.utils.data.Dataset):  # skorch's cached scoring compares them with encoded labels
            return proba.argmax(axis=1)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X`` and ``y`` (labels never seen in ``fit`` count as errors).

        Parameters
        ----------
        X : sequence of array-like of shape (n_mels, n_frames_i)
            Log-mel sequences.
        y : array-like of shape (n_samples,)
            Their true labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sequence in the mean.

        Returns
        -------
        score : float
            The (weighted) fraction of sequences predicted right.
        """
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # each row a single-band sequence; a 3-D array one (n_mels, n_frames) per clip
        tags.non_deterministic = self.random_state is None
        return tags
