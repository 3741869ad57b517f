"""The real VEGAS spectrograms (DATA.md section 2): unpack the shared tars once, find them after.

The tars (`train.tar`, `val.tar`) hold the published 1-s log-mel JPEGs of the five classes
(CC BY 4.0, s2i_data by L. A. Fanzeres and C. Nadeu, built on VEGAS, Zhou et al. CVPR 2018).
They are never committed: `unpack_vegas` extracts them into a git-ignored cache, and
everything that uses them finds that folder through a parameter or `S2I_VEGAS_DIR`.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

from tqdm.auto import tqdm

from s2ilib.errors import S2IError

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the shared tars live next to a checkout; override with S2I_VEGAS_TARS.
DEFAULT_TAR_DIR = REPO_ROOT.parent / "shared" / "data" / "vegas_spectrograms"
# Where they are unpacked (git-ignored); override with S2I_VEGAS_DIR.
DEFAULT_UNPACK_DIR = REPO_ROOT / "cache" / "vegas_spectrograms"
EXPECTED_COUNTS = {"train": 49_435, "val": 5_635}


def tar_dir() -> Path:
    """The folder holding train.tar and val.tar (S2I_VEGAS_TARS, else ../shared/...)."""
    return Path(os.environ.get("S2I_VEGAS_TARS", DEFAULT_TAR_DIR))


def unpack_dir() -> Path:
    """The folder the spectrograms are (to be) unpacked into (S2I_VEGAS_DIR, else cache/)."""
    return Path(os.environ.get("S2I_VEGAS_DIR", DEFAULT_UNPACK_DIR))


def count_jpegs(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*.jpg")) if folder.is_dir() else 0


def verify_vegas(root: Path, splits=tuple(EXPECTED_COUNTS)) -> dict[str, int]:
    """Counts per split; raises S2IError when a split is missing or its count is wrong."""
    counts = {split: count_jpegs(Path(root) / split) for split in splits}
    wrong = {s: n for s, n in counts.items() if n != EXPECTED_COUNTS[s]}
    if wrong:
        detail = ", ".join(
            f"{s}: {n} files, expected {EXPECTED_COUNTS[s]}" for s, n in wrong.items()
        )
        raise S2IError(f"{root}: incomplete VEGAS spectrograms ({detail}); run `s2i vegas`")
    return counts


def find_vegas(path=None) -> Path | None:
    """The unpacked VEGAS folder (`path`, else S2I_VEGAS_DIR, else the cache), or None."""
    candidate = Path(path) if path else unpack_dir()
    return candidate if (candidate / "train").is_dir() or (candidate / "val").is_dir() else None


def require_vegas(path=None) -> Path:
    """Like `find_vegas`, but a clear error saying how to get the data when it is absent."""
    found = find_vegas(path)
    if found is None:
        raise S2IError(
            f"VEGAS spectrograms not found at {path or unpack_dir()}: run `s2i vegas` "
            f"(unpacks {tar_dir()}) or set S2I_VEGAS_DIR to an unpacked folder"
        )
    return found


def unpack_vegas(tars=None, out=None, splits=tuple(EXPECTED_COUNTS), force=False) -> dict:
    """Extract `<split>.tar` into `out/<split>/` and verify the file counts.

    A split already present with the right count is left alone (so re-running is cheap);
    a partial one (an interrupted earlier run) is extracted again. Returns counts per split.
    """
    tars, out = Path(tars or tar_dir()), Path(out or unpack_dir())
    for split in splits:
        tar_path = tars / f"{split}.tar"
        if not tar_path.is_file():
            raise S2IError(f"{tar_path}: not found (set S2I_VEGAS_TARS or pass --tars)")
        done = count_jpegs(out / split) == EXPECTED_COUNTS[split]
        if force or not done:
            _extract_split(tar_path, out, split)
    return verify_vegas(out, splits)


def _extract_split(tar_path: Path, out: Path, split: str) -> None:
    """Extract into a temporary sibling folder, then rename, so a kill leaves no half split."""
    staging = out / f".{split}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(tar_path) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(".jpg")]
        for member in tqdm(members, desc=f"unpack {split}", unit="file", mininterval=1):
            member.name = Path(member.name).name  # flatten: <split>/x.jpg -> x.jpg
            archive.extract(member, staging, filter="data")
    shutil.rmtree(out / split, ignore_errors=True)
    staging.rename(out / split)
