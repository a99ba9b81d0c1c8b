"""Accuracy of many pruned variants of one network on a labelled split, computed in memory.

The variants: magnitude pruning of every prunable matrix, its seeded ``random`` control, and
each prunable matrix pruned alone (scope ``W1`` ...). docs/pipeline.md describes the method.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from prunekit import compact, model, names, pruning

logger = logging.getLogger(__name__)

ALL_LAYERS = "all"
COLUMNS = ("method", "control", "scope", "draw", "k", "sparsity", "accuracy",
           "validation_accuracy", "dead_units", "kept_weights", "compact_weights")


def scope_name(layer: int) -> str:
    """Names the scope of single-layer pruning of matrix ``layer`` (from 0): ``W1`` for 0."""
    return f"W{layer + 1}"


@torch.no_grad()
def evaluate_masks(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                   inputs: Sequence[torch.Tensor], labels: torch.Tensor, first: int = 0,
                   validation_size: int = 0) -> dict[str, float]:
    """Measures a masked network, its pass starting at matrix ``first`` from ``inputs[first]``.

    Masks before ``first`` must keep everything, so the logits are those of the whole masked
    forward pass; they are computed by the compact network (:func:`compact.compact`), which
    leaves out the terms dead units add as exact zeros. The first ``validation_size`` samples
    are the validation set, the rest the test set. Returns ``sparsity``, test ``accuracy`` and
    ``validation_accuracy`` (fractions; NaN without validation samples),
    ``dead_units`` (hidden neurons compaction removes: no live input or no live reader), and
    what the compact network keeps: ``kept_weights``, its non-zero weights (a sparse pass's
    multiply-adds per image), and ``compact_weights``, its matrices' entries (a dense pass's).
    """
    masked = pruning.apply_masks(weights, masks)
    zeros, total = pruning.count_zero_weights(masked)
    network = compact.compact(masked)  # The same logits, fewer products: dead units go.
    logits = model.forward_weights(network.weights[first:],
                                   inputs[first][:, network.kept_units[first]])  # (samples, 10)
    return {"sparsity": zeros / total,
            "accuracy": model.accuracy(logits[validation_size:], labels[validation_size:]),
            "validation_accuracy": (model.accuracy(logits[:validation_size],
                                                   labels[:validation_size])
                                    if validation_size else float("nan")),
            "dead_units": sum(size - len(kept) for size, kept in
                              zip(network.layer_sizes[1:-1], network.kept_units[1:-1],
                                  strict=True)),
            "kept_weights": network.num_nonzero(), "compact_weights": network.num_weights()}


def random_generator(seed: int, draw: int) -> torch.Generator:
    """Returns the CPU generator of one random-control draw, independent across (seed, draw)."""
    state = np.random.SeedSequence([seed, draw]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def accuracy_table(weights: Sequence[torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
                   k_list: Sequence[float], methods: Sequence[str] = names.METHODS,
                   random_draws: int = 3, random_seed: int = 0, single_layers: bool = True,
                   validation: tuple[torch.Tensor, torch.Tensor] | None = None
                   ) -> pd.DataFrame:
    """Evaluates magnitude, random-control and single-layer pruning at every k.

    ``images`` and ``labels`` are the test set; every variant is also measured on the
    ``validation`` images and labels when given (one forward pass over both).

    ``k_list`` are percents of each prunable matrix; k = 0 is the dense network, measured once.
    Random draw ``d`` (``random_draws`` 0 skips the control) uses :func:`random_generator`
    ``(random_seed, d)`` afresh at every k, so its masks nest across k. Every mask comes from
    :func:`pruning.keep_masks`, as the prune stage's do.

    Returns:
        One row per (method, control, scope, draw, k), columns :data:`COLUMNS`: ``scope`` is
        ``all`` or the one matrix pruned (``W1`` ...), ``draw`` is 0 for magnitude pruning.

    Raises:
        ValueError: If a method is unknown or ``random_draws`` is negative.
    """
    unknown = [method for method in methods if method not in names.METHODS]
    if unknown:
        raise ValueError(f"unknown pruning methods {unknown}; "
                         f"allowed: {', '.join(names.METHODS)}")
    if random_draws < 0:
        raise ValueError(f"random_draws must be >= 0, got {random_draws}")
    weights = [weight.detach() for weight in weights]
    validation_size = 0 if validation is None else validation[1].shape[0]
    if validation is not None:
        images, labels = torch.cat([validation[0], images]), torch.cat([validation[1], labels])
    with torch.no_grad():
        inputs = list(model.layer_outputs(weights, images))[:-1]  # What enters each matrix.
    keep_all = [torch.ones_like(weight, dtype=torch.bool) for weight in weights]
    dense = evaluate_masks(weights, keep_all, inputs, labels, validation_size=validation_size)
    logger.info("dense network: test accuracy %.4f, validation %.4f", dense["accuracy"],
                dense["validation_accuracy"])
    # (control, pruned layer or None for all, draw)
    variants = [("magnitude", None, 0), *[("random", None, draw) for draw in range(random_draws)],
                *[("magnitude", layer, 0)
                  for layer in range(len(weights) - 1 if single_layers else 0)]]
    rows = []
    for method in methods:
        magnitude = pruning.network_ranks(weights, method)  # Ranked once for every k.
        pooled = method == pruning.GLOBAL  # One threshold: no matrix is pruned alone.
        for k in k_list:
            for control, layer, draw in [variant for variant in variants
                                         if not (pooled and variant[1] is not None)]:
                if k == 0:
                    result = dense
                else:
                    orders = (magnitude if control == "magnitude" else pruning.network_ranks(
                        weights, method, random_generator(random_seed, draw)))
                    masks = pruning.keep_masks(weights, orders, k, layer, pooled)
                    result = evaluate_masks(weights, masks, inputs, labels,
                                            first=0 if layer is None else layer,
                                            validation_size=validation_size)
                rows.append({"method": method, "control": control,
                             "scope": ALL_LAYERS if layer is None else scope_name(layer),
                             "draw": draw, "k": k, **result})
        logger.info("evaluated %s pruning at %d k values", method, len(k_list))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def magnitude_results(table: pd.DataFrame) -> dict:
    """Picks magnitude pruning of every prunable matrix out of :func:`accuracy_table`'s rows.

    Returns:
        ``dense`` test ``accuracy`` and ``validation_accuracy``, then per method and k label
        its ``k``, both accuracies and ``sparsity`` (fractions): the shape of a network's
        ``evaluate.json`` (a NaN validation accuracy, none measured, becomes None).
    """
    magnitude = table[(table["control"] == "magnitude") & (table["scope"] == ALL_LAYERS)]

    def accuracies(row: pd.Series) -> dict:
        validation = float(row["validation_accuracy"])
        return {"accuracy": float(row["accuracy"]),
                "validation_accuracy": None if np.isnan(validation) else validation}

    dense = magnitude[magnitude["k"] == 0]
    chosen: dict = {"dense": accuracies(dense.iloc[0]) if len(dense) else
                    {"accuracy": None, "validation_accuracy": None}}
    for _, row in magnitude.iterrows():
        chosen.setdefault(row["method"], {})[names.k_label(row["k"])] = {
            "k": row["k"], **accuracies(row), "sparsity": row["sparsity"]}
    return chosen


# Bin edges of the |w| histograms: decades from 1e-6 to 10, four bins a decade; a first bin
# holds the exact zeros.
HISTOGRAM_EDGES = torch.logspace(-6, 1, 29, dtype=torch.float64)


def weight_statistics(weights: Sequence[torch.Tensor], k_list: Sequence[float],
                      methods: Sequence[str] = names.METHODS) -> pd.DataFrame:
    """Measures what pruning acts on, per prunable matrix: its |w| and the L1 mass removed.

    Returns:
        Long rows ``layer`` (``W1`` ...), ``quantity``, ``x``, ``value``: quantity
        ``zero_fraction`` (x 0) is the share of exact zeros; ``abs_weight_histogram`` the share
        of non-zero weights with |w| at most ``x`` and above the edge before;
        ``l1_removed_<method>`` the share of the matrix's L1 mass (sum of |w|) that magnitude
        pruning with that method at k = ``x`` removes.
    """
    weights = [weight.detach() for weight in weights]
    rows = []
    for index, weight in enumerate(weights[:-1]):
        magnitudes = weight.abs().flatten().to(torch.float64)
        nonzero = magnitudes[magnitudes > 0]
        counts = torch.bucketize(nonzero, HISTOGRAM_EDGES).bincount(
            minlength=len(HISTOGRAM_EDGES) + 1)[:len(HISTOGRAM_EDGES)]
        rows.append((index, "zero_fraction", 0, 1 - len(nonzero) / len(magnitudes)))
        rows += [(index, "abs_weight_histogram", float(edge), int(count) / max(len(nonzero), 1))
                 for edge, count in zip(HISTOGRAM_EDGES, counts, strict=True)]
    total_mass = [float(weight.abs().sum()) for weight in weights[:-1]]
    for method in methods:
        orders = pruning.network_ranks(weights, method)
        for k in k_list:
            masks = pruning.keep_masks(weights, orders, k, pooled=method == pruning.GLOBAL)
            rows += [(index, f"l1_removed_{method}", k,
                      float(weight[~mask].abs().sum()) / mass if mass else 0.0)
                     for index, (weight, mask, mass) in enumerate(
                         zip(weights[:-1], masks[:-1], total_mass, strict=True))]
    return pd.DataFrame([{"layer": scope_name(index), "quantity": quantity, "x": x,
                          "value": value} for index, quantity, x, value in rows])
