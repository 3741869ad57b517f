"""`s2i ingest`: a folder of class sub-folders of videos -> the published s2i_data layout."""

from __future__ import annotations

import sys

from s2ilib.cli import add_command

DESCRIPTION = """\
Cut every video of VIDEO_DIR/<class>/ into non-overlapping 1-s segments over the span where
both audio and video exist (on the video clock: stream start times and encoder priming are
honoured), and write, per segment, a log-mel spectrogram and the frame nearest the segment's
centre (centre-cropped to a square, resized) to OUT_DIR:

  spectrograms/{train,val,test}/cNNN_sNNNNN_wNNN.jpg   (class 1-based, source id, window)
  frames/{train,val,test}/cNNN_sNNNNN_wNNN.jpg
  batches/audio_visual/spectrograms_to_images/{data,val,test}_batch_NNN.bin
  classes.json        0-based class index -> class folder name (sorted by name)
  ingest_report.json  every input file: its source id, split, segments, or why it was skipped
  ingest_state.json, ingest_parts/   what --resume needs: options, file list, finished videos

Files that are no video, have no audio or video track, are shorter than 1 s or cannot be
decoded are skipped with their reason; the run goes on. A non-empty OUT_DIR is refused
unless --resume continues the same ingest (finished videos are kept, the rest are done)."""


def register(subparsers):
    """Add `ingest` to the `s2i` parser."""
    command = add_command(
        subparsers,
        "ingest",
        run_ingest,
        help="turn a folder of class sub-folders of videos into the published data layout",
        description=DESCRIPTION,
    )
    command.add_argument(
        "video_dir", metavar="VIDEO_DIR", help="folder with one sub-folder of videos per class"
    )
    command.add_argument(
        "out_dir",
        metavar="OUT_DIR",
        help="output folder: new or empty (or the same, with --resume)",
    )
    command.add_argument(
        "--val",
        type=float,
        default=0.1,
        help="fraction of each class's videos for validation (whole videos, rounded)",
    )
    command.add_argument(
        "--test",
        type=float,
        default=0.1,
        help="fraction of each class's videos for test (whole videos, rounded)",
    )
    command.add_argument(
        "--seed", type=int, default=0, help="seed of the shuffle that assigns videos to splits"
    )
    command.add_argument(
        "--workers",
        type=int,
        default=2,
        help="decoding processes (0 = decode in this process, no pool)",
    )
    command.add_argument(
        "--resume",
        action="store_true",
        help="continue an earlier ingest into OUT_DIR: skip the videos it finished (same "
        "VIDEO_DIR contents and options required)",
    )
    command.add_argument(
        "--frame-size",
        type=int,
        default=96,
        help="side in pixels of the square frames; the .bin batches are written only for 96",
    )
    command.add_argument(
        "--quiet", action="store_true", help="no progress bar and no per-video skip lines"
    )


def run_ingest(args) -> int:
    """Run the ingest and print its counts; skipped videos do not make it fail, unless every
    video was skipped (exit status 2: nothing was made)."""
    from s2ilib.ingest import REPORT_FILE, ingest_videos

    report = ingest_videos(
        args.video_dir,
        args.out_dir,
        val=args.val,
        test=args.test,
        seed=args.seed,
        workers=args.workers,
        resume=args.resume,
        frame_size=args.frame_size,
        progress=not args.quiet,
    )
    counts = report["counts"]
    print(
        f"{counts['files']} files: {counts['ingested']} ingested, {counts['skipped']} skipped"
        f" ({counts['resumed']} files were finished by an earlier run)"
    )
    per_split = ", ".join(f"{s} {n}" for s, n in counts["segments_per_split"].items())
    print(f"{counts['segments']} segments ({per_split}), {counts['silent_segments']} silent")
    for reason, number in counts["skipped_by_reason"].items():
        print(f"skipped ({reason}): {number}")
    print(f"report: {report['out_dir']}/{REPORT_FILE}")
    if counts["files"] and counts["ingested"] + counts["resumed"] == 0:
        print(f"s2i ingest: error: every video of {args.video_dir} was skipped (see the "
              "reasons above): nothing to train on", file=sys.stderr)  # fmt: skip
        return 2
    return 0
