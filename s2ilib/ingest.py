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

Flow: worker processes decode videos into ingest_parts/sNNNNN.{npz,json} (one finished
video each, written atomically; the .json marks it done for --resume). At the end the
videos that gave segments are split (by video, per class, seeded) and every output is
(re)written from the parts: spectrograms/{split}/cNNN_sNNNNN_wNNN.jpg, frames/{split}/...,
the spectrogram-to-image .bin batches, classes.json and ingest_report.json.
ingest_state.json (options and file list) guards --resume. The pool uses "spawn" (safe
next to torch threads), so a script calling ingest_videos with workers > 0 needs the usual
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import json
import math
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import av
import numpy as np

from s2ilib.atomic import write_bytes, write_json
from s2ilib.errors import S2IError

SEGMENT_SECONDS = 1.0
MAX_WINDOWS = 1000  # wNNN: windows 000..999 per video
MAX_SOURCES = 100_000  # sNNNNN
TIME_TOLERANCE = 0.002  # s a span may fall short of whole seconds: mkv/webm clocks tick in ms
JITTER_SECONDS = 0.010  # audio pts this close to the running sample count is rounding, no gap
SILENT_PEAK = 1e-4  # a segment whose peak amplitude is below this (-80 dBFS) is "silent"
RECORDS_PER_BATCH = 10_000  # records per .bin batch file (~400 MB)
STATE_FILE = "ingest_state.json"
REPORT_FILE = "ingest_report.json"
PARTS_DIR = "ingest_parts"
LOCK_FILE = ".ingest.lock"  # holds the pid of the run writing OUT_DIR
BATCH_DIR = Path("batches/audio_visual/spectrograms_to_images")
STILL_FORMATS = ("image2", "tty")  # demuxers that open pictures or text, not videos


class VideoSkipped(S2IError):
    """A video that ingest leaves out; `code` is a short reason key, the message says why."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass
class VideoJob:
    """One input file, its source id and class."""

    path: str  # absolute path of the file
    relative: str  # path relative to VIDEO_DIR, as the report names it
    source_id: int  # sNNNNN: index in the sorted list of all files
    class_index: int  # 0-based (classes sorted by folder name)
    class_name: str


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
        if format_name in STILL_FORMATS or format_name.endswith("_pipe"):
            raise VideoSkipped("not_video", f"a still image or text ({format_name}), not a video")
        video, audio = _stream(container, "video"), _stream(container, "audio")
        return {
            "container": format_name,
            "video_codec": video.codec_context.name,
            "audio_codec": audio.codec_context.name,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "audio_sample_rate": audio.codec_context.sample_rate,
        }


def _stream(container, kind: str):
    """The first "audio" or "video" stream; cover art (attached pictures) is no video track."""
    streams = [
        stream
        for stream in getattr(container.streams, kind)
        if not stream.disposition & av.stream.Disposition.attached_pic
    ]
    if not streams:
        raise VideoSkipped(f"no_{kind}", f"no {kind} track")
    return streams[0]


def _decoded_frames(path, kind: str):
    """Yield the decoded frames of the first `kind` stream ("audio" or "video") of `path`.

    Packets that fail to decode are skipped (a few corrupt packets do not lose the video);
    if nothing decodes at all, VideoSkipped("undecodable") names the first error.
    """
    decoded, first_error = 0, None
    with av.open(str(path)) as container:
        stream = _stream(container, kind)
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
    audio frame goes where its pts * time_base says; frames within JITTER_SECONDS of
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
        if abs(at - position) <= JITTER_SECONDS * source_rate:
            at = position
        samples = _mono_float(frame)
        pieces.append((max(at, 0), samples))
        position = max(at, 0) + samples.size
    wave = np.zeros(max(offset + piece.size for offset, piece in pieces), np.float32)
    for offset, piece in pieces:
        wave[offset : offset + piece.size] = piece
    return resample(wave, source_rate, sample_rate), start


def segment_grid(video_start: float, audio_start: float, end: float) -> np.ndarray:
    """Start times (s) of the whole 1-s segments from max(video_start, audio_start) to `end`."""
    first = max(video_start, audio_start)
    count = math.floor((end - first + TIME_TOLERANCE) / SEGMENT_SECONDS)
    return first + SEGMENT_SECONDS * np.arange(max(count, 0))


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
        better = np.flatnonzero(distance < best_distance)  # strict: ties keep the earlier frame
        best_distance[better], best_times[better] = distance[better], time
        for index in better:  # keep only references; convert the winners once, at the end
            best_frames[index] = frame
    if not frame_times:
        raise VideoSkipped("undecodable", "no video frame carries a timestamp")
    span = (min(frame_times), max(frame_times) + _frame_duration(frame_times))
    images = np.zeros((len(times), frame_size, frame_size, 3), np.uint8)
    for index, frame in enumerate(best_frames):
        images[index] = _square_image(frame, frame_size)
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
    # The frame pass needs the grid and the grid needs the first frame: lay the grid from the
    # first frame to the audio end, pick frames, then cut the grid at the video end.
    first_frame = _first_frame_time(path)
    starts = segment_grid(first_frame, audio_start, audio_end)[:MAX_WINDOWS]
    images, frame_times, (video_start, video_end) = frames_at_times(
        path, starts + SEGMENT_SECONDS / 2, frame_size
    )
    end = min(audio_end, video_end)
    whole_seconds = len(segment_grid(first_frame, audio_start, end))
    starts = starts[:whole_seconds]
    timing.update(
        video_start=video_start,
        video_end=video_end,
        audio_start=audio_start,
        audio_end=audio_end,
        overlap_seconds=max(0.0, end - max(first_frame, audio_start)),
        segments_over_limit=max(0, whole_seconds - MAX_WINDOWS),  # wNNN stops at w999
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
        kind = "not a folder" if video_dir.exists() else "no such folder"
        raise S2IError(f"{video_dir}: {kind} (expected one sub-folder per class)")
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


def _prepare_out_dir(out_dir: Path, state: dict, resume: bool) -> None:
    """Refuse a non-empty OUT_DIR (an existing folder) unless resuming the same ingest.

    A new ingest writes the state file that a later --resume is checked against.
    """
    state_file = out_dir / STATE_FILE
    if any(p.name != LOCK_FILE for p in out_dir.iterdir()):
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
    write_json(state_file, state, indent=1)


# --------------------------------------------------------------------------------------
# One video -> its part files (runs in the worker processes)
# --------------------------------------------------------------------------------------


def ingest_one(job: VideoJob, out_dir: str, frame_size: int) -> dict:
    """Decode one video and write its part files; return its report entry.

    Never raises for a bad video: the entry says why it was skipped.
    """
    entry = {**asdict(job), "source": f"s{job.source_id:05d}"}
    del entry["path"]  # the report names files relative to VIDEO_DIR
    try:
        segments = decode_video_segments(job.path, frame_size)
    except VideoSkipped as skipped:
        entry.update(status="skipped", reason_code=skipped.code, reason=str(skipped))
        return _finish(out_dir, job, entry)
    except Exception as error:  # noqa: BLE001 - one odd file must not end a long run
        reason = f"unexpected {type(error).__name__}: {error}"
        entry.update(status="skipped", reason_code="error", reason=reason)
        entry["traceback"] = traceback.format_exc(limit=-4)  # for a bug report
        return _finish(out_dir, job, entry)
    names = _write_part(Path(out_dir), job, segments)
    entry.update(
        status="ok",
        segments=len(names),
        silent_segments=int(segments.silent.sum()),
        segment_starts=[round(float(t), 4) for t in segments.segment_starts],
        frame_times=[round(float(t), 4) for t in segments.frame_times],
        timing={k: round(v, 4) if isinstance(v, float) else v for k, v in segments.timing.items()},
    )
    return _finish(out_dir, job, entry)


def _write_part(out_dir: Path, job: VideoJob, segments: VideoSegments) -> list[str]:
    """Save this video's named records as ingest_parts/sNNNNN.npz; returns the names."""
    from s2ilib.formats import format_name

    names = [
        format_name(job.class_index, job.source_id, w) for w in range(len(segments.spectrograms))
    ]
    buffer = _npz_bytes(
        names=np.asarray(names), spectrograms=segments.spectrograms, images=segments.images
    )
    write_bytes(out_dir / PARTS_DIR / f"s{job.source_id:05d}.npz", buffer)
    return names


def _npz_bytes(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _finish(out_dir, job: VideoJob, entry: dict) -> dict:
    """Write the report entry last: its presence marks the video as done for --resume."""
    write_json(Path(out_dir) / PARTS_DIR / f"s{job.source_id:05d}.json", entry, indent=1)
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

    Arguments: val / test, fractions of each class's ingested videos held out (whole
    videos, rounded per class); seed, the shuffle before splitting; workers, decoding processes (0 = in this process);
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
    if out_dir == video_dir or video_dir in out_dir.parents:
        raise S2IError(f"{out_dir}: OUT_DIR inside VIDEO_DIR would be read as a class folder")
    classes, files = list_videos(video_dir)
    index = {name: position for position, name in enumerate(classes)}
    jobs = [
        VideoJob(str(path), path.relative_to(video_dir).as_posix(), source_id, index[name], name)
        for source_id, (name, path) in enumerate(files)
    ]
    state = {
        "video_dir": str(video_dir),
        "options": {"val": val, "test": test, "seed": seed, "frame_size": frame_size},
        "classes": classes,
        "videos": [job.relative for job in jobs],  # source ids are positions in this list
    }
    if out_dir.exists() and not out_dir.is_dir():
        raise S2IError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir):
        _prepare_out_dir(out_dir, state, resume)
        done = {job.source_id for job in jobs if _part_json(out_dir, job).is_file()}
        pending = [job for job in jobs if job.source_id not in done]
        _run_jobs(pending, out_dir, frame_size, workers, progress)
        return _assemble(out_dir, video_dir, classes, jobs, state["options"], len(done), progress)


@contextmanager
def _exclusive(out_dir: Path):
    """Hold OUT_DIR/LOCK_FILE while ingesting, so that two runs never write one folder.

    A lock left by a run that died (its process is gone) is taken over.
    """
    lock = out_dir / LOCK_FILE
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            holder = lock.read_text().strip()
            if holder.isdigit() and _process_alive(int(holder)):
                raise S2IError(
                    f"{out_dir}: another ingest (process {holder}) is writing this folder; "
                    f"wait for it, or remove {lock} if that process is not an ingest"
                ) from None
            lock.unlink(missing_ok=True)  # left by a run that died
    else:
        raise S2IError(f"{out_dir}: cannot take the lock {lock}")
    try:
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def _assemble(
    out_dir: Path, video_dir: Path, classes, jobs, options: dict, resumed: int, progress: bool
) -> dict:
    """Split the ingested videos, then (re)write every output from the part files.

    Splitting after decoding keeps broken files from taking val/test places; it is still
    deterministic, since decoding is.
    """
    entries = [json.loads(_part_json(out_dir, job).read_text()) for job in jobs]
    ingested = [e for e in entries if e["status"] == "ok"]
    splits = assign_splits(
        [e["class_index"] for e in ingested], options["val"], options["test"], options["seed"]
    )
    for entry in entries:
        entry["split"] = None  # skipped files belong to no split
    for entry, split in zip(ingested, splits, strict=True):
        entry["split"] = split
    batches = _write_outputs(out_dir, ingested, options["frame_size"], progress)
    write_json(out_dir / "classes.json", {str(i): name for i, name in enumerate(classes)}, indent=1)
    report = _report(video_dir, out_dir, classes, entries, options, resumed, batches)
    write_json(out_dir / REPORT_FILE, report, indent=1)
    return report


def _write_outputs(out_dir: Path, ingested: list[dict], frame_size: int, progress: bool) -> dict:
    """Write the JPEG trees and the .bin batches of every split from the part files.

    Returns {split: [.bin file names]}. JPEGs already there from an interrupted run are kept
    (each was written atomically). With frame_size != 96 no .bin is written (the layout
    holds 96x96x3 images) and the result says so.
    """
    from tqdm import tqdm

    from s2ilib import formats

    folder = out_dir / BATCH_DIR
    with_bins = frame_size == formats.IMAGE_SHAPE[0]
    total = sum(e["segments"] for e in ingested)
    bar = tqdm(total=total, unit="record", desc="write", disable=not progress)
    written: dict[str, list[str]] = {}
    for split in formats.SPLITS:
        parts = [e for e in ingested if e["split"] == split]
        written[split] = []
        for number, (names, spectrograms, images) in enumerate(
            _batched_parts(out_dir, parts), start=1
        ):
            _write_jpeg_trees(out_dir, split, names, spectrograms, images)
            if with_bins:
                path = folder / f"{formats.BIN_PREFIX[split]}_batch_{number:03d}.bin"
                formats.write_spec_image_bin(path, names, spectrograms, images)
                written[split].append(path.name)
            bar.update(len(names))
    bar.close()
    keep = {name for names in written.values() for name in names}
    for stale in folder.glob("*_batch_*.bin") if folder.is_dir() else []:
        if stale.name not in keep:  # from an earlier ingest with more records
            stale.unlink()
    if not with_bins:
        return {"not_written": f"the .bin layout holds 96x96 images, frames are {frame_size}"}
    return written


def _write_jpeg_trees(out_dir: Path, split: str, names, spectrograms, images) -> None:
    """spectrograms/{split}/ and frames/{split}/ JPEGs of these records, unless already there."""
    from s2ilib import formats

    for tree, arrays in (("spectrograms", spectrograms), ("frames", images)):
        folder = out_dir / tree / split
        existing = [p.name[:-4] for p in folder.glob("*.jpg")] if folder.is_dir() else []
        todo = ~np.isin(names, existing)
        if not todo.any():
            continue
        if tree == "spectrograms":
            formats.write_jpeg_tree(folder.parent, split, names[todo], arrays[todo])
        else:  # frames of any size; only the .bin batches need the published 96x96
            formats.write_image_tree(folder.parent, split, names[todo], arrays[todo])


def _batched_parts(out_dir: Path, entries: list[dict]):
    """Yield (names, spectrograms, images) of RECORDS_PER_BATCH records (the last: fewer)."""
    pending: list = []
    size = 0
    for entry in entries:
        with np.load(out_dir / PARTS_DIR / f"{entry['source']}.npz") as part:
            pending.append((part["names"], part["spectrograms"], part["images"]))
        size += len(pending[-1][0])
        while size >= RECORDS_PER_BATCH:
            columns = [np.concatenate(column) for column in zip(*pending, strict=True)]
            yield tuple(column[:RECORDS_PER_BATCH] for column in columns)
            pending = [tuple(column[RECORDS_PER_BATCH:] for column in columns)]
            size -= RECORDS_PER_BATCH
    if size:
        yield tuple(np.concatenate(column) for column in zip(*pending, strict=True))


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
