"""`s2i inspect`, `s2i export`, `s2i convert`: the published s2i_data layouts from the shell."""

from __future__ import annotations

import json

from s2ilib.cli import add_command

LAYOUT_HELP = "layout of PATH: jpeg_tree, audio_bin, spec_image_bin or embedding_image_bin (inferred from path names and content when omitted)"
EMBEDDING_DIM_HELP = "D of embedding_image_bin records (read from an embeddings_<D>_to_images folder name, or from the file sizes, when omitted)"


def register(subparsers):
    """Add inspect, export and convert to the `s2i` parser."""
    inspect = add_command(
        subparsers,
        "inspect",
        run_inspect,
        help="summarise a data set: layout, records per split and class, value ranges",
    )
    inspect.add_argument(
        "path",
        metavar="PATH",
        help="a .bin file, a folder of .bin files, a JPEG tree, or the AV-Digits folder",
    )
    _add_source_options(inspect)
    inspect.add_argument(
        "--json", action="store_true", help="print the summary as JSON instead of text"
    )

    export = add_command(
        subparsers,
        "export",
        run_export,
        help="write a data set to one .npz (names, labels, splits and its arrays)",
    )
    export.add_argument("path", metavar="PATH", help="the data set to export (file or folder)")
    export.add_argument(
        "out", metavar="OUT.npz", help="the .npz file to write (replaced atomically)"
    )
    _add_source_options(export)
    export.add_argument(
        "--split",
        action="append",
        choices=["train", "val", "test"],
        help="export only this split (repeat for several; default: all)",
    )

    convert = add_command(
        subparsers,
        "convert",
        run_convert,
        help="convert a data set to another published layout in a new folder",
    )
    convert.add_argument("src", metavar="SRC", help="the data set to convert (file or folder)")
    convert.add_argument("dst", metavar="DST", help="new (or empty) folder to create")
    convert.add_argument(
        "--to",
        required=True,
        dest="to_layout",
        choices=["jpeg_tree", "audio_bin", "spec_image_bin", "embedding_image_bin"],
        help="the layout to write",
    )
    convert.add_argument(
        "--records-per-file", type=int, default=10000, help="records per .bin output file"
    )
    _add_source_options(convert)


def _add_source_options(parser) -> None:
    parser.add_argument("--layout", default=None, help=LAYOUT_HELP)
    parser.add_argument("--embedding-dim", type=int, default=None, help=EMBEDDING_DIM_HELP)


def _open(path, layout=None, embedding_dim=None, splits=None):
    """Open a data set for these commands -> {split: RecordSet} of its sounds (the catalog)."""
    return _open_dataset(path, layout, embedding_dim, splits).sounds


def _open_dataset(path, layout=None, embedding_dim=None, splits=None):
    """The whole data set (sounds and, for class-paired sets, the image pool), split-filtered."""
    from s2ilib.datasets import open_dataset
    from s2ilib.errors import S2IError

    data = open_dataset(path, layout=layout, embedding_dim=embedding_dim)
    wanted = [splits] if isinstance(splits, str) else splits
    if wanted:
        missing = [s for s in wanted if s not in data.sounds]
        if missing:
            raise S2IError(
                f"{path}: no split(s) {', '.join(missing)} (has {', '.join(data.sounds)})"
            )
        data.sounds = {s: r for s, r in data.sounds.items() if s in wanted}
        data.images = {s: r for s, r in data.images.items() if s in wanted}
    return data


def _metadata_counts(records_by_split) -> dict:
    """Per split, sounds per value of the categorical metadata columns (AV-Digits)."""
    import numpy as np

    counts = {}
    for split, records in records_by_split.items():
        for column in ("language", "engine"):
            if column in records.extra:
                values, numbers = np.unique(np.asarray(records.extra[column]), return_counts=True)
                counts.setdefault(column, {})[split] = dict(
                    zip(values.tolist(), numbers.tolist(), strict=True)
                )
    return counts


def run_inspect(args) -> int:
    from s2ilib import formats

    data = _open_dataset(args.path, args.layout, args.embedding_dim)
    summary = {"path": str(args.path), **formats.describe(data.sounds)}
    summary["classes"] = data.classes
    summary["pairing"] = data.pairing
    if data.images:
        summary["image_pool"] = formats.describe(data.images)
    summary.update(_metadata_counts(data.sounds))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    """The describe() summary as a few readable lines."""
    lines = [f"{summary['path']}: {summary['layout']}, {summary['total_records']} records"]
    for split, entry in summary["splits"].items():
        classes = ", ".join(f"{c}: {n}" for c, n in entry["class_counts"].items())
        lines.append(
            f"  {split}: {entry['count']} records from {len(entry['paths'])} path(s); "
            f"per class (0-based) {{{classes}}}"
        )
        if "label_ids" in entry:
            spellings = ", ".join(f"{k} {n}" for k, n in entry["label_ids"].items())
            lines.append(f"    label ids by spelling: {spellings}")
        for key, array in entry["arrays"].items():
            lines.append(
                f"    {key}: {array['dtype']} {tuple(array['shape'])}, "
                f"min {array['min']}, max {array['max']}, mean {array['mean']}"
            )
    if "image_pool" in summary:
        pool = summary["image_pool"]
        lines.append(f"  image pool (pairing by class): {pool['total_records']} images")
        for split, entry in pool["splits"].items():
            shape = entry["arrays"]["images"]["shape"]
            lines.append(f"    {split}: {entry['count']} images of shape {tuple(shape[1:])}")
    for column in ("language", "engine"):
        for split, counts in summary.get(column, {}).items():
            listed = ", ".join(f"{k}: {n}" for k, n in counts.items())
            lines.append(f"  {split} sounds per {column}: {listed}")
    lines.append(f"  classes: {', '.join(summary['classes'])}")
    lines.append(f"  ({summary['value_ranges']})")
    return "\n".join(lines)


def run_export(args) -> int:
    from s2ilib import formats
    from s2ilib.cli import prepare_output_file

    prepare_output_file(args.out, "OUT.npz")  # before the data set is read, not after
    records = _open(args.path, args.layout, args.embedding_dim, splits=args.split)
    out = formats.export_npz(records, args.out)
    counts = ", ".join(f"{split} {len(r)}" for split, r in records.items())
    print(f"wrote {out} ({counts} records)")
    return 0


def run_convert(args) -> int:
    from s2ilib import formats
    from s2ilib.cli import check_not_below_a_file

    check_not_below_a_file(args.dst, "DST")  # before the data set is read, not after
    out = formats.convert(
        args.src,
        args.dst,
        args.to_layout,
        records_per_file=args.records_per_file,
        layout=args.layout,
        embedding_dim=args.embedding_dim,
    )
    print(f"wrote {out} ({args.to_layout})")
    return 0
