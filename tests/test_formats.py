"""The published s2i_data layouts: round trips, inference, corrupt files, lazy arrays, real data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import write_raw_spec_image_bin
from PIL import Image

from s2ilib import formats
from s2ilib.errors import FormatError
from s2ilib.formats import ConcatArray

# --------------------------------------------------------------------------------------
# names and labels


def test_name_round_trip():
    name = formats.format_name(2, 42, 7)
    assert name == "c003_s00042_w007"
    assert formats.parse_name(name) == (2, 42, 7)
    assert formats.name_to_label(name) == b"00300042007"
    assert formats.label_to_name(b"00300042007") == name


@pytest.mark.parametrize(
    "bad", ["c000_s00001_w001", "c01_s00001_w001", "x001_s00001_w001", "c001_s0000a_w001", ""]
)
def test_bad_names_raise(bad):
    with pytest.raises(FormatError, match="not a record name"):
        formats.parse_name(bad)


def test_vectorised_parse_matches_scalar(records):
    classes, sources, windows = formats.parse_names(records["names"])
    expected = np.array([formats.parse_name(n) for n in records["names"]])
    np.testing.assert_array_equal(np.stack([classes, sources, windows], axis=1), expected)
    with pytest.raises(FormatError, match="record 1"):
        formats.parse_names(["c001_s00001_w001", "c001-s00001_w001"])


def test_label_to_name_reads_the_class_and_keeps_other_ids():
    assert formats.label_to_name(b"0010000100x") == "0010000100x"  # an id kept as written
    for bad in (b"0x100001000", b"000_17722_0", b"004_1772\xe9_0", b"001234567890"):
        with pytest.raises(FormatError):
            formats.label_to_name(bad)


# --------------------------------------------------------------------------------------
# round trips


def test_audio_bin_round_trip_is_exact(tmp_path, records):
    formats.write_audio_bin(
        tmp_path / "val_batch_001.bin", records["labels"], records["spectrograms"]
    )
    opened = formats.open_records(tmp_path, layout="audio_bin")
    assert list(opened) == ["val"]
    val = opened["val"]
    np.testing.assert_array_equal(val.labels, records["labels"])
    np.testing.assert_array_equal(val.spectrograms[:], records["spectrograms"])
    assert val.images is None and val.embeddings is None
    # audio_bin keeps no source ids: names encode the position and parse back to the class
    np.testing.assert_array_equal(formats.parse_names(val.names)[0], records["labels"])
    assert len(set(val.names)) == len(val)


def test_spec_image_bin_round_trip_is_exact(tmp_path, records):
    path = formats.write_spec_image_bin(
        tmp_path / "test_batch_001.bin",
        records["names"],
        records["spectrograms"],
        records["images"],
    )
    assert path.stat().st_size == len(records["names"]) * (11 + 128 * 100 + 96 * 96 * 3)
    test = formats.open_records(path, layout="spec_image_bin")["test"]
    np.testing.assert_array_equal(test.names, records["names"])
    np.testing.assert_array_equal(test.labels, records["labels"])
    np.testing.assert_array_equal(test.spectrograms[:], records["spectrograms"])
    np.testing.assert_array_equal(test.images[:], records["images"])
    assert test.spectrograms[0].dtype == np.uint8 and type(test.images[:2]) is np.ndarray


def test_spec_image_bin_bytes_follow_the_published_layout(tmp_path, records):
    path = formats.write_spec_image_bin(
        tmp_path / "data_batch_001.bin",
        records["names"][:2],
        records["spectrograms"][:2],
        records["images"][:2],
    )
    raw = path.read_bytes()
    size = 11 + 12800 + 27648
    assert raw[size : size + 11] == formats.name_to_label(records["names"][1])
    assert raw[size + 11 : size + 11 + 12800] == records["spectrograms"][1].tobytes()
    assert raw[size + 11 + 12800 : 2 * size] == records["images"][1].tobytes()  # HWC RGB


def test_embedding_image_bin_round_trip_is_exact(tmp_path):
    data = (
        formats.smooth_records(7, embedding_dim=256) if hasattr(formats, "smooth_records") else None
    )
    from conftest import smooth_records

    data = smooth_records(7, embedding_dim=256)
    folder = tmp_path / "embeddings_256_to_images_demo"
    formats.write_embedding_image_bin(
        folder / "data_batch_001.bin", data["names"], data["embeddings"], data["images"]
    )
    train = formats.open_records(folder)["train"]
    assert train.layout == "embedding_image_bin" and train.embeddings.shape == (7, 256)
    np.testing.assert_array_equal(train.embeddings[:], data["embeddings"])
    np.testing.assert_array_equal(train.images[:], data["images"])
    raw = (folder / "data_batch_001.bin").read_bytes()
    assert np.frombuffer(raw[11 : 11 + 4 * 256], "<f4")[3] == data["embeddings"][0, 3]


def test_jpeg_tree_round_trip_is_close(tmp_path, records):
    formats.write_jpeg_tree(tmp_path, "train", records["names"], records["spectrograms"])
    first = tmp_path / "train" / f"{records['names'][0]}.jpg"
    with Image.open(first) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "L", (100, 128))
    train = formats.open_records(tmp_path)["train"]
    assert train.layout == "jpeg_tree" and train.images is None
    np.testing.assert_array_equal(train.names, np.sort(records["names"]))
    order = np.argsort(records["names"])
    decoded = train.spectrograms[:]
    assert decoded.shape == (23, 128, 100) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - records["spectrograms"][order]).mean() < 1.5


def test_paired_tree_round_trip_via_convert(tmp_path, records):
    source = tmp_path / "spectrograms_to_images"
    formats.write_spec_image_bin(
        source / "val_batch_001.bin", records["names"], records["spectrograms"], records["images"]
    )
    formats.convert(source, tmp_path / "tree", "jpeg_tree")
    assert sorted(p.name for p in (tmp_path / "tree").iterdir()) == ["frames", "spectrograms"]
    val = formats.open_records(tmp_path / "tree")["val"]
    assert val.layout == "jpeg_tree" and val.images.shape == (23, 96, 96, 3)
    np.testing.assert_array_equal(val.names, records["names"])
    assert np.abs(val.spectrograms[:].astype(int) - records["spectrograms"]).mean() < 1.5
    assert np.abs(val.images[:].astype(int) - records["images"]).mean() < 2.0
    # and back to .bin, two records per file
    formats.convert(tmp_path / "tree", tmp_path / "back", "spec_image_bin", records_per_file=10)
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == [
        f"val_batch_00{i}.bin" for i in (1, 2, 3)
    ]
    back = formats.open_records(tmp_path / "back")["val"]
    np.testing.assert_array_equal(back.names, records["names"])
    np.testing.assert_array_equal(back.images[:], val.images[:])


def test_convert_jpeg_tree_audio_bin_both_ways(tmp_path, records):
    formats.write_jpeg_tree(tmp_path / "src", "val", records["names"], records["spectrograms"])
    formats.convert(tmp_path / "src", tmp_path / "bins", "audio_bin", records_per_file=8)
    bins = formats.open_records(tmp_path / "bins")
    assert list(bins) == ["val"] and len(bins["val"].spectrograms.parts) == 3
    tree = formats.open_records(tmp_path / "src")["val"]
    np.testing.assert_array_equal(bins["val"].spectrograms[:], tree.spectrograms[:])
    np.testing.assert_array_equal(bins["val"].labels, tree.labels)
    formats.convert(tmp_path / "bins", tmp_path / "tree2", "jpeg_tree")
    again = formats.open_records(tmp_path / "tree2")["val"]
    np.testing.assert_array_equal(again.labels, tree.labels)
    assert np.abs(again.spectrograms[:].astype(int) - tree.spectrograms[:]).mean() < 1.5


def test_spec_image_bin_to_audio_bin(tmp_path, records):
    formats.write_spec_image_bin(
        tmp_path / "a" / "data_batch_001.bin",
        records["names"],
        records["spectrograms"],
        records["images"],
    )
    formats.convert(tmp_path / "a", tmp_path / "b", "audio_bin")
    train = formats.open_records(tmp_path / "b")["train"]
    np.testing.assert_array_equal(train.spectrograms[:], records["spectrograms"])
    np.testing.assert_array_equal(train.labels, records["labels"])


def test_convert_refuses_non_empty_destination_and_missing_content(tmp_path, records):
    formats.write_audio_bin(
        tmp_path / "a" / "data_batch_001.bin", records["labels"], records["spectrograms"]
    )
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(FormatError, match="not empty"):
        formats.convert(tmp_path / "a", tmp_path / "busy", "jpeg_tree")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    with pytest.raises(FormatError, match="have no images"):
        formats.convert(tmp_path / "a", tmp_path / "new", "spec_image_bin")
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    formats.convert(tmp_path / "a", tmp_path / "empty", "jpeg_tree")  # an empty folder is fine
    assert len(formats.open_records(tmp_path / "empty")["train"]) == 23


def test_writers_validate_shapes_and_dtypes(tmp_path, records):
    with pytest.raises(FormatError, match="expected uint8 of shape"):
        formats.write_audio_bin(
            tmp_path / "x.bin", records["labels"], records["spectrograms"].astype(np.float32)
        )
    with pytest.raises(FormatError, match="images"):
        formats.write_spec_image_bin(
            tmp_path / "x.bin", records["names"], records["spectrograms"], records["images"][:, :64]
        )
    with pytest.raises(FormatError, match="not a record name"):
        formats.write_spec_image_bin(
            tmp_path / "x.bin", ["bad"] * 23, records["spectrograms"], records["images"]
        )
    with pytest.raises(FormatError, match="float32"):
        formats.write_embedding_image_bin(
            tmp_path / "x.bin",
            records["names"],
            records["embeddings"].astype(np.float64),
            records["images"],
        )
    assert not list(tmp_path.iterdir())  # nothing half-written


# --------------------------------------------------------------------------------------
# layout inference


def _published_tree(root, records):
    n, s, i = records["names"], records["spectrograms"], records["images"]
    audio = root / "batches/audio/spectrograms_128x100"
    formats.write_audio_bin(audio / "data_batch_001.bin", records["labels"], s)
    formats.write_audio_bin(audio / "test_batch_001.bin", records["labels"][:5], s[:5])
    formats.write_spec_image_bin(
        root / "batches/audio_visual/spectrograms_to_images/data_batch_001.bin", n, s, i
    )
    emb = root / "batches/audio_visual/embeddings_128_to_images_ae512"
    formats.write_embedding_image_bin(emb / "val_batch_001.bin", n, records["embeddings"], i)
    formats.write_jpeg_tree(root / "spectrograms", "train", n[:4], s[:4])
    formats.write_jpeg_tree(root / "spectrograms", "val", n[4:6], s[4:6])


def test_layout_inferred_from_published_paths(tmp_path, records):
    _published_tree(tmp_path, records)
    expected = {
        "batches/audio/spectrograms_128x100": "audio_bin",
        "batches/audio/spectrograms_128x100/test_batch_001.bin": "audio_bin",
        "batches/audio_visual/spectrograms_to_images": "spec_image_bin",
        "batches/audio_visual/embeddings_128_to_images_ae512": "embedding_image_bin",
        "spectrograms": "jpeg_tree",
        "spectrograms/val": "jpeg_tree",
        ".": "jpeg_tree",  # a data root: its spectrograms/ sub-folder
    }
    for relative, layout in expected.items():
        assert formats.infer_layout(tmp_path / relative) == layout, relative
    audio = formats.open_records(tmp_path / "batches/audio/spectrograms_128x100")
    assert {k: len(v) for k, v in audio.items()} == {"train": 23, "test": 5}
    assert list(formats.open_records(tmp_path / "spectrograms/val")) == ["val"]
    assert {k: len(v) for k, v in formats.open_records(tmp_path).items()} == {"train": 4, "val": 2}
    assert formats.open_records(tmp_path, splits=["val"]).keys() == {"val"}


def test_layout_and_embedding_dim_inferred_from_content(tmp_path, records):
    formats.write_spec_image_bin(
        tmp_path / "a" / "data_batch_001.bin",
        records["names"],
        records["spectrograms"],
        records["images"],
    )
    formats.write_audio_bin(
        tmp_path / "b" / "data_batch_001.bin", records["labels"], records["spectrograms"]
    )
    formats.write_embedding_image_bin(
        tmp_path / "c" / "data_batch_001.bin",
        records["names"],
        records["embeddings"],
        records["images"],
    )
    assert [formats.infer_layout(tmp_path / x) for x in "abc"] == [
        "spec_image_bin",
        "audio_bin",
        "embedding_image_bin",
    ]
    assert formats.open_records(tmp_path / "c")["train"].embeddings.shape == (23, 128)
    jpg_only = tmp_path / "d"
    formats.write_jpeg_tree(tmp_path, "d", records["names"][:3], records["spectrograms"][:3])
    assert list(formats.open_records(jpg_only)) == ["train"]  # a folder not named like a split


def test_embedding_dim_argument_and_failure(tmp_path, records):
    path = tmp_path / "x" / "data_batch_001.bin"
    formats.write_embedding_image_bin(
        path, records["names"], records["embeddings"], records["images"]
    )
    assert (
        formats.open_records(path, "embedding_image_bin", embedding_dim=128)[
            "train"
        ].embeddings.shape[1]
        == 128
    )
    with pytest.raises(FormatError, match="whole number of records"):
        formats.open_records(path, "embedding_image_bin", embedding_dim=256)
    odd = tmp_path / "y" / "data_batch_001.bin"
    odd.parent.mkdir()
    odd.write_bytes(b"0" * (11 + 4 * 100 + 27648))
    with pytest.raises(FormatError, match="size fits no embedding width"):
        formats.open_records(odd, "embedding_image_bin")


# --------------------------------------------------------------------------------------
# corrupt and unknown input


def test_empty_file(tmp_path):
    path = tmp_path / "spectrograms_to_images" / "data_batch_001.bin"
    path.parent.mkdir()
    path.touch()
    with pytest.raises(FormatError, match="empty file") as error:
        formats.open_records(path)
    assert str(path) in str(error.value)


def test_truncated_file_names_whole_records_and_trailing_bytes(tmp_path, records):
    path = formats.write_spec_image_bin(
        tmp_path / "data_batch_001.bin",
        records["names"][:3],
        records["spectrograms"][:3],
        records["images"][:3],
    )
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size - 100)
    with pytest.raises(FormatError) as error:
        formats.open_records(path, layout="spec_image_bin")
    message = str(error.value)
    assert str(path) in message and "record 2" in message
    assert "2 whole records" in message and f"{40459 - 100} trailing bytes" in message


def test_bad_label_names_record(tmp_path, records):
    path = formats.write_spec_image_bin(
        tmp_path / "val_batch_001.bin", records["names"], records["spectrograms"], records["images"]
    )
    with open(path, "r+b") as file:
        file.seek(5 * 40459 + 1)
        file.write(b"x")
    pattern = r"record 5: label b'0x\d{9}' does not start with a class 001\.\.999"
    with pytest.raises(FormatError, match=pattern) as error:
        formats.open_records(path, layout="spec_image_bin")
    assert str(path) in str(error.value) and "11 ASCII bytes" in str(error.value)


def test_class_zero_label_is_rejected(tmp_path, records):
    path = formats.write_spec_image_bin(
        tmp_path / "val_batch_001.bin",
        records["names"][:2],
        records["spectrograms"][:2],
        records["images"][:2],
    )
    with open(path, "r+b") as file:
        file.seek(40459)
        file.write(b"000")
    with pytest.raises(FormatError, match="record 1"):
        formats.open_records(path, layout="spec_image_bin")


# --------------------------------------------------------------------------------------
# .bin labels: the class is the first three digits, the id after it may be spelled any way

DIGITS, SEPARATED, NEITHER = b"00417722000", b"004_17722_0", b"002ab-cd/e "
NUL_PADDED = b"005clip\0\0\0\0"  # a short id: numpy drops the trailing NULs from the name


def _label_file(tmp_path, records, labels, name="spectrograms_to_images/val_batch_001.bin"):
    count = len(labels)
    return write_raw_spec_image_bin(
        tmp_path / name, labels, records["spectrograms"][:count], records["images"][:count]
    )


@pytest.mark.parametrize(
    "label, name, source, window",
    [
        (DIGITS, "c004_s17722_w000", 17722, 0),
        (SEPARATED, "004_17722_0", 17722, 0),
        (b"004_1_12345", "004_1_12345", 1, 12345),
        (NEITHER, "002ab-cd/e ", -1, -1),
        (NUL_PADDED, "005clip", -1, -1),
    ],
)
def test_label_spellings_read_from_bin_bytes(tmp_path, records, label, name, source, window):
    path = _label_file(tmp_path, records, [DIGITS, label])
    val = formats.open_records(path)["val"]
    assert val.names.tolist() == ["c004_s17722_w000", name]
    assert val.labels.tolist() == [3, int(label[:3]) - 1]
    np.testing.assert_array_equal(val.images[:], records["images"][:2])
    classes, sources, windows = formats.parse_record_names(val.names, path)
    assert (classes.tolist(), sources[1], windows[1]) == (val.labels.tolist(), source, window)
    _, _, spellings = formats.label_ids(formats.names_to_labels(val.names))
    assert formats.label_id_counts(val.names)["as written"] == int(spellings[1] < 0)


def test_every_spelling_round_trips_to_the_same_bytes(tmp_path, records):
    labels = [DIGITS, SEPARATED, NEITHER, NUL_PADDED, b"00300042007"]
    path = _label_file(tmp_path, records, labels)
    val = formats.open_records(path)["val"]
    assert formats.names_to_labels(val.names).tobytes() == b"".join(labels)
    again = formats.write_spec_image_bin(
        tmp_path / "again" / "val_batch_001.bin", val.names, val.spectrograms, val.images
    )
    assert again.read_bytes() == path.read_bytes()
    formats.convert(path.parent, tmp_path / "converted", "spec_image_bin")
    assert (tmp_path / "converted" / "val_batch_001.bin").read_bytes() == path.read_bytes()
    assert [formats.name_to_label(n) for n in val.names] == labels


def test_embedding_bin_keeps_separated_ids(tmp_path, make_records):
    data = make_records(4, embedding_dim=128)
    labels = np.array([SEPARATED, b"001_17722_1", NEITHER, DIGITS], "S11")
    dtype = formats.record_dtype("embedding_image_bin", 128)
    raw = np.zeros(4, dtype)
    raw["label"], raw["embedding"], raw["image"] = labels, data["embeddings"], data["images"]
    path = tmp_path / "embeddings_128_to_images" / "test_batch_001.bin"
    path.parent.mkdir()
    path.write_bytes(raw.tobytes())
    test = formats.open_records(path.parent)["test"]
    assert test.names.tolist() == ["004_17722_0", "001_17722_1", "002ab-cd/e ", "c004_s17722_w000"]
    assert test.labels.tolist() == [3, 0, 1, 3]
    np.testing.assert_array_equal(test.embeddings[:], data["embeddings"])
    out = formats.export_npz(formats.open_records(path.parent), tmp_path / "all.npz")
    with np.load(out) as exported:
        np.testing.assert_array_equal(exported["names"], test.names)


@pytest.mark.parametrize(
    "bad, problem",
    [
        (b"0a4_17722_0", "does not start with a class 001..999"),
        (b"04_17722_00", "does not start with a class 001..999"),
        (b"000_17722_0", "does not start with a class 001..999"),
        (b"004_1772\xe9_0", "has a non-ASCII byte"),
        (b"\xff04_17722_0", "has a non-ASCII byte"),
    ],
)
def test_refused_label_names_file_and_record(tmp_path, records, bad, problem):
    path = _label_file(tmp_path, records, [SEPARATED, DIGITS, bad, SEPARATED])
    with pytest.raises(FormatError) as error:
        formats.open_records(path)
    message = str(error.value)
    assert f"{path}, record 2: label {bad!r} {problem}" in message, message
    assert "11 ASCII bytes" in message


def test_names_of_either_kind_become_labels():
    names = ["c004_s17722_w000", "004_17722_0", "002ab-cd/e "]
    assert formats.names_to_labels(names).tolist() == [DIGITS, SEPARATED, NEITHER]
    classes, sources, windows = formats.parse_record_names(names)
    assert (classes.tolist(), sources.tolist(), windows.tolist()) == (
        [3, 3, 1],
        [17722, 17722, -1],
        [0, 0, -1],
    )
    for bad, problem in (
        ("c004_s1_w0", "as a label it does not start"),  # short: taken as a label
        ("c004_s1772_w000", "not a record name"),  # 15 characters: neither kind
        ("004_17722_0x", "not a record name"),  # 12 characters: longer than a label
        ("00é_17722_0", "non-ASCII"),
        ("c004_s17722_w00x", "not a record name"),
    ):
        with pytest.raises(FormatError, match="record 1") as error:
            formats.names_to_labels(["004_17722_0", bad], "names.npz")
        assert problem in str(error.value) and "names.npz" in str(error.value)


def test_convert_to_jpeg_tree_names_files_from_parsed_ids(tmp_path, records):
    labels = [SEPARATED, DIGITS.replace(b"000", b"001"), b"001_17722_2"]
    source = _label_file(tmp_path, records, labels).parent
    formats.convert(source, tmp_path / "tree", "jpeg_tree")
    val = formats.open_records(tmp_path / "tree")["val"]
    assert val.names.tolist() == ["c001_s17722_w002", "c004_s17722_w000", "c004_s17722_w001"]
    assert val.images.shape == (3, 96, 96, 3)
    _label_file(tmp_path, records, [SEPARATED, DIGITS], "kept/val_batch_001.bin")
    kept = _label_file(tmp_path, records, [SEPARATED, NEITHER], "kept/val_batch_002.bin")
    with pytest.raises(FormatError) as error:
        formats.convert(kept.parent, tmp_path / "refused", "jpeg_tree")
    message = str(error.value)  # the file and the record in it, not the split-wide index
    assert f"{kept}, record 1: record name '002ab-cd/e '" in message, message
    assert not (tmp_path / "refused").exists()


def _one_jpeg_tree(tmp_path, records, bad_file_writer):
    formats.write_jpeg_tree(tmp_path, "val", records["names"][:5], records["spectrograms"][:5])
    bad = tmp_path / "val" / f"{records['names'][3]}.jpg"
    bad_file_writer(bad)
    return formats.open_records(tmp_path)["val"], bad


def test_not_a_jpeg_named_on_decode(tmp_path, records):
    val, bad = _one_jpeg_tree(tmp_path, records, lambda p: p.write_text("not an image"))
    np.testing.assert_array_equal(val.spectrograms[:3].shape, (3, 128, 100))  # the good ones decode
    with pytest.raises(FormatError, match="not a JPEG") as error:
        val.spectrograms[:]
    assert str(bad) in str(error.value) and "record 3" in str(error.value)


def test_png_with_jpg_extension(tmp_path, records):
    _, bad = _one_jpeg_tree(
        tmp_path, records, lambda p: Image.new("L", (100, 128)).save(p, format="PNG")
    )
    val = formats.open_records(tmp_path)["val"]
    with pytest.raises(FormatError, match=r"not a JPEG file \(PNG"):
        val.spectrograms[3]


@pytest.mark.parametrize("mode,size", [("L", (96, 128)), ("RGB", (100, 128))])
def test_wrong_jpeg_size_or_mode(tmp_path, records, mode, size):
    val, bad = _one_jpeg_tree(
        tmp_path, records, lambda p: Image.new(mode, size).save(p, format="JPEG")
    )
    with pytest.raises(FormatError, match="expected a L JPEG 100 wide x 128 high") as error:
        val.spectrograms[np.arange(5)]
    assert str(bad) in str(error.value) and f"{mode} image {size[0]} wide x {size[1]} high" in str(
        error.value
    )


def test_unparsable_file_name_in_tree(tmp_path, records):
    formats.write_jpeg_tree(tmp_path, "train", records["names"][:2], records["spectrograms"][:2])
    shutil.copy(
        tmp_path / "train" / f"{records['names'][0]}.jpg", tmp_path / "train" / "holiday.jpg"
    )
    with pytest.raises(FormatError, match="holiday.jpg.*not a record name"):
        formats.open_records(tmp_path)


def test_unknown_layout_split_and_path(tmp_path, records):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(FormatError, match="holds no s2i_data layout"):
        formats.open_records(tmp_path / "notes")
    with pytest.raises(FormatError, match="unknown layout 'hdf5'"):
        formats.open_records(tmp_path / "notes", layout="hdf5")
    with pytest.raises(FormatError, match="no such file"):
        formats.open_records(tmp_path / "missing")
    path = formats.write_audio_bin(
        tmp_path / "batch_001.bin", records["labels"], records["spectrograms"]
    )
    with pytest.raises(FormatError, match="cannot tell the split"):
        formats.open_records(path, layout="audio_bin")
    odd = tmp_path / "odd" / "data_batch_001.bin"
    odd.parent.mkdir()
    odd.write_bytes(b"\0" * 1000)
    with pytest.raises(FormatError, match="no layout"):
        formats.infer_layout(odd.parent)


def test_paired_tree_keeps_common_names_and_warns(tmp_path, records):
    n, s, i = records["names"], records["spectrograms"], records["images"]
    formats.write_jpeg_tree(tmp_path / "spectrograms", "train", n[:6], s[:6])
    formats.write_image_tree(tmp_path / "frames", "train", n[2:8], i[2:8])
    with pytest.warns(UserWarning, match="2 spectrograms without a frame and 2 frames without"):
        train = formats.open_records(tmp_path)["train"]
    np.testing.assert_array_equal(train.names, np.sort(n[2:6]))
    assert train.images[0].shape == (96, 96, 3) and len(train.images) == 4


# --------------------------------------------------------------------------------------
# lazy arrays


def test_concat_array_indexing_matches_numpy():
    rng = np.random.default_rng(1)
    parts = [rng.integers(0, 255, (n, 4, 3), dtype=np.uint8) for n in (5, 1, 7, 3)]
    whole, lazy = np.concatenate(parts), ConcatArray(parts)
    assert len(lazy) == 16 and lazy.shape == (16, 4, 3) and lazy.dtype == np.uint8
    keys = [
        0,
        5,
        6,
        -1,
        np.int64(12),
        slice(None),
        slice(3, 14),
        slice(4, 7),
        slice(None, None, 3),
        slice(14, 2, -2),
        slice(20, 30),
        np.array([15, 0, 6, 6, 5, -2]),
        np.array([[1, 13], [7, 2]]),
        rng.random(16) > 0.5,
        [2, 3],
        (slice(2, 9), 1),
        (4, slice(1, 3), 2),
    ]
    for key in keys:
        got = lazy[key]
        assert type(got) is np.ndarray, key
        np.testing.assert_array_equal(got, whole[key], err_msg=str(key))
    np.testing.assert_array_equal(np.asarray(lazy), whole)
    for bad in (16, -17, np.array([0, 16])):
        with pytest.raises(IndexError):
            lazy[bad]
    with pytest.raises(IndexError):
        lazy[np.ones(3, bool)]


def test_bin_fields_are_memory_mapped_views(tmp_path, records):
    for number, start in ((1, 0), (2, 10), (3, 17)):
        stop = {1: 10, 2: 17, 3: 23}[number]
        formats.write_spec_image_bin(
            tmp_path / f"data_batch_{number:03d}.bin",
            records["names"][start:stop],
            records["spectrograms"][start:stop],
            records["images"][start:stop],
        )
    train = formats.open_records(tmp_path, layout="spec_image_bin")["train"]
    assert len(train.spectrograms.parts) == 3
    for part in train.spectrograms.parts + train.images.parts:
        assert isinstance(part, np.memmap) and not part.flags.owndata
    index = np.array([22, 0, 9, 10, 16, 17])
    np.testing.assert_array_equal(train.images[index], records["images"][index])
    np.testing.assert_array_equal(train.spectrograms[8:19], records["spectrograms"][8:19])
    np.testing.assert_array_equal(train.names, records["names"])


# --------------------------------------------------------------------------------------
# describe and export


def test_describe_counts_and_samples(tmp_path, records):
    formats.write_spec_image_bin(
        tmp_path / "data_batch_001.bin",
        records["names"],
        records["spectrograms"],
        records["images"],
    )
    summary = formats.describe(formats.open_records(tmp_path, "spec_image_bin"), sample_size=10)
    train = summary["splits"]["train"]
    assert summary["layout"] == "spec_image_bin" and train["count"] == 23
    assert train["class_counts"] == {"0": 5, "1": 5, "2": 4, "3": 5, "4": 4}
    spec = train["arrays"]["spectrograms"]
    assert (
        spec["shape"] == [23, 128, 100]
        and spec["dtype"] == "uint8"
        and spec["sample_records"] == 10
    )
    assert 0 <= spec["min"] <= spec["mean"] <= spec["max"] <= 255
    assert "at most 10 records" in summary["value_ranges"]


def test_export_npz_streams_every_array(tmp_path, records):
    formats.write_spec_image_bin(
        tmp_path / "d" / "data_batch_001.bin",
        records["names"][:15],
        records["spectrograms"][:15],
        records["images"][:15],
    )
    formats.write_spec_image_bin(
        tmp_path / "d" / "test_batch_001.bin",
        records["names"][15:],
        records["spectrograms"][15:],
        records["images"][15:],
    )
    out = formats.export_npz(
        formats.open_records(tmp_path / "d", "spec_image_bin"),
        tmp_path / "all.npz",
        chunk_records=4,
    )
    with np.load(out) as data:
        assert set(data.files) == {"names", "labels", "splits", "spectrograms", "images"}
        np.testing.assert_array_equal(data["names"], records["names"])
        np.testing.assert_array_equal(data["labels"], records["labels"])
        assert data["labels"].dtype == np.int64
        np.testing.assert_array_equal(data["splits"], ["train"] * 15 + ["test"] * 8)
        np.testing.assert_array_equal(data["spectrograms"], records["spectrograms"])
        np.testing.assert_array_equal(data["images"], records["images"])


# --------------------------------------------------------------------------------------
# the real VEGAS spectrograms


def test_real_vegas_jpegs(vegas_val_dir):
    val = formats.open_records(vegas_val_dir)["val"]
    assert val.layout == "jpeg_tree" and len(val) >= 100
    spectrograms = val.spectrograms[:]
    assert spectrograms.shape == (len(val), 128, 100) and spectrograms.dtype == np.uint8
    assert 24 < spectrograms.mean() < 38  # METHOD.md: the real files average about 31
    classes, sources, windows = formats.parse_names(val.names)
    assert set(classes) == {0, 1, 2, 3, 4} and windows.max() <= 9
    np.testing.assert_array_equal(val.labels, classes)
