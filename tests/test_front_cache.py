"""The speech front's feature cache: exact keys, shared across processes, never stale."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s2ilib.datasets.torch_data import to_unit_range
from s2ilib.models import front_cache
from s2ilib.models.front_cache import FrontFeatureCache, sound_keys
from s2ilib.models.speech import PooledSpeech, SpeechFront


def random_front(seed: int = 0) -> PooledSpeech:
    """A speech front with random weights (no openWakeWord file needed)."""
    front = PooledSpeech(SpeechFront(load_pretrained=False))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for buffer in front.buffers():
            buffer.copy_(torch.rand(buffer.shape, generator=generator) * 0.2)
    return front


def spectrograms(count: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (count, 1, 128, 100), generator=generator, dtype=torch.uint8)
    return to_unit_range(pixels)


def test_cached_features_equal_the_computed_ones_and_are_computed_once(tmp_path):
    front, sounds = random_front(), spectrograms(6)
    cache = FrontFeatureCache(tmp_path)
    first = cache.features(front, sounds[:4], front.pool)
    torch.testing.assert_close(first, front.pool(sounds[:4]), rtol=0, atol=1e-5)
    # Two sounds seen before, two new, in another order and batch.
    again = cache.features(front, sounds[[3, 5, 0, 4]], front.pool)
    assert (cache.computed, cache.served) == (6, 2)
    assert torch.equal(again[0], first[3]) and torch.equal(again[2], first[0])
    torch.testing.assert_close(again, front.pool(sounds[[3, 5, 0, 4]]), rtol=0, atol=1e-5)


def test_another_process_reads_what_one_computed(tmp_path):
    front, sounds = random_front(), spectrograms(5)
    expected = FrontFeatureCache(tmp_path).features(front, sounds, front.pool)
    later = FrontFeatureCache(tmp_path)  # what a later notebook's kernel builds
    assert torch.equal(later.features(front, sounds, front.pool), expected)
    assert (later.computed, later.served) == (0, 5)


def test_other_weights_or_off_grid_inputs_are_never_served_from_the_cache(tmp_path):
    cache, sounds = FrontFeatureCache(tmp_path), spectrograms(3)
    cache.features(random_front(0), sounds, random_front(0).pool)
    other = random_front(1)
    torch.testing.assert_close(cache.features(other, sounds, other.pool), other.pool(sounds))
    assert cache.served == 0
    augmented = sounds + 0.001  # off the 8-bit grid: computed, not looked up
    assert sound_keys(augmented) is None
    torch.testing.assert_close(cache.features(other, augmented, other.pool), other.pool(augmented))
    assert cache.computed == 6


def test_keys_tell_a_one_pixel_change_and_ignore_batching():
    sounds = spectrograms(4)
    changed = sounds.clone()
    changed[2, 0, 64, 50] = -1.0 if changed[2, 0, 64, 50] > -1.0 else 1.0
    keys, changed_keys = sound_keys(sounds), sound_keys(changed)
    assert torch.equal(keys[[0, 1, 3]], changed_keys[[0, 1, 3]])
    assert not torch.equal(keys[2], changed_keys[2])
    assert torch.equal(sound_keys(sounds[2:3]), keys[2:3])


def test_a_torn_file_is_skipped_and_its_sounds_computed_again(tmp_path):
    front, sounds = random_front(), spectrograms(3)
    FrontFeatureCache(tmp_path).features(front, sounds, front.pool)
    (written,) = tmp_path.glob("*/*.pt")
    written.write_bytes(written.read_bytes()[:100])
    cache = FrontFeatureCache(tmp_path)
    with pytest.warns(UserWarning, match="unreadable"):
        features = cache.features(front, sounds, front.pool)
    torch.testing.assert_close(features, front.pool(sounds), rtol=0, atol=1e-5)
    assert cache.computed == 3


def test_the_front_uses_the_folder_the_environment_names(tmp_path, monkeypatch):
    monkeypatch.setenv("S2I_FRONT_CACHE", str(tmp_path / "features"))
    front, sounds = random_front(), spectrograms(2)
    front(sounds)
    assert len(list((tmp_path / "features").glob("*/*.pt"))) == 1
    monkeypatch.setenv("S2I_FRONT_CACHE", "off")
    assert front_cache.shared_cache() is None
    torch.testing.assert_close(front(sounds), front.pool(sounds))


def test_a_benchmark_can_turn_the_cache_off_for_a_while(tmp_path, monkeypatch):
    """s2i bench imagine times a new recording's front inside cache_turned_off: nothing is
    read or written there, and the user's setting is back after, an error included."""
    folder = tmp_path / "features"
    monkeypatch.setenv("S2I_FRONT_CACHE", str(folder))
    front, sounds = random_front(), spectrograms(2)
    with front_cache.cache_turned_off():
        assert front_cache.shared_cache() is None
        front(sounds)
    assert not folder.exists()
    with pytest.raises(RuntimeError), front_cache.cache_turned_off():
        raise RuntimeError("a failed benchmark")
    assert front_cache.cache_folder() == folder
    monkeypatch.delenv("S2I_FRONT_CACHE")
    with front_cache.cache_turned_off():
        pass
    assert "S2I_FRONT_CACHE" not in os.environ


def test_a_training_stage_process_reuses_the_features(tmp_path):
    """Two real processes: the second computes nothing the first computed."""
    script = (
        "import torch, sys; sys.path.insert(0, 'tests');"
        "from test_front_cache import random_front, spectrograms;"
        "from s2ilib.models.front_cache import shared_cache;"
        "front = random_front(); front(spectrograms(8));"
        "print(shared_cache().computed, shared_cache().served)"
    )
    env = {"S2I_FRONT_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[1]
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root
        )
        for _ in range(2)
    ]
    assert [run.stdout.split() for run in runs] == [["8", "0"], ["0", "8"]], runs[0].stderr


def test_a_step_records_what_the_front_computed_and_what_the_cache_served(tmp_path, monkeypatch):
    from s2ilib.notebook import write_step_outputs

    monkeypatch.setenv("S2I_FRONT_CACHE", str(tmp_path / "features"))
    before = front_cache.activity() or {"computed": 0, "served": 0}
    front, sounds = random_front(), spectrograms(3)
    front(sounds)
    front(sounds[:2])
    path = write_step_outputs(tmp_path / "report", "02_audio_autoencoder", {"pass_on": {}})
    recorded = json.loads(path.read_text())["speech_front_cache"]
    assert recorded["computed"] - before["computed"] == 3
    assert recorded["served"] - before["served"] == 2
    assert recorded["compute_seconds"] >= 0
