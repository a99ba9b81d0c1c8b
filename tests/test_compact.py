"""Dead-neuron removal, storage encodings and equivalence of compact artifacts."""

import pytest
import torch
from conftest import mlp_shapes, reference_logits

from prunekit import compact, metrics, model, pruning


def test_dead_neurons_are_removed_on_a_hand_built_network():
    # Input 3 -> hidden 4 -> hidden 3 -> 2 logits.
    first = torch.tensor([[1.0, 0.0, 2.0],    # unit 0: alive
                          [0.0, 0.0, 0.0],    # unit 1: no input, dead
                          [0.0, 0.0, 3.0],    # unit 2: its only reader (2nd layer unit 2) dies
                          [4.0, 0.0, 0.0]])   # unit 3: alive
    second = torch.tensor([[1.0, 5.0, 0.0, 0.0],   # reads units 0 and dead 1
                           [0.0, 0.0, 0.0, 2.0],   # reads unit 3
                           [0.0, 0.0, 1.0, 0.0]])  # nobody reads it: dead, so unit 2 dies too
    last = torch.tensor([[1.0, 1.0, 0.0],
                         [2.0, 0.0, 0.0]])
    network = compact.compact([first, second, last])
    kept = [units.tolist() for units in network.kept_units]
    assert kept == [[0, 2], [0, 3], [0, 1], [0, 1]]  # Input 1 is read by no live unit.
    assert torch.equal(network.weights[0], torch.tensor([[1.0, 2.0], [4.0, 0.0]]))
    assert torch.equal(network.weights[1], torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    assert torch.equal(network.weights[2], torch.tensor([[1.0, 1.0], [2.0, 0.0]]))
    # Logits by hand: [relu(x0 + 2 x2) + 8 relu(x0), 2 relu(x0 + 2 x2)].
    images = torch.tensor([[1.0, 5.0, 2.0], [-1.0, 0.0, 1.0], [2.0, 3.0, -2.0]])
    expected = torch.tensor([[13.0, 10.0], [1.0, 2.0], [16.0, 0.0]])
    assert torch.equal(reference_logits([first, second, last], images), expected)
    assert torch.equal(network.logits(images), expected)


def test_logits_are_always_kept_even_when_unreachable():
    weights = [torch.zeros(4, 3), torch.ones(2, 4)]
    network = compact.compact(weights)
    assert network.weights[-1].shape == (2, 0)
    images = torch.arange(15.0).reshape(5, 3) - 7
    assert torch.equal(network.logits(images), torch.zeros(5, 2))


@pytest.mark.parametrize("density", [1.0, 0.4, 0.1, 0.01, 0.0])
def test_every_encoding_round_trips_exactly(density, random_weights):
    (weight,) = random_weights([(50, 70)], seed=3, density=density)
    encoded = compact.encode_matrix(weight)
    assert torch.equal(compact.decode_matrix(encoded), weight)


def test_encoding_picks_the_smallest_form(random_weights):
    (dense,) = random_weights([(20, 30)])
    assert compact.encode_matrix(dense)["encoding"] == "dense"
    (moderate,) = random_weights([(20, 30)], density=0.2)
    assert compact.encode_matrix(moderate)["encoding"] == "bitmask"
    very_sparse = torch.zeros(20, 30)
    very_sparse[3, 7] = 1.0
    encoded = compact.encode_matrix(very_sparse)
    assert encoded["encoding"] == "csr"
    assert encoded["col_indices"].dtype == torch.int8  # 30 columns fit a byte.


@pytest.mark.parametrize("method", ["weight", "unit"])
@pytest.mark.parametrize("percent", [0, 50, 90, 97, 99])
def test_saved_artifact_reproduces_masked_logits(tmp_path, method, percent, random_weights,
                                                 random_images):
    weights = random_weights(mlp_shapes([64, 48, 32]))
    masked = pruning.prune(weights, method, percent)
    path = tmp_path / "net.pt"
    compact.save_compact(path, compact.compact(masked), method, percent)
    loaded = compact.load_compact(path, model.layer_sizes([64, 48, 32]), method, percent)
    images = random_images(300)
    torch.testing.assert_close(loaded.logits(images), reference_logits(masked, images),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loaded.logits(images[:1]),
                               reference_logits(masked, images[:1]), rtol=1e-5, atol=1e-5)


def test_unit_pruned_artifact_shrinks_to_the_kept_units(random_weights):
    weights = random_weights(mlp_shapes([40, 20]))
    network = compact.compact(pruning.prune(weights, "unit", 90))
    assert [tuple(weight.shape) for weight in network.weights] == [(4, 784), (2, 4), (10, 2)]


def test_load_rejects_wrong_architecture_and_garbage(tmp_path, random_weights):
    weights = random_weights(mlp_shapes([16]))
    path = tmp_path / "net.pt"
    compact.save_compact(path, compact.compact(weights), "weight", 0)
    sizes = [784, 16, 10]
    assert compact.load_compact(path, sizes, "weight", 0).layer_sizes == tuple(sizes)
    with pytest.raises(compact.ArtifactError, match="expected \\[784, 32, 10\\]"):
        compact.load_compact(path, [784, 32, 10], "weight", 0)
    with pytest.raises(compact.ArtifactError, match="holds weight pruning at k=0, expected unit"):
        compact.load_compact(path, sizes, "unit", 0)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(compact.ArtifactError, match="not a readable PyTorch checkpoint"):
        compact.load_compact(garbage, sizes, "weight", 0)
    with pytest.raises(compact.ArtifactError, match="missing.pt not found; run the prune"):
        compact.check_artifacts({("weight", 0): path, ("unit", 0): tmp_path / "missing.pt"},
                                sizes)


def test_equivalence_check_accepts_a_compact_network_and_refuses_a_wrong_one(random_weights,
                                                                             random_images):
    weights = random_weights([(8, 6), (4, 8)], seed=5)
    masked = pruning.prune(weights, "unit", 50)
    images = random_images(9, width=6)
    network = compact.compact(masked)
    assert metrics.check_equivalence(masked, network, images) <= metrics.LOGIT_TOLERANCE
    wrong = compact.compact(pruning.prune(weights, "unit", 25))
    with pytest.raises(metrics.EquivalenceError, match="differs from the masked one"):
        metrics.check_equivalence(masked, wrong, images)
