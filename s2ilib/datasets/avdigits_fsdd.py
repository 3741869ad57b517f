"""Real human voices in AV-Digits: the Free Spoken Digit Dataset (FSDD).

3,000 recordings `recordings/{digit}_{speaker}_{index}.wav` (8 kHz mono, 6 male English
speakers, 50 per digit and speaker), CC BY-SA 4.0. The build reads them from a folder given
by option, by $S2I_FSDD_DIR, or ../shared/data/fsdd next to the repository, and splits them
by speaker: whole speakers are held out for validation and test.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from s2ilib.datasets.avdigits import REPO_ROOT
from s2ilib.datasets.avdigits_voices import VoiceSetup
from s2ilib.errors import FormatError, S2IError

FSDD_ENV = "S2I_FSDD_DIR"


DEFAULT_FSDD_DIR = REPO_ROOT.parent / "shared" / "data" / "fsdd"


# Accent as FSDD's own metadata gives it; all six are male.
FSDD_ACCENTS = {
    "jackson": "USA, neutral",
    "theo": "USA, neutral",
    "nicolas": "Belgian French",
    "yweweler": "German",
    "lucas": "German",
    "george": "Greek",
}


# By speaker: an American and a non-native speaker in test, one in validation, three train.
FSDD_SPLITS = {
    "theo": "test",
    "george": "test",
    "yweweler": "val",
    "jackson": "train",
    "nicolas": "train",
    "lucas": "train",
}


FSDD_RATE = 8000  # Hz, every recording


FSDD_PER_DIGIT = 15  # recordings per training speaker and digit (of 50)


FSDD_EVAL_PER_DIGIT = 20  # recordings per validation/test speaker and digit


FSDD_CREDIT = (
    "Free Spoken Digit Dataset (FSDD), Zohar Jackson and contributors, "
    "https://github.com/Jakobovski/free-spoken-digit-dataset (repository state of "
    "2024-05-02, after tag v1.0.10)"
)


_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def fsdd_dir(path=None) -> Path:
    """Where FSDD is looked for: `path`, else $S2I_FSDD_DIR, else ../shared/data/fsdd."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(FSDD_ENV) or DEFAULT_FSDD_DIR)


def find_fsdd(path=None) -> Path:
    """The FSDD folder (holding recordings/*.wav), or an S2IError that says how to give it."""
    root = fsdd_dir(path)
    recordings = root / "recordings"
    if not recordings.is_dir() or not any(recordings.glob("*.wav")):
        raise S2IError(
            f"FSDD (the Free Spoken Digit Dataset, the set's human voices) is not at {root}: "
            f"expected {recordings}/<digit>_<speaker>_<index>.wav. Give its folder with "
            f"--fsdd DIR or ${FSDD_ENV}, or build without human voices with --fsdd-per-digit 0"
        )
    return root


def fsdd_recordings(root) -> dict[tuple[str, int], dict[int, Path]]:
    """{(speaker, digit): {index: path}} of the FSDD folder; unknown speakers are an error."""
    found: dict[tuple[str, int], dict[int, Path]] = {}
    for path in sorted(Path(root, "recordings").glob("*.wav")):
        match = _NAME.match(path.name)
        if match is None:
            raise FormatError(
                path, "unexpected file name", expected="<digit>_<speaker>_<index>.wav"
            )
        digit, speaker, index = int(match[1]), match[2], int(match[3])
        if speaker not in FSDD_SPLITS:
            raise FormatError(
                path, f"speaker {speaker!r} has no split", expected=f"one of {sorted(FSDD_SPLITS)}"
            )
        found.setdefault((speaker, digit), {})[index] = path
    return found


def fsdd_setup(speaker: str) -> VoiceSetup:
    """The set-up of one FSDD speaker (all male, English)."""
    return VoiceSetup("fsdd", speaker, "en", "male", f"fsdd-{speaker}", "human")


def recording_order(seed: int, speaker: str, digit: int, indices) -> list[int]:
    """The order in which a speaker's recordings of a digit are tried (seeded shuffle)."""
    indices = sorted(indices)
    rng = np.random.default_rng([seed, 6, *speaker.encode(), digit])
    return [indices[i] for i in rng.permutation(len(indices))]


def read_recording(path) -> tuple[np.ndarray, int]:
    """(float32 mono wave, sample rate) of one recording, with a clear error when unreadable."""
    import soundfile

    try:
        wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError, ...
        raise FormatError(path, f"not readable ({error})", expected="a WAV file") from error
    return wave.mean(axis=1), rate
