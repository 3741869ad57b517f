"""AV-Digits: the shipped set, its splits and files, the build's pieces, and (with espeak-ng)
a tiny build twice for determinism."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from s2ilib.datasets import avdigits, avdigits_build
from s2ilib.errors import FormatError, S2IError
from s2ilib.formats import SPLITS

ROOT = avdigits.AVDIGITS_DIR
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng): build tests skipped",
)


@pytest.fixture(scope="module")
def shipped():
    """(sounds, images, manifest) of the shipped set."""
    sounds, images = avdigits.open_avdigits(ROOT)
    return sounds, images, avdigits.read_manifest(ROOT / "manifest.csv")


def test_shipped_set_loads(shipped):
    sounds, images, _ = shipped
    assert avdigits.is_avdigits(ROOT)
    assert set(sounds) == set(images) == set(SPLITS)
    for split in SPLITS:
        assert sounds[split].layout == images[split].layout == "avdigits"
        assert len(sounds[split]) > 0 and len(images[split]) > 0


def test_counts_match_manifest_and_build_info(shipped):
    sounds, images, manifest = shipped
    info = json.loads((ROOT / "build_info.json").read_text())
    assert sum(len(sounds[s]) for s in SPLITS) == len(manifest["file"])
    for split in SPLITS:
        assert len(sounds[split]) == int((manifest["split"] == split).sum())
        assert len(sounds[split]) == info["summary"]["clips"][split]
        assert len(images[split]) == info["summary"]["images"][split]
    assert len(list((ROOT / "audio").glob("*.ogg"))) == len(manifest["file"])
    assert 2500 <= len(manifest["file"]) <= 3500


def test_splits_disjoint_by_voice_setup_and_image(shipped):
    sounds, images, _ = shipped
    setups = {s: set(sounds[s].extra["setup"]) for s in SPLITS}
    names = {s: set(images[s].names) for s in SPLITS}
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert not setups[a] & setups[b], f"voice set-ups shared by {a} and {b}"
        assert not names[a] & names[b], f"images shared by {a} and {b}"
    assert sum(len(names[s]) for s in SPLITS) == 5000


def test_every_split_has_all_digits_and_languages(shipped):
    sounds, images, manifest = shipped
    for split in SPLITS:
        assert set(sounds[split].labels) == set(range(10)), split
        assert np.bincount(images[split].labels, minlength=10).min() > 0, split
        assert set(sounds[split].extra["language"]) >= set(avdigits_build.LANGUAGES), split
    assert len(set(manifest["language"])) >= 6
    assert np.unique(np.bincount(manifest["digit"])).size == 1, "digits are not balanced"


def test_held_out_engine_only_in_test(shipped):
    _, _, manifest = shipped
    held_out = manifest["engine"] == avdigits_build.HELD_OUT_ENGINE
    assert held_out.sum() > 0
    assert set(manifest["split"][held_out]) == {"test"}
    assert set(manifest["engine"]) == set(avdigits_build.REQUIRED_PACKAGES)


def test_spectrograms_and_images_shape_dtype(shipped):
    sounds, images, _ = shipped
    for split in SPLITS:
        spectrograms = sounds[split].spectrograms
        assert spectrograms.dtype == np.uint8 and spectrograms.shape[1:] == (128, 100)
        assert spectrograms.shape[0] == len(sounds[split].names)
        assert images[split].images.dtype == np.uint8
        assert images[split].images.shape[1:] == (28, 28, 1)
        assert spectrograms.reshape(len(spectrograms), -1).max(axis=1).min() > 80  # none blank


def test_clips_decode_and_reproduce_spectrograms(shipped):
    from s2ilib.audio import fit_one_second, load_audio, spectrogram_uint8

    sounds, _, _ = shipped
    test = sounds["test"]
    for index in np.linspace(0, len(test) - 1, 6).astype(int):
        wave = load_audio(avdigits.audio_path(ROOT, test.extra["file"][index]))
        assert wave.size == 16000 and 1e-3 < np.abs(wave).max() < 0.999
        again = spectrogram_uint8(fit_one_second(wave))[0].astype(int)
        difference = np.abs(again - test.spectrograms[index].astype(int))
        assert difference.max() <= 2 and difference.mean() < 0.05, test.names[index]


def test_listening_by_numbers(shipped):
    _, _, manifest = shipped
    assert manifest["peak"].max() < 0.999
    assert manifest["peak"].min() > 10 ** (avdigits_build.PEAK_DBFS_RANGE[0] / 20) * 0.5
    assert 100 <= manifest["word_ms"].min() and manifest["word_ms"].max() <= 2000
    assert manifest["squeeze"].min() >= 1.0
    assert (np.abs(manifest["shift_ms"]) <= 1000 * avdigits_build.MAX_SHIFT_S).all()


def test_shipped_size_under_20_mb():
    total = sum(path.stat().st_size for path in ROOT.rglob("*") if path.is_file())
    assert total < 20_000_000, f"data/avdigits holds {total / 1e6:.1f} MB (budget: 20 MB)"


def test_credits_and_readme_present():
    credits = (ROOT / "CREDITS.md").read_text()
    for name in ("CC BY-SA 3.0", "LeCun", "Cortes", "espeak-ng", "flite", "festival", "Apache-2.0"):
        assert name in credits
    assert "| test |" in (ROOT / "README.md").read_text()


# --- a small copy of the set: loader errors --------------------------------------------------


@pytest.fixture
def small_copy(tmp_path, monkeypatch):
    """The first 30 clips of the shipped set in a temporary folder, with its own cache."""
    monkeypatch.setenv("S2I_AVDIGITS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "avd"
    (root / "audio").mkdir(parents=True)
    lines = (ROOT / "manifest.csv").read_text(encoding="utf-8").splitlines(keepends=True)[:31]
    (root / "manifest.csv").write_text("".join(lines), encoding="utf-8")
    shutil.copy(ROOT / "images.npz", root / "images.npz")
    for file in avdigits.read_manifest(root / "manifest.csv")["file"]:
        shutil.copy(ROOT / file, root / file)
    return root


def test_small_copy_loads_and_caches(small_copy, tmp_path):
    sounds, _ = avdigits.open_avdigits(small_copy, splits=["train"])
    assert list(sounds) == ["train"]
    assert len(list((tmp_path / "cache").glob("spectrograms-*.npz"))) == 1
    again, _ = avdigits.open_avdigits(small_copy, splits=["train"])
    assert np.array_equal(sounds["train"].spectrograms, again["train"].spectrograms)


def test_bad_manifest_value_names_file_and_record(small_copy):
    manifest = small_copy / "manifest.csv"
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[5].split(",")
    fields[2] = "seven"  # digit column
    lines[5] = ",".join(fields)
    manifest.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(FormatError, match=r"manifest.csv, record 4: digit = 'seven'"):
        avdigits.open_avdigits(small_copy)


def test_missing_or_truncated_clip_is_reported(small_copy):
    files = avdigits.read_manifest(small_copy / "manifest.csv")["file"]
    (small_copy / files[3]).unlink()
    with pytest.raises(FormatError, match=r"record 3: clip file .* is missing"):
        avdigits.open_avdigits(small_copy)
    (small_copy / files[3]).write_bytes((ROOT / files[3]).read_bytes()[:300])
    with pytest.raises(S2IError):
        avdigits.open_avdigits(small_copy)


def test_unknown_split_and_not_a_folder(tmp_path):
    with pytest.raises(S2IError, match="unknown split"):
        avdigits.open_avdigits(ROOT, splits=["dev"])
    with pytest.raises(S2IError, match="not an AV-Digits folder"):
        avdigits.open_avdigits(tmp_path)


# --- the build's pieces (no engines needed) ---------------------------------------------------


def test_plan_is_balanced_deterministic_and_split_by_setup():
    setups = avdigits_build.plan_voice_setups(seed=0)
    assert setups == avdigits_build.plan_voice_setups(seed=0)
    assert len(setups) == len(set(setups)) == 6 * avdigits_build.SETUPS_PER_LANGUAGE
    assert len({s.name for s in setups}) == len(setups)
    splits = avdigits_build.assign_splits(setups, seed=0)
    assert {splits[s] for s in setups if s.engine == avdigits_build.HELD_OUT_ENGINE} == {"test"}
    plans = avdigits_build.plan_clips(setups, seed=0)
    assert len(plans) == len(setups) * 10 * avdigits_build.RENDITIONS
    assert len({p.clip_id for p in plans}) == len(plans)
    subset = avdigits_build.plan_clips(setups[:3], seed=0)
    assert subset[0].speed == plans[0].speed and subset[0].gain_db == plans[0].gain_db
    assert avdigits_build.plan_voice_setups(seed=1) != setups


def test_split_images_counts_and_disjoint():
    labels = np.repeat(np.arange(10), 500)
    split = avdigits_build.split_images(labels, seed=0)
    assert np.array_equal(split, avdigits_build.split_images(labels, seed=0))
    for name, count in avdigits_build.IMAGE_SPLIT_SIZES.items():
        assert np.array_equal(np.bincount(labels[split == name], minlength=10), [count] * 10)
    assert not np.array_equal(split, avdigits_build.split_images(labels, seed=1))


def test_trim_fit_place_and_augment():
    rate = avdigits.SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate // 2) / rate).astype(np.float32)
    padded = np.concatenate([np.zeros(4000, np.float32), tone, np.zeros(3000, np.float32)])
    word = avdigits_build.trim_silence(padded)
    assert abs(word.size - tone.size) <= 4 * rate // 100
    long_word, squeeze = avdigits_build.fit_word(np.tile(tone, 3))
    assert long_word.size == round(avdigits_build.MAX_WORD_S * rate) and squeeze == pytest.approx(
        1.5 / 0.95, abs=1e-3
    )
    assert avdigits_build.fit_word(tone)[1] == 1.0
    setup = avdigits_build.VoiceSetup("espeak-ng", "en-us+m1", "en")
    plan = avdigits_build.ClipPlan("c", setup, 3, 0, 1.0, 1.0, -6.0, float("inf"), 1.0, "train")
    clip, shift_ms = avdigits_build.place_and_augment(tone, plan, seed=0)
    assert clip.size == rate and np.abs(clip).max() == pytest.approx(10 ** (-6 / 20), rel=1e-4)
    assert shift_ms == 1000 * avdigits_build.MAX_SHIFT_S
    assert np.flatnonzero(clip)[0] > rate // 4  # centred, then shifted right
    noisy = avdigits_build.ClipPlan("c", setup, 3, 0, 1.0, 1.0, -6.0, 20.0, 0.0, "train")
    clip, _ = avdigits_build.place_and_augment(tone, noisy, seed=0)
    noise = np.concatenate([clip[:3000], clip[-3000:]])
    snr = 10 * np.log10(np.mean(clip[5000:11000] ** 2) / np.mean(noise**2))
    assert 17 < snr < 23


def test_opus_serial_fix_is_valid_and_deterministic():
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    first, second = avdigits_build.encode_opus(clip), avdigits_build.encode_opus(clip)
    assert first == second
    raw = io.BytesIO()
    soundfile.write(raw, clip, 16000, format="OGG", subtype="OPUS")
    original = raw.getvalue()
    page_end = 27 + original[26] + sum(original[27 : 27 + original[26]])
    zeroed = original[:22] + b"\0\0\0\0" + original[26:page_end]
    assert avdigits_build.ogg_crc(zeroed) == int.from_bytes(original[22:26], "little")
    decoded, rate = avdigits.decode_audio(first)
    reference, _ = avdigits.decode_audio(original)
    assert rate == 16000 and np.array_equal(decoded, reference)


def test_missing_engines_give_the_apt_line(monkeypatch):
    monkeypatch.setattr(avdigits_build, "debian_versions", lambda packages: {})
    with pytest.raises(S2IError) as error:
        avdigits_build.require_engines()
    message = str(error.value)
    assert "apt-get install --no-install-recommends espeak-ng flite festival" in message
    assert "libttspico-utils" in message and "non-free" in message


def test_engine_commands():
    setup = avdigits_build.VoiceSetup("pico", "fr-FR", "fr")
    plan = avdigits_build.ClipPlan("c", setup, 0, 0, 1.2, 0.9, -6.0, 30.0, 0.0, "test")
    argv, stdin = avdigits_build.engine_command(plan, Path("/tmp/x.wav"))
    assert argv[:3] == ["pico2wave", "-l", "fr-FR"] and stdin is None
    assert argv[-1] == "<speed level='120'><pitch level='90'>zéro</pitch></speed>"
    setup = avdigits_build.VoiceSetup("espeak-ng", "ru+f3", "ru")
    plan = avdigits_build.ClipPlan("c", setup, 4, 0, 0.8, 1.5, -6.0, 30.0, 0.0, "train")
    argv, _ = avdigits_build.engine_command(plan, Path("/tmp/x.wav"))
    assert argv[argv.index("-s") + 1] == "140" and argv[argv.index("-p") + 1] == "75"
    assert argv[-1] == "четыре"


def test_cli_refuses_a_non_empty_folder(tmp_path, capsys):
    from s2ilib.cli import main

    (tmp_path / "keep.txt").write_text("x")
    assert main(["build-avdigits", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err


# --- builds (need espeak-ng) --------------------------------------------------------------------


@needs_espeak
def test_tiny_build_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("S2I_AVDIGITS_CACHE", str(tmp_path / "cache"))
    options = dict(seed=3, engines=["espeak-ng"], max_setups=1, renditions=1, progress=False)
    first = avdigits_build.build_avdigits(tmp_path / "a", **options)
    avdigits_build.build_avdigits(tmp_path / "b", **options)
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files_a == files_b and len(files_a) == 10 + 6
    for relative in files_a:
        assert (tmp_path / "a" / relative).read_bytes() == (
            tmp_path / "b" / relative
        ).read_bytes(), relative
    assert sum(first["clips"].values()) == 10
    sounds, images = avdigits.open_avdigits(tmp_path / "a")
    assert sum(len(s) for s in sounds.values()) == 10
    with pytest.raises(S2IError, match="not empty"):
        avdigits_build.build_avdigits(tmp_path / "a", **options)
