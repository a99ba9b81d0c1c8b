"""Dataset files: where to find them, how to verify them, and how to read them into tensors.

Each dataset is the four IDX files of the original release, verified by the MD5 of their
decompressed bytes (archives of the same content may differ) and stored plain.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import pathlib
import tempfile
import zlib

import torch

from prunekit import errors

logger = logging.getLogger(__name__)

DEBIAN_FOLDERS = {"fashion-mnist": pathlib.Path("/usr/share/datasets/fashion-mnist")}

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
TRAIN_SET_SIZE = 60_000  # Both MNIST and Fashion-MNIST have 60,000 training images.

# MD5 of the decompressed IDX files of each official release.
CONTENT_MD5 = {
    "fashion-mnist": {
        TRAIN_IMAGES: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        TRAIN_LABELS: "9018921c3c673c538a1fc5bad174d6f9",
        TEST_IMAGES: "8181f5470baa50b63fa0f6fddb340f0a",
        TEST_LABELS: "15d484375f8d13e6eb1aabb0c3f46965",
    },
    "mnist": {
        TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
        TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
        TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
        TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
    },
}

_IDX_DTYPES = {0x08: torch.uint8}  # IDX type code 0x08: unsigned byte, the only one used here.


class DatasetError(errors.InputError):
    """Raised when dataset files are missing, corrupt, or not the expected dataset."""


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of the dataset as in-memory tensors."""

    images: torch.Tensor  # (samples, 784) float32, pixel intensities in [0, 1].
    labels: torch.Tensor  # (samples,) int64 class indices.

    def to(self, device: torch.device) -> Split:
        """Returns the split with both tensors on ``device``."""
        return Split(self.images.to(device), self.labels.to(device))


def archive_name(file_name: str) -> str:
    """The name of the gzipped archive of an IDX file."""
    return f"{file_name}.gz"


def content_md5(payload: bytes) -> str:
    """The hexadecimal MD5 of some bytes."""
    return hashlib.md5(payload).hexdigest()


def read_source_file(folder: pathlib.Path, file_name: str) -> bytes:
    """Reads the decompressed, unverified bytes of an IDX file, gzipped (tried first) or plain.

    Raises:
        DatasetError: If neither form exists, or the archive is truncated or not gzip.
    """
    archive = folder / archive_name(file_name)
    if not archive.is_file():
        plain = folder / file_name
        if plain.is_file():
            return plain.read_bytes()
        raise DatasetError(f"{folder} lacks {archive.name} (or {file_name})")
    try:
        return gzip.decompress(archive.read_bytes())
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{archive} is not a complete gzip file ({error}); replace it with "
                           "a good copy") from None


def verify_payload(payload: bytes, dataset: str, file_name: str, origin: str) -> bytes:
    """Returns ``payload`` if its MD5 is that of the dataset's IDX file ``file_name``.

    Raises:
        DatasetError: If the bytes differ (truncated, corrupt, another dataset's file), naming
            ``origin``, the expected and actual MD5 and the fix.
    """
    expected = CONTENT_MD5[dataset][file_name]
    actual = content_md5(payload)
    if actual != expected:
        other = [name for name, sums in CONTENT_MD5.items() if sums[file_name] == actual]
        what = f"it is {other[0]}'s {file_name}" if other else "truncated or corrupt"
        raise DatasetError(
            f"{origin}: MD5 of the IDX content is {actual}, expected {expected} for {dataset}'s "
            f"{file_name} ({what}); replace the file with a good copy and run the download "
            "stage again (dvc repro download), or check download.dataset in params.yaml")
    return payload


def read_verified(folder: pathlib.Path, dataset: str, file_name: str) -> bytes:
    """Reads one plain IDX file written by the download stage, verified.

    Raises:
        DatasetError: If it is missing or not the expected file.
    """
    path = folder / file_name
    if not path.is_file():
        raise DatasetError(f"{path} is missing; run the download stage (dvc repro download)")
    return verify_payload(path.read_bytes(), dataset, file_name, str(path))


def parse_idx(payload: bytes, name: str = "IDX data") -> torch.Tensor:
    """Parses an IDX file (big-endian header, then raw values) into a uint8 tensor.

    Raises:
        DatasetError: If the header is malformed or the size disagrees with it.
    """
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0:
        raise DatasetError(f"{name}: not an IDX file (bad magic number)")
    type_code, rank = payload[2], payload[3]
    if type_code not in _IDX_DTYPES:
        raise DatasetError(f"{name}: unsupported IDX type code {type_code:#04x}")
    header_size = 4 + 4 * rank
    if rank == 0 or len(payload) < header_size:
        raise DatasetError(f"{name}: truncated IDX header")
    shape = [int.from_bytes(payload[4 + 4 * axis: 8 + 4 * axis], "big") for axis in range(rank)]
    expected_size = header_size + torch.Size(shape).numel()
    if len(payload) != expected_size:
        raise DatasetError(f"{name}: {len(payload)} bytes, but its header {shape} needs "
                           f"{expected_size}; the file is truncated or corrupt")
    values = torch.frombuffer(bytearray(payload), dtype=torch.uint8, offset=header_size)
    return values.reshape(shape)


def to_split(images: torch.Tensor, labels: torch.Tensor, limit: int | None = None) -> Split:
    """Turns uint8 images (samples, 28, 28) and labels into a :class:`Split`.

    Keeps the first ``limit`` samples unless it is None.

    Raises:
        DatasetError: If images are not 3-D or labels not 1-D, they disagree in count, or a
            label is above 9.
    """
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DatasetError(f"images {tuple(images.shape)} and labels {tuple(labels.shape)} "
                           "do not form a dataset of 28x28 images")
    if int(labels.max()) > 9:
        raise DatasetError(f"labels must be class indices 0-9, found {int(labels.max())}")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    flat_images = images.reshape(images.shape[0], -1).to(torch.float32).div_(255.0)
    return Split(images=flat_images, labels=labels.to(torch.int64))


def load_split(folder: pathlib.Path, dataset: str, train: bool, limit: int | None = None
               ) -> Split:
    """Verifies and loads the training or test split (its first ``limit`` samples, if given).

    Raises:
        DatasetError: If a file is missing, corrupt or of another dataset.
    """
    image_file, label_file = (TRAIN_IMAGES, TRAIN_LABELS) if train else (TEST_IMAGES, TEST_LABELS)
    tensors = [parse_idx(read_verified(folder, dataset, name), name)
               for name in (image_file, label_file)]
    return to_split(*tensors, limit=limit)


# Seeds the draw of the validation set: one set for every network, whatever its seed or recipe.
VALIDATION_SEED = 2026


def validation_indices(labels: torch.Tensor, size: int) -> torch.Tensor:
    """The sorted indices of a stratified validation set of ``size`` samples, fixed for ever.

    Each class gets its share of ``size`` in proportion to its count (the largest remainders
    round), drawn at random by a generator seeded with :data:`VALIDATION_SEED`.

    Raises:
        ValueError: If ``size`` is not from 1 to the number of samples.
    """
    if not 1 <= size <= labels.shape[0]:
        raise ValueError(f"validation size must be from 1 to {labels.shape[0]}, got {size}")
    counts = torch.bincount(labels, minlength=int(labels.max()) + 1)
    quotas = counts.to(torch.float64) * size / labels.shape[0]
    per_class = quotas.floor().to(torch.int64)
    remainders = torch.argsort(quotas - per_class, descending=True, stable=True)
    per_class[remainders[:size - int(per_class.sum())]] += 1
    order = torch.randperm(labels.shape[0],
                           generator=torch.Generator().manual_seed(VALIDATION_SEED))
    by_class = order[torch.argsort(labels[order], stable=True)]  # Grouped, random within.
    sorted_labels = labels[by_class]
    class_starts = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.arange(labels.shape[0]) - class_starts[sorted_labels]
    return by_class[rank_in_class < per_class[sorted_labels]].sort().values


def load_training_splits(folder: pathlib.Path, dataset: str, validation: int,
                         limit: int | None = None) -> tuple[Split, Split]:
    """Loads the training images as a training split and the held-out validation split.

    The validation set (:func:`validation_indices`) is drawn from all training images first;
    ``limit`` then keeps the first ``limit`` of the rest.

    Raises:
        DatasetError: If a file is missing, corrupt or of another dataset.
    """
    full = load_split(folder, dataset, train=True)
    held_out = torch.zeros(full.labels.shape[0], dtype=torch.bool)
    held_out[validation_indices(full.labels, validation)] = True
    train = Split(full.images[~held_out][:limit], full.labels[~held_out][:limit])
    return train, Split(full.images[held_out], full.labels[held_out])


def dataset_checksum(dataset: str) -> str:
    """One MD5 for a dataset's content: that of its four files' MD5s in FILE_NAMES order."""
    return content_md5("".join(CONTENT_MD5[dataset][name] for name in FILE_NAMES).encode())


def candidate_folders(dataset: str) -> list[pathlib.Path]:
    """The system folders that may hold a dataset (Debian's package); they need not exist."""
    return [DEBIAN_FOLDERS[dataset]] if dataset in DEBIAN_FOLDERS else []


def _copy_from_folder(folder: pathlib.Path, dataset: str, destination: pathlib.Path) -> None:
    """Verifies the four files (gzipped or plain) of a folder, then writes them plain.

    Raises:
        DatasetError: If a file is missing, not a complete gzip file or not the expected one;
            nothing is written then.
    """
    payloads = {name: verify_payload(read_source_file(folder, name), dataset, name,
                                     str(folder / name))
                for name in FILE_NAMES}
    for name, payload in payloads.items():
        (destination / name).write_bytes(payload)


def _download_from_mirrors(dataset: str, destination: pathlib.Path) -> None:
    """Downloads the four archives from torchvision's mirrors, verifies and unpacks them.

    Raises:
        DatasetError: If every mirror fails for one of the files, or a downloaded file is not
            the expected one.
    """
    from torchvision import datasets
    from torchvision.datasets import utils

    dataset_class = datasets.FashionMNIST if dataset == "fashion-mnist" else datasets.MNIST
    archive_md5 = dict(dataset_class.resources)
    with tempfile.TemporaryDirectory() as download_folder:
        for name in FILE_NAMES:
            failures = []
            for mirror in dataset_class.mirrors:
                try:
                    utils.download_url(mirror + archive_name(name), download_folder,
                                       filename=archive_name(name),
                                       md5=archive_md5[archive_name(name)])
                    break
                except Exception as error:  # noqa: BLE001 - any failure: try the next mirror.
                    failures.append(f"{mirror}: {error}")
            else:
                raise DatasetError(f"could not download {archive_name(name)}: "
                                   + "; ".join(failures))
        _copy_from_folder(pathlib.Path(download_folder), dataset, destination)


def fetch_dataset(dataset: str, source_dir: str | None, destination: pathlib.Path,
                  allow_download: bool = True) -> str:
    """Fills the empty folder ``destination`` with the four verified IDX files of ``dataset``.

    Sources, in order: ``source_dir``, Debian's package folder, then (if ``allow_download``)
    the official mirrors.

    Returns:
        A description of the source used.

    Raises:
        DatasetError: If no source provides all four verified files, naming what was wrong
            with each and how to get the data. A bad ``source_dir`` stops at once rather than
            silently using another source.
    """
    if source_dir is not None:
        folder = pathlib.Path(source_dir).expanduser()
        if not folder.is_dir():
            raise DatasetError(f"download.source_dir {source_dir!r} does not exist or is not a "
                               "folder; point it at the folder holding the four .gz files, or "
                               "set it to null")
        missing = [archive_name(name) for name in FILE_NAMES
                   if not (folder / archive_name(name)).is_file()
                   and not (folder / name).is_file()]
        if missing:
            raise DatasetError(f"download.source_dir {source_dir!r} lacks {', '.join(missing)}; "
                               f"it must hold all four files: "
                               f"{', '.join(archive_name(n) for n in FILE_NAMES)}")
        _copy_from_folder(folder, dataset, destination)
        return str(folder)
    problems = []
    for folder in candidate_folders(dataset):
        if not folder.is_dir():
            problems.append(f"{folder}: no such folder")
            continue
        try:
            _copy_from_folder(folder, dataset, destination)
            return str(folder)
        except DatasetError as error:
            problems.append(str(error))
    if allow_download:
        try:
            _download_from_mirrors(dataset, destination)
            return "official mirrors"
        except DatasetError as error:
            problems.append(str(error))
    how = ("install Debian's package (apt-get install dataset-fashion-mnist), or "
           if dataset in DEBIAN_FOLDERS else "")
    raise DatasetError(f"no source for {dataset}: " + "; ".join(problems) + f". To fix: {how}"
                       "download the four .gz files by hand and set download.source_dir "
                       "in params.yaml to their folder")
