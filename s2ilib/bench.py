"""Benchmarks. `loader`: the memory-mapped record reader against the authors' byte-at-a-time
loader, and the memory an opened file set costs.

Every figure is measured in this run on generated files of the published layouts, read from
the page cache (each file is read once before timing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from s2ilib import formats

MB = 1 << 20


def synthetic_labels(start: int, stop: int) -> np.ndarray:
    """Valid 11-byte labels for records start..stop: class 1..5, 10 windows per video."""
    index = np.arange(start, stop, dtype=np.int64)
    fields = [(index % 5 + 1, 3), ((index // 10) % 100_000, 5), (index % 10, 3)]
    digits = [
        (value[:, None] // 10 ** np.arange(width - 1, -1, -1)) % 10 for value, width in fields
    ]
    codes = (np.concatenate(digits, axis=1) + ord("0")).astype(np.uint8)
    return np.ascontiguousarray(codes).view(f"S{formats.LABEL_BYTES}").ravel()


def generate_bin_set(
    folder,
    layout: str,
    size_mb: float,
    records_per_file: int = 10000,
    sparse: bool = False,
    seed: int = 0,
) -> list[Path]:
    """Write a valid train file set of about size_mb MB in `folder`; returns its files.

    Arguments: layout, "audio_bin" or "spec_image_bin"; sparse, write only the labels into
    files extended with truncate (the rest reads as zeros, and costs no disk), instead of
    random content throughout.
    """
    dtype = formats.record_dtype(layout)
    total = max(1, int(size_mb * MB) // dtype.itemsize)
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number, first in enumerate(range(0, total, records_per_file), start=1):
        count = min(total, first + records_per_file) - first
        path = folder / f"data_batch_{number:03d}.bin"
        labels = synthetic_labels(first, first + count)
        if layout == "audio_bin":
            labels = (np.arange(first, first + count) % 5).astype(np.uint8)
        if sparse:
            _write_sparse(path, dtype, labels)
        else:
            _write_random(path, dtype, labels, rng)
        files.append(path)
    return files


def _write_sparse(path: Path, dtype: np.dtype, labels: np.ndarray) -> None:
    with open(path, "wb") as file:
        file.truncate(len(labels) * dtype.itemsize)
    records = np.memmap(path, dtype=dtype, mode="r+", shape=(len(labels),))
    records["label"] = labels
    records.flush()
    del records


def _write_random(path: Path, dtype: np.dtype, labels: np.ndarray, rng) -> None:
    with open(path, "wb") as file:
        for start in range(0, len(labels), 1024):
            chunk_labels = labels[start : start + 1024]
            raw = rng.integers(0, 256, len(chunk_labels) * dtype.itemsize, dtype=np.uint8)
            chunk = raw.view(dtype)
            chunk["label"] = chunk_labels
            chunk.tofile(file)


def warm_page_cache(files) -> None:
    """Read every file once so that timings measure the reader, not the disk."""
    buffer = bytearray(8 * MB)
    for path in files:
        with open(path, "rb", buffering=0) as file:
            while file.readinto(buffer):
                pass


def read_bytewise(path, layout: str, max_records: int) -> int:
    """The authors' loader, faithfully slow: one f.read(1) per byte into Python lists.

    Reads at most max_records records of `layout`; returns the number read.
    """
    field_bytes = [
        (name, formats.record_dtype(layout)[name].itemsize)
        for name in formats.record_dtype(layout).names
    ]
    records = {name: [] for name, _ in field_bytes}
    read = 0
    with open(path, "rb") as file:
        while read < max_records:
            for name, size in field_bytes:  # per-byte Python work is what is measured here
                values = []
                for _ in range(size):
                    byte = file.read(1)
                    if not byte:
                        return read
                    values.append(ord(byte))
                records[name].append(values)
            read += 1
    return read


def time_bytewise(path, layout: str, prefix_mb: float) -> dict:
    """Time read_bytewise on a prefix of prefix_mb MB; rates extrapolate linearly."""
    record_bytes = formats.record_dtype(layout).itemsize
    max_records = max(1, int(prefix_mb * MB) // record_bytes)
    start = time.perf_counter()
    count = read_bytewise(path, layout, max_records)
    seconds = time.perf_counter() - start
    return _rates(count, count * record_bytes, seconds) | {
        "prefix_mb": round(count * record_bytes / MB, 2)
    }


def time_memmap(folder, batch_size: int) -> dict:
    """Open the set and copy every record out in batches, as a DataLoader would; two epochs."""
    start = time.perf_counter()
    records = formats.open_records(folder, splits="train")["train"]
    open_seconds = time.perf_counter() - start
    columns = [
        c for c in (records.spectrograms, records.images, records.embeddings) if c is not None
    ]
    record_bytes = sum(int(np.prod(c.shape[1:])) * c.dtype.itemsize for c in columns) + 1
    epochs = []
    for _ in range(2):  # epoch 1 also maps the pages into this process; epoch 2 finds them mapped
        start = time.perf_counter()
        for first in range(0, len(records), batch_size):
            batch = [np.ascontiguousarray(c[first : first + batch_size]) for c in columns]
            labels = records.labels[first : first + batch_size].copy()
            del batch, labels
        seconds = time.perf_counter() - start
        epochs.append(_rates(len(records), len(records) * record_bytes, seconds))
    return {
        "open_seconds": round(open_seconds, 4),
        "batch_size": batch_size,
        "records": len(records),
        "epoch1": epochs[0],
        "epoch2": epochs[1],
    }


def _rates(records: int, nbytes: int, seconds: float) -> dict:
    seconds = max(seconds, 1e-9)
    return {
        "records": records,
        "seconds": round(seconds, 4),
        "records_per_s": round(records / seconds, 1),
        "mb_per_s": round(nbytes / MB / seconds, 2),
    }


_RSS_PROBE = """
import json, sys
def status():
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0])
    return fields
import numpy as np
from s2ilib import formats
import time
baseline = status()
start = time.perf_counter()
records = formats.open_records(sys.argv[1], splits="train")["train"]
open_seconds = time.perf_counter() - start
opened = status()
batch = records.spectrograms[:256], records.images[:256] if records.images is not None else None
after_batch = status()
print(json.dumps({"records": len(records), "open_seconds": round(open_seconds, 4), "baseline_kb": baseline, "after_open_kb": opened,
                  "after_one_batch_kb": after_batch}))
"""


def measure_open_rss(folder) -> dict:
    """RSS (kB, from /proc/self/status) of a fresh process before and after opening `folder`."""
    result = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(folder)], capture_output=True, text=True, check=True
    )
    probe = json.loads(result.stdout)
    probe["peak_increase_kb"] = probe["after_open_kb"]["VmHWM"] - probe["baseline_kb"]["VmHWM"]
    return probe


def bench_loader(
    size_mb: float = 256,
    rss_size_mb: float = 2048,
    prefix_mb: float = 3,
    batch_size: int = 256,
    workdir=None,
) -> dict:
    """Run the loader benchmark in a temporary folder; returns a JSON-ready dict.

    Arguments: size_mb, size of each generated (random content) file set timed for
    throughput; rss_size_mb, size of the sparse file set whose open cost is measured (a set
    of 1/8 that size is measured too, to show RSS does not grow with the data);
    prefix_mb, bytes the byte-at-a-time reader is timed on.
    """
    result = {
        "page_cache": "each file set read once before timing: rates are from the page cache",
        "size_mb": size_mb,
        "cpu_count": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="s2i-bench-", dir=workdir) as temporary:
        root = Path(temporary)
        for layout in ("spec_image_bin", "audio_bin"):
            files = generate_bin_set(root / layout, layout, size_mb)
            warm_page_cache(files)
            bytewise = time_bytewise(files[0], layout, prefix_mb)
            memmap = time_memmap(root / layout, batch_size)
            result[layout] = {
                "record_bytes": formats.record_dtype(layout).itemsize,
                "files": len(files),
                "authors_bytewise": bytewise,
                "memmap": memmap,
                "speedup_epoch1": round(memmap["epoch1"]["mb_per_s"] / bytewise["mb_per_s"], 1),
                "speedup_epoch2": round(memmap["epoch2"]["mb_per_s"] / bytewise["mb_per_s"], 1),
            }
            _remove(files)
        result["rss"] = {}
        for label, size in (("large", rss_size_mb), ("small", rss_size_mb / 8)):
            folder = root / f"sparse_{label}"
            files = generate_bin_set(folder, "spec_image_bin", size, sparse=True)
            result["rss"][label] = {
                "size_mb": round(sum(f.stat().st_size for f in files) / MB, 1),
                "files": len(files),
            } | measure_open_rss(folder)
            _remove(files)
        large, small = result["rss"]["large"], result["rss"]["small"]
        extra_records = max(1, large["records"] - small["records"])
        result["rss"]["open_bytes_per_extra_record"] = round(
            (large["peak_increase_kb"] - small["peak_increase_kb"]) * 1024 / extra_records, 1
        )
    result["targets"] = _targets(result)
    return result


def _remove(files) -> None:
    for path in files:
        path.unlink()


def _targets(result: dict) -> dict:
    spec = result["spec_image_bin"]
    return {
        "speedup_at_least_1000x": spec["speedup_epoch1"] >= 1000,
        "at_least_1_gb_per_s": spec["memmap"]["epoch1"]["mb_per_s"] >= 1024,
        # Opening may cost only per-record metadata (names, labels: ~100 bytes), never data.
        "rss_independent_of_size": result["rss"]["open_bytes_per_extra_record"]
        < 0.01 * spec["record_bytes"],
    }


def summary_line(result: dict) -> str:
    """One line with the headline figures."""
    spec, rss = result["spec_image_bin"], result["rss"]
    return (
        f"loader: memmap {spec['memmap']['epoch1']['mb_per_s']:.0f} MB/s "
        f"({spec['memmap']['epoch1']['records_per_s']:.0f} rec/s, epoch 2 "
        f"{spec['memmap']['epoch2']['mb_per_s']:.0f} MB/s) vs byte-at-a-time "
        f"{spec['authors_bytewise']['mb_per_s']:.2f} MB/s: x{spec['speedup_epoch1']:.0f}; "
        f"opening {rss['large']['size_mb']:.0f} MB adds {rss['large']['peak_increase_kb'] / 1024:.1f} MB "
        f"peak RSS ({rss['small']['size_mb']:.0f} MB: {rss['small']['peak_increase_kb'] / 1024:.1f} MB)"
    )
