"""Recall by the front (issue 28): a flow whose encoder has a frozen front recalls the training
sound nearest by its embedding and by the front's own features, mixed by a weight the
validation split chooses; the memory, the refusals, the choice, and a tiny real run on
AV-Digits' clips whose draws use the sounds' front features wherever it is sampled."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_flow import SMALL, small_decoder, tiny_memory

from s2ilib.errors import S2IError
from s2ilib.models.flow import FlowMemory, set_sampling
from s2ilib.train.flow import FRONT_WEIGHTS, choose_front_weight


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread for every test here (see conftest.one_torch_thread)."""


def memory_with_front(weight: float) -> FlowMemory:
    """tiny_memory's three training sounds with 5 front features each."""
    front = torch.tensor([[1.0, 0, 0, 0, 3], [0, 2.0, 0, 0, 1], [0, 0, 1.0, 4, 0]])
    return tiny_memory().with_front(front, weight)


def test_the_similarity_mixes_the_two_cosines_by_the_front_weight():
    memory = memory_with_front(0.3)
    front = torch.tensor([[1.0, 0, 0, 0, 3], [0, 0, 2.0, 1, 1]])
    mean, std = memory.front_mean, memory.front_std
    known = F.normalize((front - mean) / std)
    torch.testing.assert_close(memory.front.norm(dim=1), torch.ones(3))
    embeddings = torch.randn(2, memory.embeddings.shape[1])
    by_embedding = F.normalize(embeddings) @ memory.embeddings.T
    by_front = known @ memory.front.T
    torch.testing.assert_close(
        memory.similarity(embeddings, front), 0.7 * by_embedding + 0.3 * by_front
    )
    torch.testing.assert_close(memory.similarity(embeddings, None, weight=0.0), by_embedding)
    torch.testing.assert_close(memory.similarity(embeddings, front, weight=1.0), by_front)


def test_the_memory_refuses_what_it_cannot_compare_and_keeps_its_front_when_saved():
    with pytest.raises(S2IError, match="holds no front features"):
        tiny_memory().similarity(torch.randn(1, tiny_memory().embeddings.shape[1]), None, 0.5)
    memory = memory_with_front(0.4)
    with pytest.raises(S2IError, match="pass front_features"):
        memory.nearest(torch.randn(1, memory.embeddings.shape[1]))
    again = FlowMemory.from_state(memory.state_dict())
    assert again.front_weight == 0.4
    for name in FlowMemory.FIELDS + FlowMemory.FRONT_FIELDS:
        assert torch.equal(getattr(again, name), getattr(memory, name))
    old = FlowMemory.from_state(tiny_memory().state_dict())  # a run saved before front recall
    assert old.front is None and old.front_weight == 0.0


def test_a_decoder_recalling_by_the_front_needs_the_sounds_front_features():
    decoder = small_decoder(recall_from=0.3).attach_memory(memory_with_front(0.5))
    sounds, codes = torch.randn(2, SMALL.embedding_dim), torch.randn(2, SMALL.noise_dim)
    assert decoder.recalls_by_front()
    with torch.no_grad(), pytest.raises(S2IError, match="recalls by the sounds' front features"):
        decoder(sounds, codes)
    front = torch.tensor([[0, 0, 1.0, 4, 0], [1.0, 0, 0, 0, 3]])
    with torch.no_grad():
        by_front = decoder(sounds, codes, front_features=front)
        set_sampling(decoder, recall_front_weight=0.0)
        assert not decoder.recalls_by_front()
        by_embedding = decoder(sounds, codes)
    assert by_front.shape == by_embedding.shape == (2, 3, 32, 32)
    assert (
        not small_decoder(recall_from=0.0).attach_memory(memory_with_front(0.5)).recalls_by_front()
    )


def test_validation_chooses_the_front_weight_where_the_front_knows_the_class():
    """Training sounds of 4 classes: the embeddings carry the class in one setting, the
    front features in the other; the validation sounds' recall picks the weight that
    fetches their class (the smallest of the best: 0 when the embedding suffices)."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 4
    classes = F.one_hot(labels, 4).float() * 3
    noise = torch.randn(40, 8, generator=generator)
    val_labels = torch.arange(20) % 4
    val_classes = F.one_hot(val_labels, 4).float() * 3
    val_noise = torch.randn(20, 8, generator=generator)
    base = FlowMemory(embeddings=F.normalize(noise), first=torch.arange(40),
                      count=torch.ones(40, dtype=torch.long),
                      images=torch.zeros(40, 1, 2, 2, dtype=torch.uint8))  # fmt: skip
    front = torch.cat([classes, noise[:, :4]], 1)
    memory = base.with_front(front, 0.0)
    validation = {"embeddings": val_noise, "labels": val_labels,
                  "front_features": torch.cat([val_classes, val_noise[:, :4]], 1)}  # fmt: skip
    weight, accuracy = choose_front_weight(memory, labels, validation)
    assert set(accuracy) == set(FRONT_WEIGHTS) and accuracy[weight] == 1.0 and weight > 0
    knowing = replace(base, embeddings=F.normalize(torch.cat([classes, noise], 1)))
    knowing = knowing.with_front(torch.randn(40, 6, generator=generator), 0.0)
    validation = {"embeddings": torch.cat([val_classes, val_noise], 1), "labels": val_labels,
                  "front_features": torch.randn(20, 6, generator=generator)}  # fmt: skip
    weight, accuracy = choose_front_weight(knowing, labels, validation)
    assert weight == 0.0 and accuracy[0.0] == 1.0


def test_a_flow_on_a_frozen_front_recalls_by_it_wherever_it_is_sampled(tmp_path, monkeypatch):
    """A tiny speech-front AE on AV-Digits' Japanese and Korean clips, then a tiny flow: its
    memory holds the training clips' front features and the weight the validation split
    chose (recall.json, the run log); `translate`, evaluation and the interpolation pass the
    sounds' front features (the draws equal the decoder's given them by hand)."""
    pytest.importorskip("openwakeword")
    from s2ilib.datasets import open_dataset
    from s2ilib.datasets.avdigits import AVDIGITS_DIR, subset_avdigits
    from s2ilib.gallery import interpolate
    from s2ilib.runs import load_run, read_recall_choice
    from s2ilib.train.config import AETrainConfig, FlowTrainConfig
    from s2ilib.train.registry import train_autoencoder, train_flow
    from s2ilib.translate import encode, front_features, generate, sound_keys, translate
    from s2ilib.viz import plot_recall_choice

    monkeypatch.setenv("S2I_FRONT_CACHE", str(tmp_path / "cache"))
    data = open_dataset(subset_avdigits(AVDIGITS_DIR, tmp_path / "set", ["ja", "ko"]))
    common = {"data": str(data.root), "batch_size": 8, "val_samples": 8, "sample_every": 2,
              "checkpoint_every": 2, "num_samples": 2}  # fmt: skip
    ae_run = train_autoencoder(
        AETrainConfig.from_dict(common | {"preset": "tiny", "embedding_dim": 16,
                                          "front": "speech", "num_steps": 2}),
        runs_root=tmp_path / "runs", device="cpu", progress_bar=False,
    )  # fmt: skip
    flow_settings = {"ae_run": str(ae_run), "num_steps": 2, "channels": (8, 16),
                     "condition_dim": 16, "sample_steps": 3}  # fmt: skip
    run_dir = train_flow(FlowTrainConfig.from_dict(common | flow_settings),
                         runs_root=tmp_path / "runs", device="cpu", progress_bar=False)  # fmt: skip
    choice = json.loads((run_dir / "recall.json").read_text())
    assert set(choice["validation_accuracy"]) == {str(w) for w in FRONT_WEIGHTS}
    assert read_recall_choice(run_dir) == choice and read_recall_choice(ae_run) is None
    figure = plot_recall_choice(choice)  # notebook 04's figure of the choice
    assert len(figure.axes[0].lines) == 2
    assert "recall by the front: weight" in (run_dir / "log.txt").read_text()
    run = load_run(run_dir)
    memory = run.generator.memory
    assert memory.front_weight == choice["front_weight"]
    assert memory.front.shape == (len(data.split("train")), 192)
    set_sampling(run.generator, recall_front_weight=0.6)  # above 0 whatever validation chose
    test = data.split("test")
    picks = np.array([0, 3, 7])
    spectrograms, clips = test.spectrograms[picks], test.audio[picks]
    drawn = translate(run, spectrograms, "cpu", samples=2, seed=0, audio=clips)
    embeddings = encode(run.encoder, spectrograms, "cpu", audio=clips)
    front = front_features(run.encoder, spectrograms, "cpu", audio=clips)
    assert front.shape == (3, 192)
    by_hand = generate(run.generator, embeddings, "cpu", 2, 0, keys=sound_keys(spectrograms),
                       front=front)  # fmt: skip
    np.testing.assert_array_equal(drawn, by_hand)
    row = interpolate(run, spectrograms[0], spectrograms[1], 3, "cpu", audio=clips[:2])
    assert row.shape[0] == 3
    with pytest.raises(S2IError, match="pass front_features"):
        generate(run.generator, embeddings, "cpu", 1, 0)
