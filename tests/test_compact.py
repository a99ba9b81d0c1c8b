"""Dead-neuron removal, CSR arrays and the equivalence of compact networks."""

import numpy as np
import pytest
import torch
from conftest import mlp_shapes, reference_logits

from prunekit import compact, pruning
from prunekit.inference import plans


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


def test_unit_pruned_artifact_shrinks_to_the_kept_units(random_weights):
    weights = random_weights(mlp_shapes([40, 20]))
    network = compact.compact(pruning.prune(weights, "unit", 90))
    assert [tuple(weight.shape) for weight in network.weights] == [(4, 784), (2, 4), (10, 2)]


def test_equivalence_check_accepts_a_compact_network_and_refuses_a_wrong_one(random_weights,
                                                                             random_images):
    weights = random_weights([(8, 6), (4, 8)], seed=5)
    masked = pruning.prune(weights, "unit", 50)
    images = random_images(9, width=6)
    baseline = plans.masked_dense_plan(masked)
    right = plans.compact_dense_plan(compact.compact(masked))
    differences = plans.verify_plans({baseline.name: baseline, right.name: right}, images)
    assert differences["compact_dense"] <= plans.LOGIT_TOLERANCE
    wrong = plans.compact_dense_plan(compact.compact(pruning.prune(weights, "unit", 25)))
    with pytest.raises(plans.PlanMismatchError, match="compact_dense"):
        plans.verify_plans({baseline.name: baseline, wrong.name: wrong}, images)


def test_csr_arrays_list_the_nonzeros_row_by_row():
    weight = torch.tensor([[0.0, 2.0, 0.0, -1.0],
                           [0.0, 0.0, 0.0, 0.0],
                           [3.0, 0.0, -0.0, 4.0]])
    row_pointers, columns, values = compact.csr_arrays(weight)
    assert row_pointers.tolist() == [0, 2, 2, 4]
    assert columns.tolist() == [1, 3, 0, 3]
    assert values.tolist() == [2.0, -1.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="2-D"):
        compact.csr_arrays(torch.ones(3))


def test_csr_numpy_gives_compiled_code_its_dtypes_in_arrays_of_its_own():
    weight = torch.tensor([[0.0, 2.5, 0.0], [-1.0, 0.0, 4.0]])
    row_pointers, columns, values = compact.csr_numpy(weight, np.uint16)
    assert (row_pointers.dtype, columns.dtype, values.dtype) == (np.int32, np.uint16, np.float32)
    assert row_pointers.tolist() == [0, 1, 3]
    assert columns.tolist() == [1, 0, 2]
    assert values.tolist() == [2.5, -1.0, 4.0]
    values[0] = 7.0  # A copy: the matrix the arrays came from is untouched.
    assert weight[0, 1] == 2.5
