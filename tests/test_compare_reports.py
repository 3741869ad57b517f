"""benchmarks/compare_reports.py on two reports in the shape `s2i pipeline` writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from compare_reports import main  # noqa: E402


def write_report(folder: Path, informativity: float, french: float, seconds: float) -> Path:
    group = {"informativity": informativity, "ceiling": 0.5, "informativity_ci": [0, 1]}
    languages = {
        "en": {"informativity": 0.9, "informativity_ci": [0.8, 1.0], "ceiling": 0.9,
               "num_sounds": 480},
        "fr": {"informativity": french, "informativity_ci": [0.1, 0.5], "ceiling": None,
               "num_sounds": 40},
    }  # fmt: skip
    summary = {
        "status": "done",
        "steps": [{"step": "01_data_exploration", "wall_seconds": 6.0},
                  {"step": "02_audio_autoencoder", "wall_seconds": seconds}],
        "headline": {
            "informativity": informativity, "informativity_ci": [0.6, 0.7],
            "by_voice_group": {name: group for name in
                               ("human speakers", "unseen synthetic voices", "held-out engine")},
            "by_language": languages,
        },
    }  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_two_reports_side_by_side_worst_language_first(tmp_path, capsys):
    first = write_report(tmp_path / "a", 0.654, 0.225, 354.0)
    second = write_report(tmp_path / "b", 0.761, 0.55, 60.0)
    main([f"images={first}", f"clips={second}"])
    ablation, languages = capsys.readouterr().out.strip().split("\n\n")
    rows = ablation.splitlines()
    assert rows[2].startswith("| images | 0.654 [0.600, 0.700] | 0.654 (ceiling 0.500)")
    assert rows[2].endswith("| 1 | 6 | 354 | 6.0 |") and rows[3].endswith("| 0 | 6 | 60 | 1.1 |")
    french = languages.splitlines()[2]
    assert french == "| fr (40) | 0.225 [0.100, 0.500] |  | 0.550 [0.100, 0.500] |  |"


def test_an_unfinished_report_or_a_missing_label_is_refused(tmp_path):
    folder = write_report(tmp_path / "a", 0.5, 0.5, 1.0)
    summary = json.loads((folder / "summary.json").read_text()) | {"status": "failed"}
    (folder / "summary.json").write_text(json.dumps(summary))
    script = [sys.executable, str(BENCHMARKS / "compare_reports.py")]
    failed = subprocess.run([*script, f"x={folder}"], capture_output=True, text=True)
    assert failed.returncode == 2 and "not 'done'" in failed.stderr
    unlabelled = subprocess.run([*script, str(folder)], capture_output=True, text=True)
    assert unlabelled.returncode == 2 and "LABEL=FOLDER" in unlabelled.stderr
    with pytest.raises(SystemExit) as refused:
        main([f"x={tmp_path / 'none'}"])
    assert refused.value.code == 2
