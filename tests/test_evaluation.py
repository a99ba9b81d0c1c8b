"""The in-memory accuracy table agrees with plainly masked networks and counts dead neurons."""

import pytest
import torch
from conftest import mlp_shapes, reference_logits

from prunekit import compact, evaluation, pruning


@pytest.fixture
def network_and_data(random_weights, random_images):
    """A 784-16-12-10 network, 300 images and labels it gets right but for the first 30."""
    weights = random_weights(mlp_shapes([16, 12]))
    images = random_images(300)
    labels = reference_logits(weights, images).argmax(dim=1)  # Dense accuracy is 1.
    labels[:30] = (labels[:30] + 1) % 10  # ... except for these 30: 0.9.
    return weights, images, labels


def _accuracy(masked, images, labels):
    return (reference_logits(masked, images).argmax(dim=1) == labels).float().mean().item()


def _sparsity(masked):
    return sum(int((matrix == 0).sum()) for matrix in masked) / sum(
        matrix.numel() for matrix in masked)


def test_every_row_matches_the_plainly_masked_network(network_and_data):
    weights, images, labels = network_and_data
    k_list = [0, 50, 90, 99]
    validation = images[100:200], labels[:100]  # Other images' labels: about 0.1.
    table = evaluation.accuracy_table(weights, images, labels, k_list, random_draws=2,
                                      random_seed=5, validation=validation)
    # Per method and k: magnitude, 2 random draws and, but for global, 2 single layers.
    assert len(table) == 2 * len(k_list) * 5 + len(k_list) * 3
    assert list(table.columns) == list(evaluation.COLUMNS)
    for row in table.itertuples():
        generator = evaluation.random_generator(5, row.draw) if row.control == "random" else None
        layer = None if row.scope == "all" else int(row.scope[1:]) - 1
        masked = pruning.prune(weights, row.method, row.k, generator, layer)
        assert row.accuracy == pytest.approx(_accuracy(masked, images, labels)), row
        assert row.validation_accuracy == pytest.approx(
            _accuracy(masked, *validation)), row
        assert row.sparsity == pytest.approx(_sparsity(masked)), row
        network = compact.compact(masked)  # What the prune stage would keep.
        assert (row.kept_weights, row.compact_weights) == (network.num_nonzero(),
                                                           network.num_weights()), row
    dense = table[table.k == 0]
    assert dense.accuracy.tolist() == pytest.approx([0.9] * len(dense))
    assert (dense.sparsity == 0).all()


def test_magnitude_results_keep_magnitude_pruning_of_every_matrix(network_and_data):
    weights, images, labels = network_and_data
    table = evaluation.accuracy_table(weights, images, labels, [0, 50, 90], random_draws=1,
                                      random_seed=0, validation=(images, labels))
    summary = evaluation.magnitude_results(table)
    assert list(summary) == ["dense", "weight", "unit", "global"]
    assert summary["dense"] == pytest.approx({"accuracy": 0.9, "validation_accuracy": 0.9})
    assert list(summary["unit"]) == ["k0", "k50", "k90"]
    chosen = table[(table.method == "unit") & (table.k == 90) & (table.control == "magnitude")
                   & (table.scope == "all")].iloc[0]
    assert summary["unit"]["k90"] == {"k": 90, "accuracy": chosen.accuracy,
                                      "validation_accuracy": chosen.validation_accuracy,
                                      "sparsity": chosen.sparsity}
    without = evaluation.accuracy_table(weights, images, labels, [0], random_draws=0)
    assert evaluation.magnitude_results(without)["dense"]["validation_accuracy"] is None


def test_random_draws_differ_and_repeat_for_a_seed(network_and_data):
    weights, images, labels = network_and_data
    first = evaluation.accuracy_table(weights, images, labels, [90], methods=["unit"],
                                      random_draws=2, random_seed=1, single_layers=False)
    again = evaluation.accuracy_table(weights, images, labels, [90], methods=["unit"],
                                      random_draws=2, random_seed=1, single_layers=False)
    assert first.equals(again)

    def first_mask(draw):
        orders = pruning.network_ranks(weights, "unit", evaluation.random_generator(1, draw))
        return pruning.keep_masks(weights, orders, 90)[0]

    assert not torch.equal(first_mask(0), first_mask(1))


def test_dead_units_counts_what_compaction_removes(random_images):
    # Hidden neuron 1 has tiny incoming weights: weight pruning at 50 % removes both, so it
    # dies. Hidden neuron 0 of the second layer only reads neuron 1, so it is cut off too
    # (the second matrix loses its two zeros and the 3.0).
    weights = [torch.tensor([[3.0, 2.0], [0.1, -0.1], [1.0, -2.0]]).repeat_interleave(392, 1),
               torch.tensor([[0.0, 5.0, 0.0], [4.0, 3.0, 6.0]]),
               torch.ones(10, 2)]
    images = random_images(20)
    labels = torch.zeros(20, dtype=torch.int64)
    table = evaluation.accuracy_table(weights, images, labels, [50], methods=["weight"],
                                      random_draws=0, single_layers=False)
    masked = pruning.prune(weights, "weight", 50)
    assert masked[0][1].eq(0).all()
    assert table.dead_units.tolist() == [2]  # Neuron 1 of layer 1 and neuron 0 of layer 2.
    unpruned = evaluation.accuracy_table(weights, images, labels, [0], methods=["weight"],
                                         random_draws=0, single_layers=False)
    assert unpruned.dead_units.tolist() == [0]


def test_rejects_unknown_methods_and_negative_draws(network_and_data):
    weights, images, labels = network_and_data
    with pytest.raises(ValueError, match="unknown pruning methods \\['kernel'\\]"):
        evaluation.accuracy_table(weights, images, labels, [50], methods=["kernel"])
    with pytest.raises(ValueError, match="random_draws must be >= 0"):
        evaluation.accuracy_table(weights, images, labels, [50], random_draws=-1)
