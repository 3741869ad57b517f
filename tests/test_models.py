"""The networks: exact paper sizes, shapes, ranges, a learning step, dropout modes, summary."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from s2ilib.models import (
    PAPER_EMBEDDING_DIMS,
    AttentionConfig,
    AudioAutoencoder,
    AutoencoderConfig,
    ClassifierConfig,
    ConfigError,
    DenseGenerator,
    Discriminator,
    GeneratorConfig,
    InformativityClassifier,
    build_networks,
    count_parameters,
    enable_test_time_dropout,
    generator_transition_plan,
    init_weights,
    preset,
)

# Trainable parameters of the authors' networks, per embedding size D.
PAPER_AUTOENCODER = dict(
    zip(
        PAPER_EMBEDDING_DIMS,
        (29_875_635, 31_055_667, 33_415_731, 38_135_859, 47_576_115),
        strict=True,
    )
)
PAPER_GENERATOR = dict(
    zip(
        PAPER_EMBEDDING_DIMS,
        (37_857_705, 38_119_849, 38_644_137, 39_692_713, 41_789_865),
        strict=True,
    )
)
PAPER_DISCRIMINATOR = dict(
    zip(PAPER_EMBEDDING_DIMS, (5_276_066, 5_276_194, 5_276_450, 5_276_962, 5_277_986), strict=True)
)


def _meta_networks(embedding_dim: int) -> dict:
    """The paper networks built on the meta device: exact shapes, no memory, no init cost."""
    with torch.device("meta"):
        return build_networks(preset("paper", embedding_dim))


@pytest.mark.parametrize("embedding_dim", PAPER_EMBEDDING_DIMS)
def test_paper_parameter_counts(embedding_dim):
    networks = _meta_networks(embedding_dim)
    assert count_parameters(networks["autoencoder"]) == PAPER_AUTOENCODER[embedding_dim]
    assert count_parameters(networks["generator"]) == PAPER_GENERATOR[embedding_dim]
    assert count_parameters(networks["discriminator"]) == PAPER_DISCRIMINATOR[embedding_dim]
    assert count_parameters(networks["classifier"]) == 34_730


def test_paper_unconditioned_discriminator_count():
    config = dataclasses.replace(preset("paper").discriminator, conditioned=False)
    with torch.device("meta"):
        assert count_parameters(Discriminator(config)) == 5_275_938


def test_paper_networks_one_sample_shapes():
    torch.manual_seed(0)
    presets = preset("paper", 128)
    with torch.no_grad():
        autoencoder = AudioAutoencoder(presets.autoencoder).eval()
        reconstruction, embedding = autoencoder(torch.rand(1, 1, 128, 100) * 2 - 1)
        assert reconstruction.shape == (1, 1, 128, 100) and embedding.shape == (1, 128)
        del autoencoder
        image = DenseGenerator(presets.generator).eval()(embedding)
        assert image.shape == (1, 3, 96, 96)
        score = Discriminator(presets.discriminator).eval()(image, embedding)
        assert score.shape == (1,)
        log_probs = InformativityClassifier(presets.classifier).eval()(image)
        assert log_probs.shape == (1, 2)


def _in_unit_range(tensor: torch.Tensor) -> bool:
    return bool(tensor.abs().max() <= 1.0) and bool(torch.isfinite(tensor).all())


@pytest.mark.parametrize("name", ["tiny", "demo"])
def test_preset_shapes_and_ranges(name):
    torch.manual_seed(0)
    presets = preset(name, 256)
    networks = build_networks(presets)
    spectrograms = torch.rand(4, 1, 128, 100) * 2 - 1
    reconstruction, embeddings = networks["autoencoder"](spectrograms)
    assert reconstruction.shape == spectrograms.shape and embeddings.shape == (4, 256)
    assert _in_unit_range(reconstruction) and _in_unit_range(embeddings)
    images = networks["generator"](embeddings)
    size = presets.generator.image_size
    assert images.shape == (4, 3, size, size) and _in_unit_range(images)
    scores = networks["discriminator"](images, embeddings)
    assert scores.shape == (4,) and _in_unit_range(scores)
    log_probs = networks["classifier"](images)
    assert log_probs.shape == (4, 2)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(4), atol=1e-5)


def _loss_after_one_step(model, loss_fn, lr: float) -> tuple[float, float]:
    """Loss on a fixed batch before and after one SGD step (same dropout masks both times)."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    torch.manual_seed(1)
    before = loss_fn(model)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    torch.manual_seed(1)
    with torch.no_grad():
        after = loss_fn(model)
    return before.item(), after.item()


def test_one_step_reduces_loss_for_every_network():
    torch.manual_seed(0)
    presets = preset("tiny", 64)
    spectrograms = torch.rand(8, 1, 128, 100) * 2 - 1
    embeddings = torch.rand(8, 64) * 2 - 1
    images = torch.rand(8, 3, 32, 32) * 2 - 1
    labels = torch.tensor([0, 1] * 4)
    cases = {
        "autoencoder": (
            AudioAutoencoder(presets.autoencoder),
            lambda m: F.mse_loss(m(spectrograms)[0], spectrograms),
        ),
        "generator": (
            DenseGenerator(presets.generator),
            lambda m: F.l1_loss(m(embeddings), images),
        ),
        "discriminator": (
            Discriminator(presets.discriminator),
            lambda m: (m(images, embeddings) - 1).abs().mean(),
        ),
        "classifier": (
            InformativityClassifier(presets.classifier),
            lambda m: F.nll_loss(m(images), labels),
        ),
    }
    for name, (model, loss_fn) in cases.items():
        before, after = _loss_after_one_step(model, loss_fn, lr=0.05)
        assert after < before, f"{name}: loss {before:.5f} -> {after:.5f}"


def test_test_time_dropout_varies_but_eval_is_deterministic():
    torch.manual_seed(0)
    generator = DenseGenerator(preset("tiny", 64).generator)
    generator(torch.rand(8, 64))  # one train-mode pass to move the running statistics
    embeddings = torch.rand(2, 64) * 2 - 1
    batch_norm = generator.output[1]
    running_mean = batch_norm.running_mean.clone()
    with torch.no_grad():
        enable_test_time_dropout(generator)
        assert not batch_norm.training
        first, second = generator(embeddings), generator(embeddings)
        assert not torch.equal(first, second)
        assert torch.equal(batch_norm.running_mean, running_mean)
        generator.eval()
        assert torch.equal(generator(embeddings), generator(embeddings))


def test_generator_attention_and_noise_options():
    torch.manual_seed(0)
    base = preset("tiny", 64).generator
    attention = AttentionConfig(n_blocks=2, n_heads=2, d_model=16, memory_tokens=4)
    with_attention = DenseGenerator(dataclasses.replace(base, attention=attention))
    assert count_parameters(with_attention) > count_parameters(DenseGenerator(base))
    embeddings = torch.rand(3, 64) * 2 - 1
    images = with_attention(embeddings)
    assert images.shape == (3, 3, 32, 32) and _in_unit_range(images)
    images.mean().backward()
    assert with_attention.attention.to_channels.weight.grad.abs().sum() > 0

    noisy = DenseGenerator(dataclasses.replace(base, noise_dim=8)).eval()
    noise = torch.randn(3, 8)
    assert noisy(embeddings).shape == (3, 3, 32, 32)
    assert torch.equal(noisy(embeddings, noise), noisy(embeddings, noise))
    with pytest.raises(ValueError, match="noise of shape"):
        noisy(embeddings, torch.randn(3, 4))


def test_paper_attention_sits_at_six_by_six():
    attention = AttentionConfig(n_blocks=1)
    config = GeneratorConfig(embedding_dim=128, attention=attention)
    with torch.device("meta"):
        generator = DenseGenerator(config)
    assert generator.attention.positions.shape == (1, 36, 320)
    assert generator.attention.to_channels.out_features == 352


def test_transition_plan_follows_image_size():
    assert GeneratorConfig().transition_sizes() == [2, 4, 6, 12, 24, 48, 96]
    assert preset("demo").generator.transition_sizes() == [2, 4, 8, 16, 32]
    assert generator_transition_plan(96)[:3] == ((2, 1, 0), (3, 1, 0), (3, 1, 0))
    with pytest.raises(ConfigError, match="even size"):
        generator_transition_plan(33)


def test_bad_configs_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match="decoder ends at"):
        AutoencoderConfig(decoder_kernels=((3, 3),) * 9 + ((5, 3),) * 2 + ((5, 4), (8, 6)))
    with pytest.raises(ConfigError, match="encoder ends at"):
        AutoencoderConfig(input_size=(140, 100))
    with pytest.raises(ConfigError, match="dense blocks"):
        GeneratorConfig(image_size=32)
    with pytest.raises(ConfigError, match="cannot be cut"):
        dataclasses.replace(preset("paper").discriminator, embedding_dim=130)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")


def test_discriminator_conditioning_is_enforced():
    config = preset("tiny", 64).discriminator
    images, embeddings = torch.rand(2, 3, 32, 32), torch.rand(2, 64)
    with pytest.raises(ValueError, match="needs the audio embeddings"):
        Discriminator(config)(images)
    unconditioned = Discriminator(dataclasses.replace(config, conditioned=False))
    assert unconditioned(images).shape == (2,)
    with pytest.raises(ValueError, match="takes no embeddings"):
        unconditioned(images, embeddings)


def test_k_way_classifier():
    classifier = InformativityClassifier(ClassifierConfig(n_classes=5)).eval()
    log_probs = classifier(torch.rand(3, 3, 96, 96) * 2 - 1)
    assert log_probs.shape == (3, 5)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(3), atol=1e-5)


def test_init_weights_is_dcgan():
    torch.manual_seed(0)
    generator = DenseGenerator(preset("demo").generator).apply(init_weights)
    weight = generator.blocks[0].layers[0][0].weight
    assert abs(weight.std().item() - 0.02) < 0.002
    assert torch.equal(generator.output[1].weight, torch.ones(3))


def test_summary_cli_json():
    result = subprocess.run(
        [sys.executable, "-m", "s2ilib", "summary", "--preset", "tiny", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["preset"] == "tiny" and summary["embedding_dim"] == 512
    networks = summary["networks"]
    assert set(networks) == {"autoencoder", "generator", "discriminator", "classifier"}
    for info in networks.values():
        assert set(info) == {
            "parameters",
            "input_shapes",
            "output_shapes",
            "forward_flops",
            "forward_backward_flops",
        }
        assert info["forward_backward_flops"] > info["forward_flops"] > 0
    assert networks["generator"]["output_shapes"] == {"images": [3, 32, 32]}
    assert networks["autoencoder"]["parameters"] == count_parameters(
        AudioAutoencoder(preset("tiny").autoencoder)
    )


def test_summary_cli_refuses_an_uncuttable_embedding(capsys):
    from s2ilib.cli import main

    assert main(["summary", "--preset", "tiny", "--embedding-dim", "6"]) == 2
    assert "embedding_dim 6 cannot be cut into 2x2 maps" in capsys.readouterr().err


def test_paper_summary_matches_published_flops():
    from s2ilib.models.summary import summarize

    networks = summarize("paper", 512)["networks"]
    gflops = {name: info["forward_backward_flops"] / 1e9 for name, info in networks.items()}
    # Forward+backward per sample quoted in the project's issue notes: 21.6, 13.4, 4.5.
    assert gflops["autoencoder"] == pytest.approx(21.6, abs=0.1)
    assert gflops["generator"] == pytest.approx(13.4, abs=0.1)
    assert gflops["discriminator"] == pytest.approx(4.5, abs=0.1)


def test_presets_serialise_to_json():
    plain = json.loads(json.dumps(preset("demo", 128).as_dict()))
    assert plain["name"] == "demo"
    assert plain["generator"]["image_size"] == 32
    assert plain["autoencoder"]["encoder_kernels"][0] == [7, 5]
    assert plain["generator"]["attention"]["n_blocks"] == 0


def test_demo_decoder_starts_at_the_dark_mean_and_paper_at_zero():
    from s2ilib.models import AudioAutoencoder, preset

    demo = AudioAutoencoder(preset("demo", 64).autoencoder)
    assert torch.allclose(demo.decoder.layers[-1][1].bias, torch.tensor(-2.0))
    paper = preset("paper", 128).autoencoder
    assert paper.output_bias == 0.0 and max(paper.decoder_dropouts) == 0.15
