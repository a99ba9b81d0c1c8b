"""Accuracy of many pruned variants of one network on a test set, computed in memory.

A sweep prunes one dense network every way the analysis needs, at every k, and evaluates each
masked network on the whole test set without writing anything:

* ``magnitude`` pruning of every prunable matrix (the pipeline's method);
* the ``random`` control, the same number of weights or rows per matrix chosen at random, in
  a few seeded draws;
* single-layer pruning (scope ``W1`` ... ``W4``): one matrix pruned by magnitude, the others
  intact.

Each masked network runs the plain masked forward pass, so the accuracies are exactly those
of an independent evaluation. Magnitude ranks are computed once per matrix and method, and a
single-layer variant reuses that matrix's mask and starts from the dense network's activations
entering it, so only the layers from the pruned one onwards are recomputed. Each variant also
counts the hidden neurons the pruning left dead (no live input, or no live reader), as
compaction (:mod:`prunekit.compact`) would remove them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from prunekit import compact, model, pruning

logger = logging.getLogger(__name__)

CONTROLS = ("magnitude", "random")
ALL_LAYERS = "all"
COLUMNS = ("method", "control", "scope", "draw", "k", "sparsity", "accuracy", "dead_units")


def scope_name(layer: int) -> str:
    """Names the scope of single-layer pruning of matrix ``layer`` (from 0): ``W1`` for 0."""
    return f"W{layer + 1}"


def layer_inputs(weights: Sequence[torch.Tensor], images: torch.Tensor) -> list[torch.Tensor]:
    """Computes what enters each matrix of the dense network.

    Args:
        weights: The dense (out, in) matrices, first layer first.
        images: Flattened images, shape (samples, 784).

    Returns:
        One tensor per matrix: the images for the first, then the ReLU activations
        (samples, in) of the layer before.
    """
    inputs = [images]
    with torch.no_grad():
        for weight in weights[:-1]:
            inputs.append(torch.relu(inputs[-1] @ weight.T))
    return inputs


@torch.no_grad()
def evaluate_masks(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                   inputs: Sequence[torch.Tensor], labels: torch.Tensor, first: int = 0
                   ) -> dict[str, float]:
    """Measures one masked network whose matrices before ``first`` are unpruned.

    The logits are those of the plain masked forward pass (the dense matrices with zeros), so
    an independent re-pruning and evaluation agrees to the last digit.

    Args:
        weights: The dense (out, in) matrices, first layer first.
        masks: One bool keep mask per matrix; those before ``first`` must keep everything.
        inputs: :func:`layer_inputs` of the dense network on the test images.
        labels: The test labels, shape (samples,).
        first: Index of the first matrix the masks prune; the pass starts there.

    Returns:
        ``sparsity`` (zero weights over all weights, fraction), ``accuracy`` (fraction) and
        ``dead_units`` (hidden neurons that compaction removes).
    """
    masked = pruning.apply_masks(weights, masks)
    zeros, total = pruning.count_zero_weights(masked)
    dead = sum(int((~alive).sum()) for alive in compact.live_units(masked)[1:-1])
    logits = model.forward_weights(masked[first:], inputs[first])  # (samples, 10)
    accuracy = int((logits.argmax(dim=1) == labels).sum()) / labels.shape[0]
    return {"sparsity": zeros / total, "accuracy": accuracy, "dead_units": dead}


def random_generator(seed: int, draw: int) -> torch.Generator:
    """Returns the CPU generator of one random-control draw, independent across (seed, draw)."""
    state = np.random.SeedSequence([seed, draw]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def sweep(weights: Sequence[torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
          percents: Sequence[float], methods: Sequence[str] = pruning.METHODS,
          random_draws: int = 3, random_seed: int = 0, single_layers: bool = True
          ) -> pd.DataFrame:
    """Evaluates magnitude, random-control and single-layer pruning at every k.

    Random draw ``d`` uses :func:`random_generator` ``(random_seed, d)`` afresh at every k,
    so its masks are nested across k. k = 0 is the dense network, measured once.

    Args:
        weights: The dense (out, in) matrices, first layer first.
        images: Test images, shape (samples, 784).
        labels: Test labels, shape (samples,).
        percents: The k values, percent of each prunable matrix to prune.
        methods: Pruning methods, ``weight`` and/or ``unit``.
        random_draws: Random-control draws per method and k; 0 skips the control.
        random_seed: Seed of the random control, e.g. the network's training seed.
        single_layers: Whether to prune each prunable matrix alone too.

    Returns:
        One row per (method, control, scope, draw, k) with the columns of :data:`COLUMNS`:
        ``scope`` is ``all`` or the one matrix pruned (``W1`` ...), ``draw`` is 0 for magnitude
        pruning, ``sparsity`` and ``accuracy`` are fractions.

    Raises:
        ValueError: If a method is unknown or ``random_draws`` is negative.
    """
    unknown = [method for method in methods if method not in pruning.METHODS]
    if unknown:
        raise ValueError(f"unknown pruning methods {unknown}; "
                         f"allowed: {', '.join(pruning.METHODS)}")
    if random_draws < 0:
        raise ValueError(f"random_draws must be >= 0, got {random_draws}")
    weights = [weight.detach() for weight in weights]
    prunable = len(weights) - 1
    inputs = layer_inputs(weights, images)
    dense = evaluate_masks(weights, [torch.ones_like(weight, dtype=torch.bool)
                                     for weight in weights], inputs, labels)
    logger.info("dense network: accuracy %.4f", dense["accuracy"])
    # (control, pruned layer or None for all, draw)
    variants = [("magnitude", None, 0), *[("random", None, draw) for draw in range(random_draws)],
                *[("magnitude", layer, 0) for layer in range(prunable if single_layers else 0)]]
    keep_all = [torch.ones_like(weight, dtype=torch.bool) for weight in weights]
    rows = []
    for method in methods:
        orders = [pruning.pruning_ranks(weight, method) for weight in weights[:-1]]
        for percent in percents:
            magnitude = [*[pruning.keep_mask_from_ranks(weight, order, percent)
                           for weight, order in zip(weights, orders, strict=False)],
                         keep_all[-1]]
            for control, layer, draw in variants:
                if percent == 0:
                    result = dense
                else:
                    if control == "random":
                        masks = pruning.random_keep_masks(weights, method, percent,
                                                          random_generator(random_seed, draw))
                    elif layer is None:
                        masks = magnitude
                    else:  # Matrix ``layer`` pruned as in ``magnitude``, the others intact.
                        masks = [*keep_all[:layer], magnitude[layer], *keep_all[layer + 1:]]
                    result = evaluate_masks(weights, masks, inputs, labels,
                                            first=0 if layer is None else layer)
                rows.append({"method": method, "control": control,
                             "scope": ALL_LAYERS if layer is None else scope_name(layer),
                             "draw": draw, "k": percent, **result})
        logger.info("swept %s pruning at %d k values", method, len(percents))
    return pd.DataFrame(rows, columns=list(COLUMNS))

