"""Multi-process training under torchrun: real processes (2 ranks, gloo on the CPU).

The reference for "DDP trains what one process would" is a single process that computes
what the two ranks compute: the global batch cut into the same two slices, BatchNorm over
each slice alone (ghost batches), each slice's dropout masks from that rank's random
stream, the two gradients averaged, and rank 0's BatchNorm running statistics (DDP
broadcasts rank 0's buffers). It runs through the library's own loop (start_run), with a
task whose train_step does this emulation, so data order, schedule and checkpoints are the
library's. One process normalising over the whole batch would NOT be comparable: BatchNorm
statistics of a half batch differ from those of the full batch.

Tolerance: DDP divides each rank's gradient by 2 and sums them in gloo's all-reduce, the
emulation accumulates loss / 2 in autograd; float32 sums in another order could differ in
the last bits and a few optimiser steps carry that along, so the weights are compared to
ATOL + RTOL * |w|. Measured on torch 2.11 / gloo: identical (difference 0.0) for both AE
and GAN. For scale, a plain single process (BatchNorm over the whole batch, one dropout
stream) ends 1.5 (AE) and 0.023 (GAN) away, and a wrong rank-1 stream 2.9 and 0.016.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from s2ilib.datasets.avdigits import AVDIGITS_DIR
from s2ilib.distributed import rank_seed
from s2ilib.runs import load_checkpoint
from s2ilib.train.augment import augment_spectrograms
from s2ilib.train.losses import contrastive_loss, pixel_loss, reconstruction_loss
from s2ilib.train.steps import gradient_norm, score_pairs

REPO = Path(__file__).resolve().parents[1]
WORLD = 2
EMBEDDING_DIM = 32
STEPS = 6  # 40 sounds / batch 8: epoch 0 has 5 steps, so the run crosses an epoch
# Float32 round-off of another summation order (see above; measured: none at all), far
# below what a wrong slice, whole-batch BatchNorm or a wrong dropout stream gives (>= 0.01).
ATOL, RTOL = 1e-5, 1e-5

COMMON = (
    "--preset", "tiny", "--limit-per-class", 4, "--steps", STEPS, "--batch-size", 8,
    "--log-every", 2, "--sample-every", STEPS, "--checkpoint-every", 2, "--keep-checkpoints",
    "--val-samples", 6, "--num-samples", 3,
)  # fmt: skip

pytestmark = pytest.mark.skipif(
    not (AVDIGITS_DIR / "manifest.csv").is_file(), reason=f"AV-Digits not built in {AVDIGITS_DIR}"
)


def torchrun(*args, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 -m s2ilib ARGS`, one thread per process."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={WORLD}", "-m", "s2ilib", *map(str, args), "--no-progress",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"torchrun {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


def run_path(result) -> Path:
    """The run directory of the one `run: <path>` line (rank 0 alone prints it)."""
    lines = [line for line in result.stdout.splitlines() if line.startswith("run: ")]
    assert len(lines) == 1, result.stdout
    return Path(lines[0][len("run: ") :])


def final_models(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["models"]


def max_excess(first: dict, second: dict) -> float:
    """Largest |a - b| - RTOL * |b| over every network's weights and buffers (<= ATOL: ok)."""
    assert first.keys() == second.keys()
    worst = 0.0
    for network in first:
        assert first[network].keys() == second[network].keys()
        for name, a in first[network].items():
            b = second[network][name]
            if a.is_floating_point():
                worst = max(worst, ((a - b).abs() - RTOL * b.abs()).max().item())
            else:
                assert torch.equal(a, b), f"{network}.{name}"
    return worst


def assert_identical(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for network in first:
        for name, tensor in first[network].items():
            assert torch.equal(tensor, second[network][name]), f"{network}.{name} differs"


def stats(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------------------
# The single-process emulation of two ranks
# --------------------------------------------------------------------------------------


class EmulatedRanks:
    """The random streams and BatchNorm buffers of WORLD ranks, in one process.

    Rank 0's stream is the process's own (a DDP rank 0 keeps the single-process stream);
    rank r > 0 starts from torch.manual_seed(rank_seed(seed, r)), as distributed.seed_rank
    seeds it. Rank r > 0 runs a network on copies of its buffers: the running statistics it
    updates are thrown away (DDP broadcasts rank 0's), and rank 0's autograd graph, which
    saved the real buffers, stays valid.
    """

    def __init__(self, seed: int):
        self.states = {
            r: torch.Generator().manual_seed(rank_seed(seed, r)).get_state()
            for r in range(1, WORLD)
        }

    @contextlib.contextmanager
    def rank(self, rank: int, network: torch.nn.Module):
        """`network` as rank `rank` runs it, with that rank's random stream current."""
        if rank == 0:
            yield network
            return
        buffers = {name: value.clone() for name, value in network.named_buffers()}
        main_state = torch.get_rng_state()
        torch.set_rng_state(self.states[rank])
        try:
            yield lambda *inputs: torch.func.functional_call(network, buffers, inputs)
        finally:
            self.states[rank] = torch.get_rng_state()
            torch.set_rng_state(main_state)


def emulated_ae_task():
    from s2ilib.train.ae import AETask

    class EmulatedAETask(AETask):
        """AETask whose step is the two ranks' step (ghost-batch BatchNorm, rank streams)."""

        def optimize_parameters(self, batch) -> dict:
            if not hasattr(self, "ranks"):
                self.ranks = EmulatedRanks(self.config.seed)
            self.stage.optimizer.zero_grad(set_to_none=True)
            losses = []
            for rank, shard in enumerate(batch[0].chunk(WORLD)):
                with self.ranks.rank(rank, self.autoencoder) as autoencoder:
                    reconstruction, _ = autoencoder(shard)
                    loss = reconstruction_loss(reconstruction, shard)
                (loss / WORLD).backward()  # DDP: the mean of the ranks' gradients
                losses.append(loss.detach())
            grad_norm = gradient_norm(self.autoencoder)
            self.stage.optimizer.step()
            return {"loss": torch.stack(losses).mean(), "grad_norm": grad_norm}

    return EmulatedAETask


def emulated_gan_task():
    from s2ilib.train.gan import GANTask

    class EmulatedGANTask(GANTask):
        """GANTask whose step is the two ranks' step: G forward, D step, G step, each
        rank on its slice with its stream; the loss's averages follow the global batch."""

        def optimize_parameters(self, batch) -> dict:
            if not hasattr(self, "ranks"):
                self.ranks = EmulatedRanks(self.config.seed)
            stage = self.stage
            embeddings, images, _ = batch  # the training set serves the sounds' embeddings
            embeddings = embeddings.chunk(WORLD)
            real = images.chunk(WORLD)
            fakes = []
            for rank in range(WORLD):
                with self.ranks.rank(rank, self.generator) as rank_generator:
                    fakes.append(rank_generator(embeddings[rank]))
            stage.discriminator_optimizer.zero_grad(set_to_none=True)
            real_scores, fake_scores, d_losses = [], [], []
            for rank in range(WORLD):
                with self.ranks.rank(rank, self.discriminator) as rank_discriminator:
                    real_s, fake_s = score_pairs(
                        replace(stage, discriminator=rank_discriminator),
                        real[rank], fakes[rank].detach(), embeddings[rank],
                    )  # fmt: skip
                    loss = stage.loss.discriminator_loss(real_s, fake_s)
                (loss / WORLD).backward()
                real_scores.append(real_s.detach())
                fake_scores.append(fake_s.detach())
                d_losses.append(loss.detach())
            stage.discriminator_optimizer.step()
            stage.loss.update(torch.cat(real_scores), torch.cat(fake_scores))
            return {
                "d_loss": torch.stack(d_losses).mean(),
                "real_score": torch.cat(real_scores).mean(),  # the stall detector reads these
                "fake_score": torch.cat(fake_scores).mean(),
                "g_loss": self.generator_step(real, fakes, embeddings),
            }

        def generator_step(self, real, fakes, embeddings) -> torch.Tensor:
            stage = self.stage
            stage.generator_optimizer.zero_grad(set_to_none=True)
            self.discriminator.requires_grad_(False)
            g_losses = []
            for rank in range(WORLD):
                with self.ranks.rank(rank, self.discriminator) as rank_discriminator:
                    _, fake_s = score_pairs(
                        replace(stage, discriminator=rank_discriminator),
                        real[rank], fakes[rank], embeddings[rank],
                    )  # fmt: skip
                adversarial = stage.loss.generator_loss(fake_s)
                pixel = pixel_loss(fakes[rank], real[rank])
                loss = stage.adversarial_weight * adversarial + stage.pixel_weight * pixel
                (loss / WORLD).backward()
                g_losses.append(loss.detach())
            self.discriminator.requires_grad_(True)
            stage.generator_optimizer.step()
            return torch.stack(g_losses).mean()

    return EmulatedGANTask


def emulated_align_task():
    from s2ilib.train.align import AlignTask

    class EmulatedAlignTask(AlignTask):
        """AlignTask whose step is the two ranks' step: each rank augments and embeds its
        slice (its stream, ghost-batch BatchNorm), the embeddings are gathered and the
        contrastive loss is that of the whole global batch."""

        def optimize_parameters(self, batch) -> dict:
            if not hasattr(self, "ranks"):
                self.ranks = EmulatedRanks(self.config.seed)
            spectrograms, images, labels = batch
            audio, image = [], []
            for rank, (sounds, pictures) in enumerate(
                zip(spectrograms.chunk(WORLD), images.chunk(WORLD), strict=True)
            ):
                with self.ranks.rank(rank, self.pair) as pair:
                    augmented = augment_spectrograms(sounds, self.stage.augment)
                    rank_audio, rank_image, scale = pair(augmented, pictures)
                audio.append(rank_audio)
                image.append(rank_image)
            positives = self.positives(labels)
            loss = contrastive_loss(torch.cat(audio), torch.cat(image), scale, positives)
            self.stage.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = gradient_norm(self.pair.audio_encoder)
            self.stage.optimizer.step()
            return {"loss": loss.detach(), "grad_norm": grad_norm.detach()}

    return EmulatedAlignTask


@pytest.fixture
def one_thread(monkeypatch):
    """The in-process reference on one thread, as each torchrun process (and steadier)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


SHORT = dict(
    data=str(AVDIGITS_DIR), limit_per_class=4, num_steps=STEPS, batch_size=8, log_every=2,
    sample_every=STEPS, checkpoint_every=2, val_samples=6, num_samples=3,
)  # fmt: skip


def emulated_run(task_class, config, root: Path) -> Path:
    """A run of `task_class` (an emulation) through the library's own engine."""
    from s2ilib.train import engine

    plan = task_class.plan(config)
    return engine.start(task_class, plan, root, "emulated", device="cpu", progress_bar=False)


def emulated_ae_run(root: Path) -> Path:
    from s2ilib.train.config import AETrainConfig

    config = AETrainConfig(preset="tiny", embedding_dim=EMBEDDING_DIM, **SHORT)
    return emulated_run(emulated_ae_task(), config, root)


def emulated_gan_run(root: Path, ae_run: Path) -> Path:
    from s2ilib.train.config import GANTrainConfig

    config = GANTrainConfig(ae_run=str(ae_run), loss="moving_average", **SHORT)
    return emulated_run(emulated_gan_task(), config, root)


def emulated_align_run(root: Path, ae_run: Path) -> Path:
    from s2ilib.train.config import AlignTrainConfig

    config = AlignTrainConfig(ae_run=str(ae_run), image_channels=(8, 16), **SHORT)
    return emulated_run(emulated_align_task(), config, root)


# --------------------------------------------------------------------------------------
# Runs shared by the tests
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ddp")


@pytest.fixture(scope="module")
def ddp_ae(workdir) -> tuple[Path, subprocess.CompletedProcess]:
    """A 2-rank tiny autoencoder run of STEPS steps, in its own runs root."""
    result = torchrun(
        "train-ae", *COMMON, "--embedding-dim", EMBEDDING_DIM, "--runs-root", "ae_runs",
        "--desc", "ddp", cwd=workdir,
    )  # fmt: skip
    return run_path(result), result


def gan_args(ae_run: Path, steps: int = STEPS) -> tuple:
    common = list(COMMON)
    common[common.index("--steps") + 1] = steps
    return ("train-gan", "--ae-run", ae_run, "--loss", "moving_average", *common)


@pytest.fixture(scope="module")
def ddp_gan(workdir, ddp_ae) -> Path:
    """A 2-rank tiny GAN run of STEPS steps on the DDP autoencoder."""
    return run_path(torchrun(*gan_args(ddp_ae[0]), "--desc", "ddp", cwd=workdir))


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_ddp_ae_matches_the_single_process_emulation(workdir, ddp_ae, one_thread):
    ddp_run, _ = ddp_ae
    reference = emulated_ae_run(workdir / "reference_runs")
    excess = max_excess(final_models(ddp_run), final_models(reference))
    assert excess <= ATOL, f"weights differ by up to {excess + ATOL:.3g}"
    ddp_stats, reference_stats = stats(ddp_run), stats(reference)
    assert [r["step"] for r in ddp_stats] == [r["step"] for r in reference_stats] == [2, 4, 6]
    for ours, theirs in zip(ddp_stats, reference_stats, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=RTOL, abs=ATOL)
    assert ddp_stats[-1]["val_loss"] == pytest.approx(reference_stats[-1]["val_loss"], abs=ATOL)


def test_only_rank_0_writes_the_run_directory(workdir, ddp_ae):
    run_dir, result = ddp_ae
    assert [p.name for p in (workdir / "ae_runs").iterdir()] == [run_dir.name]
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    checkpoints = [f"checkpoints/step_{s:07d}.pt" for s in (2, 4, 6)]
    expected = [".lock", "checkpoints/last.pt", *checkpoints, "config.json", "environment.json"]
    expected += ["log.txt", f"samples/step_{STEPS:07d}.png", "stats.jsonl"]
    assert [f for f in files if not f.startswith("events.")] == sorted(expected)
    assert len([f for f in files if f.startswith("events.out.tfevents.")]) == 1
    assert [r["step"] for r in stats(run_dir)] == [2, 4, 6]  # one line per log, not two
    log = (run_dir / "log.txt").read_text()
    assert log.count("started on cpu") == 1 and log.count("finished at step") == 1
    assert "world size 2, per-rank batch 4, global batch 8, lr autoencoder 0.05" in log
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["world_size"] == 2 and environment["backend"] == "gloo"
    assert environment["per_rank_batch"] == 4 and environment["global_batch"] == 8
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and len(state["rng_by_rank"]) == 2
    streams = [rng["torch"] for rng in state["rng_by_rank"]]
    assert torch.equal(streams[0], state["rng"]["torch"]) and not torch.equal(*streams)


@pytest.mark.slow
def test_ddp_gan_matches_the_single_process_emulation(workdir, ddp_ae, ddp_gan, one_thread):
    reference = emulated_gan_run(workdir / "reference_runs", ddp_ae[0])
    excess = max_excess(final_models(ddp_gan), final_models(reference))
    assert excess <= ATOL, f"weights differ by up to {excess + ATOL:.3g}"
    ddp_state = load_checkpoint(ddp_gan / "checkpoints" / "last.pt")
    reference_state = load_checkpoint(reference / "checkpoints" / "last.pt")
    for name in ("real_average", "fake_average"):  # the moving averages: global batch
        assert ddp_state["loss_state"][name].item() == pytest.approx(
            reference_state["loss_state"][name].item(), abs=ATOL
        )
    for ours, theirs in zip(stats(ddp_gan), stats(reference), strict=True):
        assert ours["d_loss"] == pytest.approx(theirs["d_loss"], rel=RTOL, abs=ATOL)
        assert ours["g_loss"] == pytest.approx(theirs["g_loss"], rel=RTOL, abs=ATOL)


@pytest.mark.slow
def test_ddp_gan_resumes_to_the_uninterrupted_weights(workdir, ddp_ae, ddp_gan):
    # Stop a 2-rank run at step 4 (inside epoch 0), let its config ask for STEPS, resume it
    # under torchrun: it must end where the uninterrupted 2-rank run ended, bit for bit.
    stopped = run_path(torchrun(*gan_args(ddp_ae[0], steps=4), "--desc", "stopped", cwd=workdir))
    config_path = stopped / "config.json"
    document = json.loads(config_path.read_text())
    document["train"]["num_steps"] = STEPS  # the constant schedule does not depend on it
    config_path.write_text(json.dumps(document))
    resumed = run_path(torchrun("train-gan", "--resume", stopped, cwd=workdir))
    assert resumed == stopped
    assert_identical(final_models(ddp_gan), final_models(stopped))
    ours = load_checkpoint(stopped / "checkpoints" / "last.pt")
    theirs = load_checkpoint(ddp_gan / "checkpoints" / "last.pt")
    assert ours["loss_state"]["updates"] == STEPS
    assert ours["loss_state"]["real_average"] == theirs["loss_state"]["real_average"]
    resumed_stats = [(r["step"], r["d_loss"], r["g_loss"]) for r in stats(stopped)]
    assert resumed_stats[-1] == [(r["step"], r["d_loss"], r["g_loss"]) for r in stats(ddp_gan)][-1]
    assert re.search(r"resumed at step 4 on cpu", (stopped / "log.txt").read_text())


@pytest.mark.slow
def test_ddp_imagine_recipe_trains_its_code_encoder_on_every_rank(workdir, ddp_ae):
    """Recipe imagine under torchrun: the code encoder is DDP-wrapped with the generator
    (its gradients averaged over the ranks), checkpointed, and a 2-rank run resumed from
    step 4 ends where an uninterrupted one ends."""
    args = (*gan_args(ddp_ae[0]), "--recipe", "imagine", "--loss", "non_saturating")
    whole = run_path(torchrun(*args, "--desc", "imagine", cwd=workdir))
    state = load_checkpoint(whole / "checkpoints" / "last.pt")
    assert "code_encoder" in state["models"] and all(row["g_kl"] > 0 for row in stats(whole))
    stopped_args = list(args)
    stopped_args[stopped_args.index("--steps") + 1] = 4
    stopped = run_path(torchrun(*stopped_args, "--desc", "imagine-stopped", cwd=workdir))
    config_path = stopped / "config.json"
    document = json.loads(config_path.read_text())
    document["train"]["num_steps"] = STEPS
    config_path.write_text(json.dumps(document))
    run_path(torchrun("train-gan", "--resume", stopped, cwd=workdir))
    assert_identical(final_models(whole), final_models(stopped))
    # BicycleGAN's cLR half on 2 ranks (4 rows each: 2 encoded, 2 drawn): the read-back
    # pass goes through the unwrapped code encoder, outside DDP's gradient reduction.
    clr = run_path(torchrun(*args, "--latent-weight", 0.5, "--desc", "imagine-clr", cwd=workdir))
    assert all(row["g_latent"] > 0 for row in stats(clr))


@pytest.mark.slow
def test_a_bare_second_forward_still_gets_ddp_averaged_gradients(tmp_path):
    """What the cLR half relies on (steps.generate_halves): the drawn rows' forward bypasses
    DDP, yet their gradients are averaged over the ranks with the first forward's."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={WORLD}", str(REPO / "tests" / "ddp_bare_forward.py"),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_ddp_align_matches_the_single_process_emulation(workdir, ddp_ae, one_thread):
    """The alignment stage under torchrun: every rank's embeddings gathered, the contrastive
    loss over the whole global batch, DDP's averaged gradients."""
    without_preset = COMMON[2:]  # an align run takes its AE run's preset
    ddp_align = run_path(torchrun(
        "train-align", "--ae-run", ddp_ae[0], *without_preset, "--set", "image_channels=[8,16]",
        "--desc", "ddp", cwd=workdir,
    ))  # fmt: skip
    reference = emulated_align_run(workdir / "reference_runs", ddp_ae[0])
    excess = max_excess(final_models(ddp_align), final_models(reference))
    assert excess <= ATOL, f"weights differ by up to {excess + ATOL:.3g}"
    for ours, theirs in zip(stats(ddp_align), stats(reference), strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=RTOL, abs=ATOL)


@pytest.mark.slow
def test_settings_a_world_cannot_train_with_fail_before_any_file(workdir):
    uneven = torchrun(
        "train-ae", *COMMON, "--batch-size", 7, "--runs-root", "bad_runs", cwd=workdir, check=False
    )
    assert uneven.returncode != 0
    assert "batch_size 7 is not a multiple of the world size 2" in uneven.stderr
    sync_bn = torchrun(
        "train-ae", *COMMON, "--set", "sync_batchnorm=true", "--runs-root", "bad_runs",
        cwd=workdir, check=False,
    )  # fmt: skip
    assert sync_bn.returncode != 0 and "sync_batchnorm needs CUDA" in sync_bn.stderr
    assert not (workdir / "bad_runs").exists() or not list((workdir / "bad_runs").iterdir())


def test_ddp_leaves_the_unsaved_buffers_of_a_frozen_front_alone(tmp_path):
    """A non-persistent buffer (the whisper front's weights) is neither broadcast nor
    checked by DDP; the persistent ones (BatchNorm statistics) still are."""
    import torch.distributed as dist
    from torch import nn

    from s2ilib.distributed import data_parallel, non_persistent_buffers

    class Front(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("weights", torch.ones(3), persistent=False)
            self.norm = nn.BatchNorm1d(3)
            self.linear = nn.Linear(3, 3)

    network = nn.Sequential(Front())
    assert non_persistent_buffers(network) == ["0.weights"]
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        wrapped = data_parallel(network)
        assert wrapped.parameters_to_ignore == {"0.weights"}
        assert "0.norm.running_mean" in {name for name, _ in network.named_buffers()}
    finally:
        dist.destroy_process_group()
