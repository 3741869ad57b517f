"""The training fast path (bf16 autocast, channels_last, torch.compile with an eager fallback,
fused Adam, resident data) against reference mode, on the CPU."""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from s2ilib.datasets import open_dataset
from s2ilib.datasets.torch_data import PairedDataset
from s2ilib.formats import format_name, write_spec_image_bin
from s2ilib.models import AudioAutoencoder, DenseGenerator, Discriminator, preset
from s2ilib.train import fastpath
from s2ilib.train.config import AETrainConfig, GANTrainConfig, TrainConfigError
from s2ilib.train.fastpath import FastPath
from s2ilib.train.losses import PaperLoss
from s2ilib.train.steps import AEStage, GANStage, ae_step, embed_sounds, gan_step

REPO = Path(__file__).resolve().parents[1]
BF16_AND_NHWC = FastPath(bf16=True, channels_last=True)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread for every test here (see conftest.one_torch_thread)."""


def demo_networks(seed: int = 0):
    """Demo-preset autoencoder, generator and discriminator (the widths a CPU run trains)."""
    torch.manual_seed(seed)
    presets = preset("demo", 128)
    return (
        AudioAutoencoder(presets.autoencoder),
        DenseGenerator(presets.generator),
        Discriminator(presets.discriminator),
    )


def fixed_batch(count: int = 8, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    spectrograms = torch.rand(count, 1, 128, 100, generator=generator) * 2 - 1
    images = torch.rand(count, 3, 32, 32, generator=generator) * 2 - 1
    return spectrograms, images


def relative_error(fast: torch.Tensor, reference: torch.Tensor) -> float:
    return float((fast.float() - reference).norm() / reference.norm())


# --------------------------------------------------------------------------------------
# Settings and config
# --------------------------------------------------------------------------------------


def test_modes_resolve_per_device():
    config = AETrainConfig()
    assert fastpath.resolve_fast_path(config, "cpu") == fastpath.REFERENCE  # auto: CPU = reference
    on = fastpath.resolve_fast_path(config.updated({"fast_path": "on"}), "cpu")
    assert on.enabled == ["bf16", "channels_last", "compile", "fused_adam"]  # no resident on CPU
    chosen = config.updated({"fast_path": "on", "fast_path_features": ["bf16"]})
    assert fastpath.resolve_fast_path(chosen, "cpu").enabled == ["bf16"]
    off = config.updated({"fast_path": "off"})
    assert fastpath.resolve_fast_path(off, "cpu") == fastpath.REFERENCE
    assert "reference mode" in fastpath.describe(fastpath.REFERENCE)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"fast_path": "fast"}, "fast_path = 'fast': expected one of auto, on, off"),
        ({"fast_path": True}, "expected str"),
        ({"fast_path_features": ["bf16", "fp8"]}, "unknown 'fp8'"),
        ({"fast_path_features": "bf16"}, "expected tuple"),
    ],
)
def test_config_rejects_bad_fast_path_settings(values, message):
    for config_class in (AETrainConfig, GANTrainConfig):
        with pytest.raises(TrainConfigError, match=message):
            config_class.from_dict(values)


def test_cli_reference_mode_flag_sets_fast_path_off():
    from s2ilib.cli import build_parser
    from s2ilib.cli.train import _config_values

    parser = build_parser()
    args = parser.parse_args(["train-ae", "--reference-mode"])
    assert _config_values(args, AETrainConfig)["fast_path"] == "off"
    args = parser.parse_args(["train-gan", "--fast-path", "on"])
    assert _config_values(args, GANTrainConfig)["fast_path"] == "on"


# --------------------------------------------------------------------------------------
# Numerics: bf16 autocast + channels_last against fp32 reference, on a fixed batch
# --------------------------------------------------------------------------------------


def test_forwards_match_reference_within_bf16_tolerance():
    autoencoder, generator, _ = demo_networks()
    spectrograms, _ = fixed_batch()
    for network in (autoencoder, generator):
        network.eval()
    with torch.no_grad():
        reconstruction, embeddings = autoencoder(spectrograms)
        images = generator(embeddings)
    fast = fastpath.prepare_networks(
        {"autoencoder": copy.deepcopy(autoencoder), "generator": copy.deepcopy(generator)},
        BF16_AND_NHWC,
        "cpu",
    )
    autocast = fastpath.autocast_context(BF16_AND_NHWC, "cpu")
    with torch.no_grad(), autocast():
        fast_reconstruction, fast_embeddings = fast["autoencoder"](spectrograms)
        fast_images = fast["generator"](embeddings)
    assert fast_images.is_contiguous(memory_format=torch.channels_last)
    assert fast_images.dtype == torch.bfloat16  # the forward really ran in bf16
    # bf16 keeps 8 mantissa bits (relative step 2^-8 = 0.4%); 26 layers accumulate a few.
    assert relative_error(fast_embeddings, embeddings) < 0.05
    assert relative_error(fast_reconstruction, reconstruction) < 0.05
    assert relative_error(fast_images, images) < 0.05
    assert (fast_images.float() - images).abs().max() < 0.1


def test_one_training_step_loss_matches_reference():
    autoencoder, generator, discriminator = demo_networks()
    spectrograms, images = fixed_batch()
    reference_ae, fast_ae = autoencoder, copy.deepcopy(autoencoder)
    autocast = fastpath.autocast_context(BF16_AND_NHWC, "cpu")
    fast_ae = fastpath.prepare_networks({"ae": fast_ae}, BF16_AND_NHWC, "cpu")["ae"]
    torch.manual_seed(1)
    reference = ae_step(
        AEStage(reference_ae, torch.optim.SGD(reference_ae.parameters(), lr=0.01)), spectrograms
    )
    torch.manual_seed(1)
    fused = fastpath.make_adam(fast_ae.parameters(), FastPath(fused_adam=True), "cpu", lr=0.0)
    fast = ae_step(
        AEStage(fast_ae, fused, autocast=autocast),
        fastpath.to_memory_format(spectrograms, BF16_AND_NHWC),
    )
    assert fast["loss"].dtype == torch.float32
    assert abs(fast["loss"].item() - reference["loss"].item()) < 0.02 * reference["loss"].item()

    autoencoder.eval().requires_grad_(False)
    networks = {
        "encoder": autoencoder.encoder,
        "generator": generator,
        "discriminator": discriminator,
    }
    losses = {}
    for name, settings in (("reference", fastpath.REFERENCE), ("fast", BF16_AND_NHWC)):
        copies = {k: copy.deepcopy(v) for k, v in networks.items()}
        optimizers = {
            k: fastpath.make_adam(copies[k].parameters(), settings, "cpu", lr=2e-4)
            for k in ("generator", "discriminator")
        }
        step_networks = fastpath.prepare_networks(copies, settings, "cpu")
        stage = GANStage(
            **step_networks,
            generator_optimizer=optimizers["generator"],
            discriminator_optimizer=optimizers["discriminator"],
            loss=PaperLoss(),
            autocast=fastpath.autocast_context(settings, "cpu"),
        )
        torch.manual_seed(2)
        stats = gan_step(
            stage,
            embed_sounds(stage, fastpath.to_memory_format(spectrograms, settings)),
            fastpath.to_memory_format(images, settings),
        )
        losses[name] = {k: v.item() for k, v in stats.items() if k in ("d_loss", "g_pixel")}
    for key, value in losses["reference"].items():
        assert abs(losses["fast"][key] - value) < 0.03 * abs(value), (key, losses)


# --------------------------------------------------------------------------------------
# torch.compile and its fallback
# --------------------------------------------------------------------------------------


def failing_backend(graph_module, example_inputs):
    raise RuntimeError("no compiler here (forced failure)")


def test_compile_failure_falls_back_to_eager_with_one_warning(caplog):
    _, generator, _ = demo_networks()
    generator.eval()
    embeddings = torch.rand(4, 128) * 2 - 1
    with torch.no_grad():
        expected = generator(embeddings)
    prepared = fastpath.prepare_networks(
        {"generator": generator}, FastPath(compile=True), "cpu", backend=failing_backend
    )["generator"]
    assert isinstance(prepared, fastpath.EagerFallback)
    with caplog.at_level(logging.WARNING, logger="s2ilib.train.fastpath"), torch.no_grad():
        first = prepared(embeddings)
        second = prepared(embeddings)
    warnings = [r for r in caplog.records if "torch.compile of the generator failed" in r.message]
    assert len(warnings) == 1 and "forced failure" in warnings[0].message
    assert "forced failure" in prepared.failed
    torch.testing.assert_close(first, expected)
    torch.testing.assert_close(second, expected)
    # Parameters are the eager network's, once: an optimiser and a state_dict see them as before.
    assert list(prepared.parameters()) == list(generator.parameters())


def test_compiled_step_runs_through_dynamo():
    torch._dynamo.reset()
    autoencoder, _, _ = demo_networks()
    spectrograms, _ = fixed_batch(4)
    settings = FastPath(compile=True)
    reference_ae = copy.deepcopy(autoencoder)
    compiled = fastpath.prepare_networks({"ae": autoencoder}, settings, "cpu", backend="eager")[
        "ae"
    ]
    torch.manual_seed(3)
    stats = ae_step(
        AEStage(compiled, torch.optim.SGD(compiled.parameters(), lr=0.01)), spectrograms
    )
    torch.manual_seed(3)
    expected = ae_step(
        AEStage(reference_ae, torch.optim.SGD(reference_ae.parameters(), lr=0.01)), spectrograms
    )
    assert compiled.failed is None  # dynamo traced it (the eager backend runs the graph as is)
    torch.testing.assert_close(stats["loss"], expected["loss"], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_inductor_compiles_the_generator_on_cpu():
    """The real compiler (inductor, gcc): matches eager in fp32."""
    torch._dynamo.reset()
    _, generator, _ = demo_networks()
    generator.eval()
    embeddings = torch.rand(4, 128) * 2 - 1
    with torch.no_grad():
        expected = generator(embeddings)
        compiled = fastpath.prepare_networks({"g": generator}, FastPath(compile=True), "cpu")["g"]
        result = compiled(embeddings)
    assert compiled.failed is None
    torch.testing.assert_close(result, expected, rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------------------------------
# Fused Adam, resident data, and the tasks with the fast path on
# --------------------------------------------------------------------------------------


def test_fused_adam_only_on_the_fast_path():
    parameters = [torch.nn.Parameter(torch.ones(3))]
    fused = fastpath.make_adam(parameters, FastPath(fused_adam=True), "cpu", lr=0.1)
    plain = fastpath.make_adam(parameters, fastpath.REFERENCE, "cpu", lr=0.1)
    assert fused.defaults["fused"] is True and not plain.defaults.get("fused")
    parameters[0].grad = torch.ones(3)
    fused.step()
    torch.testing.assert_close(parameters[0].detach(), torch.full((3,), 0.9))


def write_pairs(root: Path, per_class: int = 8) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix in ("data", "val"):
        labels = np.repeat(np.arange(3), per_class)
        names = [format_name(int(c), i, 0) for i, c in enumerate(labels)]
        spectrograms = rng.integers(0, 255, (len(labels), 128, 100), dtype=np.uint8)
        images = rng.integers(0, 255, (len(labels), 96, 96, 3), dtype=np.uint8)
        write_spec_image_bin(root / f"{prefix}_batch_001.bin", names, spectrograms, images)
    return root


def test_resident_dataset_serves_the_same_batches(tmp_path):
    data = open_dataset(write_pairs(tmp_path / "data"))
    host = PairedDataset(data, "train", 32)
    resident = PairedDataset(data, "train", 32)
    assert resident.nbytes() == 24 * (128 * 100 + 96 * 96 * 3)
    resident.to_device("cpu")  # the code path of the GPU, on the CPU
    positions = [5, 0, 17, 3]
    for expected, got in zip(
        host.__getitems__(positions), resident.__getitems__(positions), strict=True
    ):
        torch.testing.assert_close(got, expected)
    # On the CPU the fast path never moves data: nothing to gain.
    assert not fastpath.make_resident(host, FastPath(resident_data=True), "cpu")


def test_train_ae_and_gan_runs_with_the_fast_path_on(tmp_path):
    """Both tasks through the CLI with bf16 + channels_last + fused Adam on the CPU."""
    write_pairs(tmp_path / "data")
    features = '--set=fast_path_features=["bf16","channels_last","fused_adam"]'
    common = ("--data", "data", "--preset", "tiny", "--embedding-dim", "64", "--steps", "4",
              "--batch-size", "6", "--log-every", "2", "--sample-every", "4",
              "--checkpoint-every", "4", "--val-samples", "4", "--num-samples", "2",
              "--fast-path", "on", features, "--no-progress")  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}

    def s2i(*args):
        result = subprocess.run(
            [sys.executable, "-m", "s2ilib", *args], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))

    ae_run = s2i("train-ae", *common, "--optimizer", "adam", "--lr", "1e-3")
    gan_run = s2i("train-gan", *(c for c in common if c != "tiny" and c != "--preset"),
                  "--ae-run", str(ae_run))  # fmt: skip
    for run in (ae_run, gan_run):
        assert (run / "checkpoints" / "last.pt").is_file()
        stats = (run / "stats.jsonl").read_text().splitlines()
        assert len(stats) == 2 and "nan" not in stats[-1].lower()
