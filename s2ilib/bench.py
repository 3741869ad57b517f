"""Benchmarks, each returning a JSON-ready dict and a one-line summary.

`loader`: the memory-mapped record reader against the authors' byte-at-a-time loader, and
the memory an opened file set costs; every figure measured in this run on generated files
of the published layouts, read from the page cache (each file is read once before timing).
`train`: samples/s and model FLOP utilisation of the AE and GAN training steps, reference
mode vs the fast path (s2ilib.train.fastpath), on random data.
`imagine`: latency of one 1-s clip, sound file -> PNG, through s2ilib.imagine, on the CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
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


def time_memmap(folder, batch_size: int, reuse_buffers: bool = True, threads: int = 1) -> dict:
    """Open the set and copy every record out in batches, as a DataLoader would; two epochs.

    reuse_buffers: copy each batch into the same preallocated arrays (formats.read_into), as
    a streaming loader with staging buffers does; else slice into fresh arrays per batch.
    threads: copy the rows of each batch in this many slices at once (numpy releases the
    GIL while copying), as a loader with that many workers would.
    """
    start = time.perf_counter()
    records = formats.open_records(folder, splits="train")["train"]
    open_seconds = time.perf_counter() - start
    columns = [
        c for c in (records.spectrograms, records.images, records.embeddings) if c is not None
    ]
    record_bytes = sum(int(np.prod(c.shape[1:])) * c.dtype.itemsize for c in columns) + 1
    epochs = []
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(2):  # epoch 1 also maps the pages; epoch 2 finds them mapped
            start = time.perf_counter()
            if reuse_buffers:
                _read_reusing_buffers(records, columns, batch_size, pool, threads)
            else:
                _read_fresh_batches(records, columns, batch_size)
            seconds = time.perf_counter() - start
            epochs.append(_rates(len(records), len(records) * record_bytes, seconds))
    return {
        "open_seconds": round(open_seconds, 4),
        "batch_size": batch_size,
        "reuse_buffers": reuse_buffers,
        "threads": threads,
        "records": len(records),
        "epoch1": epochs[0],
        "epoch2": epochs[1],
    }


def _read_fresh_batches(records, columns, batch_size: int) -> None:
    for first in range(0, len(records), batch_size):
        batch = [np.ascontiguousarray(c[first : first + batch_size]) for c in columns]
        labels = records.labels[first : first + batch_size].copy()
        del batch, labels


def _read_reusing_buffers(records, columns, batch_size: int, pool, threads: int) -> None:
    columns = columns + [records.labels]
    buffers = [np.empty((batch_size, *c.shape[1:]), c.dtype) for c in columns]
    for first in range(0, len(records), batch_size):
        count = min(batch_size, len(records) - first)
        bounds = np.linspace(0, count, threads + 1).astype(int)
        slices = [
            (column, first + low, buffer[low:high])
            for column, buffer in zip(columns, buffers, strict=True)
            for low, high in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        if threads == 1:
            for column, start, out in slices:
                formats.read_into(column, start, out)
        else:
            list(pool.map(lambda job: formats.read_into(*job), slices))


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
    repeats: int = 3,
    threads: int = 1,
) -> dict:
    """Run the loader benchmark in a temporary folder; returns a JSON-ready dict.

    Arguments: size_mb, size of each generated (random content) file set timed for
    throughput; rss_size_mb, size of the sparse file set whose open cost is measured (a set
    of 1/8 that size is measured too, to show RSS does not grow with the data);
    prefix_mb, bytes the byte-at-a-time reader is timed on; repeats, timings of each reader,
    interleaved, of which the fastest is reported (on a shared machine one timing of either
    varies with the load of other jobs); threads, see time_memmap.
    """
    result = {
        "page_cache": "each file set read once before timing: rates are from the page cache",
        "size_mb": size_mb,
        "cpu_count": os.cpu_count(),
        "repeats": repeats,
    }
    with tempfile.TemporaryDirectory(prefix="s2i-bench-", dir=workdir) as temporary:
        root = Path(temporary)
        for layout in ("spec_image_bin", "audio_bin"):
            files = generate_bin_set(root / layout, layout, size_mb)
            warm_page_cache(files)
            result[layout] = _time_readers(root / layout, files, layout, prefix_mb, batch_size,
                                           repeats, threads)  # fmt: skip
            _remove(files)
        result["rss"] = _open_rss(root, rss_size_mb)
    result["targets"] = _targets(result)
    return result


def _time_readers(folder, files, layout, prefix_mb, batch_size, repeats, threads) -> dict:
    """The authors' byte-at-a-time reader against the memory-mapped one (fresh and reused
    batch buffers) on one file set, the fastest of `repeats` interleaved timings each."""
    runs = [
        (
            time_bytewise(files[0], layout, prefix_mb),
            time_memmap(folder, batch_size, reuse_buffers=False),
            time_memmap(folder, batch_size, threads=threads),
        )
        for _ in range(repeats)
    ]
    bytewise = _fastest([run[0] for run in runs])
    fresh, memmap = (_fastest([run[i] for run in runs], "epoch1") for i in (1, 2))
    return {
        "record_bytes": formats.record_dtype(layout).itemsize,
        "files": len(files),
        "authors_bytewise": bytewise,
        "memmap": memmap,
        "memmap_fresh_batches": fresh,
        "speedup_epoch1": round(memmap["epoch1"]["mb_per_s"] / bytewise["mb_per_s"], 1),
        "speedup_epoch2": round(memmap["epoch2"]["mb_per_s"] / bytewise["mb_per_s"], 1),
        "speedup_fresh_batches_epoch1": round(
            fresh["epoch1"]["mb_per_s"] / bytewise["mb_per_s"], 1
        ),
    }


def _open_rss(root: Path, rss_size_mb: float) -> dict:
    """Memory taken by opening a large and a small sparse file set, and per extra record."""
    rss = {}
    for label, size in (("large", rss_size_mb), ("small", rss_size_mb / 8)):
        folder = root / f"sparse_{label}"
        files = generate_bin_set(folder, "spec_image_bin", size, sparse=True)
        rss[label] = {
            "size_mb": round(sum(f.stat().st_size for f in files) / MB, 1),
            "files": len(files),
        } | measure_open_rss(folder)
        _remove(files)
    extra_records = max(1, rss["large"]["records"] - rss["small"]["records"])
    rss["open_bytes_per_extra_record"] = round(
        (rss["large"]["peak_increase_kb"] - rss["small"]["peak_increase_kb"])
        * 1024
        / extra_records,
        1,
    )
    return rss


def _fastest(timings: list[dict], part: str | None = None) -> dict:
    """The timing with the highest MB/s (of its `part`, e.g. "epoch1"), with the MB/s of
    every run added as `mb_per_s_runs`."""
    rates = [(timing[part] if part else timing)["mb_per_s"] for timing in timings]
    return timings[int(np.argmax(rates))] | {"mb_per_s_runs": rates}


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
        f"{spec['authors_bytewise']['mb_per_s']:.2f} MB/s: x{spec['speedup_epoch1']:.0f} "
        f"(fresh batches x{spec['speedup_fresh_batches_epoch1']:.0f}); "
        f"opening {rss['large']['size_mb']:.0f} MB adds {rss['large']['peak_increase_kb'] / 1024:.1f} MB "
        f"peak RSS ({rss['small']['size_mb']:.0f} MB: {rss['small']['peak_increase_kb'] / 1024:.1f} MB)"
    )


# --------------------------------------------------------------------------------------
# Training steps: samples/s of the AE and GAN steps, fast path vs reference mode, and MFU
# --------------------------------------------------------------------------------------

CPU_FAST_FEATURES = ("bf16", "channels_last", "fused_adam")  # compile: minutes of gcc on 2 cores


def measure_matmul_rate(device, dtype, size: int | None = None, min_seconds: float = 0.5) -> float:
    """FLOP/s of a square torch.matmul of `size` in `dtype` on `device` (2 n^3 per product),
    the peak the model FLOP utilisation is measured against."""
    import torch

    device = torch.device(device)
    size = size or (8192 if device.type == "cuda" else 1536)
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    torch.matmul(a, b)  # first call: library set-up, not timed
    _synchronize(device)
    count, start = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        count += 1
        if count % 4 == 0 or device.type != "cuda":
            _synchronize(device)
            seconds = time.perf_counter() - start
            if seconds >= min_seconds:
                return 2 * size**3 * count / seconds


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_pairs(presets, count: int, seed: int = 0):
    """An in-memory DataSet of `count` random uint8 spectrogram/frame pairs (record pairing)
    at the preset's sizes: what a training step reads, without the disk."""
    from s2ilib.datasets import DataSet

    rng = np.random.default_rng(seed)
    size, labels = presets.generator.image_size, np.arange(count) % 5
    records = formats.RecordSet(
        layout="synthetic",
        split="train",
        paths=(),
        names=np.array([formats.format_name(int(c), i, 0) for i, c in enumerate(labels)]),
        labels=labels.astype(np.int64),
        spectrograms=rng.integers(0, 256, (count, *presets.autoencoder.input_size), np.uint8),
        images=rng.integers(0, 256, (count, size, size, 3), np.uint8),
    )
    classes = [f"class {c}" for c in range(5)]
    return DataSet(Path("synthetic"), "synthetic", classes, {"train": records}, pairing="record")


class StepBench:
    """One stage (AE, or encoder + G + D) with its optimisers, data and step function, built
    as the training tasks build them (train.ae.build_ae_stage, train.gan.build_gan_stage) for
    a FastPath setting, with the paper's optimisers and losses."""

    def __init__(self, kind: str, presets, settings, device, data, batch_size: int, seed: int):
        import torch

        from s2ilib.datasets.torch_data import PairedDataset, SpectrogramDataset
        from s2ilib.models import build_networks
        from s2ilib.train.ae import build_ae_stage
        from s2ilib.train.config import AETrainConfig, GANTrainConfig
        from s2ilib.train.gan import build_gan_stage

        torch.manual_seed(seed)
        networks = build_networks(presets)
        self.kind, self.settings, self.device, self.batch_size = kind, settings, device, batch_size
        if kind == "ae":
            self.dataset = SpectrogramDataset(data.split("train"))
            autoencoder = networks["autoencoder"].to(device).train()
            self.stage = build_ae_stage(
                autoencoder, AETrainConfig(), settings, device, self.dataset
            )
        else:
            self.dataset = PairedDataset(data, "train", presets.generator.image_size)
            encoder = networks["autoencoder"].encoder.to(device).eval().requires_grad_(False)
            models = {"encoder": encoder}
            for name in ("generator", "discriminator"):
                models[name] = networks[name].to(device).train()
            self.stage = build_gan_stage(models, GANTrainConfig(), settings, device, self.dataset)
        self.order = np.random.default_rng(seed).permutation(len(self.dataset))
        self.position = 0

    def next_batch(self):
        from s2ilib.train import fastpath

        if self.position + self.batch_size > len(self.order):
            self.position = 0
        positions = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        batch = self.dataset.__getitems__(positions)[:-1]  # labels are not used in training
        return [
            fastpath.to_memory_format(t.to(self.device, non_blocking=True), self.settings)
            for t in batch
        ]

    def step(self) -> dict:
        from s2ilib.train.steps import ae_step, embed_sounds, gan_step

        batch = self.next_batch()
        if self.kind == "ae":
            return ae_step(self.stage, batch[0])
        spectrograms, images = batch
        return gan_step(self.stage, embed_sounds(self.stage, spectrograms), images)


def count_step_flops(bench: StepBench) -> float:
    """Model FLOPs of one whole training step per sample (FlopCounterMode: convolutions and
    matrix products, forward and backward, 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        bench.step()
    return counter.get_total_flops() / bench.batch_size


def time_steps(bench: StepBench, warmup: int, steps: int) -> dict:
    """Samples/s over `steps` steps after `warmup` untimed ones (compilation, autotuning)."""
    for _ in range(warmup):
        bench.step()
    _synchronize(bench.device)
    start = time.perf_counter()
    for _ in range(steps):
        stats = bench.step()
    _synchronize(bench.device)
    seconds = time.perf_counter() - start
    loss = float(next(iter(stats.values())))  # one host sync, after the timing
    return {
        "steps": steps,
        "seconds": round(seconds, 4),
        "step_ms": round(1000 * seconds / steps, 2),
        "samples_per_s": round(bench.batch_size * steps / seconds, 2),
        "last_loss": round(loss, 5),
    }


def bench_train(
    preset_name: str | None = None,
    device: str = "auto",
    batch_size: int = 64,
    steps: int = 10,
    warmup: int = 2,
    embedding_dim: int = 512,
    features: tuple[str, ...] | None = None,
    kinds: tuple[str, ...] = ("ae", "gan"),
    seed: int = 0,
    profile: int = 0,
) -> dict:
    """Samples/s of the AE step and the GAN step (G + D), reference mode vs fast path in
    the same process, with model FLOP utilisation against this device's matmul rate.

    Arguments: preset_name, default "paper" on CUDA, "demo" on the CPU; features, the fast
    path's features (default: all on CUDA, CPU_FAST_FEATURES on the CPU); profile, when
    > 0, also runs torch.profiler over that many steps of each kind and mode (top ops).
    """
    import torch

    from s2ilib.devices import resolve_device
    from s2ilib.models import preset
    from s2ilib.models.summary import summarize
    from s2ilib.train import fastpath
    from s2ilib.train.config import FAST_PATH_FEATURES, LoopConfig

    device = resolve_device(device)
    preset_name = preset_name or ("paper" if device.type == "cuda" else "demo")
    features = features or (FAST_PATH_FEATURES if device.type == "cuda" else CPU_FAST_FEATURES)
    presets = preset(preset_name, embedding_dim)
    fast = fastpath.resolve_fast_path(
        LoopConfig(fast_path="on", fast_path_features=tuple(features)), device
    )
    modes = {"reference": fastpath.REFERENCE, "fast": fast}
    rates = matmul_rates(device)
    networks = summarize(preset_name, embedding_dim)["networks"]
    result = {
        "device": _device_name(device),
        "threads": torch.get_num_threads(),
        "preset": preset_name,
        "embedding_dim": embedding_dim,
        "batch_size": batch_size,
        "fast_path": fast.enabled,
        "matmul_tflops": {k: round(v / 1e12, 4) for k, v in rates.items()},
        "peak_matmul": max(rates, key=rates.get),  # the summary line's MFU is against it
        "network_gflop_per_sample_fwd_bwd": {
            name: round(networks[name]["forward_backward_flops"] / 1e9, 3)
            for name in ("autoencoder", "generator", "discriminator")
        },
    }
    data = synthetic_pairs(presets, max(4 * batch_size, 256), seed)
    for kind in kinds:
        benches = {
            mode: partial(StepBench, kind, presets, settings, device, data, batch_size, seed)
            for mode, settings in modes.items()
        }
        result[kind] = _bench_modes(benches, rates, warmup, steps, profile)
    return result


def matmul_rates(device) -> dict:
    """FLOP/s of a large matmul on `device` in bf16, and in fp32 on the CPU (where a CPU
    without native bf16 runs bf16 far below fp32)."""
    import torch

    rates = {"bf16": measure_matmul_rate(device, torch.bfloat16)}
    if device.type == "cpu":
        rates["fp32"] = measure_matmul_rate(device, torch.float32)
    return rates


def _bench_modes(benches: dict, rates: dict, warmup: int, steps: int, profile: int) -> dict:
    """Timing, MFU (and a profile) of each mode's StepBench (made by benches[mode]()), FLOPs
    counted on the reference one, and the fast path's speed-up."""
    entry = {}
    for mode, make in benches.items():
        bench = make()
        if mode == "reference":
            entry["gflop_per_sample"] = round(count_step_flops(bench) / 1e9, 4)
        timing = time_steps(bench, warmup, steps)
        achieved = entry["gflop_per_sample"] * 1e9 * timing["samples_per_s"]
        timing |= {f"mfu_vs_{k}": round(achieved / rate, 4) for k, rate in rates.items()}
        if profile:
            timing["profile"] = profile_steps(bench, profile)
        entry[mode] = timing
        del bench
    entry["speedup"] = round(
        entry["fast"]["samples_per_s"] / entry["reference"]["samples_per_s"], 3
    )
    return entry


def profile_steps(bench: StepBench, steps: int, top: int = 10) -> dict:
    """torch.profiler over `steps` steps: the `top` ops by self time (CPU, or CUDA on a
    GPU) with their share of the total, and the total ms per step."""
    from torch.profiler import ProfilerActivity, profile

    cuda = bench.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    bench.step()  # warm-up outside the profile
    with profile(activities=activities) as profiler:
        for _ in range(steps):
            bench.step()
        _synchronize(bench.device)
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = sorted(profiler.key_averages(), key=lambda e: getattr(e, key), reverse=True)
    total = sum(getattr(e, key) for e in events) or 1
    return {
        "ms_per_step": round(total / 1000 / steps, 2),
        "top_ops": [
            {
                "op": event.key,
                "percent": round(100 * getattr(event, key) / total, 1),
                "ms_per_step": round(getattr(event, key) / 1000 / steps, 2),
                "calls_per_step": round(event.count / steps, 1),
            }
            for event in events[:top]
        ],
    }


def profile_table(profile: dict) -> str:
    """profile_steps' top ops as a Markdown table: share of the profiled time, ms a step."""
    rows = [
        f"| {op['op']} | {op['percent']:.1f}% | {op['ms_per_step']:.1f} |"
        for op in profile["top_ops"]
    ]
    return "\n".join(["| op | share | ms a step |", "|---|---:|---:|", *rows])


def _device_name(device) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def train_summary_line(result: dict) -> str:
    """One line with the headline figures of bench_train."""
    parts = [f"train ({result['preset']}, batch {result['batch_size']}, {result['device']}):"]
    peak = result["peak_matmul"]
    for kind in ("ae", "gan"):
        if kind in result:
            entry = result[kind]
            parts.append(
                f"{kind} {entry['reference']['samples_per_s']:.0f} -> "
                f"{entry['fast']['samples_per_s']:.0f} samples/s (x{entry['speedup']:.2f}, "
                f"MFU {100 * entry['fast'][f'mfu_vs_{peak}']:.1f}% of {peak} matmul);"
            )
    return " ".join(parts)


# --------------------------------------------------------------------------------------
# Imagine: one 1-s clip, audio file -> PNG, through s2ilib.imagine
# --------------------------------------------------------------------------------------


def write_random_gan_run(run_dir, preset_name: str, embedding_dim: int = 512, seed: int = 0):
    """A GAN run directory (config.json + checkpoints/last.pt) holding randomly initialised
    networks of a preset: what `s2i imagine --run` loads, without training."""
    import torch

    from s2ilib.atomic import write_json
    from s2ilib.models import build_networks, preset
    from s2ilib.runs import CONFIG_FILE, save_checkpoint
    from s2ilib.train.config import GANTrainConfig

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    presets = preset(preset_name, embedding_dim)
    torch.manual_seed(seed)
    networks = build_networks(presets)
    names = ("autoencoder", "generator", "discriminator")
    train = GANTrainConfig(preset=preset_name, embedding_dim=embedding_dim)
    document = {
        "kind": "gan",
        "desc": f"random-{preset_name}",
        "train": train.as_dict(),
        "data": "",
        "models": {name: presets.as_dict()[name] for name in names},
    }
    write_json(run_dir / CONFIG_FILE, document)
    state = {
        "kind": "gan",
        "models": {name: networks[name].state_dict() for name in names},
        "progress": {"step": 0, "epoch": 0, "batch_in_epoch": 0},
    }
    save_checkpoint(run_dir, state, 0)
    return run_dir


def write_test_clips(folder, count: int, seed: int = 0) -> list[Path]:
    """`count` 1-s, 16 kHz WAV files: a tone sweep under noise, a different one per file."""
    import soundfile

    from s2ilib.audio import SAMPLE_RATE

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    time_axis = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    paths = []
    for index in range(count):
        start, stop = rng.uniform(200, 4000, 2)
        phase = 2 * np.pi * (start * time_axis + (stop - start) * time_axis**2 / 2)
        wave = 0.5 * np.sin(phase) + 0.05 * rng.standard_normal(SAMPLE_RATE)
        path = folder / f"clip_{index:03d}.wav"
        soundfile.write(path, wave.astype(np.float32), SAMPLE_RATE)
        paths.append(path)
    return paths


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_imagine_stages(run_dir, clip: Path, out_dir, repeats: int, precision: str) -> dict:
    """Median ms of each stage of imagine_files on one clip (read + log-mel, encode,
    generate, write the PNG) as imagine_files runs them (cached channels_last networks,
    `precision`); for comparison, loading the run afresh, and encode + generate in fp32
    channels_last and in plain fp32 NCHW (what every call did before the cache)."""
    from s2ilib import imagine, translate
    from s2ilib.audio import load_clips
    from s2ilib.runs import load_run

    run = imagine.load_run_for_inference(run_dir, "cpu")
    plain = load_run(run_dir)
    spectrograms, readable, _, _, waves = load_clips([clip])
    # A flow that recalls by the front draws from its features too (translate.sound_conditions).
    embeddings, front = translate.sound_conditions(run, spectrograms, "cpu", audio=waves)
    images = translate.generate(run.generator, embeddings, "cpu", seed=0, front=front)

    def networks(loaded, chosen):
        def encode():
            with imagine.inference_precision(chosen, "cpu"):
                return translate.sound_conditions(loaded, spectrograms, "cpu", audio=waves)

        def generate():
            with imagine.inference_precision(chosen, "cpu"):
                return translate.generate(loaded.generator, embeddings, "cpu", seed=0, front=front)

        return encode, generate

    encode, generate = networks(run, precision)
    fp32_encode, fp32_generate = networks(run, "fp32")
    nchw_encode, nchw_generate = networks(_in_nchw(plain), "fp32")
    stages = {
        "read_and_log_mel": lambda: load_clips([clip]),
        "encode": encode,
        "generate": generate,
        "write_png": lambda: imagine.save_rows(images, imagine.output_names(readable), out_dir),
        "uncached_load_run": lambda: load_run(run_dir),
        "fp32_channels_last_encode": fp32_encode,
        "fp32_channels_last_generate": fp32_generate,
        "fp32_nchw_encode": nchw_encode,
        "fp32_nchw_generate": nchw_generate,
    }
    for stage in stages.values():  # warm-up, as for the whole call
        stage()
    return {name: round(1000 * _median_seconds(f, repeats), 2) for name, f in stages.items()}


def _in_nchw(run):
    """`run` with its networks in PyTorch's default layout (load_run gives a flow on the
    CPU channels_last): what every imagine call ran before the cached channels_last runs."""
    import torch

    for network in (run.autoencoder, run.generator):
        network.to(memory_format=torch.contiguous_format)
    return run


def _time_imagine_calls(run_dir, clips, out, repeats: int, precision: str, batch: int) -> dict:
    """bench_imagine's timings of imagine_files on `run_dir`: one clip (the first call, then
    the median after warm-up), by stage, and `batch` clips in one call."""
    from s2ilib import imagine

    def one_clip():
        written = imagine.imagine_files(run_dir, clips[:1], out, device="cpu", precision=precision)
        written = written["written"]
        if len(written) != 1:
            raise RuntimeError(f"imagine wrote {written} for one clip")

    timings = {}
    start = time.perf_counter()
    one_clip()
    timings["first_call_ms"] = round(1000 * (time.perf_counter() - start), 2)
    for _ in range(3):  # oneDNN builds a primitive per layer shape on the first calls
        one_clip()
    timings["clip_ms"] = round(1000 * _median_seconds(one_clip, repeats), 2)
    timings["stages_ms"] = time_imagine_stages(run_dir, clips[0], out, repeats, precision)
    seconds = _median_seconds(
        lambda: imagine.imagine_files(
            run_dir, clips[:batch], out, device="cpu", precision=precision
        ),
        max(1, repeats // 2),
    )
    timings["batch_seconds"] = round(seconds, 4)
    timings["clips_per_s"] = round(batch / seconds, 2)
    return timings


def bench_imagine(
    run=None,
    preset_name: str = "paper",
    batch: int = 16,
    repeats: int = 5,
    embedding_dim: int = 512,
    precision: str = "auto",
    workdir=None,
) -> dict:
    """Latency of one 1-s clip, audio file -> PNG through s2ilib.imagine.imagine_files on
    the CPU (first call, then the median of `repeats` more after three warm-up calls), the
    same per stage, and the clips/s of `batch` clips in one call, the speech front's feature
    cache off (each clip stands for a new recording). run: a trained GAN or flow
    run; None: a GAN run of randomly initialised networks of `preset_name` and
    `embedding_dim`. precision is imagine_files' ("auto": bf16 where the CPU runs it
    natively)."""
    import torch

    from s2ilib.models.front_cache import cache_turned_off
    from s2ilib.runs import TRANSLATOR_KINDS, loadable_run

    if run is not None:  # refused before any work when imagine could not load it
        config, _ = loadable_run(run, TRANSLATOR_KINDS)
        preset_name = f"{config['kind']} run {Path(run).name}"
        embedding_dim = config["models"]["autoencoder"]["embedding_dim"]
    result = {
        "device": _device_name(torch.device("cpu")),
        "threads": torch.get_num_threads(),
        "run": None if run is None else str(run),
        "preset": preset_name,
        "embedding_dim": embedding_dim,
        "batch": batch,
        "repeats": repeats,
        "precision": precision,
    }
    with tempfile.TemporaryDirectory(prefix="s2i-bench-", dir=workdir) as temporary:
        root = Path(temporary)
        run_dir = run or write_random_gan_run(root / "run", preset_name, embedding_dim)
        clips = write_test_clips(root / "clips", max(batch, 1))
        with cache_turned_off():  # each timed clip stands for a recording never heard
            result |= _time_imagine_calls(run_dir, clips, root / "out", repeats, precision, batch)
    result["target_clip_ms"] = 150
    result["meets_target"] = result["clip_ms"] < 150
    return result


def imagine_summary_line(result: dict) -> str:
    """One line with the headline figures of bench_imagine."""
    stages = ", ".join(
        f"{k} {v:.0f}" for k, v in result["stages_ms"].items() if not k.startswith(("fp32_", "unc"))
    )
    return (
        f"imagine ({result['preset']}, {result['threads']} threads): one clip file -> PNG "
        f"{result['clip_ms']:.0f} ms (first call {result['first_call_ms']:.0f} ms; {stages} ms); "
        f"{result['clips_per_s']:.1f} clips/s in batches of {result['batch']}"
    )
