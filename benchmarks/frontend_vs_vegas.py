"""Compare the s2ilib audio front end with the published VEGAS spectrogram JPEGs.

Measures the grey-level statistics of the published images (mean grey, histogram, black and
white pixel fractions, mean per-row profile, per-class means) and the same statistics of
the front end's 8-bit spectrograms of real recordings from a folder, then fits the absolute
dB ceiling (and, for reference, the dB range) that makes the two agree. Writes a markdown
table to stdout and, with --figure, a comparison plot.

    .venv/bin/python benchmarks/frontend_vs_vegas.py \\
        --vegas ../shared/data/vegas_spectrograms/val.tar --audio /tmp/real_sounds \\
        --figure figures/frontend_vs_vegas.png

--vegas takes a tar of JPEGs (read in memory, nothing is extracted) or a folder of them.
--audio is searched recursively for wav/flac/ogg/oga/opus files. Files of at least one
second give all their non-overlapping 1-s segments (as VEGAS videos do); shorter files are
zero-padded to one second and reported apart, since padding adds digital silence.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import re
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from s2ilib.audio import (
    FrontEndConfig,
    db_to_uint8,
    fit_one_second,
    load_audio,
    log_mel,
    segment_seconds,
)

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus"}
VEGAS_CLASSES = {1: "Baby cry", 2: "Dog", 3: "Rail transport", 4: "Fireworks", 5: "Water flowing"}
JPEG_QUALITY = 75  # the published files carry libjpeg's quality-75 quantisation tables


def read_vegas(source: Path, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The published JPEGs as uint8 (N, 128, 100) and their 1-based class ids."""
    if source.is_dir():
        paths = sorted(source.rglob("c*.jpg"))[:limit]
        blobs = [(p.name, p.read_bytes()) for p in paths]
    else:
        with tarfile.open(source) as archive:
            members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(".jpg")]
            members = sorted(members, key=lambda m: m.name)[:limit]
            blobs = [(Path(m.name).name, archive.extractfile(m).read()) for m in members]
    if not blobs:
        sys.exit(f"no cNNN_*.jpg spectrograms found in {source}")
    images = np.stack([np.asarray(Image.open(io.BytesIO(blob)).convert("L")) for _, blob in blobs])
    classes = np.array([int(re.match(r"c(\d+)", name).group(1)) for name, _ in blobs])
    return images, classes


def read_clips(folder: Path, config: FrontEndConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """1-s clips of every sound under `folder`: (N, sample_rate) waves, padded flags, file names."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not paths:
        sys.exit(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) under {folder}")
    waves, padded, names = [], [], []
    for path in paths:
        wave = load_audio(path, config.sample_rate)
        short = wave.size < config.sample_rate
        clips = fit_one_second(wave, config.sample_rate)[None] if short else segment_seconds(wave)
        waves.append(clips)
        padded += [short] * len(clips)
        names += [path.name] * len(clips)
    return np.concatenate(waves), np.array(padded), names


def jpeg_round_trip(images: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """Encode and decode each image as the published files were, to compare like with like."""
    decoded = []
    for image in images:  # PIL encodes one image at a time
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        decoded.append(np.asarray(Image.open(buffer)))
    return np.stack(decoded)


def grey_statistics(images: np.ndarray) -> dict:
    """Summary statistics of uint8 (N, H, W) spectrogram images."""
    per_image = images.mean(axis=(1, 2))
    return {
        "n": len(images),
        "mean": float(images.mean()),
        "image_mean_p5": float(np.percentile(per_image, 5)),
        "image_mean_p50": float(np.median(per_image)),
        "image_mean_p95": float(np.percentile(per_image, 95)),
        "image_max_p5": float(np.percentile(images.max(axis=(1, 2)), 5)),
        "image_max_p50": float(np.median(images.max(axis=(1, 2)))),
        "black": float((images == 0).mean()),
        "white": float((images == 255).mean()),
        "p90": float(np.percentile(images, 90)),
        "p99": float(np.percentile(images, 99)),
        "rows": images.mean(axis=(0, 2)),
        "histogram": np.bincount(images.ravel(), minlength=256) / images.size,
    }


def ceiling_for_mean(db: np.ndarray, config: FrontEndConfig, target: float) -> float:
    """The absolute db_ceiling whose images have mean grey `target` (bisection; monotone)."""
    low, high = -60.0, 80.0  # a higher ceiling darkens every pixel
    for _ in range(40):
        middle = (low + high) / 2
        mean = db_to_uint8(db, dataclasses.replace(config, db_ceiling=middle)).mean()
        low, high = (middle, high) if mean > target else (low, middle)
    return round((low + high) / 2, 1)


TABLE_COLUMNS = (
    "n", "mean", "image_mean_p5", "image_mean_p50", "image_mean_p95",
    "image_max_p5", "image_max_p50", "black", "white", "p90", "p99",
)  # fmt: skip


def table_row(label: str, stats: dict) -> str:
    cells = [
        f"{stats[k]:.3f}" if k in ("black", "white") else f"{stats[k]:.1f}"
        for k in TABLE_COLUMNS[1:]
    ]
    return f"| {label} | {stats['n']} | " + " | ".join(cells) + " |"


def row_profile_line(label: str, stats: dict) -> str:
    """Mean grey of every 16th row, top (highest band) first."""
    return f"| {label} | " + " ".join(f"{v:.0f}" for v in stats["rows"][::16]) + " |"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--vegas", type=Path, required=True, help="val.tar/train.tar or a folder of JPEGs"
    )
    parser.add_argument("--audio", type=Path, required=True, help="folder of real recordings")
    parser.add_argument(
        "--limit", type=int, default=None, help="read at most this many VEGAS images"
    )
    parser.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="REGEX=CLASS",
        help="also report the clips of files whose name matches REGEX next to VEGAS class CLASS (1-5)",
    )
    parser.add_argument(
        "--figure", type=Path, default=None, help="write the comparison plot here (.png or .pdf)"
    )
    args = parser.parse_args(argv)
    if args.figure and args.figure.suffix.lower() not in (".png", ".pdf"):
        parser.error(f"--figure {args.figure}: expected a .png or .pdf file name")

    config = FrontEndConfig()
    vegas, classes = read_vegas(args.vegas, args.limit)
    clips, padded, names = read_clips(args.audio, config)
    db = log_mel(clips, config)
    vegas_stats = grey_statistics(vegas)

    print(
        f"VEGAS: {len(vegas)} images from {args.vegas}; real sounds: {len(clips)} clips "
        f"({int((~padded).sum())} full 1-s segments, {int(padded.sum())} padded short files) "
        f"from {args.audio}\n"
    )
    print(
        "| images | N | mean grey | image mean p5 | p50 | p95 | image max p5 | p50 "
        "| black | white (255) | grey p90 | p99 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(table_row("VEGAS published JPEGs", vegas_stats))
    for class_id, name in VEGAS_CLASSES.items():
        if (classes == class_id).any():
            print(
                table_row(
                    f"VEGAS c{class_id:03d} {name}", grey_statistics(vegas[classes == class_id])
                )
            )

    full = ~padded
    rows = {}
    for label, c in [
        (
            f"front end default (ceiling {config.db_ceiling:+.0f} dB, range {config.top_db:.0f})",
            config,
        ),
        (
            "front end, per-clip max (clip_max)",
            dataclasses.replace(config, db_reference="clip_max"),
        ),
    ]:
        images = db_to_uint8(db, c)
        rows[label] = grey_statistics(jpeg_round_trip(images[full]))
        print(table_row(label + ", 1-s segments, JPEG q75", rows[label]))
        print(
            table_row(
                label + ", padded short files, JPEG q75",
                grey_statistics(jpeg_round_trip(images[padded])),
            )
        )

    default_images = db_to_uint8(db, config)
    for rule in args.match:
        pattern, class_id = rule.rsplit("=", 1)
        chosen = np.array([re.search(pattern, name) is not None for name in names])
        if not chosen.any():
            sys.exit(f"--match {rule}: no audio file name matches {pattern!r}")
        label = f"front end: {pattern} ({int(chosen.sum())} clips) ~ c{int(class_id):03d} {VEGAS_CLASSES[int(class_id)]}"
        print(table_row(label, grey_statistics(jpeg_round_trip(default_images[chosen]))))

    fitted = ceiling_for_mean(db[full], config, vegas_stats["mean"])
    print(
        f"\nFit of the absolute ceiling to the VEGAS mean grey ({vegas_stats['mean']:.1f}) on the full segments:"
    )
    print(
        "\n| dB range (top_db) | fitted ceiling (dB) | mean | black | white | p90 | p99 | image max p50 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    v = vegas_stats
    print(
        f"| VEGAS (target) | | {v['mean']:.1f} | {v['black']:.3f} | {v['white']:.4f} "
        f"| {v['p90']:.0f} | {v['p99']:.0f} | {v['image_max_p50']:.0f} |"
    )
    for top_db in (40.0, 45.0, 50.0, 60.0, 70.0, 80.0):
        c = dataclasses.replace(config, top_db=top_db)
        ceiling = ceiling_for_mean(db[full], c, vegas_stats["mean"])
        images = db_to_uint8(db[full], dataclasses.replace(c, db_ceiling=ceiling))
        s = grey_statistics(jpeg_round_trip(images))
        print(
            f"| {top_db:.0f} | {ceiling:+.1f} | {s['mean']:.1f} | {s['black']:.3f} | {s['white']:.4f} "
            f"| {s['p90']:.0f} | {s['p99']:.0f} | {s['image_max_p50']:.0f} |"
        )
    print(
        f"\n(top_db {config.top_db:.0f}: fitted ceiling {fitted:+.1f} dB; default is {config.db_ceiling:+.1f} dB)"
    )

    default_label = next(iter(rows))
    print("\nMean grey per row, every 16th row from the top (row 0 = highest band):\n")
    print("| images | rows 0, 16, ..., 112 |\n|---|---|")
    print(row_profile_line("VEGAS", vegas_stats))
    print(row_profile_line("front end default", rows[default_label]))

    if args.figure:
        examples = default_images[full]
        plot(vegas, vegas_stats, rows[default_label], examples, args.figure)
        print(f"\nwrote {args.figure}")


def plot(
    vegas: np.ndarray, vegas_stats: dict, ours: dict, examples: np.ndarray, path: Path
) -> None:
    """Histogram, row profile and example images of both sets, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from s2ilib.viz import write_figure

    figure = plt.figure(figsize=(13, 7), layout="constrained")
    grid = figure.add_gridspec(2, 6)
    histogram = figure.add_subplot(grid[0, 0:3])
    for stats, label in ((vegas_stats, "VEGAS JPEGs"), (ours, "front end, real sounds")):
        histogram.semilogy(stats["histogram"], label=f"{label} (mean {stats['mean']:.1f})")
    histogram.set(xlabel="grey level", ylabel="fraction of pixels", title="Grey-level histogram")
    histogram.legend()
    profile = figure.add_subplot(grid[0, 3:6])
    for stats, label in ((vegas_stats, "VEGAS JPEGs"), (ours, "front end, real sounds")):
        profile.plot(stats["rows"], np.arange(len(stats["rows"])), label=label)
    profile.invert_yaxis()
    profile.set(
        xlabel="mean grey", ylabel="image row (0 = highest mel band)", title="Mean per-row profile"
    )
    profile.legend()
    rng = np.random.default_rng(0)
    picks = [("VEGAS", vegas[i]) for i in rng.choice(len(vegas), 3, replace=False)]
    picks += [("front end", examples[i]) for i in rng.choice(len(examples), 3, replace=False)]
    for column, (label, image) in enumerate(picks):
        axis = figure.add_subplot(grid[1, column])
        axis.imshow(image, cmap="gray", vmin=0, vmax=255, aspect="auto")
        axis.set(title=f"{label} (mean {image.mean():.0f})", xticks=[], yticks=[])
    write_figure(figure, path, dpi=90, tight=False)


if __name__ == "__main__":
    main()
