"""Evaluation by language (issue 28): the labels CSV's metadata columns, the headline's
by_language beside the supervised ceiling, and one clip per engine and language."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from s2ilib import evaluate, report, viz
from s2ilib.datasets import avdigits, open_dataset
from s2ilib.datasets import sounds as sounds_module
from s2ilib.errors import S2IError
from s2ilib.pipeline import _finish


def _tones(folder: Path, count: int) -> list[str]:
    """`count` one-second WAV tones in `folder`; their names."""
    times = np.arange(16000) / 16000
    names = []
    for index in range(count):
        name = f"tone_{index}.wav"
        soundfile.write(folder / name, 0.3 * np.sin(2 * np.pi * 220 * (index + 1) * times), 16000)
        names.append(name)
    return names


def test_a_language_column_becomes_the_sounds_metadata_and_a_breakdown(tmp_path):
    names = _tones(tmp_path, 4)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,Label,Language,engine,notes\n"
        f"{names[0]},zero,en,me,first take\n{names[1]},one,es,me,\n"
        f"{names[2]},2, en ,,\n{names[3]},three,,me,\n",
        encoding="utf-8",
    )
    sounds, skipped = sounds_module.sounds_from_audio_dir(tmp_path, labels, avdigits.CLASSES)
    assert skipped == [] and sounds.labels.tolist() == [0, 1, 2, 3]
    assert sounds.extra["language"].tolist() == ["en", "es", "en", "unknown"]  # empty: unknown
    assert sounds.extra["engine"].tolist() == ["me", "me", "unknown", "me"]
    assert sounds.notes == [f"{labels}: column(s) 'notes' not read (read beside file,label: "
                            f"{', '.join(sounds_module.METADATA_COLUMNS)})"]  # fmt: skip
    # a draw that is right for the English sounds only
    positive = np.zeros((4, 10), np.int64)
    positive[[0, 2], [0, 2]] = 1
    draws = [{"positive": positive, "kway": np.array([0, 5, 2, 5])}]
    breakdown = evaluate.breakdown(sounds, draws, 10, num_resamples=20, seed=0)
    assert set(breakdown) == {"language", "engine"}
    assert {value: entry["num_sounds"] for value, entry in breakdown["language"].items()} == {
        "en": 2, "es": 1, "unknown": 1,
    }  # fmt: skip
    assert breakdown["language"]["en"]["informativity"]["mean"] == 1.0
    assert breakdown["language"]["es"]["informativity"]["mean"] == 0.0


def test_a_labels_csv_without_metadata_columns_reads_as_before(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\na.wav,0\n\nb.wav,one,\n")  # a trailing empty cell is fine
    rows, notes = sounds_module.read_labels_csv(labels, avdigits.CLASSES)
    assert rows == [(2, "a.wav", 0, {}), (4, "b.wav", 1, {})] and notes == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,label,language\na.wav,0,en\nb.wav,1\n",
         r"line 3: no language value \(2 values, the header names 3: file,label,language\); "
         "leave the cell empty for 'unknown'"),
        ("file,label,language\na.wav,0,en,es\n",
         "line 2: 4 values, the header names 3 .*stray comma"),
        ("file,label\na.wav,0,en\n", "line 2: 3 values, the header names 2"),
        ('file,label,voice\na.wav,0,"v1"\nb.wav,1,"v\n2"\n',
         r"line 3: voice 'v\\n2' holds a line break, tab or other control character"),
        ("file,label,speaker\na.wav,0," + "x" * 65 + "\n",
         "line 2: speaker 'x{20}'... is 65 characters long"),
        ("file,label,language,Language\na.wav,0,en,en\n",
         "line 1: column 'language' is named twice"),
        ("file,label,language\na.wav,0,en\nb.wav,1,en\n./a.wav,zero,es\n",
         "a.wav is listed with two values of language, 'en' on line 2 and 'es' on line 4"),
        # a quoted cell over two lines: the next row's line is the file's, not the row count
        ('file,label,notes,language\na.wav,0,"two\nlines",en\nb.wav,1,ok\n',
         "line 4: no language value"),
    ],
)  # fmt: skip
def test_bad_metadata_values_and_mixed_rows_name_the_file_and_line(tmp_path, text, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(text, encoding="utf-8")
    with pytest.raises(S2IError, match=re.escape(str(labels)) + r"(, |: )" + ".*" + message):
        sounds_module.read_labels_csv(labels, avdigits.CLASSES)


def _metrics(ceiling_breakdown: dict | None) -> dict:
    """A metrics.json as evaluate_run writes it, with a per-language breakdown only."""

    def entry(mean, low, high, count):
        return {"num_sounds": count, "kway_accuracy": mean,
                "informativity": {"mean": mean, "ci": [low, high]}}  # fmt: skip

    return {
        "methods": {
            "generator": {
                "informativity": {"mean": 0.5, "ci": [0.4, 0.6]},
                "diversity": {"ratio": 1.0},
                "kway_accuracy": 0.5,
                "frechet_distance": 3.0,
            }
        },
        "breakdown": {
            "language": {
                "en": entry(0.6, 0.5, 0.7, 40),
                "es": entry(0.3, 0.1, 0.5, 20),
                "ky": entry(0.45, 0.2, 0.7, 10),
            },
        },
        "sound_ceiling": None if ceiling_breakdown is None else {"breakdown": ceiling_breakdown},
    }


def test_the_headline_carries_by_language_with_the_ceiling_and_reaches_summary_json(tmp_path):
    ceiling = {"language": {"en": {"accuracy": 0.8, "ci": [0.7, 0.9], "num_sounds": 40},
                            "es": {"accuracy": 0.35, "ci": [0.2, 0.5], "num_sounds": 20}}}  # fmt: skip
    headline = evaluate.headline(_metrics(ceiling))
    assert "by_voice_group" not in headline  # these sounds have no kind of voice
    assert headline["by_language"]["en"] == {
        "informativity": 0.6, "informativity_ci": [0.5, 0.7],
        "ceiling": 0.8, "ceiling_ci": [0.7, 0.9], "num_sounds": 40,
    }  # fmt: skip
    assert headline["by_language"]["ky"]["ceiling"] is None  # the ceiling has no such value
    assert evaluate.headline(_metrics(None))["by_language"]["es"]["ceiling_ci"] is None
    # notebook 05 writes the headline into its step outputs; the pipeline's summary.json
    # takes every step's headline
    step = {"step": "05_informativity_evaluation", "outputs": {"headline": headline}}
    _finish({"steps": [step]}, tmp_path / "summary.json", 0.0, "done")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["headline"]["by_language"]["es"]["ceiling"] == 0.35


def test_the_per_language_frame_is_sorted_by_informativity_with_the_ceiling_beside():
    ceiling = {"language": {"en": {"accuracy": 0.8, "ci": [0.7, 0.9]}}}
    frame = report.breakdown_frame(_metrics(ceiling), "language")
    assert frame.index.name == "language" and frame.index.tolist() == ["en", "ky", "es"]
    assert list(frame.columns) == report.BREAKDOWN_FRAME_COLUMNS
    assert frame.loc["en"].tolist() == [60.0, "[50.0, 70.0]", 80.0, "[70.0, 90.0]", 40]
    assert pd.isna(frame.loc["es", "ceiling %"]) and frame.loc["es", "ceiling 95% CI"] == "n/a"
    assert report.breakdown_frame(_metrics(None), "engine").empty


@pytest.fixture(scope="module")
def shipped():
    return open_dataset(avdigits.AVDIGITS_DIR)


def test_one_clip_per_engine_and_language_of_the_shipped_data(shipped):
    manifest = pd.read_csv(avdigits.AVDIGITS_DIR / "manifest.csv")
    pairs = set(zip(manifest["engine"], manifest["language"], strict=True))
    picks = sounds_module.clips_per_engine_and_language(shipped, seed=0)
    assert [(p["engine"], p["language"]) for p in picks] == sorted(pairs)  # each pair once
    rows = manifest.set_index("file")
    for pick in picks:  # each clip is of its pair, with its own voice, word, digit and split
        row = rows.loc[pick["file"]]
        assert (row["engine"], row["language"], row["voice"]) == (
            pick["engine"], pick["language"], pick["voice"])  # fmt: skip
        assert (row["digit"], row["word"], row["split"]) == (
            pick["label"], pick["word"], pick["split"])  # fmt: skip
    assert sounds_module.clips_per_engine_and_language(shipped, seed=0) == picks
    other = sounds_module.clips_per_engine_and_language(shipped, seed=1)
    assert [p["file"] for p in other] != [p["file"] for p in picks]
    grid = viz.listening_grid(shipped, picks)
    assert grid.count("<audio ") == len(picks) and grid.count("data:audio/ogg;base64,") == len(
        picks
    )
    assert grid.count("<tr>") == 1 + len({language for _, language in pairs})
    assert len(grid) < 400_000  # the clips' own .ogg files, not 32 kB WAVs each


def test_clips_per_engine_and_language_names_a_missing_column(shipped):
    from dataclasses import replace

    test = shipped.split("test")
    without = replace(test, extra={k: v for k, v in test.extra.items() if k != "word"})
    data = replace(shipped, sounds=shipped.sounds | {"test": without})
    with pytest.raises(S2IError, match="the test sounds have no word column"):
        sounds_module.clips_per_engine_and_language(data)
