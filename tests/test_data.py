"""The IDX reader, MD5 verification and the dataset sources, on IDX files the tests write."""

import gzip

import pytest
import torch
from conftest import idx_bytes, write_dataset

from prunekit import data


def test_idx_round_trip():
    values = torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4)
    assert torch.equal(data.parse_idx(idx_bytes(values)), values)


@pytest.mark.parametrize(("payload", "message"), [
    (b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc", "bad magic number"),
    (b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc", "unsupported IDX type"),
    (b"\x00\x00\x08\x02\x00\x00", "truncated IDX header"),
    (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc", "truncated or corrupt"),
])
def test_malformed_idx_is_rejected(payload, message):
    with pytest.raises(data.DatasetError, match=message):
        data.parse_idx(payload)


def test_mnist_path_from_a_source_folder(tmp_path, tiny_datasets):
    source = write_dataset(tmp_path / "mnist-source", tiny_datasets["mnist"])
    destination = tmp_path / "out"
    destination.mkdir()
    assert data.fetch_dataset("mnist", str(source), destination) == str(source)
    assert sorted(path.name for path in destination.iterdir()) == sorted(data.FILE_NAMES)
    train = data.load_split(destination, "mnist", train=True)
    test = data.load_split(destination, "mnist", train=False, limit=4)
    assert train.images.shape == (12, 784) and train.images.dtype == torch.float32
    pixels = tiny_datasets["mnist"][data.TRAIN_IMAGES][16:]  # After the 16-byte IDX header.
    expected = torch.tensor(list(pixels), dtype=torch.float32).reshape(12, 784) / 255
    assert torch.equal(train.images, expected)  # In [0, 1].
    assert test.images.shape == (4, 784) and test.labels.shape == (4,)
    raw_labels = list(tiny_datasets["mnist"][data.TEST_LABELS][8:])  # After the 8-byte header.
    assert test.labels.tolist() == raw_labels[:4] and test.labels.dtype == torch.int64


def test_plain_idx_files_are_accepted_as_a_source(tmp_path, tiny_datasets):
    source = write_dataset(tmp_path / "plain", tiny_datasets["fashion-mnist"], gzipped=False)
    destination = tmp_path / "out"
    destination.mkdir()
    data.fetch_dataset("fashion-mnist", str(source), destination)
    assert data.load_split(destination, "fashion-mnist", train=True).labels.shape == (12,)


def test_another_datasets_file_is_named_in_the_error(tmp_path, tiny_datasets):
    files = dict(tiny_datasets["mnist"])
    files[data.TRAIN_IMAGES] = tiny_datasets["fashion-mnist"][data.TRAIN_IMAGES]
    source = write_dataset(tmp_path / "mixed", files)
    destination = tmp_path / "out"
    destination.mkdir()
    with pytest.raises(data.DatasetError) as error:
        data.fetch_dataset("mnist", str(source), destination)
    message = str(error.value)
    assert "train-images-idx3-ubyte" in message and "fashion-mnist's" in message
    assert data.CONTENT_MD5["mnist"][data.TRAIN_IMAGES] in message  # What was expected.
    assert "dvc repro download" in message  # How to fix it.
    assert not list(destination.iterdir())  # Nothing is written from a bad source.


def test_truncated_archive_is_rejected(tmp_path, tiny_datasets):
    source = write_dataset(tmp_path / "src", tiny_datasets["mnist"])
    archive = source / data.archive_name(data.TEST_IMAGES)
    archive.write_bytes(archive.read_bytes()[:-40])
    destination = tmp_path / "out"
    destination.mkdir()
    with pytest.raises(data.DatasetError, match="t10k-images-idx3-ubyte.gz is not a complete gzip"):
        data.fetch_dataset("mnist", str(source), destination)


def test_corrupt_downloaded_file_is_never_loaded(tmp_path, tiny_datasets):
    folder = write_dataset(tmp_path / "idx", tiny_datasets["mnist"], gzipped=False)
    path = folder / data.TRAIN_LABELS
    payload = bytearray(path.read_bytes())
    payload[-1] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(data.DatasetError, match="train-labels-idx1-ubyte.*truncated or corrupt"):
        data.load_split(folder, "mnist", train=True)


def test_missing_downloaded_file_names_the_stage_to_run(tmp_path, tiny_datasets):
    with pytest.raises(data.DatasetError, match="missing; run the download stage"):
        data.load_split(tmp_path, "mnist", train=False)


def test_source_dir_that_does_not_exist(tmp_path, tiny_datasets):
    with pytest.raises(data.DatasetError, match="does not exist"):
        data.fetch_dataset("mnist", str(tmp_path / "nowhere"), tmp_path)


def test_empty_or_partial_source_dir_names_what_is_missing(tmp_path, tiny_datasets):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(data.DatasetError, match="lacks train-images.*t10k-labels-idx1-ubyte.gz"):
        data.fetch_dataset("mnist", str(empty), tmp_path)
    files = {name: payload for name, payload in tiny_datasets["mnist"].items()
             if name != data.TEST_LABELS}
    partial = write_dataset(tmp_path / "partial", files)
    with pytest.raises(data.DatasetError) as error:
        data.fetch_dataset("mnist", str(partial), tmp_path)
    assert "lacks t10k-labels-idx1-ubyte.gz;" in str(error.value)


def test_no_source_at_all_says_how_to_get_the_data(tmp_path, tiny_datasets):
    with pytest.raises(data.DatasetError, match="no source for mnist.*download.source_dir"):
        data.fetch_dataset("mnist", None, tmp_path, allow_download=False)


def test_debian_folder_is_used_when_no_source_dir_is_given(tmp_path, tiny_datasets, monkeypatch):
    debian = write_dataset(tmp_path / "debian", tiny_datasets["fashion-mnist"])
    monkeypatch.setattr(data, "DEBIAN_FOLDERS", {"fashion-mnist": debian})
    destination = tmp_path / "out"
    destination.mkdir()
    assert data.fetch_dataset("fashion-mnist", None, destination, allow_download=False) == str(
        debian)


@pytest.mark.skipif(not data.DEBIAN_FOLDERS["fashion-mnist"].is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_matches_the_official_content():
    folder = data.DEBIAN_FOLDERS["fashion-mnist"]
    for name in data.FILE_NAMES:
        payload = gzip.decompress((folder / data.archive_name(name)).read_bytes())
        assert data.verify_payload(payload, "fashion-mnist", name, name) is payload


def test_split_to_a_device_moves_images_and_labels():
    split = data.Split(torch.zeros(2, 784), torch.tensor([3, 1]))
    moved = split.to(torch.device("meta"))
    assert (moved.images.device.type, moved.labels.device.type) == ("meta", "meta")
    assert split.images.device.type == "cpu"  # The original stays where it was.
