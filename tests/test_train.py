"""Training: configs, run directories, checkpoints, losses, steps, NaN guard, kill + resume.

The CLI tests run `python -m s2ilib train-ae/train-gan` for real, on a small synthetic
spec_image_bin data set written with s2ilib.formats, with the `tiny` model preset.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
import typing
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from s2ilib.errors import S2IError
from s2ilib.formats import format_name, write_spec_image_bin
from s2ilib.models import AudioAutoencoder, DenseGenerator, Discriminator, preset
from s2ilib.runs import RunLog, create_run_dir, load_run
from s2ilib.runs.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    readable_checkpoint,
    save_checkpoint,
)
from s2ilib.seeding import rng_state, set_rng_state
from s2ilib.train.common import spread_over_classes
from s2ilib.train.config import (
    AETrainConfig,
    AlignTrainConfig,
    CeilingTrainConfig,
    FlowTrainConfig,
    GANTrainConfig,
    InformativityTrainConfig,
    TrainConfigError,
    parse_assignments,
)
from s2ilib.train.engine import NonFiniteLossError, epoch_order, gather_stats, lr_factor
from s2ilib.train.losses import (
    GAN_LOSSES,
    HingeLoss,
    MovingAverageLoss,
    NonSaturatingLoss,
    PaperLoss,
)
from s2ilib.train.steps import (
    AEStage,
    GANStage,
    ae_step,
    embed_sounds,
    gan_step,
    update_discriminator,
)

EMBEDDING_DIM = 64
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------
# Fixtures: a synthetic paired data set, and real CLI runs shared by several tests
# --------------------------------------------------------------------------------------


def write_synthetic_set(root: Path, per_class: int = 12, num_classes: int = 3) -> Path:
    """spec_image_bin train/val files: a class-specific bright band, a class colour."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("data", per_class), ("val", 4)):
        labels = np.repeat(np.arange(num_classes), count)
        names = [format_name(int(c), i, 0) for i, c in enumerate(labels)]
        spectrograms = rng.integers(0, 60, (len(labels), 128, 100), dtype=np.uint8)
        for c in range(num_classes):
            spectrograms[labels == c, 20 + 30 * c : 40 + 30 * c] += 150
        colours = (np.eye(3)[labels % 3] * 200 + 30).astype(np.uint8)
        images = np.broadcast_to(colours[:, None, None, :], (len(labels), 96, 96, 3)).copy()
        write_spec_image_bin(root / f"{prefix}_batch_001.bin", names, spectrograms, images)
    return root


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread for every test here (see conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("train")
    write_synthetic_set(folder / "data")
    return folder


def s2i(*args, cwd, check=True, wait=True):
    """Run `python -m s2ilib ARGS` (one torch thread: steadier timing on a shared CPU)."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "s2ilib", *map(str, args), "--no-progress"]
    if not wait:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"s2i {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


def run_path(result) -> Path:
    """The run directory from the CLI's last line `run: <path>`."""
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("run: ")
    return Path(last[len("run: ") :])


AE_ARGS = (
    "train-ae", "--data", "data", "--preset", "tiny", "--embedding-dim", EMBEDDING_DIM,
    "--steps", 24, "--batch-size", 8, "--log-every", 4, "--sample-every", 12,
    "--checkpoint-every", 2, "--keep-checkpoints", "--val-samples", 6, "--num-samples", 3,
)  # fmt: skip


def gan_args(ae_run: Path) -> tuple:
    return (
        "train-gan", "--data", "data", "--ae-run", ae_run, "--loss", "moving_average",
        "--steps", 20, "--batch-size", 6, "--log-every", 4, "--sample-every", 8,
        "--checkpoint-every", 2, "--keep-checkpoints", "--val-samples", 6, "--num-samples", 3,
    )  # fmt: skip


@pytest.fixture(scope="module")
def ae_run(workdir) -> Path:
    """An uninterrupted tiny autoencoder run (24 steps) through the CLI."""
    return run_path(s2i(*AE_ARGS, "--desc", "reference", cwd=workdir))


@pytest.fixture(scope="module")
def gan_run(workdir, ae_run) -> Path:
    """An uninterrupted tiny GAN run (20 steps) on `ae_run`'s encoder, through the CLI."""
    return run_path(s2i(*gan_args(ae_run), "--desc", "reference", cwd=workdir))


def tiny_networks(seed: int = 0):
    torch.manual_seed(seed)
    presets = preset("tiny", EMBEDDING_DIM)
    return (
        AudioAutoencoder(presets.autoencoder),
        DenseGenerator(presets.generator),
        Discriminator(presets.discriminator),
    )


# --------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------


def test_config_rejects_unknown_and_mistyped_keys():
    with pytest.raises(TrainConfigError, match="unknown key 'learning_rate'"):
        AETrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(TrainConfigError, match="AETrainConfig.batch_size = '64'"):
        AETrainConfig.from_dict({"batch_size": "64"})
    with pytest.raises(TrainConfigError, match="batch_size = True"):
        AETrainConfig.from_dict({"batch_size": True})
    with pytest.raises(TrainConfigError, match="betas"):
        GANTrainConfig.from_dict({"betas": [0.5]})
    with pytest.raises(TrainConfigError, match="loss = 'wasserstein'"):
        GANTrainConfig.from_dict({"loss": "wasserstein"})
    with pytest.raises(TrainConfigError, match="optimizer"):
        AETrainConfig.from_dict({"optimizer": "rmsprop"})


TRAIN_CONFIGS = (
    AETrainConfig,
    GANTrainConfig,
    FlowTrainConfig,
    AlignTrainConfig,
    CeilingTrainConfig,
    InformativityTrainConfig,
)


def _numeric_fields(config_class) -> dict:
    """name -> type hint of every field of a config that holds numbers."""
    hints = typing.get_type_hints(config_class)
    return {
        item.name: hints[item.name]
        for item in fields(config_class)
        if re.search(r"\b(int|float)\b", str(hints[item.name]))
    }


@pytest.mark.parametrize("config_class", TRAIN_CONFIGS, ids=lambda c: c.__name__)
def test_every_number_of_a_training_config_must_be_finite(config_class):
    """Every numeric field has Bounds (its class's or a parent's NUMBERS), and NaN or an
    infinity in it, from JSON, --set or a notebook, is refused naming the field."""
    rules = {}
    for cls in config_class.__mro__:
        rules |= cls.__dict__.get("NUMBERS", {})
    numeric = _numeric_fields(config_class)
    assert set(numeric) == set(rules), "a numeric field without Bounds"
    default = config_class()
    for name in numeric:
        for bad in (math.nan, math.inf, -math.inf):
            value = getattr(default, name)
            value = [bad] * len(value) if isinstance(value, tuple) else bad
            with pytest.raises(TrainConfigError, match=rf"{config_class.__name__}\.{name}"):
                config_class.from_dict({name: value})


@pytest.mark.parametrize(
    ("config_class", "values", "message"),
    [
        (FlowTrainConfig, {"guidance": math.inf},
         "FlowTrainConfig.guidance must be a finite number in [0, 100], got inf"),
        (FlowTrainConfig, {"guidance": math.nan},
         "FlowTrainConfig.guidance must be a finite number in [0, 100], got nan"),
        (FlowTrainConfig, {"sample_steps": 100_000},
         "FlowTrainConfig.sample_steps must be an integer in [1, 1000], got 100000"),
        (AETrainConfig, {"lr": math.nan}, "AETrainConfig.lr must be a finite number > 0, got nan"),
        (AETrainConfig, {"num_epochs": 0}, "num_epochs must be an integer >= 1, got 0"),
        (AETrainConfig, {"seed": -1}, "seed must be an integer in [0, 4294967295], got -1"),
        (AETrainConfig, {"momentum": 1.0}, "momentum must be a finite number in [0, 1), got 1.0"),
        (GANTrainConfig, {"betas": [0.5, math.inf]}, "betas must be a finite number in [0, 1), got inf in (0.5, inf)"),
        (AlignTrainConfig, {"noise_probability": 1.5}, "noise_probability must be a finite number in [0, 1], got 1.5"),
        (InformativityTrainConfig, {"batch_size": 3}, "batch_size must be an integer >= 4, got 3"),
        (GANTrainConfig, {"hinge_margin": 0.0}, "hinge_margin must be a finite number in (0, 1]"),
    ],
)  # fmt: skip
def test_training_settings_out_of_range_are_refused_with_the_range(config_class, values, message):
    with pytest.raises(TrainConfigError) as refused:
        config_class.from_dict(values)
    assert message in str(refused.value)


def test_config_converts_json_values_and_set_assignments():
    values = parse_assignments(["lr=1", "betas=[0.5, 0.9]", "classes=[0, 2]", "desc_text=abc"])
    assert values == {"lr": 1, "betas": [0.5, 0.9], "classes": [0, 2], "desc_text": "abc"}
    del values["desc_text"]
    config = AETrainConfig.from_dict(values)
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert config.betas == (0.5, 0.9) and config.classes == (0, 2)
    assert AETrainConfig.from_dict(config.as_dict()) == config  # JSON round trip
    assert GANTrainConfig().pixel_weight == 10.0 and AETrainConfig().momentum == 0.9
    with pytest.raises(TrainConfigError, match="expected key=value"):
        parse_assignments(["lr"])


def test_lr_schedules():
    assert lr_factor("constant", 50, 100) == 1.0
    assert lr_factor("cosine", 0, 100) == 1.0 and lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("linear", 75, 100) == pytest.approx(0.25)
    assert lr_factor("cosine", 4, 100, warmup_steps=10) == pytest.approx(0.5)


# --------------------------------------------------------------------------------------
# Run directories and checkpoints
# --------------------------------------------------------------------------------------


def test_run_dirs_are_numbered_and_never_reused(tmp_path):
    first = create_run_dir(tmp_path, "ae", "demo run")
    second = create_run_dir(tmp_path, "gan", "x")
    (tmp_path / "00041-ae-manual").mkdir()
    third = create_run_dir(tmp_path, "ae", "y")
    assert [p.name for p in (first, second, third)] == [
        "00000-ae-demo-run",
        "00001-gan-x",
        "00042-ae-y",
    ]
    with pytest.raises(S2IError, match="--resume"):
        create_run_dir(tmp_path, "ae", "z", run_dir=first)


def test_resumed_log_drops_stats_written_after_the_checkpoint(tmp_path):
    lines = [json.dumps({"step": step, "loss": 1.0}) for step in (5, 10, 15)]
    (tmp_path / "stats.jsonl").write_text("\n".join(lines) + '\n{"step": 2')  # torn last line
    log = RunLog(tmp_path, resume_step=10, tensorboard=False)
    log.stats({"step": 15, "loss": 0.5})
    log.close()
    rows = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [(row["step"], row["loss"]) for row in rows] == [(5, 1.0), (10, 1.0), (15, 0.5)]


def test_checkpoint_round_trip_restores_models_optimisers_and_rng(tmp_path):
    autoencoder, _, _ = tiny_networks()
    optimizer = torch.optim.SGD(autoencoder.parameters(), lr=0.05, momentum=0.9)
    ae_step(AEStage(autoencoder, optimizer), torch.rand(4, 1, 128, 100) * 2 - 1)
    state = {
        "models": {"autoencoder": autoencoder.state_dict()},
        "optimizers": {"autoencoder": optimizer.state_dict()},
        "progress": {"step": 7, "epoch": 1, "batch_in_epoch": 2},
        "rng": rng_state(),
    }
    expected = (torch.rand(3), np.random.rand(3), random.random())
    save_checkpoint(tmp_path, state, step=7, keep=True)
    assert latest_checkpoint(tmp_path).name == "last.pt"
    kept = tmp_path / "checkpoints" / "step_0000007.pt"
    assert kept.is_file() and kept.read_bytes() == latest_checkpoint(tmp_path).read_bytes()
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))

    loaded = load_checkpoint(latest_checkpoint(tmp_path))
    restored, _, _ = tiny_networks(seed=1)
    restored_optimizer = torch.optim.SGD(restored.parameters(), lr=0.05, momentum=0.9)
    restored.load_state_dict(loaded["models"]["autoencoder"])
    restored_optimizer.load_state_dict(loaded["optimizers"]["autoencoder"])
    for name, tensor in autoencoder.state_dict().items():
        assert torch.equal(tensor, restored.state_dict()[name]), name
    momentum = optimizer.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(restored_optimizer.state_dict()["state"][0]["momentum_buffer"], momentum)
    set_rng_state(loaded["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


def test_a_kept_checkpoint_is_a_file_of_its_own_and_the_fallback_of_a_torn_last(tmp_path):
    """Truncating last.pt must not reach step_XXXXXXX.pt (no hard link); the newest readable
    checkpoint is then the kept one, with a note naming what could not be read; with none
    readable, the error names every file tried."""
    for step in (2, 4):
        save_checkpoint(tmp_path, {"models": {}, "progress": {"step": step}}, step, keep=True)
    folder = tmp_path / "checkpoints"
    last, newest = folder / "last.pt", folder / "step_0000004.pt"
    assert last.stat().st_nlink == 1 and newest.stat().st_nlink == 1
    with open(last, "r+b") as file:  # truncated in place: a link would share the damage
        file.truncate(100)
    assert load_checkpoint(newest)["progress"]["step"] == 4
    path, state, note = readable_checkpoint(tmp_path)
    assert path == newest and state["progress"]["step"] == 4
    assert note.startswith("checkpoints/last.pt cannot be read (")
    assert note.endswith("; resuming from checkpoints/step_0000004.pt")
    newest.write_text("not a checkpoint")
    path, _, note = readable_checkpoint(tmp_path)
    assert path.name == "step_0000002.pt" and "checkpoints/step_0000004.pt cannot be read" in note
    (folder / "step_0000002.pt").write_bytes(b"")
    with pytest.raises(S2IError, match="no checkpoint can be read") as refused:
        readable_checkpoint(tmp_path)
    for name in ("last.pt", "step_0000004.pt", "step_0000002.pt"):
        assert f"checkpoints/{name} cannot be read" in str(refused.value)
    assert readable_checkpoint(tmp_path / "elsewhere") is None


def test_config_json_never_receives_a_number_that_is_not_finite(tmp_path):
    from s2ilib.atomic import write_json
    from s2ilib.train.engine import _check_finite_json

    with pytest.raises(ValueError, match="not JSON compliant"):
        write_json(tmp_path / "config.json", {"guidance": math.inf}, allow_nan=False)
    assert not list(tmp_path.iterdir())  # nothing written, no temporary file left
    with pytest.raises(S2IError, match="config.json cannot hold a number that is not finite"):
        _check_finite_json({"train": {"guidance": math.nan}})


def test_checkpoint_write_failure_keeps_the_previous_file(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"progress": {"step": 1}}, step=1)

    def torn_save(obj, file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, {"progress": {"step": 2}}, step=2)
    monkeypatch.undo()
    assert load_checkpoint(latest_checkpoint(tmp_path))["progress"]["step"] == 1
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.pt"]


# --------------------------------------------------------------------------------------
# Losses, by hand
# --------------------------------------------------------------------------------------

REAL = torch.tensor([1.0, 0.5])
FAKE = torch.tensor([-1.0, 0.0])


def test_paper_loss_is_l1_to_plus_and_minus_one():
    loss = PaperLoss()
    # D: 0.5 * (mean(|0|, |-0.5|) + mean(|0|, |1|)) = 0.5 * (0.25 + 0.5)
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx(0.375)
    assert loss.generator_loss(FAKE).item() == pytest.approx(1.5)  # mean(|-2|, |-1|)


def test_moving_average_loss_follows_the_discriminator():
    loss = MovingAverageLoss(decay=0.5)
    assert loss.generator_loss(FAKE).item() == pytest.approx(1.5)  # before updates: target +1
    loss.update(REAL, FAKE)  # first update: the batch means, 0.75 and -0.5
    assert loss.real_average.item() == pytest.approx(0.75)
    assert loss.fake_average.item() == pytest.approx(-0.5)
    loss.update(torch.tensor([0.25, 0.25]), torch.tensor([0.0, 0.5]))
    assert loss.real_average.item() == pytest.approx(0.5 * 0.75 + 0.5 * 0.25)  # 0.5
    assert loss.fake_average.item() == pytest.approx(0.5 * -0.5 + 0.5 * 0.25)  # -0.125
    assert loss.generator_loss(FAKE).item() == pytest.approx((1.5 + 0.5) / 2)  # to m_real 0.5
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx(0.375)  # margin 0: paper
    smoothed = MovingAverageLoss(decay=0.5, discriminator_margin=0.25)
    smoothed.load_state_dict(loss.state_dict())
    real_target, fake_target = smoothed.discriminator_targets("cpu")
    assert (real_target.item(), fake_target.item()) == pytest.approx((0.75, -0.375))
    # D: 0.5 * (mean(0.25, 0.25) + mean(0.625, 0.375))
    assert smoothed.discriminator_loss(REAL, FAKE).item() == pytest.approx(0.375)
    assert smoothed.state_dict()["updates"] == 2


def test_hinge_and_non_saturating_losses():
    hinge = HingeLoss(margin=0.5)
    # D: mean(relu(0.5-1), relu(0.5-0.5)) + mean(relu(0.5-1), relu(0.5+0)) = 0 + 0.25
    assert hinge.discriminator_loss(REAL, FAKE).item() == pytest.approx(0.25)
    assert hinge.generator_loss(FAKE).item() == pytest.approx(0.5)
    ns = NonSaturatingLoss()
    p_real, p_fake = (1 + REAL) / 2, (1 + FAKE) / 2  # (1, 0.75), (0, 0.5)
    expected_d = -(math.log(1.0) + math.log(0.75)) / 2 - (math.log(1.0) + math.log(0.5)) / 2
    assert p_real.tolist() == [1.0, 0.75] and p_fake.tolist() == [0.0, 0.5]
    assert ns.discriminator_loss(REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-5)
    # p_fake = 0 is clamped at 1e-6: -mean(log 1e-6, log 0.5)
    assert ns.generator_loss(FAKE).item() == pytest.approx(
        (-math.log(1e-6) + math.log(2)) / 2, rel=1e-4
    )
    assert set(GAN_LOSSES) == {"paper", "moving_average", "hinge", "non_saturating"}


# --------------------------------------------------------------------------------------
# Steps and the NaN guard
# --------------------------------------------------------------------------------------


def test_ae_steps_reduce_the_loss_on_a_fixed_batch():
    autoencoder, _, _ = tiny_networks()
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=3e-2)
    batch = torch.full((8, 1, 128, 100), -0.8)  # dark, with a bright band at a different height
    for i in range(8):
        batch[i, :, 10 * i : 10 * i + 20] = 0.6
    stage = AEStage(autoencoder, optimizer)
    losses = [ae_step(stage, batch)["loss"] for _ in range(12)]
    assert torch.stack(losses[-3:]).mean() < 0.75 * torch.stack(losses[:3]).mean()


def test_gan_steps_reduce_the_losses_on_a_fixed_batch():
    autoencoder, generator, discriminator = tiny_networks()
    autoencoder.eval().requires_grad_(False)
    stage = GANStage(
        encoder=autoencoder.encoder,
        generator=generator,
        discriminator=discriminator,
        generator_optimizer=torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999)),
        discriminator_optimizer=torch.optim.Adam(
            discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999)
        ),
        loss=PaperLoss(),
    )
    spectrograms = torch.rand(6, 1, 128, 100) * 2 - 1
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    embeddings = embed_sounds(stage, spectrograms)
    stats = [gan_step(stage, embeddings, images) for _ in range(10)]
    pixel = torch.stack([s["g_pixel"] for s in stats])
    assert pixel[-3:].mean() < pixel[:3].mean()
    # The discriminator alone, on fixed real and fake pairs, learns to tell them apart.
    fake = generator(embeddings).detach()
    d_losses = [update_discriminator(stage, images, fake, embeddings)["d_loss"] for _ in range(10)]
    assert torch.stack(d_losses[-3:]).mean() < torch.stack(d_losses[:3]).mean()


def code_stage(latent_weight: float, **weights) -> GANStage:
    """A tiny conditional VAE-GAN stage (a 4-number code) with BicycleGAN's cLR half."""
    from s2ilib.train.gan import build_code_encoder

    autoencoder, _, discriminator = tiny_networks()
    generator = DenseGenerator(replace(preset("tiny", EMBEDDING_DIM).generator, noise_dim=4))
    code_encoder = build_code_encoder(generator.config)
    trained = [*generator.parameters(), *code_encoder.parameters()]
    return GANStage(
        encoder=autoencoder.encoder.eval().requires_grad_(False),
        generator=generator,
        discriminator=discriminator,
        generator_optimizer=torch.optim.Adam(trained, lr=2e-3, betas=(0.5, 0.999)),
        discriminator_optimizer=torch.optim.Adam(discriminator.parameters(), lr=2e-3),
        loss=PaperLoss(),
        code_encoder=code_encoder,
        kl_weight=0.05,
        latent_weight=latent_weight,
        **weights,
    )


def test_the_clr_half_draws_its_codes_and_only_the_encoded_half_copies_its_image():
    from s2ilib.train.steps import batch_codes

    stage = code_stage(latent_weight=0.5)
    images = torch.rand(8, 3, 32, 32) * 2 - 1
    codes = batch_codes(stage, images)
    assert codes.values.shape == (8, 4) and codes.drawn == 4 and codes.kl > 0
    assert batch_codes(stage, images[:3]).drawn == 0  # BatchNorm needs 2 rows on each side
    assert batch_codes(code_stage(latent_weight=0.0), images).drawn == 0

    embeddings = embed_sounds(stage, torch.rand(8, 1, 128, 100) * 2 - 1)
    torch.manual_seed(1)
    stats = gan_step(stage, embeddings, images)
    assert stats["g_latent"] > 0 and stats["g_kl"] > 0
    # The pixel loss sees the encoded rows only: replacing the drawn rows' images with
    # anything leaves it unchanged (the same seed redraws the same codes and dropout).
    other = images.clone()
    other[4:] = -other[4:]
    for target in (images, other):
        stage = code_stage(latent_weight=0.5)
        torch.manual_seed(1)
        pixels = gan_step(stage, embeddings, target)["g_pixel"]
        if target is images:
            first = pixels
    assert pixels == first


def test_reading_the_drawn_codes_back_trains_the_generator_not_the_code_encoder():
    from s2ilib.train.steps import read_back_loss

    stage = code_stage(latent_weight=1.0)
    codes = torch.randn(6, 4)
    fake = stage.generator(torch.randn(6, EMBEDDING_DIM), codes)
    read_back_loss(stage, fake, codes).backward()
    assert all(p.grad is None for p in stage.code_encoder.parameters())
    assert all(p.requires_grad for p in stage.code_encoder.parameters())  # restored
    assert sum(p.grad.abs().sum() for p in stage.generator.parameters() if p.grad is not None) > 0


def test_encoded_and_drawn_codes_are_generated_in_separate_batchnorm_batches():
    from s2ilib.train.steps import BatchCodes, generate_halves

    stage = code_stage(latent_weight=0.5)
    embeddings, codes = torch.randn(8, EMBEDDING_DIM), torch.randn(8, 4)
    far = codes.clone()
    far[:4] *= 30  # codes read from images can drift far from N(0, I)
    images = []
    for values in (codes, far):
        torch.manual_seed(0)  # the same dropout masks
        images.append(
            generate_halves(stage.generator.train(), embeddings, BatchCodes(values, None, 4))
        )
    assert torch.equal(images[0][4:], images[1][4:])  # the drawn rows never see the others
    assert not torch.equal(images[0][:4], images[1][:4])


def test_nan_guard_names_the_step_and_the_loss():
    autoencoder, _, _ = tiny_networks()
    optimizer = torch.optim.SGD(autoencoder.parameters(), lr=0.01)
    batch = torch.rand(4, 1, 128, 100)
    stage = AEStage(autoencoder, optimizer)
    pending = [ae_step(stage, batch)]
    batch[1, 0, 5, 5] = float("nan")
    pending.append(ae_step(stage, batch))
    with pytest.raises(NonFiniteLossError, match="step 11: loss is nan"):
        gather_stats(pending, first_step=10)
    means = gather_stats(pending[:1], first_step=10)
    assert set(means) == {"loss", "grad_norm"} and math.isfinite(means["loss"])


def test_cli_diverging_run_stops_and_keeps_the_last_good_checkpoint(workdir):
    result = s2i(
        "train-ae", "--data", "data", "--preset", "tiny", "--embedding-dim", EMBEDDING_DIM,
        "--steps", 20, "--batch-size", 8, "--lr", 1e30, "--log-every", 1,
        "--checkpoint-every", 1, "--desc", "diverge", cwd=workdir, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        "is nan" in result.stderr or "is inf" in result.stderr or "NaN or infinite" in result.stderr
    )
    failed_step = int(result.stderr.split("error: step ")[1].split(":")[0])
    run_dir = next(workdir.glob("runs/*-ae-diverge"))
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["progress"]["step"] < failed_step
    weights = state["models"]["autoencoder"].values()
    assert all(torch.isfinite(t).all() for t in weights if t.is_floating_point())
    assert "stopped: step" in (run_dir / "log.txt").read_text()


# --------------------------------------------------------------------------------------
# Data order
# --------------------------------------------------------------------------------------


def test_epoch_order_is_a_function_of_seed_and_epoch():
    first = epoch_order(50, 8, seed=3, epoch=2)
    assert len(first) == 6 and all(len(b) == 8 for b in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, epoch_order(50, 8, 3, 2), strict=True))
    assert not np.array_equal(first[0], epoch_order(50, 8, 3, 3)[0])
    assert len(np.unique(np.concatenate(first))) == 48
    positions = spread_over_classes(np.repeat([0, 1, 2], 5), 3, seed=0)
    assert sorted(np.repeat([0, 1, 2], 5)[positions]) == [0, 1, 2]


# --------------------------------------------------------------------------------------
# The CLI for real: run directories, kill + resume, load_run
# --------------------------------------------------------------------------------------


def check_run_dir(run_dir: Path, kind: str, steps: int) -> list[dict]:
    """The run directory holds everything it promises; returns its stats lines."""
    config = json.loads((run_dir / "config.json").read_text())
    assert config["kind"] == kind and Path(config["data"]).is_dir()
    assert config["train"]["num_steps"] == steps and "autoencoder" in config["models"]
    environment = json.loads((run_dir / "environment.json").read_text())
    assert {"python", "torch", "device", "hostname", "cpu_count", "git_commit"} <= set(environment)
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["step"] == steps and all("samples_per_s" in row for row in stats)
    assert sorted((run_dir / "samples").glob("step_*.png"))
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert (run_dir / "log.txt").read_text().strip()
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["progress"]["step"] == steps
    return stats


def test_cli_train_ae_writes_a_complete_run_dir(ae_run):
    assert ae_run.is_absolute() and re.fullmatch(r"\d{5}-ae-reference", ae_run.name)
    stats = check_run_dir(ae_run, "ae", 24)
    assert [row["step"] for row in stats] == [2 * i for i in range(1, 13)]  # every checkpoint
    assert {"loss", "grad_norm", "lr_autoencoder"} <= set(stats[0]) and "val_loss" in stats[5]
    assert stats[-1]["loss"] < stats[0]["loss"]
    from PIL import Image

    with Image.open(ae_run / "samples" / "step_0000024.png") as grid:
        assert grid.size == (2 + 3 * 102, 2 + 2 * 130)  # 3 sounds x (input, reconstruction)


def _final_models(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["models"]


def assert_same_models(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for network in first:
        for name, tensor in first[network].items():
            assert torch.equal(tensor, second[network][name]), f"{network}.{name} differs"


def kill_after_checkpoint(args, cwd, kill_step: int, total_steps: int, desc="killed") -> Path:
    """Start a run (args end with --desc `desc`), SIGKILL it once checkpoint `kill_step`
    exists; returns its run dir."""
    process = s2i(*args, cwd=cwd, wait=False)
    deadline = time.monotonic() + 240
    checkpoints = None
    while time.monotonic() < deadline and process.poll() is None:
        pattern = (
            f"runs/*-{args[0].removeprefix('train-')}-{desc}/checkpoints/step_{kill_step:07d}.pt"
        )
        found = list(cwd.glob(pattern))
        if found:
            checkpoints = found[0].parent
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL, f"the run ended before the kill:\n{stderr}"
    # last.pt is written before its kept copy, so it is at step_<kill_step>.pt or later.
    state = load_checkpoint(latest_checkpoint(checkpoints.parent))
    assert 0 < state["progress"]["step"] < total_steps
    return checkpoints.parent


def test_killed_ae_run_resumes_to_identical_weights(workdir, ae_run):
    killed = kill_after_checkpoint((*AE_ARGS, "--desc", "killed"), workdir, 6, 24)
    # A kill during a checkpoint write leaves a temporary file behind: resume must ignore it.
    (killed / "checkpoints" / ".tmp-last.pt.99999").write_bytes(b"torn")
    resumed = run_path(s2i("train-ae", "--resume", killed, cwd=workdir))
    assert resumed == killed
    assert_same_models(_final_models(ae_run), _final_models(killed))
    reference_stats = check_run_dir(ae_run, "ae", 24)
    resumed_stats = check_run_dir(killed, "ae", 24)
    assert [r["step"] for r in resumed_stats] == [r["step"] for r in reference_stats]
    assert [r["loss"] for r in resumed_stats] == [r["loss"] for r in reference_stats]
    assert not list((killed / "checkpoints").glob(".tmp-*"))


def test_cli_train_gan_and_its_resume(workdir, ae_run, gan_run):
    stats = check_run_dir(gan_run, "gan", 20)
    assert {"d_loss", "g_loss", "g_pixel", "real_score", "d_grad_norm", "val_pixel_loss"} <= set(
        stats[3]
    )
    config = json.loads((gan_run / "config.json").read_text())
    assert config["ae_run"] == str(ae_run.resolve()) and config["train"]["preset"] == "tiny"
    state = load_checkpoint(gan_run / "checkpoints" / "last.pt")
    assert state["loss_state"]["updates"] == 20
    # The frozen encoder is the AE run's, copied into the GAN checkpoint.
    assert_same_models(
        {"autoencoder": _final_models(ae_run)["autoencoder"]},
        {"autoencoder": state["models"]["autoencoder"]},
    )
    killed = kill_after_checkpoint((*gan_args(ae_run), "--desc", "killed"), workdir, 4, 20)
    run_path(s2i("train-gan", "--resume", killed, cwd=workdir))
    assert_same_models(_final_models(gan_run), _final_models(killed))
    assert load_checkpoint(killed / "checkpoints" / "last.pt")["loss_state"]["updates"] == 20
    resumed_stats = check_run_dir(killed, "gan", 20)
    assert [(r["step"], r["g_loss"], r["d_loss"]) for r in resumed_stats] == [
        (r["step"], r["g_loss"], r["d_loss"]) for r in stats
    ]


@pytest.mark.slow  # recipe imagine (not in the main job) end to end
def test_cli_imagine_recipe_trains_a_code_encoder_resumes_and_draws_vary(workdir, ae_run):
    """Recipe imagine (conditional VAE-GAN): the code encoder is saved and resumed with
    the rest, the KL is logged, and a sound's draws differ by their code alone."""

    args = (*gan_args(ae_run), "--recipe", "imagine", "--set", "kl_weight=0.1")
    reference = run_path(s2i(*args, "--desc", "imagine", cwd=workdir))
    stats = check_run_dir(reference, "gan", 20)
    assert all(row["g_kl"] >= 0 for row in stats) and stats[-1]["g_kl"] > 0
    state = load_checkpoint(reference / "checkpoints" / "last.pt")
    assert "code_encoder" in state["models"]
    killed = kill_after_checkpoint(
        (*args, "--desc", "imagine-killed"), workdir, 4, 20, "imagine-killed"
    )
    run_path(s2i("train-gan", "--resume", killed, cwd=workdir))
    assert_same_models(_final_models(reference), _final_models(killed))

    assert load_run(reference).generator.config.noise_dim == 16


def test_a_generator_with_a_code_draws_varied_images_keyed_by_sound_and_seed():
    """Without test-time dropout the code alone makes a sound's draws differ; they depend
    on the sound and the seed only. (An untrained generator's eval-mode output hardly
    depends on its input: its BatchNorm statistics are first set on batches of inputs.)"""
    from s2ilib.translate import draw_batches, generate, sound_keys

    torch.manual_seed(0)
    generator = DenseGenerator(replace(preset("tiny", EMBEDDING_DIM).generator, noise_dim=16))
    with torch.no_grad():
        for _ in range(30):
            generator.train()(torch.randn(32, EMBEDDING_DIM))  # the code drawn by itself
    embeddings = torch.randn(5, EMBEDDING_DIM)
    first, second = (
        next(draw_batches(generator, embeddings, "cpu", draw, test_time_dropout=False))
        for draw in (0, 1)
    )
    assert ((first - second).abs().amax(dim=(1, 2, 3)) > 1e-2).all()
    draws = generate(generator, embeddings, "cpu", 3, seed=0, test_time_dropout=False)
    keys = sound_keys(embeddings.numpy())
    alone = generate(generator, embeddings[2:3], "cpu", 3, seed=0, test_time_dropout=False,
                     keys=keys[2:3])  # fmt: skip
    assert np.array_equal(alone[0], draws[2])
    other = generate(generator, embeddings, "cpu", 3, seed=1, test_time_dropout=False)
    assert not np.array_equal(other, draws)


def test_keyed_codes_are_standard_normal():
    from s2ilib.translate import keyed_normal

    codes = keyed_normal(torch.arange(4000), salt=7, count=16)
    assert torch.isfinite(codes).all()
    assert abs(codes.mean().item()) < 0.02 and abs(codes.std().item() - 1) < 0.02
    correlation = torch.corrcoef(codes.T)[~torch.eye(16, dtype=bool)]
    assert correlation.abs().max() < 0.06  # the code's numbers are independent of each other


def test_load_run_gives_eval_networks(ae_run, gan_run):
    ae = load_run(ae_run)
    assert ae.kind == "ae" and ae.step == 24 and ae.embedding_dim == EMBEDDING_DIM
    assert not ae.autoencoder.training and ae.generator is None
    gan = load_run(gan_run)
    assert (
        gan.kind == "gan"
        and gan.image_size == 32
        and gan.config["train"]["loss"] == "moving_average"
    )
    with torch.no_grad():
        embeddings = gan.autoencoder.encoder(torch.zeros(2, 1, 128, 100))
        images = gan.generator(embeddings)
        scores = gan.discriminator(images, embeddings)
    assert embeddings.shape == (2, EMBEDDING_DIM) and images.shape == (2, 3, 32, 32)
    assert scores.shape == (2,) and scores.abs().max() <= 1


def test_cli_rejects_bad_settings(workdir, ae_run, capsys, monkeypatch):
    from s2ilib.cli import main

    monkeypatch.chdir(workdir)
    assert main(["train-ae", "--data", "data", "--set", "lr_typo=1"]) == 2
    assert "unknown key 'lr_typo'" in capsys.readouterr().err
    assert main(["train-ae", "--batch-size", "1"]) == 2
    assert "batch_size must be an integer >= 2, got 1" in capsys.readouterr().err
    assert main(["train-ae", "--resume", str(ae_run), "--lr", "0.1"]) == 2
    assert "--resume takes every setting" in capsys.readouterr().err
    assert main(["train-gan", "--data", "data", "--ae-run", "data"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert (
        main(["train-gan", "--data", "data", "--ae-run", str(ae_run), "--embedding-dim", "32"]) == 2
    )
    assert "differs from the AE run's 64" in capsys.readouterr().err
    assert main(["train-ae", "--data", "data", "--run-dir", str(ae_run)]) == 2
    assert "run directory exists; pass --resume" in capsys.readouterr().err
    assert main(["train-ae", "--data", "no_such_folder"]) == 2
    assert "no such data set folder" in capsys.readouterr().err
    assert sorted(p.name for p in (workdir / "runs").iterdir()) == sorted(
        p.name for p in (workdir / "runs").iterdir() if (p / "config.json").is_file()
    )  # no half-made run directories


def test_cli_train_gan_on_class_paired_avdigits(workdir, ae_run):
    from s2ilib.datasets.avdigits import AVDIGITS_DIR

    if not (AVDIGITS_DIR / "manifest.csv").is_file():
        pytest.skip(f"AV-Digits is not built in {AVDIGITS_DIR}")
    result = s2i(
        "train-gan", "--ae-run", ae_run, "--limit-per-class", 2, "--steps", 3,
        "--batch-size", 10, "--checkpoint-every", 3, "--val-samples", 10, "--desc", "avdigits",
        cwd=workdir,
    )  # fmt: skip
    run_dir = run_path(result)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"] == str(AVDIGITS_DIR.resolve())
    stats = check_run_dir(run_dir, "gan", 3)
    assert math.isfinite(stats[-1]["val_pixel_loss"])


# --------------------------------------------------------------------------------------
# One home per setting (issue 27): every default lives once
# --------------------------------------------------------------------------------------


def _cli_config(argv: list[str], config_class):
    """The config `s2i <argv>` would train with (parsed by the real CLI parser)."""
    from s2ilib.cli import build_parser
    from s2ilib.cli.train import _config_values

    return config_class.from_dict(_config_values(build_parser().parse_args(argv), config_class))


def test_recipes_state_only_what_they_change_from_the_config_defaults():
    from s2ilib.train.config import AlignTrainConfig, FlowTrainConfig, GANTrainConfig
    from s2ilib.train.recipes import RECIPES

    for recipe in RECIPES.values():
        for part, config_class in [(recipe.align or {}, AlignTrainConfig),
                                   (recipe.gan, GANTrainConfig), (recipe.flow, FlowTrainConfig)]:  # fmt: skip
            defaults = {item.name: item.default for item in fields(config_class)}
            restated = [key for key, value in part.items() if defaults[key] == value]
            assert not restated, f"recipe {recipe.name} restates the defaults of {restated}"


def test_duplicated_defaults_read_their_one_home():
    """The augmentation's, the GAN loss weights' and standardise_embedding's defaults are
    each written once; the other classes that carry them read that one."""
    from dataclasses import MISSING

    from s2ilib.models.config import AutoencoderConfig
    from s2ilib.notebook import DecoderParameters
    from s2ilib.train.augment import AugmentSettings
    from s2ilib.train.config import (
        AUGMENT_FIELDS,
        AugmentedStageConfig,
        FlowTrainConfig,
        GANTrainConfig,
    )
    from s2ilib.train.steps import GANStage

    def defaults(cls):
        return {item.name: item.default for item in fields(cls) if item.default is not MISSING}

    augment = defaults(AugmentSettings)
    assert set(augment) == set(AUGMENT_FIELDS)
    assert augment == {name: defaults(AugmentedStageConfig)[name] for name in AUGMENT_FIELDS}
    gan = defaults(GANTrainConfig)
    for cls in (GANStage, DecoderParameters):
        own = defaults(cls)
        shared = {"pixel_weight", "adversarial_weight", "lr_generator", "lr_discriminator"}
        assert {name: own[name] for name in shared & set(own)} == {
            name: gan[name] for name in shared & set(own)
        }
    network = AutoencoderConfig.standardise_embedding
    assert GANTrainConfig.standardise_embedding == FlowTrainConfig.standardise_embedding == network
    # The literal itself appears once in the package: in the config dataclass.
    package = Path(__file__).resolve().parents[1] / "s2ilib"
    written = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if re.search(r"pixel_weight\W+(float\s*=\s*)?10(\.0)?\b", path.read_text())
    ]
    assert written == ["train/config.py"]


def test_the_flow_stage_reads_the_network_defaults_it_does_not_choose():
    """FlowTrainConfig carries the flow network's fields; their defaults are FlowConfig's,
    written there alone, except the two sampling settings validation chose (guidance,
    recall_from), which FlowConfig leaves off."""
    from s2ilib.models.config import FlowConfig
    from s2ilib.train.config import FlowTrainConfig

    network = {item.name: item.default for item in fields(FlowConfig)}
    stage = {item.name: item.default for item in fields(FlowTrainConfig)}
    # image size and channels are resolved from the data set and the preset at training time
    shared = set(network) & set(stage) - {"embedding_dim", "image_size", "image_channels"}
    chosen = {name for name in shared if stage[name] != network[name]}
    assert chosen == {"guidance", "recall_from"}
    assert (network["guidance"], network["recall_from"]) == (1.0, 0.0)  # off
    source = inspect.getsource(FlowTrainConfig)
    for name in shared - chosen:
        assert re.search(rf"^    {name}: .* = _FLOW\.{name}$", source, re.MULTILINE), name


def test_cli_and_notebooks_give_the_same_run_for_the_same_settings(tmp_path):
    """`s2i train-ae/-align/-flow/-gan` given the options the docs show train the configs
    notebooks 02-04 train with their default parameters."""
    from s2ilib.notebook import AlignmentParameters, AutoencoderParameters, DecoderParameters
    from s2ilib.train.config import (
        AE_MAIN_JOB,
        AETrainConfig,
        AlignTrainConfig,
        FlowTrainConfig,
        GANTrainConfig,
    )

    data = AutoencoderParameters().data_path
    ae = AutoencoderParameters().training_config()
    cli_ae = [f"--{key.replace('num_', '')}={value}" for key, value in AE_MAIN_JOB.items()]
    common = ["--data", str(data)]
    argv = ["train-ae", "--preset", "demo", "--front", ae.front, *cli_ae, *common]
    assert _cli_config(argv, AETrainConfig) == ae
    run = tmp_path / "00000-ae"
    run.mkdir()
    align = AlignmentParameters(ae_run=str(run)).alignment_config()
    argv = ["train-align", "--recipe", "aligned", "--ae-run", str(run), *common]
    assert _cli_config(argv, AlignTrainConfig) == align
    flow, gan = DecoderParameters(ae_run=str(run), align_run=str(run)).training_configs()
    epochs = ["--epochs", str(DecoderParameters.num_epochs)]
    argv = ["train-flow", "--recipe", "flow", "--ae-run", str(run), *epochs, *common]
    assert _cli_config(argv, FlowTrainConfig) == flow
    argv = ["train-gan", "--recipe", "aligned", "--ae-run", str(run), *epochs, *common]
    assert _cli_config(argv, GANTrainConfig) == gan
