"""AV-Digits: the shipped set (version 2), its splits, columns and files, the build's pieces
(word check, FSDD, tract, engines' commands), and (with espeak-ng) a tiny build twice for
determinism."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from s2ilib.datasets import avdigits, avdigits_build, avdigits_fsdd, avdigits_voices
from s2ilib.errors import FormatError, S2IError
from s2ilib.formats import SPLITS

ROOT = avdigits.AVDIGITS_DIR
DATA_DIR = avdigits.REPO_ROOT / "data"
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
    assert info["version"] == avdigits.MANIFEST_VERSION == 2
    assert sum(len(sounds[s]) for s in SPLITS) == len(manifest["file"])
    for split in SPLITS:
        assert len(sounds[split]) == int((manifest["split"] == split).sum())
        assert len(sounds[split]) == info["summary"]["clips"][split]
        assert len(images[split]) == info["summary"]["images"][split]
    assert len(list((ROOT / "audio").glob("*.ogg"))) == len(manifest["file"])
    assert 4000 <= len(manifest["file"]) <= 7000
    assert info["summary"]["clips"]["train"] <= 3200  # main job's budget: ~1.5x version 1's 2,040


def test_splits_disjoint_by_voice_speaker_and_image(shipped):
    sounds, images, _ = shipped
    for column in ("setup", "speaker"):
        units = {s: set(sounds[s].extra[column]) for s in SPLITS}
        for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
            assert not units[a] & units[b], f"{column}s shared by {a} and {b}"
    names = {s: set(images[s].names) for s in SPLITS}
    assert not names["train"] & names["val"] and not names["train"] & names["test"]
    assert not names["val"] & names["test"]
    assert sum(len(names[s]) for s in SPLITS) == 5000


def test_fsdd_speakers_never_cross_splits(shipped):
    _, _, manifest = shipped
    human = manifest["kind"] == "human"
    assert set(manifest["engine"][human]) == {"fsdd"}
    speakers = {s: set(manifest["voice"][human & (manifest["split"] == s)]) for s in SPLITS}
    assert not speakers["train"] & speakers["val"] and not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    assert len(speakers["test"]) >= 2 and len(speakers["val"]) >= 1 and speakers["train"]
    assert set().union(*speakers.values()) == set(avdigits_fsdd.FSDD_SPLITS)


def test_every_split_has_all_digits_balanced(shipped):
    sounds, images, manifest = shipped
    for split in SPLITS:
        counts = np.bincount(sounds[split].labels, minlength=10)
        assert counts.min() == counts.max() > 0, split
        assert np.bincount(images[split].labels, minlength=10).min() > 0, split
        assert set(sounds[split].extra["kind"]) == {"synthetic", "human"}, split


def test_held_out_engine_only_in_test(shipped):
    _, _, manifest = shipped
    held_out = manifest["engine"] == avdigits_build.HELD_OUT_ENGINE
    assert held_out.sum() > 0
    assert set(manifest["split"][held_out]) == {"test"}
    assert set(manifest["engine"]) == {*avdigits_voices.ENGINES, "fsdd"}


def test_at_least_20_espeak_languages_in_every_split(shipped):
    _, _, manifest = shipped
    espeak = manifest["engine"] == "espeak-ng"
    for split in SPLITS:
        languages = set(manifest["language"][espeak & (manifest["split"] == split)])
        assert len(languages) >= 20, (split, sorted(languages))


def test_manifest_columns_present_and_typed(shipped):
    _, _, manifest = shipped
    header = (ROOT / "manifest.csv").read_text(encoding="utf-8").split("\n", 1)[0]
    assert header.split(",") == avdigits.MANIFEST_COLUMNS
    assert set(manifest["kind"]) == {"synthetic", "human"}
    assert set(manifest["sex"]) <= {"male", "female", "unknown"}
    assert {"male", "female"} <= set(manifest["sex"])
    assert manifest["source_rate"].dtype == np.int64 and manifest["source_rate"].min() >= 8000
    assert set(manifest["source_rate"][manifest["kind"] == "human"]) == {8000}
    assert manifest["version"].dtype == np.int64 and set(manifest["version"]) == {2}
    assert manifest["tract"].dtype == np.float64
    low, high = avdigits_build.TRACT_RANGE
    assert low <= manifest["tract"].min() and manifest["tract"].max() <= high
    human = manifest["kind"] == "human"
    assert (manifest["speed"][human] == 1).all() and (manifest["tract"][human] == 1).all()


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
    low, high = avdigits_build.CLIP_WORD_MS
    assert low <= manifest["word_ms"].min() and manifest["word_ms"].max() <= high
    assert manifest["squeeze"].min() >= 1.0
    assert (np.abs(manifest["shift_ms"]) <= 1000 * avdigits_build.MAX_SHIFT_S).all()


def test_data_folder_under_40_mb():
    total = sum(path.stat().st_size for path in DATA_DIR.rglob("*") if path.is_file())
    assert total < 40_000_000, f"data/ holds {total / 1e6:.1f} MB (budget: 40 MB)"


def test_credits_and_readme_name_sources_and_licences():
    credits = (ROOT / "CREDITS.md").read_text()
    for name in ("CC BY-SA 3.0", "LeCun", "Cortes", "espeak-ng", "flite", "festival",
                 "Apache-2.0", "open-jtalk", "RHVoice", "CC BY 3.0"):  # fmt: skip
        assert name in credits, name
    assert "Free Spoken Digit Dataset" in credits and "Zohar Jackson" in credits
    assert "CC BY-SA 4.0" in credits and "audio/fsdd-*.ogg" in credits
    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("# AV-Digits version 2") and "| test |" in readme
    assert "CC BY-SA 4.0" in readme and "## The word check" in readme
    # the README is its build's: the texts module at this commit writes it from build_info
    from s2ilib.datasets.avdigits_texts import readme_text

    info = json.loads((ROOT / "build_info.json").read_text(encoding="utf-8"))
    assert readme == readme_text(info)
    assert "2 test voices and 40 test sounds of espeak-ng in every language" in readme


def test_build_info_records_packages_voices_and_word_check():
    info = json.loads((ROOT / "build_info.json").read_text())
    required = [p for packages in avdigits_voices.REQUIRED_PACKAGES.values() for p in packages]
    assert set(required) <= set(info["debian_packages"])
    assert {v["engine"] for v in info["voices"]} == {*avdigits_voices.ENGINES, "fsdd"}
    assert info["word_check"]["voices"], "the word check left no report"


# --- a small copy of the set: loader errors and version 1 ---------------------------------------


@pytest.fixture
def small_copy(tmp_path, monkeypatch):
    """30 clips spread over the shipped set in a temporary folder, with its own cache."""
    monkeypatch.setenv("S2I_AVDIGITS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "avd"
    (root / "audio").mkdir(parents=True)
    lines = (ROOT / "manifest.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    rows = [lines[1 + i] for i in np.linspace(0, len(lines) - 2, 30).astype(int)]
    (root / "manifest.csv").write_text(lines[0] + "".join(rows), encoding="utf-8")
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


def test_version1_manifest_opens_with_defaults(small_copy):
    import csv

    path = small_copy / "manifest.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    version1 = [c for c in avdigits.MANIFEST_COLUMNS if c not in avdigits.V2_DEFAULTS]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, version1, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    manifest = avdigits.read_manifest(path)
    assert list(manifest) == avdigits.MANIFEST_COLUMNS
    assert set(manifest["kind"]) == {"synthetic"} and set(manifest["sex"]) == {"unknown"}
    assert manifest["source_rate"].dtype == np.int64 and set(manifest["source_rate"]) == {0}
    assert set(manifest["version"]) == {1} and set(manifest["tract"]) == {1.0}
    assert np.array_equal(manifest["speaker"], manifest["setup"])
    sounds, _ = avdigits.open_avdigits(small_copy)
    split = next(s for s in SPLITS if len(sounds[s]))
    assert set(sounds[split].extra["kind"]) == {"synthetic"}


def test_subset_keeps_one_language_and_its_spectrograms(small_copy, tmp_path):
    import warnings

    manifest = avdigits.read_manifest(small_copy / "manifest.csv")
    language = manifest["language"][0]
    sounds, _ = avdigits.open_avdigits(small_copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a recomputation would warn
        subset = avdigits.subset_avdigits(small_copy, tmp_path / "sub", languages=[language])
        kept, _ = avdigits.open_avdigits(subset)
    expected = manifest["language"] == language
    assert sum(len(kept[s]) for s in SPLITS) == expected.sum() < len(expected)
    for split in SPLITS:
        rows = np.isin(sounds[split].names, kept[split].names)
        assert np.array_equal(sounds[split].spectrograms[rows], kept[split].spectrograms)
    with pytest.raises(S2IError, match="not empty"):
        avdigits.subset_avdigits(small_copy, subset, languages=[language])


def test_manifest_with_unknown_or_missing_column_is_rejected(small_copy):
    path = small_copy / "manifest.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0].replace("tract", "tracts") + "".join(lines[1:]), encoding="utf-8")
    with pytest.raises(FormatError, match=r"unknown \['tracts'\]"):
        avdigits.read_manifest(path)
    path.write_text(lines[0].replace("digit,", "digits,", 1), encoding="utf-8")
    with pytest.raises(FormatError, match=r"missing \['digit'\]"):
        avdigits.read_manifest(path)


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


def test_plan_is_deterministic_and_split_by_voice():
    setups = avdigits_build.plan_voice_setups(seed=0)
    assert setups == avdigits_build.plan_voice_setups(seed=0)
    assert len({s.name for s in setups}) == len(setups)
    espeak = [s for s in setups if s.engine == "espeak-ng"]
    assert len({s.language for s in espeak}) >= 20
    splits = avdigits_build.assign_splits(setups, seed=0)
    assert {splits[s] for s in setups if s.engine == avdigits_build.HELD_OUT_ENGINE} == {"test"}
    unit_splits: dict[str, set] = {}
    for s in setups:
        unit_splits.setdefault(s.split_unit, set()).add(splits[s])
    assert all(len(found) == 1 for found in unit_splits.values()), "a voice in two splits"
    for language in {s.language for s in espeak}:
        assert {splits[s] for s in espeak if s.language == language} == set(SPLITS), language
    plans = avdigits_build.plan_clips(setups, seed=0)

    def clips_per_digit(setup) -> int:
        if splits[setup] != "train":
            return avdigits_build.EVAL_RENDITIONS
        if setup.engine == "espeak-ng":
            return avdigits_build.ESPEAK_RENDITIONS
        return avdigits_build.RENDITIONS

    expected = sum(10 * clips_per_digit(s) for s in setups)
    assert len(plans) == expected == len({p.clip_id for p in plans})
    subset = avdigits_build.plan_clips(setups[:3], seed=0)
    assert subset[0] == plans[0]
    assert avdigits_build.plan_voice_setups(seed=1) != setups


def test_voices_sharing_a_speaker_share_a_split():
    setups = avdigits_build.plan_voice_setups(seed=0)
    splits = avdigits_build.assign_splits(setups, seed=0)
    slt = {splits[s] for s in setups if s.speaker == "cmu-slt"}
    engines = {s.engine for s in setups if s.speaker == "cmu-slt"}
    assert len(slt) == 1 and engines == {"flite", "festival", "rhvoice"}


def test_dropped_sources_and_dialects_leave_the_plan():
    setups = avdigits_build.plan_voice_setups(seed=0, languages=["en"])
    dialects = {"en": ["en-us"]}
    dropped = {("rhvoice", "clb", "en")}
    again = avdigits_build.plan_voice_setups(
        0, languages=["en"], dialects=dialects, dropped=dropped
    )
    assert {s.voice.split("+")[0] for s in again if s.engine == "espeak-ng"} == {"en-us"}
    assert not [s for s in again if s.voice == "clb"] and [s for s in setups if s.voice == "clb"]


def _tone(seconds: float, rate: int = 16000, frequency: float = 220.0, level=0.3):
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    return (level * envelope * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_word_check_rejects_bad_words():
    good = _tone(0.4)
    assert avdigits_build.word_problems(good) == []
    assert avdigits_build.word_problems(np.zeros(0, np.float32)) == ["silent"]
    assert "too long" in avdigits_build.word_problems(_tone(3.0))[0]
    assert "too short" in avdigits_build.word_problems(_tone(0.06))[0]
    assert "near-silent" in avdigits_build.word_problems(_tone(0.4, level=1e-3))[0]
    gap = np.zeros(int(0.3 * 16000), np.float32)
    spelt = np.concatenate([_tone(0.15), gap, _tone(0.15), gap, _tone(0.15)])
    assert any("pause of 300 ms" in p for p in avdigits_build.word_problems(spelt))
    outliers = avdigits_build.outlier_problems([0.4] * 9 + [1.3])
    assert list(outliers) == [9] and "3.2x" in outliers[9]


def test_word_check_replaces_a_bad_word_or_drops_its_voice(monkeypatch, tmp_path):
    spoken = []

    def fake_synthesise(setup, requests, work_dir):
        spoken.append([r.word for r in requests])
        return [
            avdigits_build.RawAudio(_tone(3.0 if r.word == "cuatro" else 0.4), 16000)
            for r in requests
        ]

    monkeypatch.setattr(avdigits_build, "synthesise", fake_synthesise)
    monkeypatch.setattr(avdigits_build, "WORD_ALTERNATIVES", {("rhvoice", "es"): {4: ["kwatro"]}})
    report = avdigits_build.check_source_words(("rhvoice", "x", "es"), tmp_path)
    assert report["words"][4] == "kwatro" and spoken[-1][4] == "kwatro"
    assert report["rejects"][0]["digit"] == 4 and "replaced" in report["rejects"][0]["outcome"]
    assert "too long" in report["rejects"][0]["problems"][0]
    report = avdigits_build.check_source_words(("pico", "es-ES", "es"), tmp_path)
    assert report["words"] is None and report["rejects"][0]["outcome"] == "voice dropped"


def test_checked_setups_plan_again_without_dropped_voices(monkeypatch, tmp_path):
    def fake_check(source, work_dir):
        engine, voice, language = source
        bad = voice == "en-gb" or voice == "clb"
        words = None if bad else avdigits_voices.DIGIT_WORDS[language]
        return {"source": list(source), "words": words, "rejects": []}

    monkeypatch.setattr(avdigits_build, "check_source_words", fake_check)
    setups, words, reports = avdigits_build.checked_setups(
        0, None, ["en"], None, avdigits_build.ESPEAK_SETUPS, 1, tmp_path, False
    )
    assert setups and not [s for s in setups if s.voice.startswith("en-gb+") or s.voice == "clb"]
    assert {s.word_source for s in setups} <= set(words)
    assert any(r["words"] is None for r in reports)


def test_split_images_counts_and_disjoint():
    labels = np.repeat(np.arange(10), 500)
    split = avdigits_build.split_images(labels, seed=0)
    assert np.array_equal(split, avdigits_build.split_images(labels, seed=0))
    for name, count in avdigits_build.IMAGE_SPLIT_SIZES.items():
        assert np.array_equal(np.bincount(labels[split == name], minlength=10), [count] * 10)
    assert not np.array_equal(split, avdigits_build.split_images(labels, seed=1))


def _plan(setup, tract=1.0, speed=1.0, pitch=1.0, gain_db=-6.0, snr_db=float("inf"), shift=1.0):
    return avdigits_build.ClipPlan(
        "c", setup, 3, 0, "three", speed, pitch, tract, gain_db, snr_db, shift, "train"
    )


def test_trim_fit_place_and_augment():
    rate = avdigits.SAMPLE_RATE
    tone = _tone(0.5, level=0.5)
    padded = np.concatenate([np.zeros(4000, np.float32), tone, np.zeros(3000, np.float32)])
    word = avdigits_build.trim_silence(padded)
    assert abs(word.size - tone.size) <= 4 * rate // 100
    long_word, squeeze = avdigits_build.fit_word(np.tile(tone, 3))
    assert long_word.size == round(avdigits_build.MAX_WORD_S * rate) and squeeze == pytest.approx(
        1.5 / 0.95, abs=1e-3
    )
    assert avdigits_build.fit_word(tone)[1] == 1.0
    setup = avdigits_voices.VoiceSetup("espeak-ng", "en-us+m1", "en")
    clip, shift_ms = avdigits_build.place_and_augment(tone, _plan(setup), seed=0)
    assert clip.size == rate and np.abs(clip).max() == pytest.approx(10 ** (-6 / 20), rel=1e-4)
    assert shift_ms == 1000 * avdigits_build.MAX_SHIFT_S
    assert np.flatnonzero(clip)[0] > rate // 4  # centred, then shifted right
    noisy = _plan(setup, snr_db=20.0, shift=0.0)
    clip, _ = avdigits_build.place_and_augment(tone, noisy, seed=0)
    noise = np.concatenate([clip[:3000], clip[-3000:]])
    snr = 10 * np.log10(np.mean(clip[5000:11000] ** 2) / np.mean(noise**2))
    assert 17 < snr < 23


def test_tract_resampling_scales_frequency_and_length():
    rate = 22050
    t = np.arange(int(0.5 * rate)) / rate
    raw = avdigits_build.RawAudio((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), rate)
    word = avdigits_build.to_word(raw, tract=1.1)
    assert word.size == pytest.approx(0.5 * 16000 / 1.1, abs=2 * 160)
    spectrum = np.abs(np.fft.rfft(word * np.hanning(word.size)))
    peak_hz = np.argmax(spectrum) * 16000 / word.size
    assert peak_hz == pytest.approx(1100, abs=15)
    bounded = avdigits_build.RawAudio(raw.wave, rate, bounds=(0.2, 0.3))
    assert avdigits_build.to_word(bounded).size <= int(0.25 * 16000)


def test_engine_request_compensates_the_tract():
    espeak = avdigits_voices.VoiceSetup("espeak-ng", "en-us+m1", "en")
    request = avdigits_build.engine_request(_plan(espeak, tract=1.1, speed=1.2, pitch=0.9))
    assert request.speed == pytest.approx(1.2 / 1.1) and request.pitch == pytest.approx(0.9 / 1.1)
    assert request.tract == 1.0
    clunits = avdigits_voices.VoiceSetup("festival", "msu_ru_nsh_clunits", "ru")
    request = avdigits_build.engine_request(_plan(clunits, tract=1.1))
    assert (request.speed, request.pitch) == (1.0, 1.0)
    jtalk = avdigits_voices.VoiceSetup("open-jtalk", "nitech_jp_atr503_m001", "ja")
    request = avdigits_build.engine_request(_plan(jtalk, tract=1.1, speed=1.2))
    assert request.tract == 1.1 and request.speed == 1.2
    machac = avdigits_voices.VoiceSetup("festival", "czech_machac", "cs")
    rng = np.random.default_rng(0)
    for rendition in range(20):
        plan = avdigits_build._draw_clip(rng, machac, 0, rendition, "nula", "train")
        assert avdigits_build.engine_request(plan).pitch >= 0.999  # lower ones crash festival
    assert avdigits_voices.jtalk_alpha(1.0) == pytest.approx(avdigits_voices.OPEN_JTALK_ALPHA)
    assert avdigits_voices.jtalk_alpha(1.1) < avdigits_voices.OPEN_JTALK_ALPHA


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
    assert "libttspico-utils" in message and "rhvoice" in message
    assert "contrib non-free" in message


def test_engine_commands():
    request = avdigits_voices.EngineRequest("zéro", speed=1.2, pitch=0.9)
    setup = avdigits_voices.VoiceSetup("pico", "fr-FR", "fr")
    argv, stdin = avdigits_voices.engine_command(setup, request, Path("/tmp/x.wav"))
    assert argv[:3] == ["pico2wave", "-l", "fr-FR"] and stdin is None
    assert argv[-1] == "<speed level='120'><pitch level='90'>zéro</pitch></speed>"
    setup = avdigits_voices.VoiceSetup("espeak-ng", "ru+f3", "ru")
    request = avdigits_voices.EngineRequest("четыре", speed=0.8, pitch=1.5)
    argv, _ = avdigits_voices.engine_command(setup, request, Path("/tmp/x.wav"))
    assert argv[argv.index("-s") + 1] == "140" and argv[argv.index("-p") + 1] == "75"
    assert argv[-1] == "четыре"
    setup = avdigits_voices.VoiceSetup("rhvoice", "anna", "ru")
    argv, stdin = avdigits_voices.engine_command(setup, request, Path("/tmp/x.wav"))
    assert argv[argv.index("-r") + 1] == "80" and argv[argv.index("-t") + 1] == "150"
    assert stdin == "четыре\n"
    setup = avdigits_voices.VoiceSetup("open-jtalk", "nitech_jp_atr503_m001", "ja")
    request = avdigits_voices.EngineRequest("なな", speed=1.1, pitch=2.0, tract=1.0)
    argv, stdin = avdigits_voices.engine_command(setup, request, Path("/tmp/x.wav"))
    assert argv[argv.index("-fm") + 1] == "12.0000" and argv[argv.index("-a") + 1] == "0.5500"
    assert stdin == "なな\n"


def test_festival_script_encoding_and_bounds():
    setup = avdigits_voices.VoiceSetup("festival", "czech_ph", "cs")
    request = avdigits_voices.EngineRequest("čtyři", speed=1.25, pitch=1.1)
    script = avdigits_voices.festival_script(setup, [request], [Path("/tmp/0.wav")])
    assert "čtyři".encode("iso-8859-2") in script
    assert b"Duration_Stretch 0.8000" in script and b"(avd_synth avd_utt 1.1000)" in script
    hts = avdigits_voices.VoiceSetup("festival", "cmu_us_slt_arctic_hts", "en")
    script = avdigits_voices.festival_script(hts, [request], [Path("/tmp/0.wav")])
    assert b'"-r" 1.2500' in script and b"(avd_synth avd_utt 1.0000)" in script
    output = "AVD 0 (0.2 0.59)\nAVD 1 (nil nil)\nnoise\n"
    assert avdigits_voices.parse_festival_bounds(output, 3) == [(0.2, 0.59), None, None]


def _fake_fsdd(root: Path, recordings: int = 3, silent=()) -> Path:
    """A folder shaped like FSDD: tones per digit, `silent` file names all zeros."""
    (root / "recordings").mkdir(parents=True)
    for speaker in avdigits_fsdd.FSDD_SPLITS:
        for digit in range(10):
            for index in range(recordings):
                name = f"{digit}_{speaker}_{index}.wav"
                wave = _tone(0.3 + 0.02 * digit, 8000, 150 + 40 * digit + 5 * index)
                wave = np.pad(wave, 400) * (0 if name in silent else 1)
                soundfile.write(root / "recordings" / name, wave, 8000, subtype="PCM_16")
    return root


def test_fsdd_missing_says_so(tmp_path, monkeypatch):
    with pytest.raises(S2IError, match=r"FSDD .* is not at .*--fsdd DIR or \$S2I_FSDD_DIR"):
        avdigits_fsdd.find_fsdd(tmp_path / "nowhere")
    monkeypatch.setenv(avdigits_fsdd.FSDD_ENV, str(_fake_fsdd(tmp_path / "fsdd")))
    assert avdigits_fsdd.find_fsdd() == tmp_path / "fsdd"
    monkeypatch.delenv(avdigits_fsdd.FSDD_ENV)
    assert avdigits_fsdd.fsdd_dir() == avdigits.REPO_ROOT.parent / "shared" / "data" / "fsdd"


def test_fsdd_plan_splits_by_speaker_and_skips_bad_recordings(tmp_path):
    root = _fake_fsdd(tmp_path / "fsdd", silent={"3_theo_0.wav", "3_theo_1.wav"})
    plans, rejects = avdigits_build.plan_fsdd(root, seed=0, per_digit=1, eval_per_digit=1)
    assert len(plans) == 6 * 10 and {r["file"] for r in rejects} <= {"3_theo_0.wav", "3_theo_1.wav"}
    assert [p.rendition for p in plans if p.clip_id.startswith("fsdd-theo_3_")] == [2]
    for plan in plans:
        assert plan.split == avdigits_fsdd.FSDD_SPLITS[plan.setup.voice]
        assert plan.setup.kind == "human" and plan.word == avdigits.CLASSES[plan.digit]
    again, _ = avdigits_build.plan_fsdd(root, seed=0, per_digit=1, eval_per_digit=1)
    assert again == plans
    with pytest.raises(S2IError, match="usable recordings"):
        avdigits_build.plan_fsdd(root, seed=0, per_digit=1, eval_per_digit=2)


def test_cli_refuses_a_non_empty_folder_and_bad_options(tmp_path, capsys):
    from s2ilib.cli import main

    (tmp_path / "keep.txt").write_text("x")
    assert main(["build-avdigits", "--out", str(tmp_path), "--engines", "espeak-ng"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["build-avdigits", "--out", str(tmp_path), "--espeak-setups", "1,2"]) == 2
    assert "three counts" in capsys.readouterr().err
    assert main(["build-avdigits", "--out", str(tmp_path), "--engines", "mbrola"]) == 2
    assert "unknown engines ['mbrola']" in capsys.readouterr().err


# --- builds (need espeak-ng) --------------------------------------------------------------------


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@needs_espeak
def test_tiny_build_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("S2I_AVDIGITS_CACHE", str(tmp_path / "cache"))
    fsdd = _fake_fsdd(tmp_path / "fsdd", recordings=2)
    options = avdigits_build.BuildOptions(
        engines=("espeak-ng", "fsdd"), languages=("en",), max_setups=1, renditions=1,
        espeak_renditions=1, fsdd=str(fsdd), fsdd_per_digit=1, fsdd_eval_per_digit=1,
    )  # fmt: skip
    first = avdigits_build.build_avdigits(tmp_path / "a", seed=3, options=options, progress=False)
    avdigits_build.build_avdigits(tmp_path / "b", seed=3, options=options, progress=False)
    files = _files(tmp_path / "a")
    assert files == _files(tmp_path / "b") and len(files) == 10 + 60 + 6
    for relative in files:
        assert (tmp_path / "a" / relative).read_bytes() == (
            tmp_path / "b" / relative
        ).read_bytes(), relative
    assert sum(first["clips"].values()) == 70 and set(first["by_kind"]) == {"synthetic", "human"}
    sounds, images = avdigits.open_avdigits(tmp_path / "a")
    assert sum(len(s) for s in sounds.values()) == 70
    info = json.loads((tmp_path / "a" / "build_info.json").read_text())
    assert info["version"] == 2 and info["word_check"]["voices"][0]["rejects"] == []
    with pytest.raises(S2IError, match="not empty"):
        avdigits_build.build_avdigits(tmp_path / "a", seed=3, options=options, progress=False)


@pytest.mark.slow
@pytest.mark.skipif(
    any(shutil.which(p) is None for p in avdigits_voices.ENGINE_PROGRAMS.values()),
    reason="not every speech engine is installed: the all-engine build is skipped",
)
def test_small_build_with_every_engine(tmp_path, monkeypatch):
    """One clip per voice and digit, every engine, a few languages (about 2-3 minutes)."""
    monkeypatch.setenv("S2I_AVDIGITS_CACHE", str(tmp_path / "cache"))
    options = avdigits_build.BuildOptions(
        languages=("en", "ja", "cs", "hi"), renditions=1, espeak_renditions=1, eval_renditions=1,
        fsdd=str(_fake_fsdd(tmp_path / "fsdd", recordings=1)), fsdd_per_digit=1,
        fsdd_eval_per_digit=1,
    )  # fmt: skip
    summary = avdigits_build.build_avdigits(tmp_path / "a", options=options, progress=False)
    assert set(summary["by_engine"]) == {*avdigits_voices.ENGINES, "fsdd"}
    assert summary["by_engine"]["pico"]["train"] == 0
    sounds, _ = avdigits.open_avdigits(tmp_path / "a")
    assert all(len(sounds[s]) for s in SPLITS)


def test_exploration_helpers_pick_humans_and_languages_and_list_speakers():
    """Notebook 01's listening picks are half human, the rest one language each; the speaker
    lists and the source tables agree with the manifest."""
    from s2ilib import viz
    from s2ilib.datasets import open_dataset, sounds

    data = open_dataset(ROOT)
    train = data.split("train")
    picks = sounds.examples_by_voice_kind(train, 6, seed=3)
    kinds = np.asarray(train.extra["kind"])[picks]
    assert len(picks) == 6 and (kinds == "human").sum() == 3
    synthetic_languages = np.asarray(train.extra["language"])[picks][kinds != "human"]
    assert len(set(synthetic_languages.tolist())) == 3
    speakers = sounds.speakers_by_split(data)
    assert len(speakers["test"]) >= 2 and len(speakers["val"]) >= 1
    assert not set(speakers["train"]) & set(speakers["test"])
    table = viz.source_table(data, "kind")
    assert table.loc["human"].sum() == sum(
        (np.asarray(r.extra["kind"]) == "human").sum() for r in data.sounds.values()
    )
    with pytest.raises(ValueError, match="no 'colour' column"):
        viz.source_table(data, "colour")


def test_the_builder_plans_the_shipped_espeak_voices():
    """The code at this commit plans the espeak-ng (language, variant) pairs that were shipped."""
    manifest = avdigits.read_manifest(ROOT / "manifest.csv")
    espeak = np.asarray(manifest["engine"]) == "espeak-ng"
    shipped = {
        (language, voice.split("+")[1])
        for language, voice in zip(
            np.asarray(manifest["language"])[espeak], np.asarray(manifest["voice"])[espeak],
            strict=True,
        )
    }  # fmt: skip
    languages = sorted({language for language, _ in shipped})
    setups = avdigits_build.plan_voice_setups(0, engines=["espeak-ng"], languages=languages)
    planned = {(s.language, s.voice.split("+")[1]) for s in setups}
    assert planned == shipped


@pytest.mark.parametrize("split", SPLITS)
def test_more_set_ups_in_a_split_keep_every_split_and_its_clips(split):
    """Raising one split's espeak-ng count adds distinct variants per language to that split
    and keeps every set-up and clip draw a smaller count plans, in every split (the other
    splits' dialects included)."""
    counts = {"train": 1, "val": 1, "test": 1}
    one = avdigits_build.plan_voice_setups(0, engines=["espeak-ng"], espeak_setups=counts)
    two = avdigits_build.plan_voice_setups(
        0, engines=["espeak-ng"], espeak_setups=counts | {split: 2}
    )
    assert set(one) < set(two)
    splits = avdigits_build.assign_splits(two, seed=0)
    assert {splits[s] for s in set(two) - set(one)} == {split}
    for language in {s.language for s in two}:
        found = [s for s in two if s.language == language and splits[s] == split]
        assert len({s.speaker for s in found}) == 2, language  # two variants: two voices
    plans_one = avdigits_build.plan_clips(one, seed=0)
    plans_two = {p.clip_id: p for p in avdigits_build.plan_clips(two, seed=0)}
    assert all(plans_two[p.clip_id] == p for p in plans_one)


def test_espeak_training_voices_take_their_own_rendition_count():
    setups = avdigits_build.plan_voice_setups(0, languages=["it"])
    splits = avdigits_build.assign_splits(setups, seed=0)
    plans = avdigits_build.plan_clips(setups, seed=0, renditions=3, espeak_renditions=1,
                                      eval_renditions=2, split_of=splits)  # fmt: skip
    per_setup: dict = {}
    for plan in plans:
        per_setup[plan.setup] = per_setup.get(plan.setup, 0) + 1
    for setup, clips in per_setup.items():
        expected = 2 if splits[setup] != "train" else 1 if setup.engine == "espeak-ng" else 3
        assert clips == 10 * expected, setup
    assert {s.engine for s in per_setup if splits[s] == "train"} >= {"espeak-ng", "festival"}


def test_a_split_cannot_take_more_espeak_set_ups_than_its_variants():
    counts = {"train": 1, "val": 1, "test": 1}
    pool = len(avdigits_build.espeak_variant_order(0)["test"])
    with pytest.raises(S2IError, match=f"the split has {pool} espeak-ng variants"):
        avdigits_build.plan_voice_setups(0, espeak_setups=counts | {"test": pool + 1})
