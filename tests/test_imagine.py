"""Using a trained model: `s2i imagine` on real sound files, `s2i embed` on a data set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile
import torch
from PIL import Image

from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.formats import open_records
from s2ilib.imagine import output_names
from s2ilib.translate import set_dropout_scale

REPO = Path(__file__).resolve().parents[1]


def _sounds(folder: Path) -> list[Path]:
    """A 0.5-s tone (wav, 16 kHz), a 3-s stereo chirp (flac, 48 kHz), noise (ogg, 8 kHz)."""
    folder.mkdir()
    t_short, t_long = np.arange(8000) / 16000, np.arange(3 * 48000) / 48000
    chirp = np.sin(2 * np.pi * (200 + 600 * t_long) * t_long)
    files = {
        "tone.wav": (0.5 * np.sin(2 * np.pi * 440 * t_short), 16000),
        "chirp.flac": (np.stack([chirp, 0.3 * chirp], axis=1) * 0.5, 48000),
        "noise.ogg": (np.random.default_rng(0).normal(0, 0.1, 8000), 8000),
    }
    for name, (wave, rate) in files.items():
        soundfile.write(folder / name, wave, rate)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00 definitely not audio")
    return [folder / name for name in (*files, "broken.wav")]


def _s2i(*args):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "s2ilib", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def test_imagine_writes_one_png_per_readable_file_and_reports_the_bad_one(tiny_gan_run, tmp_path):
    sounds = _sounds(tmp_path / "sounds")
    result = _s2i(
        "imagine",
        *sounds,
        "--run",
        tiny_gan_run,
        "--out",
        tmp_path / "out",
        "--samples",
        3,
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    assert "broken.wav" in result.stderr and "skipped" in result.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["chirp.png", "noise.png", "tone.png"]
    image = np.asarray(Image.open(tmp_path / "out" / "tone.png"))
    side = image.shape[0]
    assert image.shape == (side, 3 * side, 3)  # three dropout draws side by side


def test_imagine_fails_when_no_file_is_readable(tiny_gan_run, tmp_path):
    broken = tmp_path / "only.ogg"
    broken.write_text("not audio")
    result = _s2i("imagine", broken, "--run", tiny_gan_run, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "only.ogg" in result.stderr


def test_imagine_needs_a_gan_or_flow_run(tiny_gan_run, tmp_path):
    import json

    ae_run = json.loads((tiny_gan_run / "config.json").read_text())["ae_run"]
    result = _s2i("imagine", _sounds(tmp_path / "s")[0], "--run", ae_run, "--out", tmp_path / "o")
    assert result.returncode == 2 and "not a 'gan' or 'flow' run" in result.stderr
    assert not (tmp_path / "o").exists()  # a refused run leaves no empty --out behind


def test_imagine_never_overwrites_and_refuses_a_file_as_out(tiny_gan_run, tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    wave = 0.3 * np.sin(2 * np.pi * 300 * np.arange(12000) / 16000)
    for name in ("good.ogg", "good.wav"):
        soundfile.write(folder / name, wave, 16000)
    result = _s2i("imagine", folder / "good.ogg", folder / "good.wav", "--run", tiny_gan_run,
                  "--out", tmp_path / "o", "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "a_good_ogg.png",
        "a_good_wav.png",
    ]
    (tmp_path / "file").write_text("x")
    refused = _s2i(
        "imagine", folder / "good.wav", "--run", tiny_gan_run, "--out", tmp_path / "file"
    )
    assert refused.returncode == 2 and "a file is there" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_imagine_warns_about_silent_and_very_short_clips(tiny_gan_run, tmp_path):
    soundfile.write(tmp_path / "silence.wav", np.zeros(16000), 16000)
    soundfile.write(tmp_path / "blip.wav", 0.5 * np.ones(800), 16000)  # 0.05 s
    result = _s2i("imagine", tmp_path / "silence.wav", tmp_path / "blip.wav", "--run", tiny_gan_run,
                  "--out", tmp_path / "o", "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "silence.wav: silent" in result.stderr
    assert "blip.wav: only 0.05 s of audio" in result.stderr
    assert len(list((tmp_path / "o").iterdir())) == 2  # still imagined


def test_a_sounds_draws_do_not_depend_on_its_batch(tiny_gan_run):
    """The same sound alone, first in a batch, and in batches of other sizes: the same K
    images (keyed test-time dropout), different from draw to draw."""
    from s2ilib.runs import load_run
    from s2ilib.translate import translate

    run = load_run(tiny_gan_run)
    torch.manual_seed(0)  # two training steps leave a near-constant image: liven the weights
    with torch.no_grad():
        for parameter in run.generator.parameters():
            parameter.normal_(0.0, 0.3)
    sounds = np.random.default_rng(0).integers(0, 256, (9, 128, 100), dtype=np.uint8)
    alone = translate(run, sounds[4:5], "cpu", samples=3, seed=7)[0]
    for batch_size in (2, 4, 256):
        among = translate(run, sounds, "cpu", samples=3, seed=7, batch_size=batch_size)[4]
        assert np.array_equal(alone, among), batch_size
    assert not np.array_equal(alone[0], alone[1])  # two draws differ
    other_seed = translate(run, sounds[4:5], "cpu", samples=3, seed=8)[0]
    assert not np.array_equal(alone, other_seed)


def test_keyed_dropout_drops_at_the_trained_rate():
    import torch

    from s2ilib.translate import KeyedDropout, sound_keys

    layer = torch.nn.Sequential(torch.nn.Dropout2d(0.3))
    layer.train()
    keys = sound_keys(np.arange(2000 * 4, dtype=np.float32).reshape(2000, 4))
    with KeyedDropout(layer, seed=0) as dropout:
        dropout.batch(keys, draw=0)
        out = layer(torch.ones(2000, 50, 2, 2))
    dropped = (out[:, :, 0, 0] == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.01
    assert torch.allclose(out[out > 0], torch.tensor(1 / 0.7))
    assert (out[:, :, 0, 0] == out[:, :, 1, 1]).all()  # channel-wise, as Dropout2d


def test_embed_writes_npz_and_the_published_bin_layout(tiny_gan_run, tmp_path):
    result = _s2i(
        "embed",
        AVDIGITS_DIR,
        "--run",
        tiny_gan_run,
        "--out",
        tmp_path / "emb",
        "--splits",
        "val",
        "test",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    clips = json.loads((AVDIGITS_DIR / "build_info.json").read_text())["summary"]["clips"]
    arrays = np.load(tmp_path / "emb" / "embeddings.npz")
    num_sounds = clips["val"] + clips["test"]
    assert arrays["embeddings"].shape == (num_sounds, 16)
    assert arrays["embeddings"].dtype == np.float32
    assert np.abs(arrays["embeddings"]).max() <= 1.0  # tanh embedding
    records = open_records(tmp_path / "emb" / "embeddings_16_to_images")
    assert {s: len(r) for s, r in records.items()} == {"val": clips["val"], "test": clips["test"]}
    test = records["test"]
    num_test = clips["test"]
    assert test.images.shape == (num_test, 96, 96, 3) and test.embeddings.shape == (num_test, 16)
    assert np.array_equal(test.labels, arrays["labels"][arrays["splits"] == "test"])
    assert np.allclose(test.embeddings[:], arrays["embeddings"][arrays["splits"] == "test"])


def test_dropout_scale_is_relative_to_the_trained_rate():
    layer = torch.nn.Sequential(torch.nn.Dropout2d(0.2), torch.nn.Dropout(0.5))
    set_dropout_scale(layer, 2.0)
    set_dropout_scale(layer, 2.0)
    assert [m.p for m in layer] == [0.4, 0.95]
    set_dropout_scale(layer, 1.0)
    assert [m.p for m in layer] == [0.2, 0.5]


def test_output_names_never_collide():
    paths = [Path("a/x.wav"), Path("b/x.flac"), Path("c/y.ogg")]
    assert output_names(paths) == ["a_x", "b_x", "y"]
    two_formats = [Path("a/good.ogg"), Path("a/good.wav"), Path("a/good.wav")]
    assert output_names(two_formats) == ["a_good_ogg", "a_good_wav", "a_good_wav_2"]


def test_embed_keeps_bin_label_ids_as_written(tiny_gan_run, tmp_path, records):
    """Separator-spelled labels (004_17722_0) go into the embedding .bin unchanged."""
    from conftest import separated_labels, write_raw_spec_image_bin

    from s2ilib.imagine import embed_dataset

    labels = separated_labels(records["labels"])
    source = tmp_path / "spectrograms_to_images"
    write_raw_spec_image_bin(
        source / "test_batch_001.bin", labels, records["spectrograms"], records["images"]
    )
    report = embed_dataset(tiny_gan_run, source, tmp_path / "emb", device="cpu")
    raw = Path(report["bin"]["test"]).read_bytes()
    record_bytes = len(raw) // len(labels)
    assert [raw[i * record_bytes : i * record_bytes + 11] for i in range(len(labels))] == labels


def test_precision_benchmark_compares_bf16_with_fp32(tiny_gan_run):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "imagine_precision.py"
    result = subprocess.run(
        [sys.executable, str(script), "--run", str(tiny_gan_run), "--files", "3"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3 clips, 6 images: |bf16 - fp32| mean" in result.stdout


def test_imagine_refuses_outputs_it_cannot_write_before_the_work(tiny_gan_run, tmp_path):
    """Once a traceback after every image was made (issue 29); now refused first."""
    good = tmp_path / "good.wav"
    soundfile.write(good, 0.3 * np.sin(np.arange(16000) / 5), 16000)
    (tmp_path / "a_file").write_text("x")
    below = _s2i("imagine", good, "--run", tiny_gan_run, "--out", tmp_path / "a_file" / "o")
    assert below.returncode == 2 and "Traceback" not in below.stderr
    assert "a_file is a file, so no folder can be made below it" in below.stderr
    (tmp_path / "taken" / "good.png").mkdir(parents=True)
    taken = _s2i("imagine", good, "--run", tiny_gan_run, "--out", tmp_path / "taken",
                 "--samples", 2, "--device", "cpu")  # fmt: skip
    assert taken.returncode == 2 and "Traceback" not in taken.stderr
    assert "good.png is a folder (or not a regular file) where an image must go" in taken.stderr


def test_imagine_says_a_folder_or_device_is_not_a_sound_file(tiny_gan_run, tmp_path):
    (tmp_path / "x.wav").mkdir()
    result = _s2i("imagine", tmp_path / "x.wav", "/dev/zero", "--run", tiny_gan_run,
                  "--out", tmp_path / "o", "--samples", 0)  # fmt: skip
    assert result.returncode == 2 and "--samples 0: must be between 1 and 256" in result.stderr
    result = _s2i("imagine", tmp_path / "x.wav", "/dev/zero", "--run", tiny_gan_run,
                  "--out", tmp_path / "o")  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "x.wav is a directory: give sound files" in result.stderr
    assert "/dev/zero is not a regular file" in result.stderr
