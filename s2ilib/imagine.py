"""Use a trained model: sound files -> imagined images, and data sets -> embeddings.

`imagine_files` runs any audio files through the same front end as training (one second of
each, made as the run's training clips were: for AV-Digits the spoken word trimmed, set to
the training level and centred; otherwise the loudest second, which for an event-like sound
is the event rather than the silence around it) and writes one PNG
per input. With `samples` K > 1 the PNG is a row of K images, drawn with dropout kept on
at test time as the paper does (s2ilib.translate). `embed_dataset` writes a data set's
audio embeddings.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from s2ilib.atomic import atomic_write
from s2ilib.audio import load_clips, not_a_file_reason
from s2ilib.datasets.sounds import clip_mode_for
from s2ilib.datasets.torch_data import from_unit_range, resize_images
from s2ilib.errors import S2IError
from s2ilib.translate import encode, reads_audio, translate


def save_rows(images: np.ndarray, names, out_dir) -> list[Path]:
    """uint8 (N, K, S, S, 3) -> one PNG per item (`<name>.png`), its K samples side by side."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for row, name in zip(images, names, strict=True):
        image = Image.fromarray(np.concatenate(list(row), axis=1))
        paths.append(atomic_write(out_dir / f"{name}.png", lambda f, i=image: i.save(f, "PNG")))
    return paths


def check_output_paths(out_dir, names) -> None:
    """Refuse, before any image is made, an `out_dir` that is a file or that holds a folder
    (or anything but a file) where one of the PNGs `names` must go."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise S2IError(f"--out {out_dir}: a file is there; give a folder (made if missing)")
    for name in names:
        target = out_dir / f"{name}.png"
        if target.exists() and not target.is_file():
            raise S2IError(
                f"--out {out_dir}: {target} is a folder (or not a regular file) where an image "
                "must go; move it away or choose another --out"
            )


def output_names(paths: list[Path]) -> list[str]:
    """One distinct PNG name per input: its stem; where stems repeat, <folder>_<stem>; where
    those repeat too (one folder, two formats), <folder>_<stem>_<format>; a file given twice
    gets _2, _3, ... (no output is ever written over another)."""
    levels = (
        lambda p: p.stem,
        lambda p: f"{p.parent.name}_{p.stem}",
        lambda p: f"{p.parent.name}_{p.stem}_{p.suffix.lstrip('.')}",
    )
    names = [levels[0](path) for path in paths]
    for level in levels[1:]:
        counts = Counter(names)
        names = [level(p) if counts[n] > 1 else n for p, n in zip(paths, names, strict=True)]
    seen = Counter()
    for index, name in enumerate(names):
        seen[name] += 1
        names[index] = name if seen[name] == 1 else f"{name}_{seen[name]}"
    return names


_RUN_CACHE: dict[tuple, object] = {}  # the last run loaded for inference (networks are large)


def load_run_for_inference(run_dir, device):
    """`load_run` once per (run, checkpoint version, device), networks in channels_last.

    Repeated calls (a server, a notebook loop) then skip rebuilding the networks and
    reading the checkpoint, most of a call's time for the paper preset on a CPU;
    channels_last speeds up the generator there (oneDNN's NHWC transposed convolutions), same
    results (benchmarks/RESULTS.md, "Imagine: one 1-s clip, sound file -> PNG").
    """
    from s2ilib.runs import TRANSLATOR_KINDS, latest_checkpoint, load_run

    checkpoint = latest_checkpoint(Path(run_dir))
    stat = checkpoint.stat() if checkpoint is not None else None
    key = (str(Path(run_dir).resolve()), str(checkpoint), stat and stat.st_mtime_ns, str(device))
    if key not in _RUN_CACHE:
        _RUN_CACHE.clear()
        run = load_run(run_dir, device=device, kind=TRANSLATOR_KINDS)
        for network in (run.autoencoder, run.generator):
            if network is not None:
                network.to(memory_format=torch.channels_last)
        _RUN_CACHE[key] = run
    return _RUN_CACHE[key]


def inference_precision(precision: str, device) -> torch.autocast:
    """The autocast context of `precision`: "fp32" (exact), "bf16", or "auto" = bf16 where
    the hardware runs it natively (CUDA; CPUs with AVX512-BF16/AMX through oneDNN).

    On the CPU, bf16 also routes batch-1 convolutions to oneDNN (fp32 ones of small maps
    take PyTorch's slow reference kernels). bf16 images differ from fp32 ones by less on
    average than two test-time dropout draws of one sound differ, though a single pixel can
    differ much more where a ReLU sits near 0 and rounding flips it
    (benchmarks/imagine_precision.py; benchmarks/RESULTS.md, "The main job on the new
    shape").
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise S2IError(f"precision {precision!r}: expected auto, fp32 or bf16")
    device_type = torch.device(device).type
    native = device_type == "cuda" or (
        device_type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
    use_bf16 = precision == "bf16" or (precision == "auto" and native)
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=use_bf16)


def imagine_files(
    run_dir,
    audio_paths,
    out_dir,
    samples: int = 1,
    device: str = "auto",
    seed: int | None = 0,
    mode: str = "auto",
    precision: str = "auto",
) -> dict:
    """Audio files -> PNGs in out_dir; returns {"written": [...], "skipped": {path: reason},
    "notes": {path: what is doubtful about it}}.

    mode: how one second is made of each file (s2ilib.audio.CLIP_MODES); "auto" prepares them
    as the run's training data were (datasets.sounds.clip_mode_for).

    precision: "auto" (bf16 where native), "fp32" or "bf16" (see inference_precision).
    """
    from s2ilib.devices import resolve_device

    check_output_paths(out_dir, [])
    no_files = {str(p): not_a_file_reason(Path(p)) for p in audio_paths if not Path(p).is_file()}
    if len(no_files) == len(audio_paths):  # nothing to read: refused before the run loads
        return {"written": [], "skipped": no_files, "notes": {}}
    device = resolve_device(device)
    run = load_run_for_inference(run_dir, device)
    clips = load_clips(audio_paths, mode=clip_mode_for(run.config.get("data", ""), mode))
    names = output_names(clips.readable)
    check_output_paths(out_dir, names)
    written = []
    if clips.readable:
        with inference_precision(precision, device):
            images = translate(run, clips.spectrograms, device, samples, seed, audio=clips.waves)
        written = save_rows(images, names, out_dir)
    return {"written": [str(p) for p in written], "skipped": clips.failures, "notes": clips.notes}


def class_paired_images(labels: np.ndarray, pool, seed: int = 0) -> np.ndarray:
    """For each label, the index of a random image of that class in `pool` (seeded)."""
    rng = np.random.default_rng(seed)
    choice = np.empty(len(labels), np.int64)
    for label in np.unique(labels):  # one vectorised draw per class, not per sound
        members = np.flatnonzero(pool.labels == label)
        if len(members) == 0:
            raise S2IError(f"the image pool has no image of class {label}")
        where = np.flatnonzero(labels == label)
        choice[where] = rng.choice(members, size=len(where))
    return choice


def embed_dataset(
    run_dir,
    data_path,
    out_dir,
    splits=None,
    device: str = "auto",
    image_size: int = 96,
    seed: int = 0,
) -> dict:
    """Embeddings of a data set's sounds: `embeddings.npz` and, when the set has images,
    the published embedding-to-image `.bin` layout (one file per split).

    With class pairing (AV-Digits) each sound is written with a random image of its class
    (seeded), resized to `image_size` RGB, so that the `.bin` files have the published shape.
    """
    from s2ilib.datasets import open_dataset
    from s2ilib.devices import resolve_device
    from s2ilib.runs import load_run

    device = resolve_device(device)
    run = load_run(run_dir, device=device)
    data = open_dataset(data_path)
    splits = splits or list(data.sounds)
    if reads_audio(run.encoder) and any(data.split(split).audio is None for split in splits):
        raise S2IError(
            f"{run_dir}: its encoder reads the audio (front_input 'audio'), and {data_path} "
            "ships spectrograms only: embed a data set with its clips (AV-Digits layout)"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = {"names": [], "labels": [], "splits": [], "embeddings": []}
    bin_dir = out_dir / f"embeddings_{run.embedding_dim}_to_images"
    written = {}
    for split in splits:
        records = data.split(split)
        embeddings = encode(run.encoder, records.spectrograms, device, audio=records.audio)
        embeddings = embeddings.numpy()
        for key, value in zip(arrays, (records.names, records.labels,
                                       np.full(len(records), split), embeddings), strict=True):  # fmt: skip
            arrays[key].append(np.asarray(value))
        if data.pairing != "none":
            prefix = "data" if split == "train" else split
            path = bin_dir / f"{prefix}_batch_001.bin"
            written[split] = str(
                _write_embedding_bin(path, data, split, embeddings, image_size, seed)
            )
    merged = {key: np.concatenate(parts) for key, parts in arrays.items()}
    atomic_write(out_dir / "embeddings.npz", lambda file: np.savez(file, **merged))
    splits_written, counts = np.unique(merged["splits"], return_counts=True)
    return {
        "npz": str(out_dir / "embeddings.npz"),
        "bin": written,
        "embedding_dim": run.embedding_dim,
        "counts": dict(zip(splits_written.tolist(), counts.tolist(), strict=True)),
    }


def _write_embedding_bin(path, data, split: str, embeddings, image_size: int, seed: int):
    """One split's embeddings with their images in the published embedding-to-image layout
    (class pairing: a seeded random image of the class; record pairing: the own frame)."""
    from s2ilib.formats import format_name, names_to_labels, write_embedding_image_bin

    records, pool = data.split(split), data.image_pool(split)
    names = records.names
    try:
        names_to_labels(names)  # record names of either kind keep their ids in the .bin
    except S2IError:  # e.g. AV-Digits clip ids: give them published-style names
        names = np.array([format_name(int(c), i, 0) for i, c in enumerate(records.labels)])
    picks = (
        class_paired_images(records.labels, pool, seed)
        if data.pairing == "class"
        else np.arange(len(records))
    )
    images = from_unit_range(resize_images(torch.as_tensor(pool.images[picks]), image_size))
    return write_embedding_image_bin(path, names, embeddings, images.permute(0, 2, 3, 1).numpy())
