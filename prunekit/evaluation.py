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
COLUMNS = ("method", "control", "scope", "draw", "k", "sparsity", "accuracy", "dead_units")


def scope_name(layer: int) -> str:
    """Names the scope of single-layer pruning of matrix ``layer`` (from 0): ``W1`` for 0."""
    return f"W{layer + 1}"


@torch.no_grad()
def evaluate_masks(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                   inputs: Sequence[torch.Tensor], labels: torch.Tensor, first: int = 0
                   ) -> dict[str, float]:
    """Measures a masked network, its pass starting at matrix ``first`` from ``inputs[first]``.

    Masks before ``first`` must keep everything, so the logits are bit for bit those of the
    whole masked forward pass. Returns ``sparsity`` and ``accuracy`` (fractions) and
    ``dead_units`` (hidden neurons compaction removes: no live input or no live reader).
    """
    masked = pruning.apply_masks(weights, masks)
    zeros, total = pruning.count_zero_weights(masked)
    dead = sum(int((~alive).sum()) for alive in compact.live_units(masked)[1:-1])
    logits = model.forward_weights(masked[first:], inputs[first])  # (samples, 10)
    return {"sparsity": zeros / total, "accuracy": model.accuracy(logits, labels),
            "dead_units": dead}


def random_generator(seed: int, draw: int) -> torch.Generator:
    """Returns the CPU generator of one random-control draw, independent across (seed, draw)."""
    state = np.random.SeedSequence([seed, draw]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def accuracy_table(weights: Sequence[torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
                   k_list: Sequence[float], methods: Sequence[str] = names.METHODS,
                   random_draws: int = 3, random_seed: int = 0, single_layers: bool = True
                   ) -> pd.DataFrame:
    """Evaluates magnitude, random-control and single-layer pruning at every k.

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
    with torch.no_grad():
        inputs = list(model.layer_outputs(weights, images))[:-1]  # What enters each matrix.
    keep_all = [torch.ones_like(weight, dtype=torch.bool) for weight in weights]
    dense = evaluate_masks(weights, keep_all, inputs, labels)
    logger.info("dense network: accuracy %.4f", dense["accuracy"])
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
                                            first=0 if layer is None else layer)
                rows.append({"method": method, "control": control,
                             "scope": ALL_LAYERS if layer is None else scope_name(layer),
                             "draw": draw, "k": k, **result})
        logger.info("evaluated %s pruning at %d k values", method, len(k_list))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def magnitude_results(table: pd.DataFrame) -> dict:
    """Picks magnitude pruning of every prunable matrix out of :func:`accuracy_table`'s rows.

    Returns:
        ``dense`` accuracy, then per method and k label its ``k``, ``accuracy`` and
        ``sparsity`` (fractions): the shape of a network's ``evaluate.json``.
    """
    magnitude = table[(table["control"] == "magnitude") & (table["scope"] == ALL_LAYERS)]
    dense = magnitude[magnitude["k"] == 0]["accuracy"]
    chosen: dict = {"dense": {"accuracy": float(dense.iloc[0]) if len(dense) else None}}
    for row in magnitude.itertuples():
        chosen.setdefault(row.method, {})[names.k_label(row.k)] = {
            "k": row.k, "accuracy": row.accuracy, "sparsity": row.sparsity}
    return chosen
