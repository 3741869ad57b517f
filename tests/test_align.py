"""The audio-visual alignment stage, spectral normalisation, recipes and the stall detector."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_train import (
    AE_ARGS,
    check_run_dir,
    kill_after_checkpoint,
    run_path,
    s2i,
    write_synthetic_set,
)

from s2ilib import models
from s2ilib.train.config import AlignTrainConfig, TrainConfigError
from s2ilib.train.losses import PaperLoss, contrastive_loss, pairing_positives
from s2ilib.train.stall import StallDetector
from s2ilib.train.steps import GANStage, update_discriminator

EMBEDDING_DIM = 16


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread for every test here (see conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("align")
    write_synthetic_set(folder / "data")
    return folder


@pytest.fixture(scope="module")
def ae_run(workdir):
    return run_path(s2i(*AE_ARGS, "--desc", "for-align", cwd=workdir))


def tiny_towers(seed: int = 0):
    """A tiny audio encoder with its alignment head, and a tiny image tower."""
    torch.manual_seed(seed)
    presets = models.preset("tiny", EMBEDDING_DIM)
    autoencoder = models.AudioAutoencoder(replace(presets.autoencoder, alignment_head=True))
    image_encoder = models.ImageEncoder(models.ImageEncoderConfig(EMBEDDING_DIM, 32, 3, (8, 16)))
    return autoencoder.encoder, image_encoder


def test_alignment_head_gives_unit_mean_square_and_the_decoder_keeps_the_bottleneck():
    presets = models.preset("tiny", EMBEDDING_DIM)
    autoencoder = models.AudioAutoencoder(replace(presets.autoencoder, alignment_head=True))
    spectrograms = torch.rand(4, 1, 128, 100) * 2 - 1
    reconstruction, embeddings = autoencoder.eval()(spectrograms)
    assert reconstruction.shape == spectrograms.shape
    assert torch.allclose(embeddings.pow(2).mean(1), torch.ones(4), atol=1e-5)
    expected = autoencoder.decoder(autoencoder.encoder.bottleneck(spectrograms))
    assert torch.allclose(reconstruction, expected)
    plain = models.AudioAutoencoder(presets.autoencoder)
    assert plain.encoder.head is None  # the paper's encoder: state dict keys unchanged
    assert not any("head" in key for key in plain.state_dict())


def test_contrastive_loss_falls_on_a_fixed_batch():
    """Audio and images of 8 classes (class-specific band / colour): 40 Adam steps."""
    encoder, image_encoder = tiny_towers()
    labels = torch.arange(16) % 8
    spectrograms = torch.rand(16, 1, 128, 100) * 0.2 - 1
    for row, label in enumerate(labels.tolist()):
        spectrograms[row, 0, 10 * label : 10 * label + 12] += 1.5
    images = torch.rand(16, 3, 32, 32) * 0.2 - 1
    images[torch.arange(16), :, labels] += 1.0
    scale = torch.tensor(1 / 0.07)
    parameters = [*encoder.parameters(), *image_encoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=3e-3)
    losses = []
    for _ in range(40):
        loss = contrastive_loss(encoder(spectrograms), image_encoder(images), scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 2.0  # about log(16) = 2.77 at random
    assert losses[-1] < 0.5 * losses[0], losses[::8]


def test_contrastive_loss_is_symmetric_and_prefers_matching_pairs():
    torch.manual_seed(0)
    audio = torch.randn(6, 8)
    matched = contrastive_loss(audio, audio.clone(), torch.tensor(10.0))
    shuffled = contrastive_loss(audio, audio[torch.randperm(6)], torch.tensor(10.0))
    assert matched < 0.1 < shuffled
    images = torch.randn(6, 8)
    assert torch.allclose(
        contrastive_loss(audio, images, torch.tensor(5.0)),
        contrastive_loss(images, audio, torch.tensor(5.0)),
    )


def test_pairing_positives_stop_pushing_valid_pairs_apart():
    """With class pairing, two sounds of a class and their two images. Under "pair" the
    loss prefers embeddings that tell the two sounds of a class apart (the other image of
    the class is a negative); under "pairing" it prefers embeddings of the class alone."""
    labels = torch.tensor([0, 0, 1, 1])
    mask = pairing_positives(labels)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    by_class = torch.eye(4)[[0, 0, 1, 1]]  # the class and nothing else
    by_item = torch.eye(4)  # every sound and image its own direction
    scale = torch.tensor(10.0)
    diagonal = torch.eye(4, dtype=torch.bool)
    assert contrastive_loss(by_item, by_item, scale, diagonal) == contrastive_loss(
        by_item, by_item, scale
    )
    pair = [contrastive_loss(e, e, scale) for e in (by_class, by_item)]
    pairing = [contrastive_loss(e, e, scale, mask) for e in (by_class, by_item)]
    assert pair[1] < 0.01 < 0.6 < pair[0]  # log 2: own image and class-mate tie
    assert pairing[0] < pairing[1] - 0.5
    assert abs(pairing[0] - math.log(2)) < 0.01  # the floor: two equally likely positives


def test_align_config_checks_positives():
    with pytest.raises(TrainConfigError, match="positives"):
        AlignTrainConfig(ae_run="x", positives="labels")


def align_args(ae_run, mode: str = "finetune", steps: int = 12) -> tuple:
    return (
        "train-align", "--data", "data", "--ae-run", ae_run, "--mode", mode,
        "--steps", steps, "--batch-size", 12, "--log-every", 4, "--sample-every", 6,
        "--checkpoint-every", 6, "--val-samples", 12, "--num-samples", 4,
        "--set", "image_channels=[8,16]",
    )  # fmt: skip


def test_cli_train_align_then_gan_on_the_aligned_encoder(workdir, ae_run):
    from s2ilib.runs import load_run

    align_run = run_path(s2i(*align_args(ae_run), "--desc", "ft", cwd=workdir))
    stats = check_run_dir(align_run, "align", 12)
    assert {"val_loss", "val_pair_top1", "val_class_top1"} <= set(stats[-1])
    config = json.loads((align_run / "config.json").read_text())
    assert config["models"]["autoencoder"]["alignment_head"] is True
    loaded = load_run(align_run)
    assert loaded.kind == "align" and loaded.image_encoder is not None
    gan = run_path(
        s2i(
            "train-gan",
            "--data",
            "data",
            "--ae-run",
            align_run,
            "--steps",
            4,
            "--batch-size",
            6,
            "--checkpoint-every",
            4,
            "--val-samples",
            6,
            "--spectral-norm",
            "true",
            "--loss",
            "hinge",
            cwd=workdir,
        )  # fmt: skip
    )
    gan_run = load_run(gan)
    assert gan_run.autoencoder.encoder.head is not None
    assert gan_run.discriminator.config.spectral_norm
    aligned = loaded.autoencoder.encoder(torch.zeros(2, 1, 128, 100))
    copied = gan_run.autoencoder.encoder(torch.zeros(2, 1, 128, 100))
    assert torch.allclose(aligned, copied)  # the GAN conditions on the aligned encoder


def test_a_killed_align_run_resumes_to_the_uninterrupted_weights(workdir, ae_run):
    """SIGKILLed after a mid-run checkpoint (cosine schedule, augmentation RNG), resumed."""
    quick = ("--checkpoint-every", 2, "--keep-checkpoints")
    full = run_path(s2i(*align_args(ae_run, steps=24), *quick, "--desc", "full", cwd=workdir))
    killed = kill_after_checkpoint(
        (*align_args(ae_run, steps=24), *quick, "--desc", "killed"), workdir, 6, 24
    )
    assert run_path(s2i("train-align", "--resume", killed, cwd=workdir)) == killed
    first = torch.load(full / "checkpoints" / "last.pt", weights_only=False)["models"]
    second = torch.load(killed / "checkpoints" / "last.pt", weights_only=False)["models"]
    for network in ("autoencoder", "image_encoder"):
        for key, value in first[network].items():
            assert torch.equal(value, second[network][key]), (network, key)


def test_the_aligned_recipe_reverberates_half_the_sounds(ae_run):
    """The one recording-chain augmentation the ablation kept (RESULTS.md)."""
    from s2ilib.train.recipes import align_config

    config = align_config("aligned", ae_run)
    assert config.reverb_probability == 0.5
    assert config.noise_probability == config.band_limit_probability == 0.0
    assert align_config("aligned", ae_run, {"reverb_probability": 0}).reverb_probability == 0


def test_head_mode_leaves_the_encoder_convs_untouched(workdir, ae_run):
    """(with the "pairing" positives, so that a real run exercises them too)"""
    from s2ilib.runs import load_run
    from s2ilib.train.augment import augmentation_of_run

    args = (*align_args(ae_run, "head", 6), "--set", "positives=pairing", "--desc", "head")
    align_run = run_path(s2i(*args, cwd=workdir))
    assert json.loads((align_run / "config.json").read_text())["train"]["positives"] == "pairing"
    # what a supervised ceiling on this encoder inherits (notebook 05): the run's augmentation
    inherited = augmentation_of_run(align_run)
    assert inherited["max_frequency_warp"] == 0.15 and inherited["reverb_probability"] == 0.0
    assert augmentation_of_run(ae_run).keys() <= inherited.keys()
    before = load_run(ae_run).autoencoder.encoder.layers.state_dict()
    after = load_run(align_run).autoencoder.encoder.layers.state_dict()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key


def test_cli_train_align_rejects_a_gan_run_and_bad_modes(workdir, ae_run):
    result = s2i(*align_args(ae_run, "sideways"), cwd=workdir, check=False)
    assert result.returncode == 2 and "mode" in result.stderr
    result = s2i(*align_args(workdir / "nowhere"), cwd=workdir, check=False)
    assert result.returncode == 2 and "not a run directory" in result.stderr


@pytest.mark.slow  # 63 s: kept out of the gate (run with -m slow)
def test_alignment_improves_a_linear_probe_on_avdigits(tmp_path):
    """A briefly trained demo AE (reconstruction only) vs the same encoder aligned: linear
    probe on unseen voices. English only (about 90 training sounds per class): AV-Digits 2
    spreads its voices over 36 languages, too many for so short a training."""
    from s2ilib.datasets import open_dataset
    from s2ilib.datasets.avdigits import subset_avdigits
    from s2ilib.probes import compare_probes
    from s2ilib.runs import load_run
    from s2ilib.train.config import AETrainConfig, AlignTrainConfig, default_data_dir
    from s2ilib.train.registry import train_align, train_autoencoder

    english = subset_avdigits(default_data_dir(), tmp_path / "english", languages=["en"])
    quick = {"data": str(english), "sample_every": 10**6, "checkpoint_every": 10**6}
    ae = train_autoencoder(
        AETrainConfig.from_dict(
            {"preset": "demo", "embedding_dim": 64, "num_epochs": 3, "optimizer": "adam",
             "lr": 1e-2, **quick}
        ),
        runs_root=tmp_path, progress_bar=False,
    )  # fmt: skip
    aligned = train_align(
        AlignTrainConfig.from_dict({"ae_run": str(ae), "num_epochs": 15, "batch_size": 64, **quick}),
        runs_root=tmp_path, progress_bar=False,
    )  # fmt: skip
    data = open_dataset(english)
    train, test = data.split("train"), data.split("test")
    before = compare_probes(load_run(ae).autoencoder.encoder, train, test, max_per_split=1000)
    after = compare_probes(load_run(aligned).autoencoder.encoder, train, test, max_per_split=1000)
    # Measured: 0.124 -> 0.240 on the 2026-11-24 machine, 0.186 -> 0.230 on this session's
    # (another CPU, another float summation order in a 3-epoch AE); a lift of 0.03 holds on both.
    assert after["embedding"] > before["embedding"] + 0.03, (before, after)


def discriminator_rows(discriminator, steps: int = 6) -> list[dict]:
    """Stats rows (as the loop logs them) of `steps` paper-loss discriminator updates."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    real, fake = torch.rand(8, 3, 32, 32) * 2 - 1, torch.rand(8, 3, 32, 32) * 2 - 1
    embeddings = torch.rand(8, EMBEDDING_DIM) * 2 - 1
    stage = GANStage(None, None, discriminator, None, optimizer, PaperLoss())
    rows = []
    for step in range(1, steps + 1):
        stats = update_discriminator(stage, real, fake, embeddings)
        rows.append({"step": step, **{k: float(v) for k, v in stats.items()}})
    return rows


class ConstantDiscriminator(torch.nn.Module):
    """Scores every pair 0.3 whatever it sees (one parameter that cannot change that)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images, embeddings):
        return torch.full((len(images),), 0.3) + 0.0 * self.weight


def test_stall_detector_fires_on_a_constant_discriminator():
    rows = discriminator_rows(ConstantDiscriminator())
    assert all(abs(row["d_loss"] - 1.0) < 1e-6 for row in rows)  # the paper loss at a stall
    detector = StallDetector(window=5)
    fired = [detector.observe(row) for row in rows]
    assert fired[:4] == [None] * 4 and "discriminator stalled at step 5" in fired[4]
    assert fired[5] is None  # once per stall
    assert detector.stalls == 1


def test_stall_detector_stays_quiet_while_the_discriminator_learns():
    discriminator = models.Discriminator(models.preset("tiny", EMBEDDING_DIM).discriminator)
    rows = discriminator_rows(discriminator, steps=8)
    detector = StallDetector(window=5)
    assert [detector.observe(row) for row in rows] == [None] * 8
    assert StallDetector(window=0).observe(rows[0]) is None  # off


def test_the_loop_logs_and_raises_observed_warnings(tmp_path):
    """A task's observe() warnings go to log.txt and come as TrainingWarning."""
    from s2ilib.runs import RunLog
    from s2ilib.train.engine import TrainingWarning, log_observations

    class Task:
        detector = StallDetector(window=2)

        def observe(self, row):
            warning = self.detector.observe(row)
            return [warning] if warning else []

    log = RunLog(tmp_path, tensorboard=False)
    row = {"d_loss": 1.0, "real_score": 0.2, "fake_score": 0.2}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = log_observations(Task(), {"step": 1, **row}, log)
        second = log_observations(Task(), {"step": 2, **row}, log)
    log.close()
    assert first == [] and len(second) == 1
    assert [w.category for w in caught] == [TrainingWarning]
    assert "warning: discriminator stalled at step 2" in (tmp_path / "log.txt").read_text()


def test_the_gan_task_feeds_its_stall_detector():
    """The GAN task's observe() is the stall detector (the engine calls it every stats row)."""
    from s2ilib.train.gan import GANTask

    task = GANTask.__new__(GANTask)  # only what observe() reads
    task.stall_detector = StallDetector(window=2)
    row = {"d_loss": 1.0, "real_score": 0.2, "fake_score": 0.2}
    assert task.observe({"step": 1, **row}) == []
    assert "discriminator stalled at step 2" in task.observe({"step": 2, **row})[0]


def test_spectral_norm_bounds_the_discriminator_weights():
    config = replace(models.preset("tiny", EMBEDDING_DIM).discriminator, spectral_norm=True)
    discriminator = models.Discriminator(config).train()
    images, embeddings = torch.rand(4, 3, 32, 32), torch.rand(4, EMBEDDING_DIM)
    for _ in range(3):  # power iterations converge as the network runs
        discriminator(images, embeddings)
    first = discriminator.features[0][0]
    sigma = torch.linalg.matrix_norm(first.weight.detach().flatten(1), ord=2)
    assert abs(float(sigma) - 1.0) < 0.2
    assert np.isfinite(discriminator(images, embeddings).detach().numpy()).all()


def test_augmentations_keep_shape_range_and_silence():
    from s2ilib.train.augment import (
        AugmentSettings,
        augment_spectrograms,
        change_gain,
        mask_span,
        shift_in_time,
        warp,
    )

    torch.manual_seed(0)
    batch = torch.full((6, 1, 128, 100), -1.0)
    batch[:, :, 90:110, 30:70] = 0.5  # a word: a low band in the middle of the second
    out = augment_spectrograms(batch, AugmentSettings(max_masked_bands=16, max_masked_frames=10))
    assert out.shape == batch.shape and out.min() >= -1 and out.max() <= 1
    assert (out > -1).any(dim=(1, 2, 3)).all()  # no sound is wiped out
    quiet = change_gain(batch, 6.0)
    assert torch.equal(quiet == -1, batch == -1)  # silence stays silent, the word moves
    assert not torch.equal(quiet, batch)
    shifted = shift_in_time(batch, 10)
    assert torch.equal(shifted.sum((2, 3)), batch.sum((2, 3)))  # the word stays inside
    masked = mask_span(batch, 20, axis=-2)
    assert (masked <= batch).all()
    assert torch.allclose(warp(batch, 0.0, 0.0), batch, atol=1e-5)  # identity at no warp
    low = torch.full((6, 1, 128, 100), -1.0)
    low[:, :, 100:, 30:70] = 0.5  # energy down to the lowest band
    warped = warp(low, 0.3, 0.0)
    assert torch.allclose(warped[:, :, -1], low[:, :, -1], atol=1e-5)  # lowest band anchored
    assert not torch.allclose(warped, low)  # the band's upper edge moved


def test_augmentation_is_reproducible_from_the_torch_seed():
    from s2ilib.train.augment import AugmentSettings, augment_spectrograms

    batch = torch.rand(4, 1, 128, 100) * 2 - 1
    torch.manual_seed(3)
    first = augment_spectrograms(batch, AugmentSettings(max_masked_bands=16, max_masked_frames=10))
    torch.manual_seed(3)
    assert torch.equal(
        first,
        augment_spectrograms(batch, AugmentSettings(max_masked_bands=16, max_masked_frames=10)),
    )


def test_standardised_embedding_has_zero_mean_and_unit_std_on_its_statistics():
    presets = models.preset("tiny", EMBEDDING_DIM)
    config = replace(presets.autoencoder, standardise_embedding=True)
    encoder = models.AudioAutoencoder(config).encoder.eval()
    spectrograms = torch.rand(32, 1, 128, 100) * 2 - 1
    with torch.no_grad():
        raw = encoder(spectrograms)  # buffers start at mean 0, std 1: raw embeddings
        encoder.set_standardisation(raw)
        standardised = encoder(spectrograms)
    assert torch.allclose(standardised.mean(0), torch.zeros(EMBEDDING_DIM), atol=1e-4)
    spread = raw.std(0) > 1e-3  # coordinates the floor leaves alone
    assert torch.allclose(standardised.std(0)[spread], torch.ones(int(spread.sum())), atol=1e-3)
    assert {"embedding_mean", "embedding_std"} <= set(encoder.state_dict())


def test_band_normalisation_ignores_a_fixed_spectral_colouring():
    presets = models.preset("tiny", EMBEDDING_DIM)
    encoder = models.AudioAutoencoder(replace(presets.autoencoder, normalise_bands=True))
    encoder = encoder.encoder.eval()
    spectrograms = torch.rand(3, 1, 128, 100) - 0.5
    colouring = torch.linspace(-0.3, 0.3, 128)[None, None, :, None]  # a tilt per band
    with torch.no_grad():
        assert torch.allclose(encoder(spectrograms), encoder(spectrograms + colouring), atol=1e-5)


def test_recipes_build_configs_on_the_right_run():
    from s2ilib.errors import S2IError
    from s2ilib.train.recipes import align_config, gan_config

    assert align_config("paper", "runs/ae") is None
    aligned = align_config("aligned", "runs/ae", {"num_epochs": 3})
    assert (aligned.ae_run, aligned.num_epochs, aligned.mode) == ("runs/ae", 3, "finetune")
    paper = gan_config("paper", "runs/ae", "", {"num_epochs": 2})
    assert (paper.ae_run, paper.loss, paper.num_epochs) == ("runs/ae", "paper", 2)
    ours = gan_config("aligned", "runs/ae", "runs/align", {"loss": "hinge"})
    assert (ours.ae_run, ours.loss) == ("runs/align", "hinge")
    with pytest.raises(S2IError, match="needs an alignment run"):
        gan_config("aligned", "runs/ae", "")
    with pytest.raises(S2IError, match="unknown recipe"):
        gan_config("fancy", "runs/ae", "")


# --------------------------------------------------------------------------------------
# The simulated recording chain (train.augment)
# --------------------------------------------------------------------------------------


def _click(count: int = 8) -> torch.Tensor:
    """Silence with one loud broadband frame (frame 20) and a quiet band (row 64)."""
    batch = torch.full((count, 1, 128, 100), -1.0)
    batch[:, :, :, 20] = 0.8
    batch[:, :, 64, 30:60] = -0.2
    return batch


def test_the_recording_chain_is_off_by_default_and_draws_nothing():
    from s2ilib.train.augment import AugmentSettings, record

    torch.manual_seed(0)
    state = torch.get_rng_state()
    batch = _click()
    assert record(batch, AugmentSettings()) is batch
    assert torch.equal(torch.get_rng_state(), state)


def test_each_part_of_the_recording_chain_does_what_it_says():
    from s2ilib.train import augment
    from s2ilib.train.augment import AugmentSettings, record

    torch.manual_seed(0)
    clean = _click()
    db = augment.to_db(clean)
    everyone = torch.ones(len(clean), 1, 1, 1, dtype=torch.bool)
    reverberant = augment.reverberate(db, everyone)
    assert (reverberant[:, :, :60, 21:25] > db[:, :, :60, 21:25] + 1).all()  # a tail
    assert (reverberant[..., :20] - db[..., :20]).abs().max() < 1e-3  # nothing before it
    noisy = augment.add_noise(db, everyone)
    assert (noisy >= db - 1e-4).all()
    assert (noisy[:, :, 112:, 80:] > augment.FLOOR_DB + 1).all()  # the lowest bands, silent before
    squashed = augment.saturate(db, everyone)
    assert (squashed.amax(dim=(-2, -1)) <= db.amax(dim=(-2, -1)) - 0.75 * 3 + 1e-4).all()
    assert torch.equal(squashed[..., 70:], db[..., 70:])  # quiet parts untouched
    limited = augment.limit_band(db, everyone)
    frequency = augment.band_frequencies(128, "cpu").flatten()
    top = (
        int(torch.nonzero(frequency > 2 * augment.LOWPASS_HZ[1]).max())
        if (frequency > 2 * augment.LOWPASS_HZ[1]).any()
        else 0
    )
    assert (limited[:, :, : top + 1, 20] <= db[:, :, : top + 1, 20] - 23.9).all() or top == 0
    assert (limited[:, :, 2, 20] < db[:, :, 2, 20]).all()  # the top rows (~8 kHz) cut
    settings = AugmentSettings(reverb_probability=1, noise_probability=1, clip_probability=1,
                               band_limit_probability=1)  # fmt: skip
    out = record(clean, settings)
    assert out.shape == clean.shape and out.min() >= -1 and out.max() <= 1
    assert torch.isfinite(out).all() and not torch.equal(out, clean)
    half = record(_click(400), AugmentSettings(noise_probability=0.5))
    changed = (half != _click(400)).flatten(1).any(1).float().mean()
    assert 0.4 < changed < 0.6  # the share asked for
