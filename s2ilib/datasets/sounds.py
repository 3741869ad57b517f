"""Which sounds to translate: a split of a data set (filtered by voice, language, engine),
a folder of the user's own recordings with a labels CSV, or a few examples per class."""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2ilib.errors import S2IError
from s2ilib.formats import RecordSet

# AV-Digits columns kept for filters and breakdowns ("voice_group" is derived: voice_groups)
METADATA_COLUMNS = ("voice_group", "language", "engine", "voice", "kind", "sex", "speaker")
HUMAN, SYNTHETIC, HELD_OUT_ENGINE = "human speakers", "unseen synthetic voices", "held-out engine"


@dataclass
class SoundSet:
    """The sounds to translate: uint8 spectrograms (N, 128, 100), labels and metadata."""

    names: np.ndarray
    labels: np.ndarray
    spectrograms: Any
    extra: dict = field(default_factory=dict)
    frames: Any = None  # uint8 (N, H, W, C) own frames (record pairing) or None
    source: str = ""
    notes: list = field(default_factory=list)  # what is doubtful about the input (warnings)
    audio: Any = None  # float32 (N, samples): the 1-s clips, where known (RecordSet.audio)

    def __len__(self) -> int:
        return len(self.labels)


class Rows:
    """Rows `indices` of a (lazy) array, read on indexing."""

    def __init__(self, array, indices: np.ndarray):
        self.array, self.indices = array, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.array[self.indices[key]])

    def keys(self) -> np.ndarray | None:
        """The rows' names where the array names its records (AV-Digits' clips by their
        files' sha256: datasets.avdigits.ClipWaves.keys), else None."""
        names = self.array.keys() if hasattr(self.array, "keys") else None
        return None if names is None else names[self.indices]


def clips_of(records: RecordSet, indices=None):
    """The clips of a record set's sounds (all, or those at `indices`), lazy and named by
    their files (Rows over RecordSet.audio: an encoder that reads the audio finds their
    features without decoding them), or None where the data set ships no clips."""
    if records.audio is None:
        return None
    return records.audio if indices is None else Rows(records.audio, np.asarray(indices))


def select_sounds(data, split: str = "test", voices=None, languages=None, engines=None) -> SoundSet:
    """The sounds of `split`, keeping only the given voices/languages/engines (AV-Digits)."""
    records = data.split(split)
    keep = np.ones(len(records), bool)
    for column, wanted in (("voice", voices), ("language", languages), ("engine", engines)):
        if wanted:
            keep &= _matching(data, records, split, column, wanted)
    indices = np.flatnonzero(keep)
    frames = records.images if data.pairing == "record" else None
    columns = dict(records.extra)
    if "engine" in columns:
        columns["voice_group"] = voice_groups(data, records)
    extra = {
        name: np.asarray(column)[indices]
        for name, column in columns.items()
        if name in METADATA_COLUMNS
    }
    return SoundSet(
        names=np.asarray(records.names)[indices],
        labels=np.asarray(records.labels, np.int64)[indices],
        spectrograms=Rows(records.spectrograms, indices),
        extra=extra,
        frames=None if frames is None else Rows(frames, indices),
        source=f"{data.root} ({split})",
        audio=clips_of(records, indices),
    )


def voice_groups(data, records: RecordSet) -> np.ndarray:
    """Which kind of voice each sound is (AV-Digits): HUMAN (a recorded person), HELD_OUT_
    ENGINE (a speech engine the training split never has), or SYNTHETIC (another engine's
    voice; on val and test always a voice set-up training never heard)."""
    engines = np.asarray(records.extra["engine"]).astype(str)
    trained = set(np.asarray(data.split("train").extra["engine"]).astype(str).tolist())
    kinds = np.asarray(records.extra.get("kind", np.full(len(engines), "synthetic"))).astype(str)
    groups = np.where(np.isin(engines, list(trained)), SYNTHETIC, HELD_OUT_ENGINE)
    return np.where(kinds == "human", HUMAN, groups)


def _matching(data, records: RecordSet, split: str, column: str, wanted) -> np.ndarray:
    """Which records have one of the `wanted` values in metadata `column` (all must exist)."""
    if column not in records.extra:
        raise S2IError(f"{data.root}: sounds have no '{column}' column to filter on")
    values = np.asarray(records.extra[column]).astype(str)
    unknown = sorted(set(wanted) - set(values.tolist()))
    if unknown:
        raise S2IError(
            f"{data.root}: no {split} sounds with {column} {unknown} "
            f"(present: {', '.join(sorted(set(values.tolist())))})"
        )
    return np.isin(values, list(wanted))


def read_labels_csv(path, classes: list[str]) -> tuple[list[tuple], list[str]]:
    """(rows (line, file, class index, metadata), notes) of a labels CSV; UTF-8, with or
    without the byte-order mark spreadsheets write.

    The header is `file,label` (label = class name or 0-based index), optionally followed by
    metadata columns named in METADATA_COLUMNS (e.g. `file,label,language,engine`); each
    row's metadata is {column: value}, an empty value read as UNKNOWN_VALUE. Other columns
    are not read (a note names them). A row with more values than the header names, or
    with no cell for a metadata column, is refused with its line.

    A file listed twice with different labels (or metadata) is refused (which is meant
    cannot be guessed); listed again the same it is kept once, with a note: a repeated line
    (a copy-paste in a spreadsheet) means nothing else, and counting it twice would weigh
    that recording double in every metric.
    """
    path = Path(path)
    if not path.is_file():
        kind = "not a regular file" if path.exists() else "no such labels file"
        raise S2IError(f"{path}: {kind} (expected a CSV 'file,label')")
    rows = _csv_rows(path)
    if not rows or [cell.strip().lower() for cell in rows[0][1][:2]] != ["file", "label"]:
        first = rows[0][1] if rows else "nothing (an empty file)"
        raise S2IError(f"{path}: expected a header line 'file,label', found {first}")
    header = rows[0][1]
    columns, notes = _metadata_columns(path, header)
    parsed = []
    for line, row in rows[1:]:
        if any(cell.strip() for cell in row):
            parsed.append(_labels_row(path, line, row, classes, (header, columns)))
    kept, repeat_notes = _without_repeats(path, parsed, classes)
    return kept, notes + repeat_notes


UNKNOWN_VALUE = "unknown"  # an empty metadata cell of a labels CSV
MAX_METADATA_CHARS = 64  # longer is a shifted column or a sentence, not a language or voice


def _metadata_columns(path: Path, header: list[str]) -> tuple[dict[str, int], list[str]]:
    """({metadata column: its position}, notes) of a labels CSV's header after `file,label`;
    a metadata column named twice is refused, other names are noted as not read."""
    columns, ignored = {}, []
    for position, cell in enumerate(header[2:], start=2):
        name = cell.strip().lower()
        if name in columns:
            raise S2IError(
                f"{path}, line 1: column {name!r} is named twice (columns "
                f"{columns[name] + 1} and {position + 1}); keep one"
            )
        if name in METADATA_COLUMNS:
            columns[name] = position
        elif name:
            ignored.append(cell.strip())
    notes = []
    if ignored:
        notes.append(
            f"{path}: column(s) {', '.join(map(repr, ignored))} not read (read beside "
            f"file,label: {', '.join(METADATA_COLUMNS)})"
        )
    return columns, notes


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line where it starts, cells) of each row of a CSV file decoded as UTF-8 (a leading
    byte-order mark dropped); a quoted cell may span lines, so rows and lines can differ."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise S2IError(
            f"{path}, line {line} (byte {error.start}): byte 0x{data[error.start]:02x} is not "
            "UTF-8 text; save it as UTF-8 (in a spreadsheet: 'CSV UTF-8')"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, last_line = [], 0
    try:
        for row in reader:
            rows.append((last_line + 1, row))
            last_line = reader.line_num
    except csv.Error as error:
        raise S2IError(f"{path}, line {reader.line_num}: not a readable CSV ({error})") from None
    return rows


def _labels_row(path: Path, line: int, row: list[str], classes: list[str], layout) -> tuple:
    """(line, file, class index, metadata) of one row of a labels CSV, or S2IError naming
    the line. layout: (the header's cells, {metadata column: position})."""
    header, columns = layout
    if len(row) < 2 or not row[0].strip():
        raise S2IError(f"{path}, line {line}: expected 'file,label', got {row}")
    file_name, label = row[0].strip(), row[1].strip()
    index = {name.lower(): i for i, name in enumerate(classes)}.get(label.lower())
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses
    if index is None and re.fullmatch("[0-9]+", label) and int(label) < len(classes):
        index = int(label)
    if index is None:
        raise S2IError(
            f"{path}, line {line}: label {label!r} is not a class "
            f"(expected one of {classes} or an index 0..{len(classes) - 1})"
        )
    return line, file_name, index, _metadata_of_row(path, line, row, header, columns)


def _metadata_of_row(path: Path, line: int, row: list[str], header, columns) -> dict[str, str]:
    """{column: value} of one labels CSV row (empty: UNKNOWN_VALUE), checked: no values
    beyond the header's columns, a cell for every metadata column, printable short names."""
    names = ",".join(cell.strip() for cell in header)
    if any(cell.strip() for cell in row[len(header) :]):
        raise S2IError(
            f"{path}, line {line}: {len(row)} values, the header names {len(header)} "
            f"({names}); is a value shifted by a stray comma?"
        )
    metadata = {}
    for column, position in columns.items():
        if position >= len(row):
            raise S2IError(
                f"{path}, line {line}: no {column} value ({len(row)} values, the header names "
                f"{len(header)}: {names}); leave the cell empty for {UNKNOWN_VALUE!r}"
            )
        value = row[position].strip()
        if not value.isprintable():
            raise S2IError(
                f"{path}, line {line}: {column} {value!r} holds a line break, tab or other "
                "control character; expected a name such as 'en'"
            )
        if len(value) > MAX_METADATA_CHARS:
            raise S2IError(
                f"{path}, line {line}: {column} {value[:20]!r}... is {len(value)} characters "
                f"long (at most {MAX_METADATA_CHARS}: a name such as 'en', not a sentence)"
            )
        metadata[column] = value or UNKNOWN_VALUE
    return metadata


def _without_repeats(path: Path, rows: list[tuple], classes) -> tuple[list[tuple], list[str]]:
    """Rows with each file once, and a note per file listed again as it was; a file listed
    with two labels, or two values of a metadata column, is refused, naming both lines."""
    first: dict[str, tuple] = {}
    repeats: dict[str, list[int]] = {}
    for row in rows:
        line, file_name, index, metadata = row
        key = os.path.normpath(file_name)
        if key not in first:
            first[key] = row
            continue
        first_line, _, first_index, first_metadata = first[key]
        if first_index != index:
            raise S2IError(
                f"{path}: {file_name} is listed with two labels, {classes[first_index]!r} on "
                f"line {first_line} and {classes[index]!r} on line {line}; keep one line "
                "per file"
            )
        for column, value in metadata.items():
            if first_metadata[column] != value:
                raise S2IError(
                    f"{path}: {file_name} is listed with two values of {column}, "
                    f"{first_metadata[column]!r} on line {first_line} and {value!r} on line "
                    f"{line}; keep one line per file"
                )
        repeats.setdefault(key, [first_line]).append(line)
    notes = [
        f"{path}: {first[key][1]} is listed {len(lines)} times with the same label (lines "
        f"{', '.join(map(str, lines))}); scored once"
        for key, lines in repeats.items()
    ]
    return list(first.values()), notes


def clip_mode_for(data_root, mode: str = "auto") -> str:
    """How to make one second of a user's recording for a model trained on `data_root`:
    `mode` itself unless it is "auto"; then "word" for AV-Digits (its clips are words trimmed
    of silence, at a set level, centred: s2ilib.audio.fit_word_clip), else "loudest"."""
    from s2ilib.datasets.avdigits import is_avdigits

    if mode != "auto":
        return mode
    return "word" if is_avdigits(data_root) else "loudest"


def front_for(data_root, front: str = "auto") -> str:
    """The audio encoder's input network (models.config.AUDIO_FRONTS) for a model of
    `data_root`: `front` itself unless it is "auto"; then "whisper" for AV-Digits (spoken
    words in 36 languages, its clips shipped: Whisper-base's multilingual encoder reads
    them, s2ilib.models.whisper; it imagines more of every voice group than the speech
    front, RESULTS.md "Features from the audio"), else "conv" (the paper's input network:
    the pretrained fronts know speech, and published spectrograms such as VEGAS's come from
    another front end)."""
    from s2ilib.datasets.avdigits import is_avdigits

    if front != "auto":
        return front
    return "whisper" if is_avdigits(data_root) else "conv"


def sounds_from_audio_dir(
    audio_dir, labels_csv, classes: list[str], mode: str = "loudest"
) -> tuple[SoundSet, list[dict]]:
    """Spectrograms of the files a labels CSV lists, through the project's audio front end
    (`mode`: how one second is made of each, s2ilib.audio.CLIP_MODES).

    Files that are missing or that the front end rejects are skipped and reported as
    {"file", "line", "reason"}; the returned SoundSet holds the others, and in `notes` the
    files listed twice and the audio files of the folder the CSV does not list.
    """
    from s2ilib.audio import load_clips

    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        kind = "not a folder" if audio_dir.exists() else "no such folder"
        raise S2IError(f"--audio-dir {audio_dir}: {kind}")
    listed, notes = read_labels_csv(labels_csv, classes)
    if not listed:
        raise S2IError(
            f"{labels_csv}: lists no files (expected lines 'file,label' below its header)"
        )
    paths = [audio_dir / file_name for _, file_name, _, _ in listed]
    notes += unlisted_audio_note(audio_dir, paths, labels_csv)
    spectrograms, readable, failures, _, waves = load_clips(paths, mode=mode)
    read = {str(path) for path in readable}
    kept = [row for row, path in zip(listed, paths, strict=True) if str(path) in read]
    skipped = [
        {"file": str(path), "line": line, "reason": failures.get(str(path), "no such file")}
        for (line, _, _, _), path in zip(listed, paths, strict=True)
        if str(path) not in read
    ]
    if not kept:
        example = f" (line {skipped[0]['line']}: {skipped[0]['reason']})" if skipped else ""
        raise S2IError(
            f"{labels_csv}: none of the {len(skipped)} listed audio files could be read{example}"
        )
    sounds = SoundSet(
        names=np.array([file_name for _, file_name, _, _ in kept]),
        labels=np.array([label for _, _, label, _ in kept], np.int64),
        spectrograms=spectrograms,
        extra={  # the CSV's metadata columns, for the evaluation's breakdowns
            column: np.array([metadata[column] for *_, metadata in kept]) for column in kept[0][3]
        },
        source=f"{audio_dir} ({mode} clips)",
        notes=notes,
        audio=waves,
    )
    return sounds, skipped


# Suffixes of recordings a user may keep beside the labels CSV (readable or not: an unlisted
# .m4a is as much worth a note as an unlisted .wav).
AUDIO_SUFFIXES = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .aif .aiff .aifc .au .snd .caf .w64 .m4a .aac "
    ".wma".split()
)
NAMES_SHOWN = 10  # unlisted files named in the note; the rest are counted


def unlisted_audio_note(audio_dir: Path, listed_paths, labels_csv) -> list[str]:
    """[one note] naming the audio files in `audio_dir` (and below) the CSV does not list,
    or [] when it lists them all."""
    listed = {os.path.normpath(path) for path in listed_paths}
    unlisted = sorted(
        str(path.relative_to(audio_dir))
        for path in audio_dir.rglob("*")
        if path.suffix.lower() in AUDIO_SUFFIXES
        and path.is_file()
        and os.path.normpath(path) not in listed
    )
    if not unlisted:
        return []
    shown = ", ".join(unlisted[:NAMES_SHOWN])
    more = f", ... ({len(unlisted) - NAMES_SHOWN} more)" if len(unlisted) > NAMES_SHOWN else ""
    csv_name = Path(labels_csv).name
    if len(unlisted) == 1:
        return [f"1 audio file in {audio_dir} is not in {csv_name} and was not scored: {shown}"]
    return [
        f"{len(unlisted)} audio files in {audio_dir} are not in {csv_name} and were not "
        f"scored: {shown}{more}"
    ]


def examples_per_class(records, per_class: int = 1, seed: int = 0) -> np.ndarray:
    """Indices of `per_class` random records of each class, class by class."""
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(records.labels):
        members = np.flatnonzero(records.labels == label)
        picks.extend(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.asarray(picks, np.int64)


def examples_by_voice_kind(records, count: int = 6, seed: int = 0) -> np.ndarray:
    """Indices of `count` records to listen to: half human recordings (where there are any),
    the rest synthetic voices of as many languages as possible, each a random digit."""
    rng = np.random.default_rng(seed)
    kinds = np.asarray(records.extra.get("kind", np.full(len(records), "synthetic"))).astype(str)
    humans = rng.permutation(np.flatnonzero(kinds == "human"))[: count // 2]
    languages = np.asarray(records.extra.get("language", np.full(len(records), ""))).astype(str)
    synthetic = rng.permutation(np.flatnonzero(kinds != "human"))
    _, first_of_language = np.unique(languages[synthetic], return_index=True)
    varied = synthetic[rng.permutation(first_of_language)]  # one per language, random order
    return np.concatenate([humans, varied[: count - len(humans)]]).astype(np.int64)


def clips_per_engine_and_language(data, seed: int = 0) -> list[dict]:
    """One clip of each (engine, language) pair of a data set's sounds, all splits together
    (AV-Digits): a random one of the pair's clips (`seed`), sorted by engine, then language.

    Returns [{"engine", "language", "voice", "word", "file", "split", "label"}] (`word`: the
    word as the voice says it, `label`: its class index); `file` is the clip's
    listenable file relative to the data set's root (datasets.avdigits.audio_path).
    """
    needed = ("engine", "language", "voice", "word", "file")
    columns = {name: [] for name in (*needed, "split", "label")}
    for split, records in data.sounds.items():
        missing = [name for name in needed if name not in records.extra]
        if missing:
            raise S2IError(
                f"{data.root}: the {split} sounds have no {', '.join(missing)} column (AV-Digits "
                "has them: its manifest.csv)"
            )
        for name in needed:
            columns[name].append(np.asarray(records.extra[name]).astype(str))
        columns["split"].append(np.full(len(records), split))
        columns["label"].append(np.asarray(records.labels, np.int64))
    every = {name: np.concatenate(parts) for name, parts in columns.items()}
    rng = np.random.default_rng(seed)
    picks = []
    for engine, language in sorted(set(zip(every["engine"], every["language"], strict=True))):
        members = np.flatnonzero((every["engine"] == engine) & (every["language"] == language))
        chosen = members[rng.integers(len(members))]
        picks.append({name: every[name][chosen].item() for name in every})
    return picks


def speakers_by_split(data) -> dict[str, list[str]]:
    """The human speakers (manifest `speaker` of `kind` human) in each split, sorted."""
    result = {}
    for split, records in data.sounds.items():
        kinds = np.asarray(records.extra.get("kind", np.full(len(records), ""))).astype(str)
        speakers = np.asarray(records.extra.get("speaker", np.full(len(records), "")))
        result[split] = sorted(set(speakers[kinds == "human"].astype(str).tolist()))
    return result
