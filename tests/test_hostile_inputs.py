"""Hostile inputs against every command that takes files: each run ends with exit status 0
or 2 and a message naming the problem, never a traceback (issue 29).

One folder of bad inputs (empty and text files named .wav, a folder named x.wav, devices,
Latin-1 / BOM / '²' / duplicate-row labels CSVs, a 0.01-s click, seconds of silence, a
NaN-filled float WAV, a stereo 96-kHz WAV, outputs where folders or files are in the way)
is given to `s2i imagine`, `evaluate`, `embed`, `inspect`, `export`, `convert`, `ingest` and
`train-ae`. Most runs go through `s2ilib.cli.main` in this process (an escaping exception
fails the test with its traceback); one goes through a real `python -m s2ilib` process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import smooth_records

from s2ilib import formats
from s2ilib.cli import main
from s2ilib.datasets.avdigits import AVDIGITS_DIR

REPO = Path(__file__).resolve().parents[1]
RATE = 16000


def _tone(seconds: float, rate: int = RATE, frequency: float = 440.0) -> np.ndarray:
    times = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * frequency * times)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """The folder of hostile inputs (and two good recordings beside them)."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("this is text, not audio\n")
    (folder / "x.wav").mkdir()
    (folder / "a_file").write_text("a file where a folder is expected")
    soundfile.write(folder / "good.wav", _tone(1.0), RATE)
    soundfile.write(folder / "other.flac", _tone(0.8, frequency=660.0), RATE)
    soundfile.write(folder / "click.wav", _tone(0.01), RATE)  # 0.01 s
    soundfile.write(folder / "silence.wav", np.zeros(3 * RATE), RATE)
    soundfile.write(folder / "nan.wav", np.full(RATE, np.nan, np.float32), RATE, "FLOAT")
    stereo = np.stack([_tone(2.0, 96000), _tone(2.0, 96000, 880.0)], axis=1)
    soundfile.write(folder / "stereo96k.wav", stereo, 96000)
    csvs = {
        "latin1.csv": "file,label\ngood.wav,zéro\n".encode("latin-1"),
        "bom.csv": "\ufefffile,label\ngood.wav,0\nstereo96k.wav,one\n".encode(),
        "superscript.csv": "file,label\ngood.wav,²\n".encode(),
        "conflict.csv": b"file,label\ngood.wav,0\ngood.wav,0\ngood.wav,5\n",
        "repeated.csv": b"file,label\ngood.wav,0\ngood.wav,zero\nother.flac,3\n",
        "header_only.csv": b"file,label\n",
        "bad_rows.csv": b"file,label\nx.wav,1\nempty.wav,2\ntext.wav,3\nnan.wav,4\nnone.wav,5\n",
        "odd_rows.csv": b"file,label\nclick.wav,1\nsilence.wav,2\nstereo96k.wav,3\n",
    }
    for name, data in csvs.items():
        (folder / name).write_bytes(data)
    records = smooth_records(6)  # a valid data set, for the outputs that cannot be made
    formats.write_spec_image_bin(folder / "set" / "train_batch_001.bin", records["names"],
                                 records["spectrograms"], records["images"])  # fmt: skip
    return folder


def _s2i(capsys, *args) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `s2i ARGS` run in this process."""
    capsys.readouterr()
    try:
        status = main([str(arg) for arg in args])
    except SystemExit as exit_:  # argparse refusing an option
        status = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return status, out, err


def _expect(capsys, status: int, message: str, *args) -> str:
    """Run `s2i ARGS`; assert its status and that `message` is in its stderr."""
    got, out, err = _s2i(capsys, *args)
    assert got == status, (args, got, err)
    assert message in err, (args, err)
    return err


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["empty.wav"], "empty.wav: not a readable sound file"),
        (["text.wav"], "text.wav: not a readable sound file"),
        (["x.wav"], "x.wav is a directory: give sound files"),
        (["/dev/null"], "/dev/null is not a regular file"),
        (["/dev/zero"], "/dev/zero is not a regular file"),
        (["missing.wav"], "missing.wav: no such file"),
        (["nan.wav"], "every sample is NaN or infinite"),
    ],
)
def test_imagine_refuses_each_unreadable_input(hostile, tiny_gan_run, capsys, inputs, message):
    paths = [p if p.startswith("/") else hostile / p for p in inputs]
    err = _expect(capsys, 2, message, "imagine", *paths, "--run", tiny_gan_run, "--out",
                  hostile / "out_bad", "--device", "cpu")  # fmt: skip
    assert "skipped" in err
    assert not list((hostile / "out_bad").glob("*.png"))


def test_imagine_takes_odd_but_readable_sounds_beside_bad_ones(hostile, tiny_gan_run, capsys):
    names = ["click.wav", "silence.wav", "stereo96k.wav", "empty.wav", "x.wav", "good.wav"]
    status, out, err = _s2i(capsys, "imagine", *(hostile / n for n in names), "/dev/null",
                            "--run", tiny_gan_run, "--out", hostile / "odd", "--device", "cpu")  # fmt: skip
    assert status == 0, err
    assert "click.wav: only 0.01 s of audio" in err and "silence.wav: silent" in err
    assert "skipped" in err and "x.wav is a directory" in err
    written = sorted(p.name for p in (hostile / "odd").iterdir())
    assert written == ["click.png", "good.png", "silence.png", "stereo96k.png"]


def test_imagine_refuses_bad_options_and_outputs_before_any_work(hostile, tiny_gan_run, capsys):
    good = hostile / "good.wav"
    common = (good, "--run", tiny_gan_run, "--device", "cpu")
    out = ("--out", hostile / "unused")
    for option, message in (
        (["--samples", "0"], "--samples 0: must be between 1 and"),
        (["--samples", "100000"], "--samples 100000: must be between 1 and"),
        (["--seed", "-1"], "--seed -1: must be between 0 and"),
    ):
        _expect(capsys, 2, message, "imagine", *common, *out, *option)
    _expect(capsys, 2, "a file is there", "imagine", *common, "--out", hostile / "a_file")
    below = hostile / "a_file" / "out"
    _expect(capsys, 2, "is a file, so no folder can be made below it", "imagine", *common,
            "--out", below)  # fmt: skip
    (hostile / "in_the_way" / "good.png").mkdir(parents=True)
    _expect(capsys, 2, "good.png is a folder", "imagine", *common, "--out", hostile / "in_the_way")
    _expect(capsys, 2, "not a run directory", "imagine", *common[:2], hostile, *out)
    _expect(capsys, 2, "invalid choice", "imagine", *common, *out, "--precision", "fp8")


def test_imagine_refuses_a_read_only_out_folder(hostile, tiny_gan_run, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders: the check cannot be seen as root")
    locked = hostile / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _expect(capsys, 2, "cannot write there", "imagine", hostile / "good.wav", "--run",
                tiny_gan_run, "--out", locked / "sub", "--device", "cpu")  # fmt: skip
    finally:
        locked.chmod(0o755)


def _evaluate(gan, informativity, *args) -> list:
    return ["evaluate", "--gan", gan, "--informativity", informativity, "--data", AVDIGITS_DIR,
            "--device", "cpu", "--bootstrap", "0", "--no-baselines", *args]  # fmt: skip


@pytest.mark.parametrize(
    ("csv_name", "message"),
    [
        ("latin1.csv", "line 2 (byte 21): byte 0xe9 is not UTF-8 text; save it as UTF-8"),
        ("superscript.csv", "line 2: label '²' is not a class"),
        (
            "conflict.csv",
            "good.wav is listed with two labels, 'zero' on line 2 and 'five' on line 4",
        ),  # fmt: skip
        ("header_only.csv", "lists no files"),
        ("bad_rows.csv", "none of the 5 listed audio files could be read (line 2: "),
        ("text.wav", "expected a header line 'file,label'"),
    ],
)
def test_evaluate_refuses_each_bad_labels_csv(
    hostile, tiny_gan_run, tiny_informativity_run, capsys, csv_name, message
):
    args = _evaluate(tiny_gan_run, tiny_informativity_run, "--audio-dir", hostile, "--labels",
                     hostile / csv_name, "--out", hostile / "eval_bad")  # fmt: skip
    _expect(capsys, 2, message, *args)
    assert not (hostile / "eval_bad" / "metrics.json").exists()


def test_evaluate_scores_a_bom_csv_and_notes_repeats_and_unlisted_files(
    hostile, tiny_gan_run, tiny_informativity_run, capsys
):
    base = _evaluate(tiny_gan_run, tiny_informativity_run, "--audio-dir", hostile)
    status, out, err = _s2i(capsys, *base, "--labels", hostile / "bom.csv", "--out",
                            hostile / "eval_bom")  # fmt: skip
    assert status == 0, err
    assert "metrics:" in out and (hostile / "eval_bom" / "metrics.json").is_file()
    status, out, err = _s2i(capsys, *base, "--labels", hostile / "repeated.csv", "--out",
                            hostile / "eval_repeated")  # fmt: skip
    assert status == 0, err
    assert (
        err.count("good.wav is listed 2 times with the same label (lines 2, 3); scored once") == 1
    )
    assert "audio files in" in err and "are not in repeated.csv and were not scored: " in err
    assert "click.wav, empty.wav, nan.wav" in err  # unlisted, named in the note
    status, out, err = _s2i(capsys, *base, "--labels", hostile / "odd_rows.csv", "--out",
                            hostile / "eval_odd")  # fmt: skip
    assert status == 0, err


def test_evaluate_refuses_bad_options_before_loading_anything(hostile, capsys):
    """Every case here is refused before a run is opened: the runs named do not exist."""
    runs = _evaluate(hostile / "no_gan", hostile / "no_informativity")
    out = ("--out", hostile / "unused")
    mine = ("--audio-dir", hostile, "--labels", hostile / "bom.csv")
    for args, message in (
        ((*out, "--labels", hostile / "bom.csv"), "needs --audio-dir"),
        ((*out, "--audio-dir", hostile / "nowhere", "--labels", hostile / "bom.csv"),
         f"--audio-dir {hostile / 'nowhere'}: no such folder"),
        ((*out, "--audio-dir", hostile / "good.wav", "--labels", hostile / "bom.csv"),
         "not a folder"),
        ((*out, "--audio-dir", hostile), "needs --labels"),
        ((*out, "--audio-dir", hostile, "--labels", "/dev/zero"), "not a regular file"),
        ((*out, "--audio-dir", hostile, "--labels", hostile / "x.wav"), "a folder, not a file"),
        ((*out, "--audio-dir", hostile, "--labels", hostile / "no.csv"), "no such file"),
        ((*out, "--samples", "0"), "--samples 0: must be between 1 and"),
        ((*out, "--bootstrap", "-1"), "--bootstrap -1: must be between 0 and"),
        ((*out, "--batch-size", "0"), "--batch-size 0: must be between 1 and"),
        ((*out, "--seed", "-5"), "--seed -5: must be between 0 and"),
        ((*out, "--nn-limit-per-class", "0"), "--nn-limit-per-class 0: must be at least 1"),
        ((*mine, "--out", hostile / "a_file"), "a file is there"),
        ((*mine, "--out", hostile / "a_file" / "below"), "so no folder can be made below it"),
    ):  # fmt: skip
        _expect(capsys, 2, message, *runs, *args)
    (hostile / "eval_in_the_way" / "metrics.json").mkdir(parents=True)
    _expect(capsys, 2, "metrics.json is a folder", *runs, *mine, "--out",
            hostile / "eval_in_the_way")  # fmt: skip
    _expect(capsys, 2, "not a run directory", *runs, *mine, "--out", hostile / "eval_norun")


def test_embed_and_the_data_commands_refuse_hostile_paths(hostile, tiny_gan_run, capsys):
    for path in (hostile / "missing", "/dev/null", hostile / "x.wav", hostile / "empty.wav",
                 hostile / "text.wav", hostile / "latin1.csv", hostile):  # fmt: skip
        _expect(capsys, 2, str(path), "inspect", path)
        _expect(capsys, 2, str(path), "export", path, hostile / "export.npz")
        _expect(capsys, 2, str(path), "convert", path, hostile / "converted", "--to", "jpeg_tree")
        _expect(capsys, 2, str(path), "embed", path, "--run", tiny_gan_run, "--out",
                hostile / "embedded", "--device", "cpu")  # fmt: skip
        _expect(capsys, 2, str(path), "ingest", path, hostile / "ingested", "--quiet")
        _expect(capsys, 2, str(path), "train-ae", "--data", path, "--runs-root",
                hostile / "runs", "--device", "cpu", "--no-progress")  # fmt: skip
    embed = ("embed", AVDIGITS_DIR, "--run", tiny_gan_run, "--device", "cpu")
    _expect(capsys, 2, "--image-size 0: must be between", *embed, "--out", hostile / "e",
            "--image-size", "0")  # fmt: skip
    _expect(capsys, 2, "so no folder can be made below it", *embed, "--out",
            hostile / "a_file" / "e")  # fmt: skip
    valid = hostile / "set"
    below = hostile / "a_file" / "out"
    _expect(capsys, 2, "is a file, so no folder", "export", valid, below / "set.npz")
    _expect(capsys, 2, "x.wav: a folder (or device) is there", "export", valid, hostile / "x.wav")
    _expect(capsys, 2, "is a file, so no folder", "convert", valid, below, "--to", "jpeg_tree")
    assert _s2i(capsys, "export", valid, hostile / "exported" / "set.npz")[0] == 0


def test_a_real_process_refuses_a_device_without_reading_it(hostile, tiny_gan_run):
    """/dev/zero never ends: the command must refuse it by its kind, in a real process."""
    done = subprocess.run(
        [sys.executable, "-m", "s2ilib", "imagine", "/dev/zero", str(hostile / "x.wav"),
         "--run", str(tiny_gan_run), "--out", str(hostile / "zero"), "--device", "cpu"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "/dev/zero is not a regular file" in done.stderr
    assert "x.wav is a directory: give sound files" in done.stderr
    assert "Traceback" not in done.stderr
