"""Speaker-independent evaluation: leave-one-speaker-out over Emo-DB's 10 actors.

Augmentation happens inside each training fold only. With ``--preset tuned`` (no stored copies,
60 epochs of crops and masks) this is what ``sersk reproduce --speaker-independent --preset tuned``
runs: the ten folds took 19 min 52 s on a 2-core AMD EPYC (seed 0) and scored 75.9 % accuracy;
seeds 0-2, 75.1 % (``docs/results.md``). The recipe (``--preset reference``: 75 augmented copies per clip) trained
ten times takes hours on a CPU; size it with --n-augmentations, --epochs and --speakers (the
held-out speakers whose folds run):

    python examples/leave_one_speaker_out.py --preset tuned
    python examples/leave_one_speaker_out.py --n-augmentations 2 --speakers 03 08
    python examples/leave_one_speaker_out.py --preset tuned --per-speaker

``--per-speaker`` standardises each speaker's log-mels with that speaker's own statistics, the test
speaker's included: a transductive protocol (it needs a batch of the new speaker's clips), reported
apart from the plain speaker-independent figures. ``--fold-dir DIR`` keeps each finished fold in
DIR: run the same command again after a stop, and it trains only the folds missing.

With --n-augmentations 2 --speakers 03 08 it took 34 s on a 2-core AMD EPYC, peak 1.2 GB
(benchmarks/results/timings_2026-12-01_zen5_examples.txt); not yet timed on a GPU.
<!-- TIME: python examples/leave_one_speaker_out.py --n-augmentations 2 --speakers 03 08  (GPU) -->
<!-- TIME: python examples/leave_one_speaker_out.py --preset tuned  (GPU) -->
"""

import argparse

from sersk import make_pipeline
from sersk.datasets import fetch_emodb
from sersk.evaluation import run_leave_one_speaker_out
from sersk.pipeline import VALIDATION_SPEAKER

parser = argparse.ArgumentParser(description="Leave-one-speaker-out on Emo-DB.")
parser.add_argument("--preset", choices=("reference", "tuned"), default="reference")
parser.add_argument("--n-augmentations", type=int, default=None, help="augmented copies per training clip "
                    "(default: the preset's; reference 75, tuned none)")
parser.add_argument("--epochs", type=int, default=None, help="default: the preset's (reference 3, tuned 60)")
parser.add_argument("--speakers", nargs="+", metavar="S", help="run the folds of these speakers only (default: all)")
parser.add_argument("--per-speaker", action="store_true",
                    help="with --preset tuned: standardise each speaker's log-mels with that speaker's own statistics, "
                         "the test speaker's included (a transductive protocol, reported apart)")
parser.add_argument("--fold-dir", metavar="DIR", help="keep each finished fold in DIR, and reuse the folds an earlier "
                    "run of the same command left there (a run cut short resumes)")
args = parser.parse_args()
if args.per_speaker and args.preset != "tuned":
    parser.error("--per-speaker needs --preset tuned (its 'scale' step does the standardising)")

emodb = fetch_emodb()
pipe = make_pipeline(args.preset, n_augmentations=args.n_augmentations, max_epochs=args.epochs, random_state=0)
if args.per_speaker:
    pipe.set_params(scale__scope="speaker")
results = run_leave_one_speaker_out(emodb.filenames, emodb.target, emodb.speaker, pipeline=pipe,
                                    test_speakers=args.speakers, validation_speaker=VALIDATION_SPEAKER[args.preset],
                                    fold_dir=args.fold_dir, verbose=1)
for fold in results["per_speaker"]:
    print(f"speaker {fold['speaker']}: accuracy {fold['accuracy']:.1%}, UAR {fold['uar']:.1%}")
transductive = " (transductive: each speaker standardised with its own statistics)" if results["transductive"] else ""
print(f"pooled over {results['folds_run']} speakers: accuracy {results['accuracy']:.1%}, UAR {results['uar']:.1%}"
      f"{transductive}")
