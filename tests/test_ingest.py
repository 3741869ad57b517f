"""`s2i ingest`: real videos (H.264/AAC mp4, VP9/Opus webm, H.264/Opus mkv) -> the layout.

The test videos encode time in their content (tests/videos.py): the frame index as bars in
the picture, a tone burst of a different length each second of the video clock. So the
tests read back which frame each segment chose and where the sound fell in its spectrogram.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from videos import BURST_START, burst_seconds, make_video, read_bars

from s2ilib import formats, ingest
from s2ilib.audio import image_row_of_band, mel_band_of_frequency
from s2ilib.errors import S2IError
from s2ilib.ingest import (
    BATCH_DIR,
    LOCK_FILE,
    PARTS_DIR,
    assign_splits,
    decode_video_segments,
    ingest_videos,
    probe_video,
)

# name -> (make_video arguments, expected segments). Videos are 64x48, 3.5 s. Start times
# are whole frames, and no segment centre falls half-way between two frames.
GOOD = {
    "birds/h264_aac.mp4": ({}, 3),
    # Audio starts 0.43 s after the video: segments start with the audio.
    "birds/vp9_opus_late_audio.webm": (
        dict(
            video_codec="libvpx-vp9",
            audio_codec="libopus",
            sample_rate=48000,
            fps=25,
            audio_start=0.43,
        ),
        3,
    ),
    # AAC with an offset start: FFmpeg leaves the 1024 priming samples in, timestamped
    # 64 ms before the first real sample, so only pts-based placement stays aligned.
    "birds/h264_aac_late_audio.mp4": (dict(audio_start=0.5, fps=10), 3),
    # Video starts 0.25 s after the audio.
    "cars/h264_opus_late_video.mkv": (
        dict(audio_codec="libopus", sample_rate=48000, video_start=0.25, fps=12),
        3,
    ),
    # Packed (interleaved) stereo 16-bit PCM at 22.05 kHz in QuickTime.
    "cars/pcm_stereo.mov": (
        dict(audio_codec="pcm_s16le", layout="stereo", sample_rate=22050, fps=24),
        3,
    ),
    "cars/silent.mkv": (dict(audio_codec="libopus", sample_rate=48000, silent=True), 3),
}
BAD = {
    "birds/notes.txt": "unreadable",
    "birds/photo.png": "not_video",
    "cars/no_audio.mp4": "no_audio",
    "cars/no_video.m4a": "no_video",
    "cars/short.mp4": "too_short",
    "cars/garbled.mp4": "undecodable",
}
TONE_ROW = image_row_of_band(mel_band_of_frequency(1000.0))


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    """A VIDEO_DIR with two classes, five good videos and one of each bad case."""
    root = tmp_path_factory.mktemp("videos")
    (root / "birds").mkdir()
    (root / "cars").mkdir()
    for name, (options, _) in GOOD.items():
        make_video(root / name, **options)
    (root / "birds/notes.txt").write_text("field notes, not a video\n")
    Image.new("RGB", (64, 48), "green").save(root / "birds/photo.png")
    make_video(root / "cars/no_audio.mp4", audio_codec=None)
    make_video(root / "cars/no_video.m4a", video_codec=None)
    make_video(root / "cars/short.mp4", seconds=0.6)
    _garble(make_video(root / "cars/garbled.mp4"))
    return root


def _garble(path: Path) -> None:
    """Overwrite every coded sample of an mp4 (the mdat box) with noise; headers stay valid."""
    data = bytearray(path.read_bytes())
    start, stop = data.find(b"mdat") + 4, data.find(b"moov") - 4
    data[start:stop] = np.random.default_rng(0).integers(0, 256, stop - start, np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def ingested(video_dir, tmp_path_factory) -> tuple[Path, dict, str]:
    """The whole folder ingested by the real `s2i ingest` command, two worker processes."""
    out_dir = tmp_path_factory.mktemp("ingest") / "out"
    result = subprocess.run(
        [sys.executable, "-m", "s2ilib", "ingest", str(video_dir), str(out_dir)]
        + ["--val", "0.25", "--test", "0.25", "--seed", "3", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out_dir / "ingest_report.json").read_text())
    return out_dir, report, result.stdout + result.stderr


# --------------------------------------------------------------------------------------
# One video: segment counts, the central frame, the audio on the video clock
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in GOOD if "silent" not in n])
def test_segments_pick_the_central_frame_and_align_the_sound(video_dir, name):
    options, expected_segments = GOOD[name]
    fps = options.get("fps", 20)
    video_start, audio_start = options.get("video_start", 0.0), options.get("audio_start", 0.0)
    segments = decode_video_segments(video_dir / name)

    assert segments.spectrograms.shape == (expected_segments, 128, 100)
    assert segments.spectrograms.dtype == np.uint8
    assert segments.images.shape == (expected_segments, 96, 96, 3)
    # Segments start where both streams exist (AAC priming may start the audio <= 64 ms early).
    first = max(video_start, audio_start)
    assert first - 0.07 <= segments.segment_starts[0] <= first + 0.002
    np.testing.assert_allclose(np.diff(segments.segment_starts), 1.0)

    centres = segments.segment_starts + 0.5
    expected_frames = np.rint((centres - video_start) * fps).astype(int)
    shown = [read_bars(image) for image in segments.images]
    assert shown == list(expected_frames), f"{name}: frames {shown}, centres {centres}"
    np.testing.assert_allclose(segments.frame_times, video_start + expected_frames / fps, atol=2e-3)

    for start, spectrogram in zip(segments.segment_starts, segments.spectrograms, strict=True):
        measured = _burst_columns(spectrogram[TONE_ROW])
        expected = _expected_burst_columns(start)
        assert abs(measured - expected) <= 1.5, (
            f"{name}, segment at {start:.3f} s: tone burst centred at column {measured:.1f}, "
            f"expected {expected:.1f} (10 ms per column)"
        )


def _burst_columns(row: np.ndarray) -> float:
    """Centre (in columns) of the longest bright run of one spectrogram row."""
    bright = np.concatenate(([0], (row > 128).astype(int), [0]))
    edges = np.flatnonzero(np.diff(bright))
    starts, stops = edges[::2], edges[1::2]
    longest = np.argmax(stops - starts)
    return (starts[longest] + stops[longest] - 1) / 2


def _expected_burst_columns(segment_start: float) -> float:
    """Centre (in columns) of the part of the tone burst that falls in this segment."""
    times = segment_start + (np.arange(100) + 0.5) / 100
    second = np.floor(times).astype(int)
    into = times - second
    on = (into >= BURST_START) & (into < BURST_START + np.vectorize(burst_seconds)(second))
    runs = np.concatenate(([0], on.astype(int), [0]))
    edges = np.flatnonzero(np.diff(runs))
    starts, stops = edges[::2], edges[1::2]
    longest = np.argmax(stops - starts)
    return (starts[longest] + stops[longest] - 1) / 2


def test_silent_audio_gives_dark_finite_spectrograms(video_dir):
    segments = decode_video_segments(video_dir / "cars/silent.mkv")
    assert segments.spectrograms.shape == (3, 128, 100)
    assert segments.silent.all()
    assert segments.spectrograms.max() == 0  # the darkest value, never NaN garbage
    assert [read_bars(image) for image in segments.images] == [10, 30, 50]


@pytest.mark.parametrize("name", list(BAD))
def test_bad_files_say_why(video_dir, name):
    with pytest.raises(S2IError) as caught:
        probe_video(video_dir / name)
        decode_video_segments(video_dir / name)
    assert caught.value.code == BAD[name]


# --------------------------------------------------------------------------------------
# The whole folder, through the CLI
# --------------------------------------------------------------------------------------


def test_report_lists_every_file(ingested):
    out_dir, report, console = ingested
    counts = report["counts"]
    assert counts["files"] == len(GOOD) + len(BAD)
    assert counts["ingested"] == len(GOOD)
    assert counts["skipped"] == len(BAD)
    assert counts["skipped_by_reason"] == {code: 1 for code in BAD.values()}
    assert counts["segments"] == sum(n for _, n in GOOD.values())
    assert counts["silent_segments"] == 3
    by_file = {entry["relative"]: entry for entry in report["videos"]}
    for name, (_, expected_segments) in GOOD.items():
        assert by_file[name]["status"] == "ok"
        assert by_file[name]["segments"] == expected_segments
    for name, code in BAD.items():
        assert by_file[name]["reason_code"] == code
        assert f"skipped {name}:" in console  # and on the console, as it happens
    # Source ids: positions in the sorted list of all files, mapped in the report.
    assert list(report["source_ids"].values()) == sorted(by_file)
    assert json.loads((out_dir / "classes.json").read_text()) == {"0": "birds", "1": "cars"}


def test_output_layout_is_readable_and_consistent(ingested):
    out_dir, report, _ = ingested
    ok = {e["source"]: e for e in report["videos"] if e["status"] == "ok"}
    bins = formats.open_records(out_dir / BATCH_DIR)
    jpegs = formats.open_records(out_dir)
    assert formats.infer_layout(out_dir / BATCH_DIR) == "spec_image_bin"
    total = 0
    for split, records in bins.items():
        names = list(records.names)
        assert names == sorted(names)  # in source order, windows in order
        assert sorted(jpegs[split].names) == names
        for index, name in enumerate(names):
            class_index, source, window = formats.parse_name(name)
            entry = ok[f"s{source:05d}"]
            assert entry["split"] == split and entry["class_index"] == class_index
            assert records.labels[index] == class_index
            # The .bin image is lossless: its bars name the frame the report says was chosen.
            fps = GOOD[entry["relative"]][0].get("fps", 20)
            video_start = GOOD[entry["relative"]][0].get("video_start", 0.0)
            frame = round((entry["frame_times"][window] - video_start) * fps)
            assert read_bars(records.images[index]) == frame
        # The JPEGs hold the same records (lossy: compare on average).
        order = np.argsort(jpegs[split].names)
        difference = np.abs(
            jpegs[split].spectrograms[order].astype(float) - records.spectrograms[:].astype(float)
        )
        assert difference.mean() < 2.0
        total += len(records)
    assert total == report["counts"]["segments"]
    # Splits are by video, per class, over the videos that gave segments: 3 per class here,
    # so round(3 * 0.25) = 1 each for val and test.
    assert report["counts"]["videos_per_split"] == {"train": 2, "val": 2, "test": 2}


def test_inspect_reads_the_output(ingested):
    out_dir, report, _ = ingested
    result = subprocess.run(
        [sys.executable, "-m", "s2ilib", "inspect", str(out_dir / BATCH_DIR), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["layout"] == "spec_image_bin"
    assert summary["total_records"] == report["counts"]["segments"]


# --------------------------------------------------------------------------------------
# Re-runs: refuse or resume, never corrupt
# --------------------------------------------------------------------------------------


def test_rerun_refuses_a_non_empty_folder(ingested, video_dir):
    out_dir, _, _ = ingested
    with pytest.raises(S2IError, match="not empty; pass --resume"):
        ingest_videos(video_dir, out_dir, val=0.25, test=0.25, seed=3, progress=False)
    with pytest.raises(S2IError, match="differs in options"):
        ingest_videos(video_dir, out_dir, val=0.25, test=0.25, seed=4, resume=True)


def test_resume_redoes_only_unfinished_videos(ingested, video_dir, tmp_path):
    out_dir, report, _ = ingested
    copy = tmp_path / "out"
    shutil.copytree(out_dir, copy)
    batch_bytes = {p.name: p.read_bytes() for p in (copy / BATCH_DIR).glob("*.bin")}
    # A run killed mid-way: one video unfinished, its JPEGs half there, no batches yet.
    unfinished = next(e for e in report["videos"] if e["status"] == "ok")
    (copy / PARTS_DIR / f"{unfinished['source']}.json").unlink()
    (copy / PARTS_DIR / f"{unfinished['source']}.npz").unlink()
    shutil.rmtree(copy / "batches")
    # A live run holds the folder: refused. A lock whose process is gone is taken over.
    lock = copy / LOCK_FILE
    lock.write_text(str(os.getpid()))
    with pytest.raises(S2IError, match="another ingest"):
        ingest_videos(video_dir, copy, val=0.25, test=0.25, seed=3, resume=True)
    finished = subprocess.Popen(["true"])
    finished.wait()
    lock.write_text(str(finished.pid))
    resumed = ingest_videos(
        video_dir, copy, val=0.25, test=0.25, seed=3, workers=0, resume=True, progress=False
    )
    assert resumed["counts"]["resumed"] == report["counts"]["files"] - 1
    assert resumed["counts"] == {**report["counts"], "resumed": resumed["counts"]["resumed"]}
    assert {p.name: p.read_bytes() for p in (copy / BATCH_DIR).glob("*.bin")} == batch_bytes
    assert not lock.exists()


def test_splits_are_by_video_deterministic_and_stratified():
    classes = [0] * 10 + [1] * 20
    first = assign_splits(classes, val=0.1, test=0.2, seed=0)
    assert first == assign_splits(classes, val=0.1, test=0.2, seed=0)
    assert first != assign_splits(classes, val=0.1, test=0.2, seed=1)
    for class_index, size in ((0, 10), (1, 20)):
        mine = [s for s, c in zip(first, classes, strict=True) if c == class_index]
        assert mine.count("test") == round(size * 0.2)
        assert mine.count("val") == round(size * 0.1)


def test_other_frame_sizes_go_to_the_jpeg_tree_only(video_dir, tmp_path):
    small = tmp_path / "videos" / "birds"
    small.mkdir(parents=True)
    shutil.copy(video_dir / "birds/h264_aac.mp4", small)
    report = ingest_videos(
        small.parent, tmp_path / "out", val=0, test=0, workers=0, frame_size=48, progress=False
    )
    jpegs = sorted((tmp_path / "out" / "frames" / "train").glob("*.jpg"))
    assert [p.stem for p in jpegs] == [f"c001_s00000_w{w:03d}" for w in range(3)]
    with Image.open(jpegs[0]) as picture:
        assert (picture.size, picture.mode) == ((48, 48), "RGB")
    assert "not_written" in report["batches"]
    assert not (tmp_path / "out" / BATCH_DIR).exists()
    with np.load(tmp_path / "out" / PARTS_DIR / "s00000.npz") as part:
        assert part["images"].shape == (3, 48, 48, 3)
        assert [read_bars(image) for image in part["images"]] == [10, 30, 50]


def test_batches_are_cut_at_records_per_batch(video_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "RECORDS_PER_BATCH", 4)
    for name in ("birds/h264_aac.mp4", "cars/pcm_stereo.mov"):
        (tmp_path / "videos" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(video_dir / name, tmp_path / "videos" / name)
    ingest_videos(tmp_path / "videos", tmp_path / "out", val=0, test=0, workers=0, progress=False)
    files = sorted(p.name for p in (tmp_path / "out" / BATCH_DIR).iterdir())
    assert files == ["data_batch_001.bin", "data_batch_002.bin"]
    records = formats.open_records(tmp_path / "out" / BATCH_DIR)["train"]
    expected = [f"c{c:03d}_s{s:05d}_w{w:03d}" for c, s in ((1, 0), (2, 1)) for w in range(3)]
    assert list(records.names) == expected
    assert [read_bars(image) for image in records.images[:]] == [
        10,
        30,
        50,
        12,
        36,
        60,
    ]  # 20, 24 fps


def test_bad_options_are_refused(video_dir, tmp_path):
    with pytest.raises(S2IError, match="fractions"):
        ingest_videos(video_dir, tmp_path / "out", val=0.6, test=0.5)
    with pytest.raises(S2IError, match="inside VIDEO_DIR"):
        ingest_videos(video_dir, video_dir / "out")
    with pytest.raises(S2IError, match="one sub-folder per class"):
        ingest_videos(tmp_path / "missing", tmp_path / "out")


def test_a_folder_of_only_bad_videos_exits_2(video_dir, tmp_path):
    bad = tmp_path / "videos"
    for name in ("birds/notes.txt", "cars/no_audio.mp4", "cars/short.mp4"):
        (bad / name).parent.mkdir(parents=True, exist_ok=True)
        (bad / name).write_bytes((video_dir / name).read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "s2ilib", "ingest", str(bad), str(tmp_path / "out"), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "every video of" in result.stderr and "was skipped" in result.stderr
    assert "skipped (no_audio): 1" in result.stdout
