"""The audio front end: file IO, resampling, 1-s fitting, log-mel and the 8-bit mapping."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import soundfile
import torch

from s2ilib.audio import (
    SAMPLE_RATE,
    AudioWarning,
    FrontEndConfig,
    LogMel,
    audio_file_to_uint8,
    db_to_uint8,
    fit_one_second,
    hz_to_mel,
    image_row_of_band,
    load_audio,
    log_mel,
    mel_band_centres,
    mel_band_of_frequency,
    mel_to_hz,
    resample,
    segment_seconds,
    spectrogram_uint8,
    uint8_to_db,
)
from s2ilib.errors import AudioError

CONFIG = FrontEndConfig()


def tone(frequency: float, seconds: float = 1.0, rate: int = SAMPLE_RATE, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def chirp(f0: float, f1: float, seconds: float = 1.0, rate: int = SAMPLE_RATE):
    """Linear chirp from f0 to f1 Hz."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.5 * np.sin(phase)).astype(np.float32)


def noise(seconds: float = 1.0, rate: int = SAMPLE_RATE, seed: int = 0, scale=0.1):
    return (scale * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(
        np.float32
    )


# --- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix, fmt, subtype",
    [("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_24"), ("ogg", "OGG", "VORBIS")],
)
def test_wav_flac_ogg_files_load_as_mono_float32(tmp_path, suffix, fmt, subtype):
    path = tmp_path / f"tone.{suffix}"
    soundfile.write(path, tone(1000.0), SAMPLE_RATE, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.shape == (SAMPLE_RATE,)
    assert np.abs(wave).max() == pytest.approx(0.5, abs=0.05)


def test_opus_file_loads(tmp_path):
    if "OPUS" not in soundfile.available_subtypes("OGG"):
        pytest.skip("this libsndfile has no Opus support")
    path = tmp_path / "tone.opus"
    soundfile.write(path, tone(1000.0, rate=48000), 48000, format="OGG", subtype="OPUS")
    assert load_audio(path).shape[0] == pytest.approx(SAMPLE_RATE, abs=400)


def test_multichannel_file_is_averaged(tmp_path):
    left, right = tone(1000.0), np.zeros(SAMPLE_RATE, np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right, left], axis=1), SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), 2 * left / 3, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_rates_are_resampled_to_a_128x100_image(tmp_path, rate):
    path = tmp_path / f"noise_{rate}.wav"
    soundfile.write(path, noise(rate=rate), rate)
    wave = load_audio(path)
    assert wave.shape == (SAMPLE_RATE,)
    image = audio_file_to_uint8(path)
    assert image.shape == (128, 100) and image.dtype == np.uint8
    top_rows, low_rows = image[:10].mean(), image[-60:].mean()
    if rate == 8000:  # nothing above 4 kHz survives: bands wholly above the resampler's
        # transition band (4.0-4.5 kHz) are black
        centres = mel_band_centres(CONFIG)
        first_empty_band = int(np.flatnonzero(centres[:-1] > 4500.0)[0]) + 1
        assert image[: image_row_of_band(first_empty_band) + 1].max() == 0
        assert low_rows > 30
    else:
        assert top_rows > 15 and low_rows > 15  # 3x down-sampled noise reads ~-44 dB


def test_not_audio_raises_audio_error_naming_the_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not a sound file\n")
    with pytest.raises(AudioError, match="notes.wav"):
        load_audio(path)
    with pytest.raises(AudioError, match="missing.flac"):
        load_audio(tmp_path / "missing.flac")


def test_empty_file_raises_audio_error(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="empty.wav.*no audio samples"):
        load_audio(path)


def test_shorter_than_one_frame_is_padded(tmp_path):
    path = tmp_path / "click.wav"
    soundfile.write(path, np.full(50, 0.5, np.float32), SAMPLE_RATE, subtype="FLOAT")
    image = audio_file_to_uint8(path)
    assert image.shape == (128, 100)
    loud_columns = np.flatnonzero(image.max(axis=0) > 0)
    assert 45 <= loud_columns.min() and loud_columns.max() <= 54  # the click sits mid-second


def test_nan_and_inf_samples_are_zeroed_with_a_warning(tmp_path):
    wave = tone(1000.0)
    wave[100:110] = np.nan
    wave[5000] = np.inf
    path = tmp_path / "bad.wav"
    soundfile.write(path, wave, SAMPLE_RATE, subtype="FLOAT")
    with pytest.warns(AudioWarning, match="bad.wav: 11 of 16000 samples"):
        loaded = load_audio(path)
    assert np.isfinite(loaded).all() and loaded[100:110].max() == 0.0
    soundfile.write(path, np.full(1000, np.nan, np.float32), SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="bad.wav: every sample"):
        load_audio(path)


def test_log_mel_rejects_non_finite_waves():
    wave = tone(1000.0)
    wave[3] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        log_mel(wave)


# --- waves ---------------------------------------------------------------------------------


def test_resample_keeps_a_tone_and_batches():
    batch = np.stack([tone(440.0, rate=44100), tone(880.0, rate=44100)])
    out = resample(batch, 44100, SAMPLE_RATE)
    assert out.shape == (2, SAMPLE_RATE) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out[1]))
    assert np.argmax(spectrum) == 880  # 1-Hz bins for a 1-s wave
    np.testing.assert_array_equal(resample(out, SAMPLE_RATE, SAMPLE_RATE), out)


def test_fit_one_second_pads_short_clips_symmetrically():
    fitted = fit_one_second(np.ones(6001, np.float32))
    assert fitted.shape == (SAMPLE_RATE,) and fitted.sum() == 6001
    assert np.flatnonzero(fitted)[[0, -1]].tolist() == [4999, 10999]


def test_fit_one_second_centre_and_loudest():
    wave = np.zeros(3 * SAMPLE_RATE, np.float32)
    wave[2 * SAMPLE_RATE + 4000 : 2 * SAMPLE_RATE + 6000] = 1.0  # a burst late in the clip
    centre = fit_one_second(wave, mode="centre")
    assert centre.shape == (SAMPLE_RATE,) and centre.max() == 0.0
    loudest = fit_one_second(wave, mode="loudest")
    assert loudest.sum() == 2000  # the whole burst is inside the chosen second
    end = np.zeros(SAMPLE_RATE + 155, np.float32)
    end[-1] = 1.0  # energy only in the last sample: the window flush with the end wins
    assert fit_one_second(end, mode="loudest")[-1] == 1.0


def test_word_mode_trims_levels_and_centres_a_recorded_word():
    """A quiet word late in a long noisy recording -> the word alone, at WORD_PEAK_DBFS, centred."""
    from s2ilib.audio import WORD_PEAK_DBFS

    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(int(1.6 * SAMPLE_RATE)) * 1e-5).astype(np.float32)
    start = int(1.0 * SAMPLE_RATE)
    word = np.sin(np.arange(4000) * 0.2).astype(np.float32) * np.hanning(4000).astype(np.float32)
    wave[start : start + 4000] += 0.02 * word  # peak about -34 dBFS
    fitted = fit_one_second(wave, mode="word")
    assert fitted.shape == (SAMPLE_RATE,)
    assert 20 * np.log10(np.abs(fitted).max()) == pytest.approx(WORD_PEAK_DBFS, abs=1e-3)
    loud = np.flatnonzero(np.abs(fitted) > 0.01)
    assert abs((loud[0] + loud[-1]) / 2 - SAMPLE_RATE / 2) < 0.02 * SAMPLE_RATE  # centred
    silent = np.zeros(SAMPLE_RATE // 2, np.float32)
    np.testing.assert_array_equal(fit_one_second(silent, mode="word"), np.zeros(SAMPLE_RATE))
    with pytest.raises(ValueError, match="centre, loudest, word"):
        fit_one_second(wave, mode="middle")


def test_segment_seconds_drops_the_tail():
    wave = np.arange(int(2.5 * SAMPLE_RATE), dtype=np.float32)
    segments = segment_seconds(wave)
    assert segments.shape == (2, SAMPLE_RATE)
    np.testing.assert_array_equal(segments[1], wave[SAMPLE_RATE : 2 * SAMPLE_RATE])
    assert segment_seconds(wave[:100]).shape == (0, SAMPLE_RATE)
    assert segment_seconds(wave, seconds=0.5).shape == (5, SAMPLE_RATE // 2)


# --- spectrograms --------------------------------------------------------------------------


def test_one_second_gives_128x100_in_db():
    db = log_mel(noise())
    assert db.shape == (128, 100) and db.dtype == np.float32 and np.isfinite(db).all()


def test_silence_gives_a_valid_black_image():
    db = log_mel(np.zeros(SAMPLE_RATE, np.float32))
    assert np.isfinite(db).all() and db.max() == pytest.approx(-100.0)
    assert spectrogram_uint8(np.zeros(SAMPLE_RATE)).max() == 0


def test_clipped_input_stays_finite_and_bright():
    clipped = np.clip(tone(1000.0, amplitude=4.0), -1.0, 1.0)  # square-ish, full scale
    image = spectrogram_uint8(clipped)[0]
    assert np.isfinite(log_mel(clipped)).all()
    assert image.max() > 240  # a full-scale sine reads about 0 dB, above the ceiling
    # clipping puts odd harmonics above the tone
    harmonic_row = image_row_of_band(mel_band_of_frequency(3000.0))
    assert image[harmonic_row].mean() > 150


def test_1khz_tone_lands_in_its_mel_band():
    centres = mel_band_centres(CONFIG)
    expected_band = int(np.argmin(np.abs(hz_to_mel(centres) - hz_to_mel(1000.0))))
    assert expected_band == mel_band_of_frequency(1000.0)
    db = log_mel(tone(1000.0))
    rows_of_max = np.argmax(db, axis=0)  # per frame, image orientation
    assert np.all(np.abs(rows_of_max - (127 - expected_band)) <= 1)
    assert 80 < 127 - expected_band < 90  # slaney: 1 kHz is a third of the way up to 8 kHz


def test_mel_scale_round_trips():
    hz = np.array([0.0, 500.0, 1000.0, 4000.0, 8000.0])
    for scale in ("slaney", "htk"):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz, scale), scale), hz, atol=1e-6)


def test_chirp_rises_in_the_image():
    db = log_mel(chirp(200.0, 6000.0))
    rows_of_max = np.argmax(db, axis=0)
    assert rows_of_max[5] > rows_of_max[50] > rows_of_max[94]  # moves up: row 0 is the top
    assert np.all(np.diff(rows_of_max[2:-2]) <= 0)


def test_batch_equals_items_and_dtypes_agree():
    batch = np.stack([tone(500.0), noise(seed=1), chirp(100.0, 7000.0)])
    together = log_mel(batch)
    one_by_one = np.stack([log_mel(item) for item in batch])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)
    np.testing.assert_allclose(log_mel(batch.astype(np.float64)), together, atol=1e-4)
    as_int16 = (batch * 32767).astype(np.int16)
    audible = together > CONFIG.db_floor  # int16 rounding noise only shows below the floor
    np.testing.assert_allclose(log_mel(as_int16)[audible], together[audible], atol=0.05)


def test_logmel_module_is_batched_and_moves_with_its_buffers():
    module = LogMel(CONFIG)
    assert {"window", "filterbank"} <= dict(module.named_buffers()).keys()
    waves = torch.from_numpy(np.stack([noise(seed=2), noise(seed=3)]))
    out = module(waves)
    assert out.shape == (2, 128, 100) and out.dtype == torch.float32
    assert module(waves.double()).dtype == torch.float32
    with pytest.raises(AudioError, match="shorter than one hop"):
        module(torch.zeros(1, 100))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_logmel_on_cuda_matches_cpu():
    waves = torch.from_numpy(np.stack([noise(seed=4), tone(2000.0)]))
    cpu = LogMel(CONFIG)(waves)
    gpu = LogMel(CONFIG).cuda()(waves.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-3, rtol=1e-4)


def test_frames_count_for_other_lengths():
    assert log_mel(noise(seconds=2.0)).shape == (128, 200)
    assert log_mel(noise(seconds=0.5)).shape == (128, 50)


# --- the 8-bit mapping ---------------------------------------------------------------------


def test_db_to_uint8_absolute_mapping_and_inverse():
    floor, ceiling = CONFIG.db_floor, CONFIG.db_ceiling
    db = np.array([[floor - 10, floor, (floor + ceiling) / 2, ceiling, ceiling + 5]])
    u8 = db_to_uint8(db)
    assert u8.dtype == np.uint8 and u8.tolist() == [[0, 0, 128, 255, 255]]
    back = uint8_to_db(u8)
    np.testing.assert_allclose(back[0, 1:4], db[0, 1:4], atol=CONFIG.top_db / 255)
    as_tensor = db_to_uint8(torch.from_numpy(db))
    assert as_tensor.dtype == torch.uint8 and as_tensor.tolist() == u8.tolist()
    torch.testing.assert_close(uint8_to_db(as_tensor).numpy(), back)


def test_db_to_uint8_clip_max_maps_each_clip_maximum_to_255():
    config = dataclasses.replace(CONFIG, db_reference="clip_max")
    quiet, loud = log_mel(np.stack([tone(1000.0, amplitude=0.001), tone(1000.0)]))
    u8 = db_to_uint8(np.stack([quiet, loud]), config)
    assert u8[0].max() == 255 and u8[1].max() == 255
    absolute = db_to_uint8(np.stack([quiet, loud]))
    assert absolute[0].max() < absolute[1].max()  # absolute keeps the loudness difference


def test_louder_is_brighter_and_low_frequencies_at_the_bottom():
    low = spectrogram_uint8(tone(200.0))[0]
    assert low[-20:].mean() > low[:20].mean()
    soft, loud = spectrogram_uint8(np.stack([noise(scale=0.01), noise(scale=0.1)]))
    assert loud.mean() > soft.mean() + 20


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="mel_scale"):
        FrontEndConfig(mel_scale="bark")
    with pytest.raises(ValueError, match="db_reference"):
        FrontEndConfig(db_reference="peak")
    with pytest.raises(ValueError, match="win_length"):
        FrontEndConfig(win_length=1024)


def test_no_warnings_on_clean_input(tmp_path):
    path = tmp_path / "clean.flac"
    soundfile.write(path, tone(300.0, seconds=2.0, rate=22050), 22050)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = audio_file_to_uint8(path)
    assert image.shape == (128, 100)
