"""Data sets as the method sees them: sounds (spectrograms) and the images they pair with.

`open_dataset(path)` opens any supported data set (a published s2i_data layout, a folder
written by `s2i ingest`, the unpacked VEGAS spectrograms, or AV-Digits) as a `DataSet`.
Torch-free; the torch `Dataset`s live in `s2ilib.datasets.torch_data`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from s2ilib.errors import S2IError
from s2ilib.formats import RecordSet

# Class names of the published VEGAS subset (METHOD.md), 0-based index = file class - 1.
VEGAS_CLASSES = ["Baby cry", "Dog", "Rail transport", "Fireworks", "Water flowing"]


@dataclass
class DataSet:
    """Sounds by split, and the images they translate to.

    pairing:
      "record": each sound has its own frame (`sounds[split].images`), as in VEGAS/s2i_data;
      "class":  any image of class k pairs with any sound of class k (AV-Digits, as
                AV-MNIST); the images are a separate pool, `images[split]`;
      "none":   sounds only (e.g. the published VEGAS spectrograms without frames).
    """

    root: Path
    kind: str  # "avdigits" or a formats layout name
    classes: list[str]
    sounds: dict[str, RecordSet]
    images: dict[str, RecordSet] = field(default_factory=dict)
    pairing: str = "none"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> RecordSet:
        """The sounds of one split, with a clear error when the data set lacks it."""
        if name not in self.sounds:
            raise S2IError(
                f"{self.root}: no '{name}' split (this data set has: {', '.join(self.sounds)})"
            )
        return self.sounds[name]

    def image_pool(self, name: str) -> RecordSet:
        """The images sounds of split `name` translate to (paired frames or the class pool)."""
        if self.pairing == "class":
            return self.images[name]
        if self.pairing == "record":
            return self.sounds[name]
        raise S2IError(f"{self.root}: this data set has sounds only, no images to translate to")


def open_dataset(path, layout: str | None = None, embedding_dim: int | None = None) -> DataSet:
    """Open the data set at `path`; `layout` forces a formats layout instead of inferring it."""
    path = Path(path)
    if not path.exists():
        raise S2IError(f"{path}: no such file or folder")
    from s2ilib.datasets import avdigits  # imported here: it pulls in the audio front end
    from s2ilib.formats import open_records

    if layout in (None, "avdigits") and avdigits.is_avdigits(path):
        sounds, images = avdigits.open_avdigits(path)
        return DataSet(path, "avdigits", list(avdigits.CLASSES), sounds, images, "class")
    sounds = open_records(path, layout=layout, embedding_dim=embedding_dim)
    if not sounds:
        raise S2IError(f"{path}: no records found")
    first = next(iter(sounds.values()))
    pairing = "record" if first.images is not None else "none"
    return DataSet(path, first.layout, _class_names(path, sounds), sounds, {}, pairing)


def _class_names(path: Path, sounds: dict[str, RecordSet]) -> list[str]:
    """Names from `classes.json` (written by `s2i ingest`), else the VEGAS names when 5 classes."""
    for folder in (path, *path.parents[:2]):
        classes_file = folder / "classes.json"
        if classes_file.is_file():
            mapping = json.loads(classes_file.read_text())
            return [mapping[str(i)] for i in range(len(mapping))]
    num_classes = int(max(int(np.max(r.labels, initial=-1)) for r in sounds.values())) + 1
    if num_classes <= len(VEGAS_CLASSES):
        return list(VEGAS_CLASSES)
    return [f"class {i + 1}" for i in range(num_classes)]
