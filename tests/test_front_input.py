"""Features from the audio (front_input "audio"): the data set's clips, exact cache keys, the
speech front's own front end against openWakeWord's ONNX graph, the refusals, and a tiny
run whose encoder gives a clip the same embedding from the data set and from its file."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import s2i, write_synthetic_set

from s2ilib import audio
from s2ilib.datasets import open_dataset
from s2ilib.datasets.avdigits import AVDIGITS_DIR, subset_avdigits
from s2ilib.errors import S2IError
from s2ilib.models import build_network, front_cache, preset
from s2ilib.models.config import AutoencoderConfig, ConfigError
from s2ilib.models.front_cache import FrontFeatureCache, wave_keys
from s2ilib.train.common import front_input_for
from s2ilib.translate import encode, example_inputs

pytest.importorskip("openwakeword")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread for every test here (see conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def small_avdigits(tmp_path_factory):
    """AV-Digits' English and Japanese clips only (a few hundred), opened."""
    folder = subset_avdigits(AVDIGITS_DIR, tmp_path_factory.mktemp("avd") / "set", ["en", "ja"])
    return open_dataset(folder)


def test_a_split_serves_its_clips_as_the_files_decode_and_names_them_by_their_bytes(
    small_avdigits,
):
    test = small_avdigits.split("test")
    assert test.audio.shape == (len(test), audio.SAMPLE_RATE)
    files = test.extra["file"][:3]
    from_files = np.stack([audio.load_audio(small_avdigits.root / name) for name in files])
    np.testing.assert_array_equal(test.audio[:3], from_files)
    np.testing.assert_array_equal(test.audio[np.array([2, 0])], from_files[[2, 0]])
    keys = test.audio.keys()
    assert keys.shape == (len(test), 4) and len(np.unique(keys, axis=0)) == len(test)
    train_keys = small_avdigits.split("train").audio.keys()
    assert not set(map(bytes, keys)) & set(map(bytes, train_keys))


def test_a_waves_key_is_exact():
    waves = torch.randn(3, 16000)
    nudged = waves.clone()
    nudged[1, 123] = torch.nextafter(nudged[1, 123], torch.tensor(10.0))
    keys, again, other = wave_keys(waves), wave_keys(waves.clone()), wave_keys(nudged)
    assert keys.shape == (3, 4) and torch.equal(keys, again)
    assert torch.equal(keys[[0, 2]], other[[0, 2]]) and not torch.equal(keys[1], other[1])


def test_keyed_features_computes_only_the_sounds_never_seen(tmp_path):
    cache, front = FrontFeatureCache(tmp_path), torch.nn.Linear(2, 2)
    asked = []

    def compute(rows):
        asked.append(list(rows))
        return torch.arange(len(rows) * 3, dtype=torch.float32).view(len(rows), 3)

    keys = np.arange(12, dtype=np.int64).reshape(3, 4)
    first = cache.keyed_features(front, keys, (16000,), compute)
    again = FrontFeatureCache(tmp_path).keyed_features(front, keys[[2, 0]], (16000,), compute)
    assert asked == [[0, 1, 2]] and torch.equal(again, first[[2, 0]])


def test_the_speech_fronts_audio_log_mel_is_openwakewords_own():
    """SpeechFront.audio_log_mel against onnxruntime running openWakeWord's
    melspectrogram.onnx on the same padded int16-scaled samples (x / 10 + 2, as openWakeWord
    scales its output)."""
    ort = pytest.importorskip("onnxruntime")
    from s2ilib.models.speech import PAD_FRAMES, SpeechFront, openwakeword_models

    manifest = pd.read_csv(AVDIGITS_DIR / "manifest.csv")
    wave = audio.load_audio(AVDIGITS_DIR / manifest.file[0])
    session = ort.InferenceSession(str(openwakeword_models() / "melspectrogram.onnx"))
    padded = np.pad(wave, PAD_FRAMES * 160)[None].astype(np.float32) * 32767.0
    theirs = session.run(None, {session.get_inputs()[0].name: padded})[0].squeeze() / 10 + 2
    ours = SpeechFront().audio_log_mel(torch.from_numpy(wave[None]))[0].numpy()
    assert ours.shape == theirs.shape == (157, 32)
    assert np.abs(ours - theirs).max() < 1e-4


def test_each_encoder_refuses_the_other_input_and_passes_features_through():
    config = replace(preset("tiny", 16).autoencoder, front="speech", front_input="audio")
    encoder = build_network("autoencoder", config).encoder.eval()
    waves = torch.randn(2, 16000) * 0.1
    spectrograms = torch.zeros(2, 1, 128, 100)
    with torch.no_grad():
        features = encoder.front_features(waves)
        assert features.shape == (2, 192)
        assert torch.equal(encoder(waves), encoder(features))
        with pytest.raises(S2IError, match="reads the audio"):
            encoder(spectrograms)
        images = build_network("autoencoder", replace(config, front_input="spectrogram")).encoder
        with pytest.raises(S2IError, match="reads the spectrogram"):
            images.eval()(waves)
    with pytest.raises(S2IError, match="reads the audio"):
        encode(encoder, np.zeros((2, 128, 100), np.uint8), "cpu")


def test_front_input_auto_reads_the_audio_where_a_frozen_front_can(tmp_path):
    spectrograms_only = write_synthetic_set(tmp_path / "bins")
    assert front_input_for(AVDIGITS_DIR, "speech") == "audio"
    assert front_input_for(AVDIGITS_DIR, "whisper") == "audio"
    assert front_input_for(AVDIGITS_DIR, "conv") == "spectrogram"
    assert front_input_for(AVDIGITS_DIR, "speech", "spectrogram") == "spectrogram"
    assert front_input_for(spectrograms_only, "speech") == "spectrogram"
    with pytest.raises(S2IError, match="ships no audio"):
        front_input_for(spectrograms_only, "speech", "audio")
    with pytest.raises(ConfigError, match="needs a frozen front"):
        AutoencoderConfig(front="conv", front_input="audio")


def test_train_ae_refuses_audio_input_on_a_set_without_clips_before_any_work(tmp_path):
    write_synthetic_set(tmp_path / "data")
    args = ("train-ae", "--data", "data", "--front", "speech", "--front-input", "audio")
    result = s2i(*args, "--steps", 2, "--runs-root", "runs", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "ships no audio" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_run_reading_the_audio_embeds_a_clip_alike_from_the_set_and_from_its_file(
    small_avdigits, tmp_path, monkeypatch
):
    """A tiny speech-front AE trained on the clips (the `auto` input): its config says so;
    a test clip embedded from the data set (its features found by the file's sha256) and
    from its file (read as 1 s: the clips are 1 s) gives the same embedding; the training
    clips' features, computed by the AE stage, are served to a later encode undecoded."""
    from s2ilib.runs import load_run
    from s2ilib.train.config import AETrainConfig
    from s2ilib.train.registry import train_autoencoder

    monkeypatch.setenv("S2I_FRONT_CACHE", str(tmp_path / "cache"))
    settings = {"data": str(small_avdigits.root), "preset": "tiny", "embedding_dim": 16,
                "front": "speech", "num_steps": 2, "batch_size": 8, "val_samples": 8,
                "sample_every": 2, "checkpoint_every": 2, "num_samples": 2}  # fmt: skip
    run_dir = train_autoencoder(
        AETrainConfig.from_dict(settings), runs_root=tmp_path / "runs", device="cpu",
        progress_bar=False,
    )  # fmt: skip
    run = load_run(run_dir)
    assert run.autoencoder.config.front_input == "audio"
    test = small_avdigits.split("test")
    picks = np.array([0, 5])
    from_set = encode(run.encoder, test.spectrograms[picks], "cpu", audio=test.audio[picks])
    clips = audio.load_clips([small_avdigits.root / f for f in test.extra["file"][picks]],
                             mode="centre")  # fmt: skip
    from_files = encode(run.encoder, clips.spectrograms, "cpu", audio=clips.waves)
    torch.testing.assert_close(from_set, from_files, atol=1e-5, rtol=1e-5)
    assert example_inputs(run.encoder, test, picks).shape == (2, 16000)
    computed = front_cache.activity()["computed"]  # the training clips: named, not decoded
    train = small_avdigits.split("train")
    encode(run.encoder, train.spectrograms, "cpu", audio=train.audio)
    assert front_cache.activity()["computed"] == computed
