"""Shared fixtures: seeded random weights and images, tiny IDX datasets, pipeline workspaces."""

import gzip
import hashlib
import pathlib

import pytest
import torch

from prunekit import data, model


@pytest.fixture(autouse=True)
def _seed_global_generator():
    """Seeds torch's global generator, which a model's own initialisation draws from."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def random_weights():
    """Factory ``random_weights(shapes, seed=0, density=1.0)`` of seeded (out, in) matrices.

    Entries are normal with He scaling (std sqrt(2 / in)), so activations stay of order one;
    below ``density`` 1 each entry is kept with that probability and the rest are zero.
    """

    def make(shapes, seed=0, density=1.0):
        generator = torch.Generator().manual_seed(seed)
        matrices = []
        for out_size, in_size in shapes:
            matrix = torch.randn(out_size, in_size, generator=generator) * (2 / in_size) ** 0.5
            if density < 1:
                matrix[torch.rand(out_size, in_size, generator=generator) >= density] = 0
            matrices.append(matrix)
        return matrices

    return make


@pytest.fixture(scope="session")
def random_images():
    """Factory ``random_images(batch_size, seed=1, width=784)`` of seeded pixels in [0, 1)."""

    def make(batch_size, seed=1, width=model.INPUT_SIZE):
        return torch.rand(batch_size, width, generator=torch.Generator().manual_seed(seed))

    return make


def mlp_shapes(hidden_sizes):
    """The (out, in) shapes of the MLP's matrices for ``hidden_sizes``."""
    sizes = model.layer_sizes(hidden_sizes)
    return list(zip(sizes[1:], sizes[:-1], strict=True))


def reference_logits(weights, images):
    """The MLP's logits in plain torch ops: ReLU after every matrix but the last."""
    hidden = images
    for weight in weights[:-1]:
        hidden = torch.relu(hidden @ weight.T)
    return hidden @ weights[-1].T


def idx_bytes(values: torch.Tensor) -> bytes:
    """Encodes a uint8 tensor as an IDX file (magic 0x0000 08 rank, big-endian sizes)."""
    header = bytes([0, 0, 0x08, values.ndim])
    header += b"".join(size.to_bytes(4, "big") for size in values.shape)
    return header + values.to(torch.uint8).contiguous().numpy().tobytes()


def make_tiny_dataset(seed: int, train_count: int = 12, test_count: int = 6
                      ) -> dict[str, bytes]:
    """Returns the four IDX files of a small random dataset of 28x28 images."""
    generator = torch.Generator().manual_seed(seed)

    def images(count):
        return torch.randint(0, 256, (count, 28, 28), generator=generator, dtype=torch.uint8)

    def labels(count):
        return torch.randint(0, 10, (count,), generator=generator, dtype=torch.uint8)

    return {data.TRAIN_IMAGES: idx_bytes(images(train_count)),
            data.TRAIN_LABELS: idx_bytes(labels(train_count)),
            data.TEST_IMAGES: idx_bytes(images(test_count)),
            data.TEST_LABELS: idx_bytes(labels(test_count))}


def write_dataset(folder: pathlib.Path, files: dict[str, bytes], gzipped: bool = True
                  ) -> pathlib.Path:
    """Writes IDX files into ``folder``, gzipped (``name.gz``) or plain."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        if gzipped:
            (folder / data.archive_name(name)).write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)
    return folder


@pytest.fixture
def tiny_datasets(monkeypatch):
    """Two small fake datasets standing in for MNIST and Fashion-MNIST, with their MD5s."""
    datasets = {"mnist": make_tiny_dataset(seed=1), "fashion-mnist": make_tiny_dataset(seed=2)}
    checksums = {name: {file: hashlib.md5(payload).hexdigest() for file, payload in files.items()}
                 for name, files in datasets.items()}
    monkeypatch.setattr(data, "CONTENT_MD5", checksums)
    monkeypatch.setattr(data, "DEBIAN_FOLDERS", {})
    return datasets


REPO = pathlib.Path(__file__).resolve().parent.parent
PIPELINE_FILES = ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", ".dvc/config",
                  ".dvc/.gitignore", ".dvc/plots", "stages", "prunekit")
TINY_PARAMS = {
    "train": {"hidden_sizes": [32, 16], "epochs": 1, "batch_size": 128, "limit": 1000,
              "validation": 500,
              "seeds": [0, 1], "recipes": {"adam": {"optimizer": "adam", "lr": 0.001},
                                           "l1": {"optimizer": "adam", "lr": 0.001,
                                                  "l1": 1.0e-4}}},
    "prune": {"k_list": [0, 50, 90], "random_draws": 1},
    "benchmark": {"batch_sizes": [1, 256], "k_list": [0, 50, 90], "rounds": 2,
                  "block_seconds": 0.005, "runs": 1},
    "plot": {"dpi": 40},
}
needs_fashion_mnist = pytest.mark.skipif(
    not data.DEBIAN_FOLDERS["fashion-mnist"].is_dir(),
    reason="needs Debian's dataset-fashion-mnist (make setup installs it)")


def make_workspace(folder: pathlib.Path, overrides: dict) -> pathlib.Path:
    """Copies the pipeline into ``folder`` with params.yaml sections updated by ``overrides``."""
    import shutil

    import yaml

    for name in PIPELINE_FILES:
        source, target = REPO / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in overrides.items():
        document[section].update(values)
    (folder / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder
