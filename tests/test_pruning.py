"""Exact counts and positions of pruned weights and units on hand-made matrices."""

import pytest
import torch

from prunekit import names, pruning


@pytest.mark.parametrize(("percent", "total", "expected"), [
    (0, 10, 0), (100, 10, 10), (25, 10, 3),  # 2.5 rounds half up to 3.
    (50, 5, 3), (90, 1000, 900), (97, 200, 194), (99, 10, 10), (33.3, 3, 1), (12.5, 4, 1),
])
def test_count_to_prune_rounds_half_up(percent, total, expected):
    assert pruning.count_to_prune(percent, total) == expected


def test_count_to_prune_rejects_out_of_range_percent():
    with pytest.raises(ValueError, match="k must be a percent from 0 to 100"):
        pruning.count_to_prune(101, 10)


def _keep_mask(weight, method, k):
    """The magnitude keep mask of one matrix, as the prune stage computes it."""
    return pruning.keep_mask(weight, pruning.pruning_ranks(weight, method), k)


def _keep_masks(weights, method, k, generator=None, layer=None):
    """Every matrix's keep mask, ranked by :func:`pruning.network_ranks`."""
    return pruning.keep_masks(weights, pruning.network_ranks(weights, method, generator), k, layer)


def test_weight_pruning_zeroes_the_smallest_magnitudes():
    weight = torch.tensor([[0.5, -0.1, 3.0],
                           [-2.0, 0.2, -0.05]])
    kept = _keep_mask(weight, "weight", 50)  # round(0.5 * 6) = 3 weights go.
    expected = torch.tensor([[True, False, True],
                             [True, False, False]])
    assert torch.equal(kept, expected)


def test_weight_pruning_breaks_ties_by_position():
    weight = torch.tensor([[1.0, -1.0, 1.0],
                           [1.0, 2.0, -1.0]])
    kept = _keep_mask(weight, "weight", 50)  # Five weights tie at |w| = 1; first three go.
    expected = torch.tensor([[False, False, False],
                             [True, True, True]])
    assert torch.equal(kept, expected)


def test_weight_pruning_counts_exactly_on_a_larger_matrix(random_weights):
    (weight,) = random_weights([(37, 23)], seed=1)
    # 851 weights: 25 % is 212.75 -> 213, 60 % is 510.6 -> 511, 97 % is 825.47 -> 825.
    for percent, pruned in ((0, 0), (25, 213), (60, 511), (97, 825), (100, 851)):
        kept = _keep_mask(weight, "weight", percent)
        assert int((~kept).sum()) == pruned
        if 0 < percent < 100:  # Every pruned weight is no larger than every kept one.
            assert weight[~kept].abs().max() <= weight[kept].abs().min()


def test_unit_pruning_zeroes_whole_rows_of_smallest_norm():
    weight = torch.tensor([[3.0, 4.0],    # norm 5
                           [0.0, 1.0],    # norm 1
                           [1.0, 1.0],    # norm 1.41
                           [-6.0, 0.0]])  # norm 6
    kept = _keep_mask(weight, "unit", 50)  # round(0.5 * 4) = 2 rows go.
    assert torch.equal(kept.all(dim=1), torch.tensor([True, False, False, True]))
    assert torch.equal(kept.any(dim=1), kept.all(dim=1))  # Whole rows only.


def test_unit_pruning_breaks_ties_by_row_index():
    weight = torch.tensor([[0.0, 2.0],
                           [2.0, 0.0],
                           [0.0, -2.0]])
    kept = _keep_mask(weight, "unit", 34)  # round(1.02) = 1 row; all norms are 2.
    assert torch.equal(kept.all(dim=1), torch.tensor([False, True, True]))


@pytest.mark.parametrize("method", ["weight", "unit"])
def test_final_matrix_is_never_pruned(method, random_weights):
    weights = random_weights([(6, 4), (5, 6), (3, 5)])
    pruned = pruning.prune(weights, method, 99)
    assert torch.equal(pruned[-1], weights[-1])
    # 99 % rounds to every weight (23.76 -> 24, 29.7 -> 30) and every row (5.94 -> 6, 4.95 -> 5).
    assert [int((matrix == 0).sum()) for matrix in pruned[:-1]] == [24, 30]


def test_prune_returns_copies_and_leaves_the_input_alone(random_weights):
    weights = random_weights([(4, 3), (2, 4)])
    before = [weight.clone() for weight in weights]
    pruning.prune(weights, "weight", 50)
    assert all(torch.equal(a, b) for a, b in zip(weights, before, strict=True))


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="unknown pruning method 'random'"):
        pruning.network_ranks([torch.ones(2, 2)], "random")


def test_sparsity_counts_zeros_over_every_matrix_including_the_last():
    weights = [torch.tensor([[0.0, 1.0], [0.0, 0.0]]),  # 3 zeros of 4
               torch.tensor([[0.0, 2.0]])]  # 1 zero of 2
    assert pruning.count_zero_weights(weights) == (4, 6)
    assert pruning.sparsity(weights) == pytest.approx(4 / 6)


def test_real_sparsity_of_a_pruned_network_matches_the_counts(random_weights):
    weights = random_weights([(10, 8), (6, 10), (3, 6)], seed=2)
    pruned = pruning.prune(weights, "unit", 50)  # 5 of 10 rows, 3 of 6 rows, last untouched.
    assert pruning.count_zero_weights(pruned) == (5 * 8 + 3 * 10, 80 + 60 + 18)


def test_k_label_names_integers_without_decimals_and_never_collides():
    assert names.k_label(90) == names.k_label(90.0) == "k90"
    assert names.k_label(97.5) == "k97.5"
    assert names.k_label(33.3333333) != names.k_label(33.33333)


def _chain():
    return [torch.arange(1.0, 21.0).reshape(4, 5), torch.arange(1.0, 13.0).reshape(3, 4),
            torch.ones(2, 3)]


# Weights kept per matrix of _chain() at each k: 20 and 12 weights in 4 and 3 rows, last whole.
KEPT_BY_MAGNITUDE = {
    "weight": {0: [20, 12, 6], 25: [15, 9, 6], 50: [10, 6, 6], 90: [2, 1, 6], 100: [0, 0, 6]},
    "unit": {0: [20, 12, 6], 25: [15, 8, 6], 50: [10, 4, 6], 90: [0, 0, 6], 100: [0, 0, 6]},
}


@pytest.mark.parametrize("method", ["weight", "unit"])
def test_random_control_prunes_as_many_as_magnitude_pruning_per_matrix(method):
    weights = _chain()
    for percent, expected in KEPT_BY_MAGNITUDE[method].items():
        magnitude = _keep_masks(weights, method, percent)
        random = _keep_masks(weights, method, percent, torch.Generator().manual_seed(0))
        assert [int(mask.sum()) for mask in magnitude] == expected
        assert [int(mask.sum()) for mask in random] == expected
        assert random[-1].all()
        if method == "unit":  # Whole rows go.
            assert all(((mask.all(dim=1)) | (~mask).all(dim=1)).all() for mask in random)


def test_random_control_is_seeded_nested_across_percents_and_not_magnitude():
    weight = [torch.arange(1.0, 1001.0).reshape(25, 40), torch.ones(2, 25)]

    def masks(percent, seed):
        return _keep_masks(weight, "weight", percent,
                                  torch.Generator().manual_seed(seed))[0]

    assert torch.equal(masks(50, seed=3), masks(50, seed=3))
    assert not torch.equal(masks(50, seed=3), masks(50, seed=4))
    assert torch.equal(masks(90, seed=3) & masks(50, seed=3), masks(90, seed=3))
    magnitude = torch.arange(1000).reshape(25, 40) >= 500  # The 500 smallest go.
    assert torch.equal(_keep_mask(weight[0], "weight", 50), magnitude)
    assert not torch.equal(masks(50, seed=3), magnitude)


@pytest.mark.parametrize("method", ["weight", "unit"])
def test_single_layer_pruning_prunes_that_matrix_only(method):
    weights = _chain()
    masks = _keep_masks(weights, method, 50, layer=1)
    assert masks[0].all() and masks[2].all()
    # Matrix 1 holds 1 .. 12 row by row: the 6 smallest weights, or the 2 smallest-norm rows.
    kept = torch.arange(12).reshape(3, 4) >= (6 if method == "weight" else 8)
    assert torch.equal(masks[1], kept)
    with pytest.raises(ValueError, match="layer must be from 0 to 1"):
        _keep_masks(weights, method, 50, layer=2)


def test_global_pruning_sets_one_threshold_over_every_prunable_matrix():
    weights = [torch.tensor([[0.1, 0.9], [0.8, 0.7]]), torch.tensor([[0.2, 0.3], [5.0, 0.4]]),
               torch.tensor([[0.01, 0.02]])]  # The last matrix is never pruned.
    masked = pruning.prune(weights, "global", 50)  # 4 of the 8 prunable weights go.
    assert torch.equal(masked[0], torch.tensor([[0.0, 0.9], [0.8, 0.7]]))
    assert torch.equal(masked[1], torch.tensor([[0.0, 0.0], [5.0, 0.0]]))
    assert torch.equal(masked[2], weights[2])


def test_global_random_control_prunes_as_many_weights_in_all(random_weights):
    weights = random_weights([(7, 5), (3, 7), (2, 3)], seed=2)
    masked = pruning.prune(weights, "global", 60, torch.Generator().manual_seed(1))
    zeros = sum(int((matrix == 0).sum()) for matrix in masked[:-1])
    assert zeros == pruning.count_to_prune(60, 35 + 21)
    assert torch.equal(masked[-1], weights[-1])
