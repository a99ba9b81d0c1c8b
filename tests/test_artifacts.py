"""Compact networks on disk: each encoding round-trips, and loading checks the network."""

import pytest
import torch
from conftest import mlp_shapes, reference_logits

from prunekit import artifacts, compact, model, pruning


@pytest.mark.parametrize("density", [1.0, 0.4, 0.1, 0.01, 0.0])
def test_every_encoding_round_trips_exactly(density, random_weights):
    (weight,) = random_weights([(50, 70)], seed=3, density=density)
    encoded = artifacts.encode_matrix(weight)
    assert torch.equal(artifacts.decode_matrix(encoded), weight)


def test_encoding_picks_the_smallest_form(random_weights):
    (dense,) = random_weights([(20, 30)])
    assert artifacts.encode_matrix(dense)["encoding"] == "dense"
    (moderate,) = random_weights([(20, 30)], density=0.2)
    assert artifacts.encode_matrix(moderate)["encoding"] == "bitmask"
    very_sparse = torch.zeros(20, 30)
    very_sparse[3, 7] = 1.0
    encoded = artifacts.encode_matrix(very_sparse)
    assert encoded["encoding"] == "csr"
    assert encoded["col_indices"].dtype == torch.int8  # 30 columns fit a byte.


@pytest.mark.parametrize("method", ["weight", "unit"])
@pytest.mark.parametrize("percent", [0, 50, 90, 97, 99])
def test_saved_artifact_reproduces_masked_logits(tmp_path, method, percent, random_weights,
                                                 random_images):
    weights = random_weights(mlp_shapes([64, 48, 32]))
    masked = pruning.prune(weights, method, percent)
    path = tmp_path / "net.pt"
    artifacts.save_compact(path, compact.compact(masked), method, percent)
    loaded = artifacts.load_compact(path, model.layer_sizes([64, 48, 32]), method, percent)
    images = random_images(300)
    torch.testing.assert_close(loaded.logits(images), reference_logits(masked, images),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loaded.logits(images[:1]),
                               reference_logits(masked, images[:1]), rtol=1e-5, atol=1e-5)


def test_load_rejects_wrong_architecture_and_garbage(tmp_path, random_weights):
    weights = random_weights(mlp_shapes([16]))
    path = tmp_path / "net.pt"
    artifacts.save_compact(path, compact.compact(weights), "weight", 0)
    sizes = [784, 16, 10]
    assert artifacts.load_compact(path, sizes, "weight", 0).layer_sizes == tuple(sizes)
    with pytest.raises(artifacts.ArtifactError, match="expected \\[784, 32, 10\\]"):
        artifacts.load_compact(path, [784, 32, 10], "weight", 0)
    with pytest.raises(artifacts.ArtifactError, match="holds weight pruning at k=0, expected unit"):
        artifacts.load_compact(path, sizes, "unit", 0)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(artifacts.ArtifactError, match="not a readable PyTorch checkpoint"):
        artifacts.load_compact(garbage, sizes, "weight", 0)
    with pytest.raises(artifacts.ArtifactError, match="missing.pt not found; run the prune"):
        artifacts.load_compact(tmp_path / "missing.pt", sizes, "unit", 0)


def test_read_compact_serves_any_artifact_with_how_it_was_pruned(tmp_path, random_weights):
    weights = random_weights(mlp_shapes([16]))
    path = tmp_path / "net.pt"
    artifacts.save_compact(path, compact.compact(pruning.prune(weights, "unit", 50)), "unit", 50)
    network, method, percent = artifacts.read_compact(path)
    assert (network.layer_sizes, method, percent) == ((784, 16, 10), "unit", 50)
    assert network.weights[0].shape == (8, 784)
    saved = torch.load(path, weights_only=True)
    del saved["percent"]
    torch.save(saved, path)
    with pytest.raises(artifacts.ArtifactError, match="does not say how it was pruned"):
        artifacts.read_compact(path)
    torch.save({"format": "something else"}, path)
    with pytest.raises(artifacts.ArtifactError, match="is not a .* artifact"):
        artifacts.read_compact(path)
