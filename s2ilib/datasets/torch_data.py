"""PyTorch Datasets over the record sets, with the paper's scaling to [-1, 1].

Batches are fetched whole (`__getitems__`, which DataLoader calls with a batch of indices),
so a batch costs one fancy-indexing of the uint8 arrays and one vectorised scaling, never a
Python loop over samples. Small sets are held in RAM as uint8 tensors; large ones stay
memory-mapped and only the records a batch needs are read.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from s2ilib.datasets import DataSet
from s2ilib.errors import S2IError
from s2ilib.formats import RecordSet

IN_MEMORY_LIMIT_BYTES = 2 * 1024**3  # hold a split in RAM up to this size, else memory-map


def to_unit_range(uint8_batch: torch.Tensor) -> torch.Tensor:
    """Scale uint8 pixels to [-1, 1] as the paper does (x / 127.5 - 1)."""
    return uint8_batch.float().div_(127.5).sub_(1.0)


def from_unit_range(batch: torch.Tensor) -> torch.Tensor:
    """Inverse of `to_unit_range`, rounded and clipped to uint8."""
    return batch.add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def select_indices(
    labels: np.ndarray,
    classes: list[int] | None = None,
    limit_per_class: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Indices of records whose label is in `classes`, at most `limit_per_class` of each.

    The limited subset is a seeded random draw (not the first files, which in the published
    set are consecutive windows of the same few videos); the result is sorted.
    """
    labels = np.asarray(labels)
    keep = np.ones(len(labels), bool) if classes is None else np.isin(labels, classes)
    indices = np.flatnonzero(keep)
    if limit_per_class is None:
        return indices
    order = np.random.default_rng(seed).permutation(indices)
    rank_in_class = _rank_within_groups(labels[order])
    return np.sort(order[rank_in_class < limit_per_class])


def _rank_within_groups(groups: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions share its group (vectorised)."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    run_lengths = np.diff(np.r_[starts, len(groups)])
    ranks_sorted = np.arange(len(groups)) - np.repeat(starts, run_lengths)
    ranks = np.empty(len(groups), np.int64)
    ranks[order] = ranks_sorted
    return ranks


def positions_on(device: torch.device, positions) -> torch.Tensor:
    """Batch positions as an index tensor on `device`. To a GPU they go through pinned
    memory with a non-blocking copy: cutting a batch from a resident set never waits for it."""
    index = torch.as_tensor(positions)
    if device.type == "cuda":
        return index.pin_memory().to(device, non_blocking=True)
    return index.to(device)


def _materialise(array, indices: np.ndarray) -> torch.Tensor:
    """Records `indices` of a (lazy) array as a tensor, reading only those records."""
    return torch.from_numpy(np.ascontiguousarray(array[indices]))


class _SubsetStore:
    """The selected records of one field, in RAM when small enough, else read per batch."""

    def __init__(self, array, indices: np.ndarray):
        record_bytes = int(np.prod(array.shape[1:])) * np.dtype(array.dtype).itemsize
        self.in_memory = record_bytes * len(indices) <= IN_MEMORY_LIMIT_BYTES
        self.array, self.indices = array, indices
        self.data = _materialise(array, indices) if self.in_memory else None

    def nbytes(self) -> int:
        """Bytes of the selected records (uint8 for spectrograms and images)."""
        record_bytes = int(np.prod(self.array.shape[1:])) * np.dtype(self.array.dtype).itemsize
        return record_bytes * len(self.indices)

    def to_device(self, device) -> None:
        """Hold the selected records on `device` (e.g. the GPU); batches are then cut there."""
        data = self.data if self.in_memory else _materialise(self.array, self.indices)
        self.data, self.in_memory = data.to(device), True

    def __getitem__(self, positions: np.ndarray) -> torch.Tensor:
        if self.in_memory:
            return self.data[positions_on(self.data.device, positions)]
        order = np.argsort(positions)  # read the file forwards, then restore batch order
        batch = _materialise(self.array, self.indices[positions[order]])
        return batch[torch.as_tensor(np.argsort(order))]


def _check_field(records: RecordSet, name: str):
    array = getattr(records, name)
    if array is None:
        raise S2IError(f"{records.paths[0] if records.paths else records.layout}: no {name} here")
    return array


class SpectrogramDataset(Dataset):
    """Spectrograms of one split as (1, 128, 100) floats in [-1, 1], with 0-based labels.

    classes: keep only these class indices; limit_per_class: at most this many records of
    each class (a seeded random draw, for quick runs).
    """

    def __init__(self, records: RecordSet, classes=None, limit_per_class=None, seed: int = 0):
        self.records = records
        self.indices = select_indices(records.labels, classes, limit_per_class, seed)
        missing = sorted(
            set(classes or ()) - set(np.asarray(records.labels)[self.indices].tolist())
        )
        if missing:
            present = sorted(set(np.asarray(records.labels).tolist()))
            raise S2IError(
                f"{records.split}: no training items of classes {missing} (0-based; this split "
                f"has classes {present[0]}..{present[-1]})"
            )
        self.labels = torch.as_tensor(records.labels[self.indices], dtype=torch.long)
        self.spectrograms = _SubsetStore(_check_field(records, "spectrograms"), self.indices)
        self.inputs: torch.Tensor | None = None

    def clips(self, positions):
        """The clips at these positions (a lazy datasets.sounds.Rows: decoded on indexing,
        named by their files' sha256 through `keys()`)."""
        from s2ilib.datasets.sounds import Rows

        return Rows(self._audio(), self.indices[np.asarray(positions, np.int64)])

    def _audio(self):
        if self.records.audio is None:
            where = self.records.paths[0] if self.records.paths else self.records.layout
            raise S2IError(
                f"{where}: this data set ships no audio (its {self.records.split} sounds are "
                "spectrograms only), and the encoder's front reads the audio: train one with "
                "front_input 'spectrogram', or use an AV-Digits-layout folder"
            )
        return self.records.audio

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Nothing changes from epoch to epoch (PairedDataset redraws its class pairing)."""

    def nbytes(self) -> int:
        """Bytes of the uint8 spectrograms this set serves."""
        return self.spectrograms.nbytes()

    def to_device(self, device) -> None:
        """Hold the uint8 spectrograms and labels on `device`: batches are indexed and scaled
        to [-1, 1] there (the training fast path's resident data set)."""
        self.spectrograms.to_device(device)
        self.labels = self.labels.to(device)
        if self.inputs is not None:
            self.inputs = self.inputs.to(device)

    def use_inputs(self, inputs: torch.Tensor | None) -> None:
        """Serve `inputs` (one row per sound, in this set's order: the frozen speech front's features,
        computed once) as a third part of every batch, beside the spectrograms (which stay:
        the autoencoder reconstructs them); None stops."""
        if inputs is not None and len(inputs) != len(self):
            raise S2IError(
                f"encoder inputs: {len(inputs)} rows for {len(self)} sounds of the "
                f"{self.records.split} split"
            )
        self.inputs = None if inputs is None else inputs.detach().to(self.labels.device)

    def __getitems__(self, positions) -> tuple[torch.Tensor, ...]:
        positions = np.asarray(positions, dtype=np.int64)
        spectrograms = to_unit_range(self.spectrograms[positions]).unsqueeze(1)
        index = positions_on(self.labels.device, positions)
        if self.inputs is None:
            return spectrograms, self.labels[index]
        return spectrograms, self.labels[index], self.inputs[index]

    def __getitem__(self, position: int):
        return tuple(part[0] for part in self.__getitems__([position]))


def resize_images(images_uint8: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 (B, H, W, C) with C in {1, 3} -> float (B, 3, S, S) in [-1, 1]."""
    images = to_unit_range(images_uint8).permute(0, 3, 1, 2)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[-2:] != (image_size, image_size):
        images = F.interpolate(
            images, size=(image_size, image_size), mode="bilinear", antialias=True
        ).clamp_(-1, 1)
    return images.contiguous()


class PairedDataset(Dataset):
    """(spectrogram, image, label) triples of one split for the sound-to-image stage.

    With record pairing (VEGAS-style) a sound comes with its own frame. With class pairing
    (AV-Digits, as AV-MNIST) each sound is paired with a random image of its class from the
    split's image pool, drawn afresh each epoch (`set_epoch`), deterministic given the seed.
    Images are resized to `image_size` and expanded to 3 channels. A stage whose sounds are
    fixed (a frozen encoder, no augmentation) may serve their embeddings in place of the
    spectrograms (`use_sound_features`).
    """

    def __init__(
        self,
        data: DataSet,
        split: str,
        image_size: int,
        classes=None,
        limit_per_class=None,
        seed: int = 0,
    ):
        self.sounds = SpectrogramDataset(data.split(split), classes, limit_per_class, seed)
        self.pairing, self.image_size, self.seed = data.pairing, image_size, seed
        self.sound_features: torch.Tensor | None = None
        pool = data.image_pool(split)
        if data.pairing == "record":
            self.images = _SubsetStore(_check_field(pool, "images"), self.sounds.indices)
        else:
            self._init_class_pool(pool)
        self.set_epoch(0)

    def _init_class_pool(self, pool: RecordSet) -> None:
        order = np.argsort(pool.labels, kind="stable")
        self.images = _SubsetStore(_check_field(pool, "images"), order)
        sorted_labels = pool.labels[order]
        num_classes = int(max(sorted_labels.max(), self.sounds.labels.max())) + 1
        self.pool_start = np.searchsorted(sorted_labels, np.arange(num_classes))
        self.pool_count = np.bincount(sorted_labels, minlength=num_classes)
        missing = set(self.sounds.labels.tolist()) - set(np.flatnonzero(self.pool_count).tolist())
        if missing:
            raise S2IError(f"image pool has no images of classes {sorted(missing)}")

    def set_epoch(self, epoch: int) -> None:
        """Redraw the class pairing for `epoch` (no effect with record pairing)."""
        if self.pairing != "class":
            self.image_positions = np.arange(len(self.sounds))
            return
        labels = self.sounds.labels.numpy()
        uniform = np.random.default_rng((self.seed, epoch)).random(len(labels))
        offsets = (uniform * self.pool_count[labels]).astype(np.int64)
        self.image_positions = self.pool_start[labels] + offsets

    def __len__(self) -> int:
        return len(self.sounds)

    def nbytes(self) -> int:
        """Bytes of the uint8 spectrograms and images this set serves."""
        return self.sounds.nbytes() + self.images.nbytes()

    def to_device(self, device) -> None:
        """Hold the uint8 spectrograms, images and labels on `device` (see SpectrogramDataset)."""
        self.sounds.to_device(device)
        self.images.to_device(device)
        if self.sound_features is not None:
            self.sound_features = self.sound_features.to(device)

    def image_count(self) -> int:
        """Images this set pairs its sounds with (the `images` store's records)."""
        return len(self.images.indices)

    def paired_image_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """For each sound, the range (first, count) of the `images` store it may be paired
        with: its own frame (record pairing) or every image of its class (class pairing)."""
        if self.pairing != "class":
            return np.arange(len(self.sounds)), np.ones(len(self.sounds), np.int64)
        labels = self.sounds.labels.cpu().numpy()
        return self.pool_start[labels], self.pool_count[labels]

    def use_sound_features(self, features: torch.Tensor | None) -> None:
        """Serve `features` (one row per sound, in this set's order: a frozen encoder's
        embeddings) in place of the spectrograms; None serves the spectrograms again. They
        are kept where the labels are (the device when the set is resident, else the CPU,
        where DataLoader workers can read them)."""
        if features is not None and len(features) != len(self.sounds):
            raise S2IError(
                f"sound features: {len(features)} rows for {len(self.sounds)} sounds of the "
                f"{self.sounds.records.split} split"
            )
        if features is not None:
            features = features.detach().to(self.sounds.labels.device)
        self.sound_features = features

    def __getitems__(self, positions):
        positions = np.asarray(positions, dtype=np.int64)
        if self.sound_features is None:
            sounds, labels = self.sounds.__getitems__(positions)
        else:
            index = positions_on(self.sound_features.device, positions)
            sounds, labels = self.sound_features[index], self.sounds.labels[index]
        images = resize_images(self.images[self.image_positions[positions]], self.image_size)
        return sounds, images, labels

    def __getitem__(self, position: int):
        return tuple(part[0] for part in self.__getitems__([position]))
