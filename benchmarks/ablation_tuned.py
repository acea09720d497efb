"""Ablation for the tuned preset, scored on validation speakers only (never on a test speaker).

The training speakers exclude the validation speakers; each configuration changes one thing from
the previous line's (or from a named base). Waveform copies and their log-mels are computed once
per number of copies and shared by the configurations. One JSON line per configuration is appended
to the output file as soon as it is done, so a run cut short keeps what it finished.

    python benchmarks/ablation_tuned.py --round 1 --valid 03 08 --out benchmarks/results/ablation_tuned_round1_v0308.jsonl
    python benchmarks/ablation_tuned.py --round 2 --only 1 2 --valid 10 13 --out benchmarks/results/ablation_tuned_round2_v1013.jsonl
    python benchmarks/ablation_tuned.py --round 3 --only 2 3 --valid 10 13 --out benchmarks/results/ablation_tuned_round3_v1013.jsonl
    python benchmarks/ablation_tuned.py --round 3 --only 1 --valid 03 08 --out benchmarks/results/ablation_tuned_round3_v0308.jsonl
    python benchmarks/ablation_tuned.py --round 4 --valid 10 13 --out benchmarks/results/ablation_tuned_round4_v1013.jsonl
    python benchmarks/ablation_tuned.py --round 5 --only 1 --valid 03 08 --out benchmarks/results/ablation_tuned_round5_v0308.jsonl
    python benchmarks/ablation_tuned.py --round 5 --only 1 --valid 10 13 --out benchmarks/results/ablation_tuned_round5_v1013.jsonl
    python benchmarks/ablation_tuned.py --round 5 --only 4 --valid 10 13 --out benchmarks/results/ablation_tuned_round5_v1013.jsonl
    python benchmarks/ablation_tuned.py --round 5 --only 4 --valid 03 08 --out benchmarks/results/ablation_tuned_round5_v0308.jsonl
    python benchmarks/ablation_tuned.py --round 5 --only 5 --valid 10 13 --out benchmarks/results/ablation_tuned_round5_v1013.jsonl
    python benchmarks/ablation_tuned.py --round 5 --only 5 --valid 03 08 --out benchmarks/results/ablation_tuned_round5_v0308.jsonl
    python benchmarks/ablation_tuned.py --round 6 --only 1 --valid 10 13 --out benchmarks/results/ablation_tuned_round6_v1013.jsonl
    python benchmarks/ablation_tuned.py --round 6 --only 1 --valid 03 08 --out benchmarks/results/ablation_tuned_round6_v0308.jsonl
    python benchmarks/ablation_tuned.py --round 7 --valid 10 13 --out benchmarks/results/ablation_tuned_round7_v1013.jsonl
    python benchmarks/ablation_tuned.py --round 7 --valid 03 08 --out benchmarks/results/ablation_tuned_round7_v0308.jsonl
    (lines 1-2 first on both pairs, then lines 3-4 with --only 3 4, on both pairs)

Round 7's sd 0.5 under leave-one-speaker-out (stopped after 4 folds; docs/results.md):
    sersk reproduce --speaker-independent --preset tuned --param net__band_offset=0.5 --seed 0 --n-jobs 2 --device cpu --out-dir benchmarks/results/loso_tuned_offset05_seed0
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sersk import AudioLoader, AugmentingResampler, CNNLSTMClassifier, LogMelTransformer
from sersk.datasets import fetch_emodb
from sersk.evaluation import score_predictions
from sersk.features import BandStandardizer

# name -> (copies, standardizer or None, classifier parameters); copies=0: the originals only
BASE = dict(max_epochs=3, verbose=0, device="cpu")
SPEC = {"crop_frames": 64, "freq_mask_bands": 16, "time_mask_frames": 12}
LONG = {**SPEC, "max_epochs": 12, "lr_schedule": "cosine", "criterion__label_smoothing": 0.1}
ORIGINALS = {**LONG, "max_epochs": 60}
ROUNDS = {
    "1": {
        "recipe, 9 copies, 3 epochs": (9, None, {}),
        "+ corpus band standardisation": (9, "corpus", {}),
        "+ crops 64, window-averaged prediction": (9, "corpus", {"crop_frames": 64}),
        "+ SpecAugment 2x16 bands, 2x12 frames": (9, "corpus", SPEC),
        "+ 4 copies + originals, 12 epochs, cosine, label smoothing 0.1": (4, "corpus", LONG),
        "same, whole-clip prediction": (4, "corpus", {**LONG, "predict_windows": False}),
        "same, clip standardisation": (4, "clip", LONG),
    },
    # round 1's fifth line (4 copies + originals, 12 epochs) and changes of it at about the same cost,
    # on other validation speakers
    "2": {
        "4 copies + originals, 12 epochs, cosine, label smoothing 0.1 (round 1, line 5)": (4, "corpus", LONG),
        "originals only, 60 epochs": (0, "corpus", {**LONG, "max_epochs": 60}),
        "9 copies + originals, 6 epochs": (9, "corpus", {**LONG, "max_epochs": 6}),
        "lr 0.002": (4, "corpus", {**LONG, "lr": 0.002}),
        "crops 96": (4, "corpus", {**LONG, "crop_frames": 96, "max_epochs": 8}),
    },
    # round 2's second line (no waveform copies, 60 epochs) and changes of it at about the same cost
    "3": {
        "originals only, 60 epochs (round 2, line 2)": (0, "corpus", ORIGINALS),
        "balanced class weights": (0, "corpus", {**ORIGINALS, "class_weight": "balanced"}),
        "lr 0.002": (0, "corpus", {**ORIGINALS, "lr": 0.002}),
        "whole-clip prediction": (0, "corpus", {**ORIGINALS, "predict_windows": False}),
    },
    # more of round 3's first line, and changes of it: longer, larger crops or masks, mild stored copies
    "4": {
        "100 epochs": (0, "corpus", {**ORIGINALS, "max_epochs": 100}),
        "crops 96 (3.1 s), 40 epochs": (0, "corpus", {**ORIGINALS, "crop_frames": 96, "max_epochs": 40}),
        "masks 2 x 24 bands, 2 x 20 frames": (0, "corpus", {**ORIGINALS, "freq_mask_bands": 24, "time_mask_frames": 20}),
        "2 mild copies (noise 10..40 dB, no pitch shift) + originals, 20 epochs": (
            2, "corpus", {**ORIGINALS, "max_epochs": 20}, {"noise_snr_db": (10.0, 40.0), "pitch_shift_p": 0.0}),
    },
    # the tuned preset (round 3's first line) with deltas and delta-deltas as input channels; and longer
    "5": {
        "deltas and delta-deltas as channels": (0, "corpus", {**ORIGINALS, "module__deltas": True}),
        # lines 2 and 3 were never run (deltas lost on 10+13); kept so that the numbers of lines 4-5 stay valid
        "deltas, 100 epochs": (0, "corpus", {**ORIGINALS, "module__deltas": True, "max_epochs": 100}),
        "deltas, mixup alpha 0.4": (0, "corpus", {**ORIGINALS, "module__deltas": True, "mixup_alpha": 0.4}),
        "mixup alpha 0.4 (no deltas)": (0, "corpus", {**ORIGINALS, "mixup_alpha": 0.4}),
        "band-axis warp 0.1 (vocal tract length)": (0, "corpus", {**ORIGINALS, "freq_warp": 0.1}),
    },
    # transductive: every speaker (training and validation) standardised with its own statistics
    "6": {
        "per-speaker band standardisation (transductive)": (0, "speaker", ORIGINALS),
    },
    # inductive routes to speaker invariance: random smooth offsets of the band axis in training
    # (between-speaker std of per-band means: 0.17 after corpus standardisation)
    "7": {
        "random band offsets, sd 0.2": (0, "corpus", {**ORIGINALS, "band_offset": 0.2}),
        "random band offsets, sd 0.5": (0, "corpus", {**ORIGINALS, "band_offset": 0.5}),
        "the tuned preset, rerun on this round's code (features differ from round 3's by rounding)": (0, "corpus", ORIGINALS),
        "random band offsets, sd 1.0": (0, "corpus", {**ORIGINALS, "band_offset": 1.0}),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--valid", nargs="+", default=["03", "08"], help="validation speakers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--round", default="1", choices=tuple(ROUNDS))
    parser.add_argument("--only", nargs="*", help="run these configuration numbers only (1-based)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    data = fetch_emodb()
    speakers = np.asarray(data.speaker).astype(str)
    valid = np.isin(speakers, args.valid)
    loader = AudioLoader(n_jobs=2)
    waves = loader.fit_transform(data.filenames)
    logmel = LogMelTransformer(device="cpu")
    X_valid, y_valid = logmel.fit_transform(waves[valid]), data.target[valid]
    print(f"training speakers {sorted(set(speakers[~valid]))} ({(~valid).sum()} clips); "
          f"validation speakers {args.valid} ({valid.sum()} clips)", flush=True)
    features = {}
    for number, (name, (copies, scope, params, *augment_params)) in enumerate(ROUNDS[args.round].items(), 1):
        if args.only and str(number) not in args.only:
            continue
        start = time.perf_counter()
        keep = scope is not None and "max_epochs" in params  # the longer runs keep the originals
        key = (copies, keep, repr(augment_params))
        if key not in features:
            if copies:
                assert scope != "speaker", "per-speaker standardisation needs the originals only"
                augment = AugmentingResampler(
                    n_augmentations=copies, keep_original=keep, n_jobs=2, random_state=args.seed, **dict(*augment_params)
                )
                Xa, ya = augment.fit_resample(waves[~valid], data.target[~valid])
            else:
                Xa, ya = waves[~valid], data.target[~valid]
            features[key] = (logmel.transform(Xa), ya)
        X_train, y_train = features[key]
        Xv = X_valid
        if scope == "speaker":
            by_speaker = BandStandardizer(scope="speaker")  # the same as one scaler fitted on each speaker
            X_train = by_speaker.fit_transform(X_train, groups=speakers[~valid])
            Xv = by_speaker.transform(X_valid, groups=speakers[valid])
        elif scope is not None:
            scaler = BandStandardizer(scope=scope).fit(X_train)
            X_train, Xv = scaler.transform(X_train), scaler.transform(X_valid)
        net = CNNLSTMClassifier(**{**BASE, **params, "random_state": args.seed})
        fit_start = time.perf_counter()
        net.fit(X_train, y_train)
        fit_s = time.perf_counter() - fit_start
        scores = score_predictions(y_valid, net.predict(Xv), np.unique(data.target))
        row = {"round": args.round, "config": number, "name": name, "copies": copies, "augment": dict(*augment_params),
               "scope": scope, "params": params,
               "n_train": len(y_train), "seed": args.seed, "valid_speakers": args.valid,
               "accuracy": round(scores["accuracy"], 4), "uar": round(scores["uar"], 4),
               "train_acc_last": round(float(net.history[-1, "train_acc"]), 4),
               "fit_s": round(fit_s, 1), "total_s": round(time.perf_counter() - start, 1)}
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
