"""Raw videos -> the published s2i_data layout (what the authors never released).

VIDEO_DIR holds one sub-folder per class; every file in it is tried as a video. Each video
is cut into non-overlapping 1-s segments over the span where both audio and video exist;
each segment gives one log-mel spectrogram (s2ilib.audio) and the frame nearest its centre,
centre-cropped to a square and resized.

Alignment: everything lives on the container clock that the video frames use. Each decoded
audio frame is placed at its own pts * time_base (so a late-starting audio stream, an
edit list, or encoder priming samples that the demuxer did not trim are all put where the
player would play them); segments start at t0 = max(first video frame, first audio sample)
and frames are chosen by their own pts * time_base.

Output (OUT_DIR): spectrograms/{split}/cNNN_sNNNNN_wNNN.jpg, frames/{split}/...jpg, the
spectrogram-to-image .bin batches, classes.json, ingest_report.json; plus the bookkeeping
that makes re-runs safe: ingest_state.json (options and the video list) and
ingest_parts/sNNNNN.{json,npz} (one finished video each, written atomically).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import av
import numpy as np

from s2ilib.errors import S2IError

SEGMENT_SECONDS = 1.0
MAX_WINDOWS = 1000  # wNNN: windows 000..999 per video
MAX_SOURCES = 100_000  # sNNNNN
TIME_TOLERANCE = 0.002  # s: container clocks round to 1 ms (webm/mkv); a span this short of
# a whole second still counts as whole
JITTER_SAMPLES_SECONDS = 0.010  # audio frame pts closer than this to the running sample
# count are timestamp rounding, not a real gap
SILENT_PEAK = 1e-4  # a segment whose peak amplitude is below this (-80 dBFS) is "silent"
RECORDS_PER_BATCH = 10_000  # records per .bin batch file (~400 MB)
STATE_FILE = "ingest_state.json"
REPORT_FILE = "ingest_report.json"
PARTS_DIR = "ingest_parts"
BATCH_DIR = Path("batches/audio_visual/spectrograms_to_images")
IMAGE_SUFFIXES_FORMATS = ("image2", "tty")  # demuxers that open pictures or text, not videos


class VideoSkipped(S2IError):
    """A video that ingest leaves out; `code` is a short reason key, the message says why."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass
class VideoJob:
    """One input file and where its records go."""

    path: str  # absolute path of the file
    relative: str  # path relative to VIDEO_DIR, as the report names it
    source_id: int  # sNNNNN: index in the sorted list of all files
    class_index: int  # 0-based (classes sorted by folder name)
    class_name: str
    split: str  # "train", "val" or "test"


@dataclass
class VideoSegments:
    """What one video gave: S aligned segments and the timing behind them."""

    spectrograms: np.ndarray  # uint8 (S, 128, 100), image orientation
    images: np.ndarray  # uint8 (S, frame_size, frame_size, 3)
    segment_starts: np.ndarray  # (S,) s, on the container clock
    frame_times: np.ndarray  # (S,) s, the chosen frame's pts * time_base
    silent: np.ndarray  # (S,) bool: peak below SILENT_PEAK
    timing: dict = field(default_factory=dict)  # stream starts/ends, rates, codecs


# --------------------------------------------------------------------------------------
# Decoding one video
# --------------------------------------------------------------------------------------


def probe_video(path) -> dict:
    """Open `path` with FFmpeg and describe its streams; VideoSkipped if it is no A/V video."""
    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, EOFError) as error:
        raise VideoSkipped("unreadable", f"not a video FFmpeg can read ({error})") from error
    with container:
        format_name = container.format.name
        if format_name in IMAGE_SUFFIXES_FORMATS or format_name.endswith("_pipe"):
            raise VideoSkipped("not_video", f"a still image or text ({format_name}), not a video")
        video, audio = container.streams.video, container.streams.audio
        if not video:
            raise VideoSkipped("no_video", "no video track")
        if not audio:
            raise VideoSkipped("no_audio", "no audio track")
        return {
            "container": format_name,
            "video_codec": video[0].codec_context.name,
            "audio_codec": audio[0].codec_context.name,
            "width": video[0].codec_context.width,
            "height": video[0].codec_context.height,
            "audio_sample_rate": audio[0].codec_context.sample_rate,
        }


def _decoded_frames(path, kind: str):
    """Yield the decoded frames of the first `kind` stream ("audio" or "video") of `path`.

    Packets that fail to decode are skipped (a few corrupt packets do not lose the video);
    if nothing decodes at all, VideoSkipped("undecodable") names the first error.
    """
    decoded, first_error = 0, None
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        if kind == "video":
            stream.thread_type = "AUTO"  # frame threads: decoding dominates ingest time
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError as error:
                first_error = first_error or error
                continue
            for frame in frames:
                decoded += 1
                yield frame
    if decoded == 0:
        problem = f" ({first_error})" if first_error else ""
        raise VideoSkipped("undecodable", f"no {kind} frame could be decoded{problem}")


def _mono_float(frame) -> np.ndarray:
    """One decoded audio frame -> float32 (samples,) mono, whatever its sample format."""
    from s2ilib.audio import to_float32

    samples = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:  # packed: (1, samples * channels), interleaved
        samples = samples.reshape(-1, channels).T
    return to_float32(samples).mean(axis=0)


def decode_audio_on_video_clock(path, sample_rate: int | None = None) -> tuple[np.ndarray, float]:
    """Decode the first audio stream -> (mono float32 wave at `sample_rate`, start time in s).

    Sample i of the wave plays at start + i / sample_rate on the container clock. Each
    audio frame goes where its pts * time_base says; frames within JITTER_SAMPLES_SECONDS of
    the running sample count are butted together (timestamp rounding), larger jumps leave
    silence (a gap) or overwrite (an overlap). sample_rate: default audio.SAMPLE_RATE.
    """
    from s2ilib.audio import SAMPLE_RATE, resample

    sample_rate = sample_rate or SAMPLE_RATE
    pieces, start, source_rate, position = [], None, None, 0
    for frame in _decoded_frames(path, "audio"):
        if frame.time is None:
            raise VideoSkipped("undecodable", "audio frames carry no timestamps")
        if source_rate is None:
            start, source_rate = float(frame.time), frame.sample_rate
        elif frame.sample_rate != source_rate:
            raise VideoSkipped(
                "undecodable",
                f"audio sample rate changes mid-stream ({source_rate} -> {frame.sample_rate} Hz)",
            )
        at = round((float(frame.time) - start) * source_rate)
        if abs(at - position) <= JITTER_SAMPLES_SECONDS * source_rate:
            at = position
        samples = _mono_float(frame)
        pieces.append((max(at, 0), samples))
        position = max(at, 0) + samples.size
    wave = np.zeros(max(offset + piece.size for offset, piece in pieces), np.float32)
    for offset, piece in pieces:
        wave[offset : offset + piece.size] = piece
    return resample(wave, source_rate, sample_rate), start


def segment_grid(video_start: float, audio_start: float, end: float) -> np.ndarray:
    """Start times (s) of the whole 1-s segments from max(starts) up to `end`, at most MAX_WINDOWS."""
    first = max(video_start, audio_start)
    count = math.floor((end - first + TIME_TOLERANCE) / SEGMENT_SECONDS)
    return first + SEGMENT_SECONDS * np.arange(min(max(count, 0), MAX_WINDOWS))


def frames_at_times(path, times, frame_size: int = 96) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The frames nearest the given times (s, container clock), square-cropped and resized.

    Returns (uint8 (N, frame_size, frame_size, 3), (N,) chosen frame times, (first frame
    time, end of the last frame)). Ties go to the earlier frame.
    """
    times = np.asarray(times, dtype=np.float64)
    best_distance = np.full(times.shape, np.inf)
    best_frames: list = [None] * len(times)
    best_times = np.full(times.shape, np.nan)
    frame_times = []
    for frame in _decoded_frames(path, "video"):
        if frame.time is None:
            continue  # a frame without a timestamp cannot be placed on the clock
        time = float(frame.time)
        frame_times.append(time)
        distance = np.abs(times - time)
        for index in np.flatnonzero(distance < best_distance):
            best_distance[index], best_frames[index], best_times[index] = (
                distance[index],
                frame,
                time,
            )
    if not frame_times:
        raise VideoSkipped("undecodable", "no video frame carries a timestamp")
    span = (min(frame_times), max(frame_times) + _frame_duration(frame_times))
    images = np.stack([_square_image(f, frame_size) for f in best_frames]) if len(times) else None
    if images is None:
        images = np.zeros((0, frame_size, frame_size, 3), np.uint8)
    return images, best_times, span


def _frame_duration(frame_times: list[float]) -> float:
    """Typical frame spacing (median of successive differences); 0 for a single frame."""
    if len(frame_times) < 2:
        return 0.0
    return float(np.median(np.diff(np.sort(frame_times))))


def _square_image(frame, frame_size: int) -> np.ndarray:
    """A decoded frame -> uint8 (frame_size, frame_size, 3): centre square crop, then resize."""
    from PIL import Image

    rgb = frame.to_ndarray(format="rgb24")
    height, width = rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(rgb[top : top + side, left : left + side])
    return np.asarray(square.resize((frame_size, frame_size), Image.Resampling.BICUBIC))


def decode_video_segments(path, frame_size: int = 96) -> VideoSegments:
    """Cut one video into aligned 1-s segments: spectrograms + central frames.

    Raises VideoSkipped (with a reason code) for anything that gives no segment.
    """
    from s2ilib.audio import SAMPLE_RATE, segment_seconds, spectrogram_uint8

    timing = probe_video(path)
    wave, audio_start = decode_audio_on_video_clock(path, SAMPLE_RATE)
    audio_end = audio_start + wave.size / SAMPLE_RATE
    # The frame pass needs the grid, the grid needs the first frame: take the grid up to the
    # audio end from the first frame time, then cut it at the video end.
    first_frame = _first_frame_time(path)
    starts = segment_grid(first_frame, audio_start, audio_end)
    images, frame_times, (video_start, video_end) = frames_at_times(
        path, starts + SEGMENT_SECONDS / 2, frame_size
    )
    starts = segment_grid(video_start, audio_start, min(audio_end, video_end))
    timing.update(
        video_start=video_start,
        video_end=video_end,
        audio_start=audio_start,
        audio_end=audio_end,
        overlap_seconds=max(0.0, min(audio_end, video_end) - max(video_start, audio_start)),
    )
    if len(starts) == 0:
        raise VideoSkipped(
            "too_short",
            f"audio and video overlap for {timing['overlap_seconds']:.2f} s "
            f"(shorter than {SEGMENT_SECONDS:g} s)",
        )
    count = len(starts)
    offset = round((starts[0] - audio_start) * SAMPLE_RATE)
    length = round(SEGMENT_SECONDS * SAMPLE_RATE)
    span = wave[offset : offset + count * length]
    span = np.pad(span, (0, count * length - span.size))  # TIME_TOLERANCE may leave ~ms short
    waves = segment_seconds(span, SAMPLE_RATE, SEGMENT_SECONDS)
    return VideoSegments(
        spectrograms=spectrogram_uint8(waves),
        images=images[:count],
        segment_starts=starts,
        frame_times=frame_times[:count],
        silent=np.abs(waves).max(axis=1) < SILENT_PEAK,
        timing=timing,
    )


def _first_frame_time(path) -> float:
    """The time of the first timestamped video frame (decodes only until it)."""
    with closing(_decoded_frames(path, "video")) as frames:
        for frame in frames:
            if frame.time is not None:
                return float(frame.time)
    raise VideoSkipped("undecodable", "no video frame carries a timestamp")


# --------------------------------------------------------------------------------------
# Listing, splitting, state
# --------------------------------------------------------------------------------------


def list_videos(video_dir) -> tuple[list[str], list[tuple[str, Path]]]:
    """Class folder names (sorted) and every file under them as (class name, path), sorted."""
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise S2IError(f"{video_dir}: no such folder (expected one sub-folder per class)")
    classes = sorted(p.name for p in video_dir.iterdir() if p.is_dir() and not _hidden(p))
    if not classes:
        raise S2IError(f"{video_dir}: no class sub-folders (expected VIDEO_DIR/<class>/<video>)")
    if len(classes) > 999:
        raise S2IError(f"{video_dir}: {len(classes)} class folders (cNNN holds at most 999)")
    files = [
        (name, path)
        for name in classes
        for path in sorted((video_dir / name).iterdir())
        if path.is_file() and not _hidden(path)
    ]
    if len(files) > MAX_SOURCES:
        raise S2IError(f"{video_dir}: {len(files)} files (sNNNNN holds at most {MAX_SOURCES})")
    return classes, files


def _hidden(path: Path) -> bool:
    """Dot files and folders (.DS_Store, .git) are no videos nor classes."""
    return path.name.startswith(".")


def assign_splits(class_of_file: list[int], val: float, test: float, seed: int) -> list[str]:
    """Split files by video, per class: round(n * test) test, round(n * val) val, rest train.

    Deterministic for a given list and seed; stratified so each class appears in each split
    when it has enough videos.
    """
    rng = np.random.default_rng(seed)
    class_of_file = np.asarray(class_of_file)
    splits = np.full(len(class_of_file), "train", dtype=object)
    for class_index in np.unique(class_of_file):
        members = rng.permutation(np.flatnonzero(class_of_file == class_index))
        num_test = round(len(members) * test)
        num_val = min(round(len(members) * val), len(members) - num_test)
        splits[members[:num_test]] = "test"
        splits[members[num_test : num_test + num_val]] = "val"
    return list(splits)


def _atomic_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file and a rename: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _atomic_json(path: Path, value) -> None:
    _atomic_bytes(path, (json.dumps(value, indent=1) + "\n").encode())


def _prepare_out_dir(out_dir: Path, state: dict, resume: bool) -> None:
    """Refuse a non-empty OUT_DIR unless resuming the same ingest; write the state file."""
    state_file = out_dir / STATE_FILE
    if out_dir.exists() and not out_dir.is_dir():
        raise S2IError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not resume:
            raise S2IError(
                f"{out_dir}: folder is not empty; pass --resume to continue an earlier "
                "ingest into it, or choose a new or empty folder"
            )
        if not state_file.is_file():
            raise S2IError(
                f"{out_dir}: not empty and holds no {STATE_FILE}, so it is no ingest output "
                "to resume; choose a new or empty folder"
            )
        earlier = json.loads(state_file.read_text())
        changed = [k for k in state if earlier.get(k) != state[k]]
        if changed:
            raise S2IError(
                f"{out_dir}: cannot resume, the earlier ingest differs in {', '.join(changed)} "
                "(same VIDEO_DIR contents and options needed); choose a new folder"
            )
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic_json(state_file, state)


# --------------------------------------------------------------------------------------
# One video -> its part files (runs in the worker processes)
# --------------------------------------------------------------------------------------


def ingest_one(job: VideoJob, out_dir: str, frame_size: int) -> dict:
    """Decode one video, write its JPEGs and part files; return its report entry.

    Never raises for a bad video: the entry says why it was skipped.
    """
    entry = {**asdict(job), "source": f"s{job.source_id:05d}"}
    del entry["path"]
    try:
        segments = decode_video_segments(job.path, frame_size)
    except VideoSkipped as skipped:
        return _finish(
            out_dir,
            job,
            {**entry, "status": "skipped", "reason_code": skipped.code, "reason": str(skipped)},
        )
    except Exception as error:  # noqa: BLE001 - one odd file must not end a long run
        return _finish(
            out_dir,
            job,
            {
                **entry,
                "status": "skipped",
                "reason_code": "error",
                "reason": f"unexpected {type(error).__name__}: {error}",
            },
        )
    names = _write_segment_files(Path(out_dir), job, segments)
    entry.update(
        status="ok",
        segments=len(names),
        silent_segments=int(segments.silent.sum()),
        segment_starts=[round(float(t), 4) for t in segments.segment_starts],
        frame_times=[round(float(t), 4) for t in segments.frame_times],
        timing={k: round(v, 4) if isinstance(v, float) else v for k, v in segments.timing.items()},
    )
    return _finish(out_dir, job, entry)


def _write_segment_files(out_dir: Path, job: VideoJob, segments: VideoSegments) -> list[str]:
    """JPEG trees for this video's segments, then its arrays (ingest_parts/sNNNNN.npz)."""
    from s2ilib import formats

    names = [
        formats.format_name(job.class_index, job.source_id, w)
        for w in range(len(segments.spectrograms))
    ]
    formats.write_jpeg_tree(out_dir / "spectrograms", job.split, names, segments.spectrograms)
    frame_shape = segments.images.shape[1:]
    if frame_shape == formats.IMAGE_SHAPE:
        formats.write_image_tree(out_dir / "frames", job.split, names, segments.images)
    else:  # the published layout is 96x96; other sizes only go to the frames/ JPEG tree
        formats._write_jpegs(
            out_dir / "frames" / job.split,
            names,
            segments.images,
            frame_shape,
            formats.JPEG_QUALITY,
        )
    buffer = _npz_bytes(
        names=np.asarray(names), spectrograms=segments.spectrograms, images=segments.images
    )
    _atomic_bytes(out_dir / PARTS_DIR / f"s{job.source_id:05d}.npz", buffer)
    return names


def _npz_bytes(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _finish(out_dir, job: VideoJob, entry: dict) -> dict:
    """Write the report entry last: its presence marks the video as done for --resume."""
    _atomic_json(Path(out_dir) / PARTS_DIR / f"s{job.source_id:05d}.json", entry)
    return entry


def _worker_init() -> None:
    """One torch thread per worker process: the pool already fills the cores."""
    import torch

    torch.set_num_threads(1)


# --------------------------------------------------------------------------------------
# The whole folder
# --------------------------------------------------------------------------------------


def ingest_videos(
    video_dir,
    out_dir,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    workers: int = 2,
    resume: bool = False,
    frame_size: int = 96,
    progress: bool = True,
) -> dict:
    """Ingest VIDEO_DIR/<class>/<video> into OUT_DIR in the published layout; returns the report.

    Arguments: val / test, fractions of each class's videos held out (split by video);
    seed, the shuffle before splitting; workers, decoding processes (0 = in this process);
    resume, continue an earlier ingest into the same OUT_DIR (else OUT_DIR must be new or
    empty); frame_size, side of the square frames (the .bin batches need 96); progress,
    show a tqdm bar and a line per skipped video.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise S2IError(f"val ({val}) and test ({test}) must be fractions in [0, 1) summing below 1")
    if frame_size < 8:
        raise S2IError(f"frame size {frame_size} is too small (expected at least 8 pixels)")
    if workers < 0:
        raise S2IError(f"workers is {workers} (expected 0 for in-process, or more)")
    video_dir, out_dir = Path(video_dir).resolve(), Path(out_dir).resolve()
    classes, files = list_videos(video_dir)
    class_index = {name: index for index, name in enumerate(classes)}
    splits = assign_splits([class_index[c] for c, _ in files], val, test, seed)
    jobs = [
        VideoJob(
            str(path),
            path.relative_to(video_dir).as_posix(),
            source_id,
            class_index[name],
            name,
            split,
        )
        for source_id, ((name, path), split) in enumerate(zip(files, splits, strict=True))
    ]
    state = {
        "video_dir": str(video_dir),
        "options": {"val": val, "test": test, "seed": seed, "frame_size": frame_size},
        "classes": classes,
        "videos": [job.relative for job in jobs],  # source ids are positions in this list
    }
    _prepare_out_dir(out_dir, state, resume)
    done = {job.source_id for job in jobs if _part_json(out_dir, job).is_file()}
    pending = [job for job in jobs if job.source_id not in done]
    _run_jobs(pending, out_dir, frame_size, workers, progress)
    return _assemble(out_dir, video_dir, classes, jobs, state["options"], resumed=len(done))


def _part_json(out_dir: Path, job: VideoJob) -> Path:
    return out_dir / PARTS_DIR / f"s{job.source_id:05d}.json"


def _run_jobs(
    jobs: list[VideoJob], out_dir: Path, frame_size: int, workers: int, progress: bool
) -> None:
    """Ingest each job (in a process pool when workers > 0), with a progress bar."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), unit="video", desc="ingest", disable=not progress)

    def report(entry: dict) -> None:
        bar.update(1)
        if progress and entry["status"] != "ok":
            bar.write(f"skipped {entry['relative']}: {entry['reason']}")

    try:
        if workers == 0 or len(jobs) <= 1:
            for job in jobs:
                report(ingest_one(job, str(out_dir), frame_size))
            return
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_init
        ) as pool:
            futures = [pool.submit(ingest_one, job, str(out_dir), frame_size) for job in jobs]
            for future in as_completed(futures):
                report(future.result())
    except BrokenProcessPool as error:
        raise S2IError(
            f"a decoding process died ({error}); the videos finished so far are kept: "
            "run again with --resume to go on"
        ) from error
    finally:
        bar.close()


def _assemble(out_dir: Path, video_dir: Path, classes, jobs, options: dict, resumed: int) -> dict:
    """(Re)write the .bin batches, classes.json and the report from the part files."""
    entries = [json.loads(_part_json(out_dir, job).read_text()) for job in jobs]
    bins = _write_batches(
        out_dir, [e for e in entries if e["status"] == "ok"], options["frame_size"]
    )
    _atomic_json(out_dir / "classes.json", {str(i): name for i, name in enumerate(classes)})
    report = _report(video_dir, out_dir, classes, entries, options, resumed, bins)
    _atomic_json(out_dir / REPORT_FILE, report)
    return report


def _write_batches(out_dir: Path, entries: list[dict], frame_size: int) -> dict:
    """Write {data,val,test}_batch_NNN.bin from the part files, RECORDS_PER_BATCH each.

    Returns {split: [file names]}; with frame_size != 96 nothing is written (the layout
    holds 96x96x3 images) and the result says so.
    """
    from s2ilib import formats

    folder = out_dir / BATCH_DIR
    if frame_size != formats.IMAGE_SHAPE[0]:
        return {"not_written": f"the .bin layout holds 96x96 images, frames are {frame_size}"}
    written = {}
    for split in formats.SPLITS:
        parts = [e for e in entries if e["split"] == split]
        written[split] = [
            formats.write_spec_image_bin(
                folder / f"{formats.BIN_PREFIX[split]}_batch_{number:03d}.bin", *arrays
            ).name
            for number, arrays in enumerate(_batched_parts(out_dir, parts), start=1)
        ]
    keep = {name for names in written.values() for name in names}
    for stale in folder.glob("*_batch_*.bin") if folder.is_dir() else []:
        if stale.name not in keep:  # left from an earlier, larger ingest
            stale.unlink()
    return written


def _batched_parts(out_dir: Path, entries: list[dict]):
    """Yield (names, spectrograms, images) of up to RECORDS_PER_BATCH records, in entry order."""
    batch: list = []
    size = 0
    for entry in entries:
        with np.load(out_dir / PARTS_DIR / f"{entry['source']}.npz") as part:
            batch.append((part["names"], part["spectrograms"], part["images"]))
        size += len(batch[-1][0])
        if size >= RECORDS_PER_BATCH:
            yield from _cut_batches(batch)
            batch, size = [], 0
    if batch:
        yield from _cut_batches(batch)


def _cut_batches(batch: list):
    """Concatenate parts and cut them into RECORDS_PER_BATCH-record pieces."""
    names, spectrograms, images = (np.concatenate(column) for column in zip(*batch, strict=True))
    for start in range(0, len(names), RECORDS_PER_BATCH):
        stop = start + RECORDS_PER_BATCH
        yield names[start:stop], spectrograms[start:stop], images[start:stop]


def _report(video_dir, out_dir, classes, entries, options, resumed, bins) -> dict:
    """The JSON report: options, counts per split and per skip reason, one entry per file."""
    ok = [e for e in entries if e["status"] == "ok"]
    skipped = [e for e in entries if e["status"] != "ok"]
    reasons: dict[str, int] = {}
    for entry in skipped:
        reasons[entry["reason_code"]] = reasons.get(entry["reason_code"], 0) + 1
    return {
        "video_dir": str(video_dir),
        "out_dir": str(out_dir),
        "options": options,
        "classes": {str(i): name for i, name in enumerate(classes)},
        "counts": {
            "files": len(entries),
            "ingested": len(ok),
            "skipped": len(skipped),
            "resumed": resumed,
            "segments": sum(e["segments"] for e in ok),
            "silent_segments": sum(e["silent_segments"] for e in ok),
            "segments_per_split": {
                s: sum(e["segments"] for e in ok if e["split"] == s)
                for s in ("train", "val", "test")
            },
            "videos_per_split": {
                s: sum(1 for e in ok if e["split"] == s) for s in ("train", "val", "test")
            },
            "skipped_by_reason": reasons,
        },
        "batches": bins,
        "source_ids": {e["source"]: e["relative"] for e in entries},
        "videos": entries,
    }
