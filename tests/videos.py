"""Tiny real videos for the ingest tests, encoded with PyAV, whose content encodes time.

Each picture shows its frame index as 8 vertical black/white bars (most significant bit
left) inside the central square, so the frame an ingest picked can be read back from its
96x96 crop. The sound is a 1-kHz tone burst once per second of the *video clock*, starting
at k + BURST_START and lasting a different time each second (burst_seconds(k)), so any
shift of the audio against the video shows up in the spectrogram columns.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 8  # frame-index bars; 256 frames at most
BURST_START = 0.25  # seconds after each whole second of the video clock
TONE_HZ = 1000.0


def burst_seconds(second: int) -> float:
    """Length of the tone burst in second `second` of the video clock (unique per second)."""
    return 0.1 + 0.1 * (second % 6)


def tone_mask(times: np.ndarray) -> np.ndarray:
    """True where the test sound is on, at the given video-clock times (seconds)."""
    second = np.floor(times).astype(int)
    into = times - second
    return (into >= BURST_START) & (into < BURST_START + burst_seconds(second))


def test_sound(times: np.ndarray, silent: bool = False) -> np.ndarray:
    """The test sound (float32 in [-0.5, 0.5]) at the given video-clock times."""
    if silent:
        return np.zeros(len(times), np.float32)
    tone = 0.5 * np.sin(2 * np.pi * TONE_HZ * times)
    return (tone * tone_mask(times)).astype(np.float32)


def bars_picture(index: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3): frame `index` as BITS bars in the central square."""
    side = min(width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    picture = np.full((height, width, 3), 128, np.uint8)  # grey outside the square
    edges = np.linspace(0, side, BITS + 1).round().astype(int)
    for bit in range(BITS):
        on = (index >> (BITS - 1 - bit)) & 1
        picture[top : top + side, left + edges[bit] : left + edges[bit + 1]] = 255 * on
    return picture


def read_bars(image: np.ndarray) -> int:
    """The frame index shown by a square crop of bars_picture (any size, RGB or grey)."""
    grey = image.mean(axis=-1) if image.ndim == 3 else image
    side = grey.shape[1]
    centres = ((np.arange(BITS) + 0.5) * side / BITS).astype(int)
    bits = grey[:, centres].mean(axis=0) > 128
    return int(sum(int(b) << (BITS - 1 - i) for i, b in enumerate(bits)))


def make_video(
    path,
    video_codec: str | None = "libx264",
    audio_codec: str | None = "aac",
    seconds: float = 3.5,
    fps: int = 20,
    size: tuple[int, int] = (64, 48),
    sample_rate: int = 16000,
    audio_start: float = 0.0,
    video_start: float = 0.0,
    audio_seconds: float | None = None,
    silent: bool = False,
    layout: str = "mono",
) -> Path:
    """Encode a test video; the container comes from the file suffix.

    video_codec / audio_codec: encoder names, or None to leave that stream out.
    seconds: video length; audio_seconds: audio length (default: the same span as the video).
    audio_start / video_start: first timestamp of each stream on the container clock (s).
    silent: all-zero audio instead of the tone bursts.
    layout: the audio track's channel layout ("mono", "stereo"); every channel is the same.
    """
    path = Path(path)
    width, height = size
    with av.open(str(path), "w") as container:
        video = audio = None
        if video_codec:
            video = container.add_stream(video_codec, rate=fps)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.time_base = Fraction(1, fps)
            if video_codec == "libx264":
                video.options = {"crf": "10", "preset": "ultrafast"}
        if audio_codec:
            audio = container.add_stream(audio_codec, rate=sample_rate)
            audio.layout = layout  # PyAV's encoder converts the mono float frames to it
            audio.time_base = Fraction(1, sample_rate)
        packets = []
        if video is not None:
            packets += _encode_video(video, seconds, fps, width, height, video_start)
        if audio is not None:
            length = seconds if audio_seconds is None else audio_seconds
            packets += _encode_audio(audio, length, sample_rate, audio_start, silent)
        # Mux in presentation order, as a real recorder interleaves the streams.
        packets.sort(key=lambda p: float(p.dts * p.time_base) if p.dts is not None else 0.0)
        for packet in packets:
            container.mux(packet)
    return path


def _encode_video(stream, seconds, fps, width, height, start) -> list:
    """Packets of round(seconds * fps) frames of bars, the first at `start` seconds."""
    first = round(start * fps)
    packets = []
    for index in range(round(seconds * fps)):
        frame = av.VideoFrame.from_ndarray(bars_picture(index, width, height), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = first + index
        frame.time_base = stream.time_base
        packets += stream.encode(frame)
    return packets + list(stream.encode(None))


def _encode_audio(stream, seconds, sample_rate, start, silent) -> list:
    """Packets of `seconds` of the test sound, the first sample at `start` seconds."""
    first = round(start * sample_rate)
    packets = []
    chunk = 1000  # the encoder re-buffers to its own frame size
    total = round(seconds * sample_rate)
    for offset in range(0, total, chunk):
        count = min(chunk, total - offset)
        times = (first + offset + np.arange(count)) / sample_rate
        wave = test_sound(times, silent)[None, :]
        frame = av.AudioFrame.from_ndarray(wave, format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = first + offset
        frame.time_base = Fraction(1, sample_rate)
        packets += stream.encode(frame)
    return packets + list(stream.encode(None))
