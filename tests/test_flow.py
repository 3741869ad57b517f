"""Recipe `flow`: the flow-matching decoder, its training task, CLI, resume and use as a
translator (load_run, translate, s2i evaluate)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from s2ilib.errors import S2IError
from s2ilib.models import FlowConfig, FlowDecoder
from s2ilib.models.config import ConfigError
from s2ilib.models.flow import FlowMemory, set_sampling
from s2ilib.runs import load_run
from s2ilib.runs.checkpoint import load_checkpoint
from s2ilib.train.config import FlowTrainConfig, TrainConfigError
from s2ilib.train.flow import flow_matching_loss, grey_images
from tests.test_train import (
    AE_ARGS,
    EMBEDDING_DIM,
    REPO,
    _final_models,
    assert_same_models,
    check_run_dir,
    kill_after_checkpoint,
    run_path,
    s2i,
    write_synthetic_set,
)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread for every test here (see conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """test_train's synthetic paired set (three classes in three colours)."""
    folder = tmp_path_factory.mktemp("flow")
    write_synthetic_set(folder / "data")
    return folder


@pytest.fixture(scope="module")
def ae_run(workdir) -> Path:
    """A tiny autoencoder run through the CLI (the encoder the flow decodes from)."""
    return run_path(s2i(*AE_ARGS, "--desc", "reference", cwd=workdir))


SMALL = FlowConfig(embedding_dim=EMBEDDING_DIM, channels=(8, 16), condition_dim=16, groups=4)


def small_decoder(seed: int = 0, **settings) -> FlowDecoder:
    torch.manual_seed(seed)
    return FlowDecoder(replace(SMALL, **settings)).eval()


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"channels": (8, 10)}, "groups"),
        ({"image_size": 30}, "halve"),
        ({"solver": "rk4"}, "solver"),
        ({"guidance_until": 1.5}, "guidance_until"),
        ({"recall_from": 1.0}, "recall_from"),
        ({"guidance_from": 0.6, "guidance_until": 0.5}, "guidance_from"),
        ({"image_channels": 2}, "image_channels"),
    ],
)
def test_flow_config_names_what_does_not_fit(settings, named):
    with pytest.raises(ConfigError, match=named):
        replace(SMALL, **settings)


def test_flow_train_config_checks_its_settings():
    with pytest.raises(TrainConfigError, match="condition_dropout"):
        FlowTrainConfig(condition_dropout=1.0)
    with pytest.raises(TrainConfigError, match="needs condition_dropout"):
        FlowTrainConfig(condition_dropout=0.0, guidance=2.0)
    FlowTrainConfig(condition_dropout=0.0, guidance=1.0)  # plain conditional sampling


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--guidance", "inf"), "FlowTrainConfig.guidance must be a finite number in [0, 100], got inf"),
        (("--guidance", "nan"), "FlowTrainConfig.guidance must be a finite number in [0, 100], got nan"),
        (("--sample-steps", "100000"), "FlowTrainConfig.sample_steps must be an integer in [1, 1000], got 100000"),
        (("--set", "guidance_until=NaN"), "FlowTrainConfig.guidance_until must be a finite number in [0, 1], got nan"),
        (("--ema-decay=-inf",), "FlowTrainConfig.ema_decay must be a finite number in [0, 1), got -inf"),
        (("--set", "recall_front_weight=1.5"), "FlowTrainConfig.recall_front_weight must be a finite number in [0, 1], got 1.5"),
        (("--set", "recall_front_weight=0.5"), "has no frozen front (front 'conv') to recall by"),
    ],
)  # fmt: skip
def test_cli_refuses_a_flow_setting_out_of_range_before_any_run_directory(
    workdir, ae_run, option, message, capsys, monkeypatch
):
    from s2ilib.cli import main

    monkeypatch.chdir(workdir)
    runs = set((workdir / "runs").iterdir())
    command = ["train-flow", "--data", "data", "--ae-run", str(ae_run), "--steps", "2", *option]
    assert main([*command, "--desc", "refused"]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert set((workdir / "runs").iterdir()) == runs  # no run directory, not even an empty one


def test_the_decoder_draws_images_from_its_noise():
    decoder = small_decoder()
    embeddings = torch.randn(4, EMBEDDING_DIM)
    codes = torch.randn(4, SMALL.noise_dim)
    with torch.no_grad():
        images = decoder(embeddings, codes)
        again = decoder(embeddings, codes)
        other = decoder(embeddings, torch.randn(4, SMALL.noise_dim))
    assert images.shape == (4, 3, 32, 32) and images.abs().max() <= 1.0
    assert torch.equal(images[:, 0], images[:, 1])  # grey: three equal channels
    assert torch.equal(images, again)
    assert ((images - other).abs().amax(dim=(1, 2, 3)) > 0).all()


def test_guidance_extrapolates_from_the_unconditional_velocity_in_one_batch():
    decoder = small_decoder()
    with torch.no_grad():
        for parameter in decoder.parameters():  # an untrained net: make the condition matter
            parameter.add_(0.1 * torch.randn_like(parameter))
        images, times = torch.randn(3, 1, 32, 32), torch.rand(3)
        embeddings = torch.randn(3, EMBEDDING_DIM)
        conditional = decoder.velocity(images, times, embeddings)
        nothing = decoder.conditions(embeddings, torch.zeros(3))
        assert torch.equal(nothing, decoder.null_embedding.expand(3, -1))
        unconditional = decoder.velocity(images, times, nothing)
        guided = decoder.guided_velocity(images, times, embeddings, 3.0)
    expected = unconditional + 3.0 * (conditional - unconditional)
    torch.testing.assert_close(guided, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(conditional, unconditional)


def tiny_memory() -> FlowMemory:
    """Three training sounds along the first three axes; sound 0 paired with one image
    (grey level 0), sounds 1 and 2 with the same two (grey levels 100 and 200)."""
    images = torch.tensor([0, 100, 200], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 1, 32, 32)
    return FlowMemory(
        embeddings=torch.eye(3, EMBEDDING_DIM),
        first=torch.tensor([0, 1, 1]),
        count=torch.tensor([1, 2, 2]),
        images=images.contiguous(),
    )


def test_recall_starts_from_an_image_of_the_nearest_training_sound():
    """With recall_from, a draw starts at that time from the noise mixed with an image
    paired with the nearest training sound, chosen by the draw's noise; a still flow (zero
    velocity) shows exactly that start."""
    decoder = small_decoder(recall_from=0.3)
    with torch.no_grad():
        decoder.output.weight.zero_(), decoder.output.bias.zero_()  # the velocity is 0
    sounds = torch.zeros(4, EMBEDDING_DIM)
    sounds[0, 0], sounds[1:, 1] = 2.0, 1.0  # nearest: training sound 0, then 1 (twice), 1
    sounds[3, 2] = 1.5  # nearest: training sound 2, the same two images as sound 1
    codes = torch.zeros(4, SMALL.noise_dim)
    codes[1, 0], codes[2, 0], codes[3, 0] = -3.0, 3.0, 3.0  # picks the first / second image
    with pytest.raises(S2IError, match="holds no memory"):
        decoder(sounds, codes)
    decoder.attach_memory(tiny_memory())
    with torch.no_grad():
        images = decoder(sounds, codes)
    start = 0.3 * (torch.tensor([0.0, 100.0, 200.0, 200.0]) / 127.5 - 1)  # + 0.7 x noise
    noise = 0.7 * codes[:, 0]
    torch.testing.assert_close(images[:, 0, 0, 0], (start + noise).clamp(-1, 1))
    torch.testing.assert_close(images[:, 0, 5, 5], start)  # the noise is 0 there
    plain = set_sampling(decoder, recall_from=0.0)(sounds, codes)
    assert torch.equal(plain, codes.view(4, 1, 32, 32).expand(-1, 3, -1, -1).clamp(-1, 1))
    moved = decoder.to("meta")  # a later .to() moves the memory with the weights when used
    assert moved._memory().images.device.type == "meta"
    state = FlowMemory.from_state(tiny_memory().state_dict())
    assert all(torch.equal(getattr(state, name), getattr(tiny_memory(), name))
               for name in FlowMemory.FIELDS)  # fmt: skip


def test_guidance_only_between_guidance_from_and_guidance_until():
    """Guided only while guidance_from <= t < guidance_until: an empty interval guides no
    step, as guidance 1; skipping the first step (t = 0) changes the images."""
    decoder = small_decoder()
    embeddings, codes = torch.randn(2, EMBEDDING_DIM), torch.randn(2, SMALL.noise_dim)
    with torch.no_grad():
        torch.nn.init.normal_(decoder.null_embedding)
        plain = set_sampling(decoder, guidance=1.0)(embeddings, codes)
        never = set_sampling(decoder, guidance=4.0, guidance_until=0.0)(embeddings, codes)
        empty = set_sampling(decoder, guidance_from=0.5, guidance_until=0.5)(embeddings, codes)
        early = set_sampling(decoder, guidance=4.0, guidance_from=0.0)(embeddings, codes)
        later = set_sampling(decoder, guidance_from=0.1)(embeddings, codes)
    assert torch.equal(plain, never) and torch.equal(plain, empty)
    assert not torch.equal(plain, early) and not torch.equal(early, later)


def test_training_fits_a_fixed_batch():
    """The loss on fixed noise and times falls when one batch of two kinds of image, told
    apart by their embedding, is fitted (the velocity target is learnable)."""
    decoder = small_decoder().train()
    images = -torch.ones(8, 1, 32, 32)
    images[:4, :, 8:24, 8:24] = 1.0  # a square
    images[4:, :, 14:18, :] = 1.0  # a bar
    embeddings = torch.randn(2, EMBEDDING_DIM).repeat_interleave(4, dim=0)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=3e-3)

    def fixed_loss():
        with torch.random.fork_rng():
            torch.manual_seed(7)
            return flow_matching_loss(decoder, images, embeddings, 0.0).item()

    before = fixed_loss()
    for _ in range(60):
        loss = flow_matching_loss(decoder, images, embeddings, condition_dropout=0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert fixed_loss() < 0.6 * before


def test_grey_images_tells_grey_data_from_colour(workdir):
    from s2ilib.datasets import open_dataset

    assert grey_images(open_dataset("data/avdigits"))
    assert not grey_images(open_dataset(workdir / "data"))  # class colours


def flow_args(ae_run) -> tuple:
    return (
        "train-flow", "--data", "data", "--ae-run", ae_run, "--steps", 12, "--batch-size", 6,
        "--log-every", 4, "--sample-every", 6, "--checkpoint-every", 2, "--keep-checkpoints",
        "--val-samples", 6, "--num-samples", 3, "--warmup-steps", 2,
        "--set", "channels=[8,16]", "--set", "condition_dim=16", "--sample-steps", 3,
    )  # fmt: skip


def test_cli_train_flow_resumes_to_identical_weights_and_translates(workdir, ae_run):
    reference = run_path(
        s2i(*flow_args(ae_run), "--desc", "flow", "--recall-neighbours", 2, cwd=workdir)
    )
    stats = check_run_dir(reference, "flow", 12)
    assert {"flow_loss", "val_flow_loss"} <= set().union(*stats)
    config = json.loads((reference / "config.json").read_text())
    assert config["models"]["flow"]["image_channels"] == 3  # the synthetic set is in colour
    names = ("guidance", "recall_from", "recall_neighbours")
    sampling = {key: config["models"]["flow"][key] for key in names}
    assert sampling == {"guidance": 2.0, "recall_from": 0.3, "recall_neighbours": 2}
    state = load_checkpoint(reference / "checkpoints" / "last.pt")
    assert state["average_updates"] == 12
    memory = state["memory"]  # every training sound, each paired with its class's images
    assert memory["embeddings"].shape == (len(memory["first"]), EMBEDDING_DIM)
    assert memory["images"].dtype == torch.uint8 and memory["images"].shape[1:] == (3, 32, 32)
    assert (memory["count"] >= 1).all()
    assert_same_models(
        {"autoencoder": _final_models(ae_run)["autoencoder"]},
        {"autoencoder": state["models"]["autoencoder"]},
    )
    killed = kill_after_checkpoint((*flow_args(ae_run), "--desc", "killed"), workdir, 4, 12)
    run_path(s2i("train-flow", "--resume", killed, cwd=workdir))
    assert_same_models(_final_models(reference), _final_models(killed))

    run = load_run(reference, kind=("gan", "flow"))
    assert isinstance(run.generator, FlowDecoder) and run.image_size == 32
    assert not run.generator.training
    # The averaged weights are the ones sampled with; the trained ones differ from them.
    trained = state["models"]["flow_trained"]
    assert any(
        not torch.equal(value, trained[name]) for name, value in run.generator.state_dict().items()
    )
    from s2ilib.translate import translate

    spectrograms = np.random.default_rng(0).integers(0, 255, (3, 128, 100), dtype=np.uint8)
    draws = translate(run, spectrograms, "cpu", samples=2, seed=0)
    assert draws.shape == (3, 2, 32, 32, 3) and draws.dtype == np.uint8
    assert not np.array_equal(draws[:, 0], draws[:, 1])  # the noise differs by draw
    alone = translate(run, spectrograms[1:2], "cpu", samples=2, seed=0)
    # A sound's images depend on it alone: its noise is keyed by the sound, not the batch
    # (batched convolutions may round differently: one grey level at most).
    assert np.abs(alone[0].astype(int) - draws[1]).max() <= 1
    _channels_last_draws_the_same(run, spectrograms, draws)
    _gallery_takes_a_flow_run(run, spectrograms)


def _channels_last_draws_the_same(run, spectrograms, draws):
    """A flow loaded on the CPU convolves NHWC maps (faster there); its images are those of
    the NCHW network, within a grey level, and come back NCHW."""
    from s2ilib.translate import encode, generate, translate

    convolutions = [m for m in run.generator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(
        m.weight.is_contiguous(memory_format=torch.channels_last) for m in convolutions
    )
    embeddings = encode(run.encoder, spectrograms, "cpu")
    assert run.generator(embeddings).is_contiguous()
    run.generator.to(memory_format=torch.contiguous_format)
    try:
        nchw = translate(run, spectrograms, "cpu", samples=2, seed=0)
    finally:
        run.generator.to(memory_format=torch.channels_last)
    assert np.abs(nchw.astype(int) - draws).max() <= 1
    assert generate(run.generator, embeddings, "cpu", samples=1).shape[0] == len(spectrograms)


def _gallery_takes_a_flow_run(run, spectrograms):
    """Notebook 07's slider turns the flow's guidance; notebook 06's interpolation keeps the
    first sound's starting noise along the row."""
    from s2ilib import gallery
    from s2ilib.translate import encode, generate, sound_keys, translate

    knob = gallery.sampling_knob(run)
    assert knob["description"] == "guidance" and knob["value"] == 2.0
    trained = run.generator.config
    as_trained = gallery.imagine_spectrogram(run, spectrograms[0], 2, 2.0, "cpu")
    assert np.array_equal(as_trained, translate(run, spectrograms[:1], "cpu", 2, 0)[0])
    plain = gallery.imagine_spectrogram(run, spectrograms[0], 2, 1.0, "cpu")
    assert not np.array_equal(plain, as_trained) and run.generator.config == trained
    row = gallery.interpolate(run, spectrograms[0], spectrograms[1], 3, "cpu")
    start, end = encode(run.encoder, spectrograms[:2], "cpu")
    middle = generate(run.generator, ((start + end) / 2)[None], "cpu",
                      keys=sound_keys(spectrograms[:1]), test_time_dropout=False)  # fmt: skip
    assert np.array_equal(row[1], middle[0, 0])


@pytest.mark.parametrize(
    ("kind", "settings"),
    [("flow", {"channels": [8, 16], "condition_dim": 16}), ("gan", {"preset": "tiny"}),
     ("gan", {"preset": "tiny", "standardise_embedding": True})],
    ids=["flow", "gan", "gan-standardised"],
)  # fmt: skip
def test_frozen_encoder_tasks_serve_each_training_sound_its_embedding(
    workdir, ae_run, kind, settings
):
    """The GAN and flow steps read the training sounds' embeddings, computed once when the
    run starts, in place of embedding every batch: the same as the encoder's of the batch."""
    from s2ilib.datasets import open_dataset
    from s2ilib.train.registry import TASKS

    task_type = TASKS[kind]
    config = task_type.config_class.from_dict(
        {"data": str(workdir / "data"), "ae_run": str(ae_run), "batch_size": 6, **settings}
    )
    plan = task_type.plan(config)
    document = {"kind": kind, "train": plan.config.as_dict()} | plan.run_config
    task = task_type(plan.config, document, open_dataset(plan.config.data), torch.device("cpu"))
    task.initialize()
    positions = [5, 0, 9, 2]
    served = task.train_set.__getitems__(positions)[0]
    with torch.no_grad():
        expected = task.autoencoder.encoder(task.train_set.sounds.__getitems__(positions)[0])
    assert served.shape == (4, EMBEDDING_DIM)
    assert torch.allclose(served, expected, atol=1e-5)


def test_a_flow_run_is_evaluated_like_a_gan_run(workdir, ae_run):
    """`s2i evaluate` takes a flow run where it takes a GAN run (AV-Digits: grey images)."""
    avdigits = REPO / "data" / "avdigits"
    quick = ("--data", avdigits, "--limit-per-class", 4)
    run = run_path(s2i(*flow_args(ae_run), *quick, "--steps", 4, "--desc", "flow-eval",
                       cwd=workdir))  # fmt: skip
    assert load_run(run).generator.config.image_channels == 1
    informativity = run_path(
        s2i("train-informativity", "--data", avdigits, "--epochs", 1, "--image-size", 32,
            "--limit-per-class", 20, cwd=workdir)
    )  # fmt: skip
    command = [sys.executable, "-m", "s2ilib", "evaluate", "--gan", str(run), "--informativity",
               str(informativity), "--data", str(avdigits), "--split", "val", "--samples", "2",
               "--bootstrap", "20", "--no-baselines", "--out", "flow-report"]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((workdir / "flow-report" / "metrics.json").read_text())
    generator = metrics["methods"]["generator"]
    assert 0.0 <= generator["informativity"]["mean"] <= 1.0
    assert generator["draw_diversity"]["mean"] > 0
    assert "Informativity" in result.stdout
    rows = (workdir / "flow-report" / "per_sound.csv").read_text().splitlines()
    assert len(rows) == 1 + metrics["num_sounds"] and rows[0].endswith(",own_probability_2")


def test_load_run_names_the_kinds_it_expected(ae_run):
    with pytest.raises(S2IError, match="not a 'gan' or 'flow' run"):
        load_run(ae_run, kind=("gan", "flow"))


def test_recipe_flow_trains_a_flow_run_and_train_gan_refuses_it(workdir, ae_run):
    from s2ilib.train.recipes import flow_config, gan_config, recipe

    assert recipe("flow").decoder == "flow" and recipe("flow").align == recipe("aligned").align
    config = flow_config("flow", None, ae_run, {"num_epochs": 3, "pixel_weight": 5.0})
    assert config.num_epochs == 3 and config.ae_run == str(ae_run)  # GAN-only settings dropped
    with pytest.raises(S2IError, match="flow decoder"):
        gan_config("flow", None, ae_run)
    refused = s2i("train-gan", "--recipe", "flow", "--ae-run", ae_run, cwd=workdir, check=False)
    assert refused.returncode != 0 and "s2i train-flow --recipe flow" in refused.stderr


@pytest.mark.filterwarnings("ignore:train_recipe_gans:DeprecationWarning")
def test_train_recipe_gans_is_a_deprecated_alias_of_train_recipe_decoders(ae_run):
    """The last release's name still trains by recipe (here: refuses as the new one does)."""
    from s2ilib.train.recipes import train_recipe_decoders, train_recipe_gans

    with pytest.warns(DeprecationWarning, match="now train_recipe_decoders"):
        assert train_recipe_gans([], ae_run, None) == {}
    for train in (train_recipe_decoders, train_recipe_gans):
        with pytest.raises(S2IError, match="recipe 'flow' needs an alignment run"):
            train(["flow"], ae_run, None)


def test_the_flow_task_owes_nothing_to_the_gan_module():
    """FlowTask and GANTask share decoder.FrozenEncoderTask; neither module imports the other."""
    import ast
    import inspect

    from s2ilib.train import decoder, flow, gan

    for module, other in ((flow, "s2ilib.train.gan"), (gan, "s2ilib.train.flow")):
        imported = {node.module for node in ast.walk(ast.parse(inspect.getsource(module)))
                    if isinstance(node, ast.ImportFrom)}  # fmt: skip
        assert other not in imported and "s2ilib.train.decoder" in imported
    assert flow.FlowTask.__mro__[1] is decoder.FrozenEncoderTask
    assert gan.GANTask.__mro__[1] is decoder.FrozenEncoderTask


def test_a_recall_vote_takes_the_class_most_neighbours_weigh_for_and_its_nearest_sound():
    """recall_neighbours k > 1: the pairing range (class) with the most softmax-weighted
    votes among the k nearest training sounds, and of it the nearest sound."""
    degrees = torch.tensor([0.0, 90.0, 20.5, 21.0]).deg2rad()  # training sounds on a circle
    memory = FlowMemory(
        embeddings=torch.stack([degrees.cos(), degrees.sin()], 1),
        first=torch.tensor([0, 0, 5, 5]),  # two classes: sounds 0, 1 and sounds 2, 3
        count=torch.tensor([5, 5, 3, 3]),
        images=torch.zeros(8, 1, 2, 2, dtype=torch.uint8),
    )
    at = torch.tensor([10.0, 90.0]).deg2rad()  # the first: nearest to sound 0, then 2 and 3
    sounds = torch.stack([at.cos(), at.sin()], 1)
    assert memory.nearest(sounds).tolist() == [0, 1]
    assert memory.nearest(sounds, neighbours=3).tolist() == [2, 1]  # 2 and 3 outvote 0
    assert memory.nearest(sounds, neighbours=99).tolist() == [2, 1]  # k beyond the memory
    with pytest.raises(ConfigError, match="recall_neighbours"):
        FlowConfig(recall_neighbours=0)


@pytest.mark.slow  # a benchmark script end to end: the slow set runs it
def test_the_informativity_bound_script_reads_the_embedding_every_way(tiny_flow_run, tmp_path):
    """benchmarks/informativity_bound.py on a trained flow run: every read-out, the redraw's
    kept class and the recall by vote, scored beside retrieval."""
    from s2ilib.train.config import InformativityTrainConfig
    from s2ilib.train.registry import train_informativity

    bank = train_informativity(
        InformativityTrainConfig(data=str(REPO / "data" / "avdigits"), image_size=32,
                                 num_epochs=1, limit_per_class=20),
        runs_root=tmp_path, progress_bar=False,
    )  # fmt: skip
    command = [sys.executable, str(REPO / "benchmarks" / "informativity_bound.py"), "--run",
               str(tiny_flow_run), "--informativity", str(bank), "--split", "val", "--vote", "3",
               "--samples", "1", "--bootstrap", "10", "--threads", "1"]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(REPO)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in result.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("|---")}  # fmt: skip
    assert float(rows["nearest training sound (retrieval's)"][0]) <= 1.0
    assert {"vote of the 5 nearest", "linear probe", "the flow, among the 3 nearest classes",
            "drawn as the nearest sound's class", "the vote of the 3 nearest",
            "retrieval (baseline)"} <= set(rows)  # fmt: skip
    assert "human speakers" in result.stdout.splitlines()[0]
