"""The reference recipe's constants: the one place every default comes from.

Each is the published example's value; ``docs/index.md`` ("The steps", "Where the defaults depart
from the recipe") says where sersk's defaults differ and why.
"""

SAMPLE_RATE = 16_000
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
F_MIN = 0.0
MEL_SCALE = "htk"
MEL_NORM = "slaney"
LOG_EPS = 2.220446049250313e-16  # MATLAB eps, float64 machine epsilon

N_AUGMENTATIONS = 75
PITCH_SHIFT_P = 0.5
PITCH_SHIFT_SEMITONES = (-2.0, 2.0)
NOISE_P = 1.0
NOISE_SNR_DB = (-20.0, 40.0)
TIME_SHIFT_P = 1.0
TIME_SHIFT_SECONDS = (-0.3, 0.3)

CONV_FILTERS = (64, 64, 128, 128)
POOL_SIZES = ((2, 2), (4, 2), (4, 2), (4, 2))  # (frequency, time)
HIDDEN_SIZE = 256
MIN_FRAMES = 16  # the product of the time pools
# sersk's memory bound, not the recipe's: 32 clips of 288 frames, so that Emo-DB (at most 277 frames) keeps
# the recipe's batches of 32 whatever their mix; a batch over it is cut into equal parts that fit
MAX_BATCH_FRAMES = 32 * 288

LR = 0.005
BATCH_SIZE = 32
MAX_EPOCHS = 3
LR_STEP_EPOCHS = 2
LR_GAMMA = 0.1
WEIGHT_DECAY = 5e-4

EMOTIONS = {
    "W": "anger",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happiness",
    "T": "sadness",
    "N": "neutral",
}
