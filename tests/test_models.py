"""The networks: exact paper sizes, shapes, ranges, a learning step, dropout modes, summary."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
import typing

import pytest
import torch
from torch.nn import functional as F

from s2ilib.models import (
    PAPER_ATTENTION,
    PAPER_EMBEDDING_DIMS,
    AttentionConfig,
    AudioAutoencoder,
    AutoencoderConfig,
    ClassifierConfig,
    ConfigError,
    DenseGenerator,
    Discriminator,
    DiscriminatorConfig,
    FlowConfig,
    GeneratorConfig,
    ImageEncoderConfig,
    InformativityClassifier,
    build_networks,
    count_parameters,
    enable_test_time_dropout,
    generator_transition_plan,
    init_weights,
    preset,
)
from s2ilib.models.generator import AttentionBlock, StdLayerNorm

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
# The authors' 2026 attention generator at D = 512 (their file with their values.py, every
# flag values.py leaves undefined False).
PAPER_ATTENTION_GENERATOR = 68_692_009


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
    assert set(networks) == {"autoencoder", "generator", "discriminator", "classifier", "flow"}
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


def test_layer_table_follows_the_paper_shapes_and_restores_modes():
    from s2ilib.models.summary import format_layer_table, layer_table

    autoencoder = enable_test_time_dropout(AudioAutoencoder(preset("demo").autoencoder))
    statistics = autoencoder.encoder.layers[0][1].running_mean.clone()
    spectrograms, parameters = torch.rand(2, 1, 128, 100) * 2 - 1, count_parameters(autoencoder)
    rows = {row["layer"]: row for row in layer_table(autoencoder, spectrograms)}
    assert len(rows) == 26  # the 13 conv blocks of the encoder and of the decoder
    first, last = rows["encoder.layers.0"], rows["encoder.layers.12"]
    assert first["type"] == "Conv2d(7x5 s2) BatchNorm2d ReLU" and first["output"].endswith("61x48")
    assert last["type"].endswith("Tanh") and last["output"] == "512x1x1"
    assert rows["decoder.layers.12"]["output"] == "1x128x100"
    assert sum(row["parameters"] for row in rows.values()) == parameters
    assert not any(row["frozen"] for row in rows.values())
    # A loaded run's networks require no gradients: their layers are still parameters.
    assert layer_table(autoencoder.requires_grad_(False), spectrograms) == list(rows.values())
    # Dropout stays on and BatchNorm in eval mode, its statistics untouched.
    assert autoencoder.decoder.layers[0][3].training and not autoencoder.encoder.training
    assert torch.equal(autoencoder.encoder.layers[0][1].running_mean, statistics)
    assert format_layer_table(list(rows.values())).splitlines()[-1].split()[1:] == [
        f"{parameters:,}",
        "0",
    ]


def test_layer_table_shows_a_frozen_front_as_one_row(monkeypatch):
    from s2ilib.models.summary import layer_table

    monkeypatch.setenv("S2I_FRONT_CACHE", "off")
    config = dataclasses.replace(preset("tiny").autoencoder, front="speech")
    autoencoder = AudioAutoencoder(config, load_pretrained=False).train()
    rows = layer_table(autoencoder, torch.rand(2, 1, 128, 100) * 2 - 1)
    front, projection = rows[0], rows[1]
    assert (front["layer"], front["type"]) == ("encoder.front", "PooledSpeech")
    assert front["output"] == "192"
    assert front["parameters"] == 0 and front["frozen"] > 0
    assert projection["type"] == "Linear BatchNorm1d Tanh" and projection["parameters"] > 0
    assert autoencoder.training and autoencoder.encoder.layers.training


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


# --------------------------------------------------------------------------------------
# The authors' 2026 attention generator (preset paper-attention)
# --------------------------------------------------------------------------------------


def _small_authors_attention(**changes) -> AttentionConfig:
    """PAPER_ATTENTION's structure at test size: 2 blocks, 2 heads, d_model 16."""
    return dataclasses.replace(PAPER_ATTENTION, n_blocks=2, n_heads=2, d_model=16, **changes)


def test_paper_attention_parameter_count():
    presets = preset("paper-attention", 512)
    with torch.device("meta"):
        networks = build_networks(presets)
    assert count_parameters(networks["generator"]) == PAPER_ATTENTION_GENERATOR
    # Everything but the generator is the paper preset's.
    assert count_parameters(networks["autoencoder"]) == PAPER_AUTOENCODER[512]
    assert count_parameters(networks["discriminator"]) == PAPER_DISCRIMINATOR[512]
    assert dataclasses.replace(presets.generator, attention=AttentionConfig()) == (
        preset("paper", 512).generator
    )


def test_summary_cli_reports_the_paper_attention_count(capsys):
    from s2ilib.cli import main

    assert main(["summary", "--preset", "paper-attention", "--embedding-dim", "512"]) == 0
    assert "generator        68,692,009" in capsys.readouterr().out


def test_paper_attention_block_structure():
    with torch.device("meta"):
        generator = DenseGenerator(preset("paper-attention", 512).generator)
    attention = generator.attention
    assert len(attention.blocks) == 18
    # After transition 1: the 4x4 map of 512 channels, one token per position.
    assert generator.config.transition_sizes()[1] == 4
    assert attention.positions.shape == (1, 16, 320)
    assert (attention.to_model.in_features, attention.to_model.out_features) == (512, 320)
    assert (attention.to_channels.in_features, attention.to_channels.out_features) == (320, 512)
    # The source: the 512-d embedding as one token, projected to d_model.
    assert attention.memory_positions.shape == (1, 1, 320)
    assert attention.memory_projection.in_features == 512
    # Sinusoidal positions are computed, not learned nor saved.
    assert {"positions", "memory_positions"} <= dict(attention.named_buffers()).keys()
    assert not any("positions" in name for name in generator.state_dict())
    for block in attention.blocks:
        assert not block.norm_first
        for layer in (block.self_attention, block.cross_attention):
            assert (layer.num_heads, layer.embed_dim) == (8, 320)
            assert layer.in_proj_bias is None and layer.out_proj.bias is None
        assert [type(norm).__name__ for norm in block.norms] == ["StdLayerNorm"] * 3
        assert block.feed_forward[0].out_features == 4 * 320
        assert isinstance(block.feed_forward[1], torch.nn.ReLU)
    # No final norm is applied; the authors' unused one is kept, and DDP told to skip it.
    assert attention.norm is None and count_parameters(attention.unused_norm) == 640
    assert generator._ddp_params_and_buffers_to_ignore == [
        "attention.unused_norm.weight",
        "attention.unused_norm.bias",
    ]


def test_paper_attention_forward_at_batch_two():
    torch.manual_seed(0)
    generator = DenseGenerator(preset("paper-attention", 512).generator)
    with torch.no_grad():
        images = generator(torch.rand(2, 512) * 2 - 1)
    assert images.shape == (2, 3, 96, 96) and _in_unit_range(images)


def test_attention_blocks_are_post_norm_or_pre_norm():
    torch.manual_seed(0)
    tokens, memory = torch.randn(3, 5, 16) * 4 + 2, torch.randn(3, 1, 16)
    post = AttentionBlock(_small_authors_attention()).eval()
    out = post(tokens, memory)
    # norm(x + f(x)) last: every token leaves normalised (weight 1, bias 0 at the start).
    assert torch.allclose(out.mean(-1), torch.zeros(3, 5), atol=1e-5)
    assert torch.allclose(out.std(-1), torch.ones(3, 5), atol=1e-4)
    pre = AttentionBlock(_small_authors_attention(norm_first=True, unused_final_norm=False))
    assert not torch.allclose(pre.eval()(tokens, memory).std(-1), torch.ones(3, 5), atol=0.1)


def _sinusoid(length: int, d_model: int) -> torch.Tensor:
    """Feature 2i of position p is sin(p / 10000^(2i/d)), feature 2i + 1 its cos."""
    table = torch.zeros(length, d_model, dtype=torch.float64)
    for p in range(length):
        for i in range(0, d_model, 2):
            table[p, i] = math.sin(p / 10000 ** (i / d_model))
            table[p, i + 1] = math.cos(p / 10000 ** (i / d_model))
    return table.float()


def _reference_authors_attention(module, features, embeddings, heads: int) -> torch.Tensor:
    """The authors' attention path written out with plain tensor operations."""

    def norm(x, layer):
        centred = x - x.mean(-1, keepdim=True)
        return layer.weight * centred / (x.std(-1, keepdim=True) + 1e-6) + layer.bias

    def split(x):
        return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

    def attend(layer, queries, sources):
        w_q, w_k, w_v = layer.in_proj_weight.chunk(3)
        q, k, v = split(queries @ w_q.T), split(sources @ w_k.T), split(sources @ w_v.T)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
        return (weights @ v).transpose(1, 2).reshape(queries.shape) @ layer.out_proj.weight.T

    batch, channels, height, width = features.shape
    d_model = module.to_model.out_features
    x = torch.tanh(features).reshape(batch, channels, -1).transpose(1, 2)
    x = module.to_model(x) + _sinusoid(height * width, d_model)
    source = module.memory_projection(embeddings[:, None]) + _sinusoid(1, d_model)
    for block in module.blocks:
        x = norm(x + attend(block.self_attention, x, x), block.norms[0])
        x = norm(x + attend(block.cross_attention, x, source), block.norms[1])
        hidden = torch.relu(block.feed_forward[0](x))
        x = norm(x + block.feed_forward[3](hidden), block.norms[2])
    return module.to_channels(x).transpose(1, 2).reshape(features.shape)


def test_authors_attention_matches_a_plain_reference():
    torch.manual_seed(0)
    config = dataclasses.replace(preset("tiny", 64).generator, attention=_small_authors_attention())
    generator = DenseGenerator(config).eval()
    for norm in generator.attention.modules():  # away from the initial weight 1, bias 0
        if isinstance(norm, StdLayerNorm):
            torch.nn.init.normal_(norm.weight, 1.0, 0.3)
            torch.nn.init.normal_(norm.bias, 0.0, 0.3)
    features, embeddings = torch.randn(3, 8, 4, 4), torch.rand(3, 64) * 2 - 1
    with torch.no_grad():
        expected = _reference_authors_attention(generator.attention, features, embeddings, 2)
        assert torch.allclose(generator.attention(features, embeddings), expected, atol=1e-5)


def test_authors_attention_replaces_the_map_before_its_relu():
    torch.manual_seed(0)
    config = dataclasses.replace(preset("tiny", 64).generator, attention=_small_authors_attention())
    generator = DenseGenerator(config)
    seen = {}
    generator.attention.register_forward_hook(
        lambda module, inputs, output: seen.update(map_in=inputs[0], map_out=output)
    )
    generator.blocks[1].register_forward_pre_hook(
        lambda module, inputs: seen.update(block_in=inputs[0])
    )
    with torch.no_grad():
        generator(torch.rand(4, 64) * 2 - 1)
    assert seen["map_in"].shape == (4, 8, 4, 4)
    assert (seen["map_in"] < 0).any()  # before the transition's ReLU
    assert torch.equal(seen["block_in"], torch.relu(seen["map_out"]))


@pytest.mark.parametrize(
    "attention",
    [
        AttentionConfig(n_blocks=2, n_heads=2, d_model=16, after_transition=1),
        _small_authors_attention(),
    ],
    ids=["workbook", "authors"],
)
def test_gan_step_trains_an_attention_generator(attention):
    from s2ilib.train.losses import PaperLoss
    from s2ilib.train.steps import GANStage, embed_sounds, gan_step

    torch.manual_seed(0)
    presets = preset("tiny", 64)
    autoencoder = AudioAutoencoder(presets.autoencoder).eval().requires_grad_(False)
    generator = DenseGenerator(dataclasses.replace(presets.generator, attention=attention))
    discriminator = Discriminator(presets.discriminator)
    stage = GANStage(
        autoencoder.encoder, generator, discriminator,
        torch.optim.Adam(generator.parameters(), lr=1e-3),
        torch.optim.Adam(discriminator.parameters(), lr=1e-3), PaperLoss(),
    )  # fmt: skip
    before = {name: p.clone() for name, p in generator.attention.named_parameters()}
    embeddings = embed_sounds(stage, torch.rand(4, 1, 128, 100) * 2 - 1)
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    for _ in range(2):  # the workbook's zero-started output projection: one step to open
        stats = gan_step(stage, embeddings, images)
        assert all(math.isfinite(float(value)) for value in stats.values())
    unchanged = [
        name for name, p in generator.attention.named_parameters() if torch.equal(p, before[name])
    ]
    assert unchanged == (
        ["unused_norm.weight", "unused_norm.bias"] if attention.merge == "replace" else []
    )


def test_ddp_trains_the_authors_generator_despite_its_unused_norm(tmp_path):
    import torch.distributed as dist

    config = dataclasses.replace(preset("tiny", 64).generator, attention=_small_authors_attention())
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        generator = torch.nn.parallel.DistributedDataParallel(DenseGenerator(config))
        for _ in range(3):  # without the ignore list the second step raises
            generator(torch.rand(2, 64)).mean().backward()
    finally:
        dist.destroy_process_group()


def test_attention_config_refuses_bad_settings():
    with pytest.raises(ConfigError, match="positions 'rotary'"):
        AttentionConfig(positions="rotary")
    with pytest.raises(ConfigError, match="unused_final_norm"):
        AttentionConfig(unused_final_norm=True)
    with pytest.raises(ConfigError, match="even d_model"):
        AttentionConfig(positions="sinusoidal", d_model=9, n_heads=3)


NETWORK_CONFIGS = (
    AutoencoderConfig,
    AttentionConfig,
    GeneratorConfig,
    FlowConfig,
    DiscriminatorConfig,
    ClassifierConfig,
    ImageEncoderConfig,
)


def numeric_fields(config_class) -> list[str]:
    """The fields of a config dataclass whose type holds numbers (int, float, tuples of them)."""
    hints = typing.get_type_hints(config_class)
    return [
        item.name
        for item in dataclasses.fields(config_class)
        if re.search(r"\b(int|float)\b", str(hints[item.name]))
    ]


def poisoned(value, bad):
    """`value` with its first number replaced by `bad` (inside nested tuples too)."""
    if isinstance(value, tuple):
        return (poisoned(value[0], bad), *value[1:])
    return bad


@pytest.mark.parametrize("config_class", NETWORK_CONFIGS, ids=lambda c: c.__name__)
def test_every_number_of_a_network_config_must_be_finite(config_class):
    """Each numeric field has bounds, and NaN or an infinity anywhere in it is refused with
    a message naming the field (NaN compares False with everything: the check is explicit)."""
    default = config_class()
    names = numeric_fields(config_class)
    assert set(names) == set(config_class.NUMBERS), "a numeric field without Bounds"
    for name in names:
        for bad in (math.nan, math.inf, -math.inf):
            value = poisoned(getattr(default, name), bad)
            with pytest.raises(ConfigError, match=rf"{config_class.__name__}: {name} must be"):
                dataclasses.replace(default, **{name: value})


def test_flow_sampling_settings_are_bounded():
    flow = FlowConfig()
    with pytest.raises(
        ConfigError, match=r"guidance must be a finite number in \[0, 100\], got inf"
    ):
        dataclasses.replace(flow, guidance=math.inf)
    with pytest.raises(ConfigError, match=r"guidance must be .*, got nan"):
        dataclasses.replace(flow, guidance=math.nan)
    with pytest.raises(ConfigError, match=r"sample_steps must be an integer in \[1, 1000\]"):
        dataclasses.replace(flow, sample_steps=100_000)
    with pytest.raises(ConfigError, match="sample_steps must be an integer"):
        dataclasses.replace(flow, sample_steps=10.0)
    with pytest.raises(ConfigError, match=r"channels must be an integer >= 1, got 0 in \(64, 0"):
        dataclasses.replace(flow, channels=(64, 0, 128))
    with pytest.raises(ConfigError, match=r"dropout must be a finite number in \[0, 1\)"):
        dataclasses.replace(preset("tiny").discriminator, dropout=1.0)
    with pytest.raises(ConfigError, match="a classifier tells at least two apart"):
        ClassifierConfig(n_classes=1)
    edge = dataclasses.replace(flow, sample_steps=1000, guidance=100.0, recall_from=0.99)
    assert edge.sample_steps == 1000


def test_summary_counts_the_flow_as_one_training_step_does():
    """The flow's summary row: the decoder's parameters, and per sample the FLOPs that
    FlopCounterMode counts in a real training step's forward and backward."""
    from torch.utils.flop_counter import FlopCounterMode

    from s2ilib.models import FlowConfig
    from s2ilib.models.flow import FlowDecoder
    from s2ilib.models.summary import summarize
    from s2ilib.train.flow import flow_matching_loss

    row = summarize("demo", 512)["networks"]["flow"]
    decoder = FlowDecoder(FlowConfig(embedding_dim=512, image_size=32))
    assert row["parameters"] == count_parameters(decoder)
    assert row["input_shapes"] == {"images": [1, 32, 32], "times": [], "embeddings": [512]}
    with FlopCounterMode(display=False) as counter:
        flow_matching_loss(decoder, torch.rand(4, 1, 32, 32), torch.rand(4, 512), 0.0).backward()
    assert row["forward_backward_flops"] == pytest.approx(counter.get_total_flops() / 4, rel=0.01)
