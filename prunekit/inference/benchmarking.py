"""Benchmark tables: every inference plan of a pruned network timed, as rows with speed-ups.

One *case* is one pruned network (method, k) at one batch size; :mod:`prunekit.timing` times
its plans and this module shapes the rows (median, spread, GFLOP/s, speed-ups over the masked
dense network and over the fastest dense plan, fraction of the ideal speed-up).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from prunekit import compact, pruning
from prunekit.inference import plans, timing

# Warm-up calls run on at most this many images: enough to pay one-time costs (thread pool,
# first touch of the weights, lazy set-up) without the cost of a full large batch.
WARMUP_BATCH = 256

ROW_KEYS = ("method", "k", "sparsity_percent", "batch_size", "plan", "formats", "median_ms",
            "q1_ms", "q3_ms", "iqr_ms", "min_ms", "max_ms", "rounds", "calls_per_block",
            "multiply_adds", "gflops", "speedup_vs_dense", "speedup_vs_fastest_dense",
            "fastest_dense_plan", "ideal_speedup", "nonzero_ideal_speedup",
            "fraction_of_ideal", "is_fastest")
CASE_KEYS = ("method", "k", "sparsity_percent", "nonzero_ideal_speedup")


def case_rows(case: Mapping[str, Any], durations: Mapping[str, Sequence[float]],
              multiply_adds: Mapping[str, int], formats: Mapping[str, Sequence[str]],
              block_calls: Mapping[str, int] | None = None,
              baseline: str = plans.BASELINE,
              dense_plans: Sequence[str] = plans.DENSE_PLANS) -> list[dict[str, Any]]:
    """Turns one case's timings into table rows, one per plan, with speed-ups.

    Args:
        case: :data:`CASE_KEYS` and ``batch_size`` of the case.
        durations: Per plan, the seconds per call of each round.
        multiply_adds: Per plan, its multiply-adds per sample.
        formats: Per plan, the format (``dense``/``csr``) of each matrix.
        block_calls: Per plan, the timed calls per block (0 where unknown).
        baseline: The plan ``speedup_vs_dense`` is relative to.
        dense_plans: Other plans of the full-size masked network; the fastest of these and
            the baseline is the reference of ``speedup_vs_fastest_dense``.

    Returns:
        Rows of :data:`ROW_KEYS`; ``is_fastest`` marks the smallest median, dense plans
        included. ``gflops`` counts two operations per multiply-add.

    Raises:
        ValueError: If the baseline was not timed, a plan lacks its multiply-adds or formats,
            or the case lacks a key.
    """
    missing_keys = [key for key in (*CASE_KEYS, "batch_size") if key not in case]
    if missing_keys:
        raise ValueError(f"case lacks {missing_keys}")
    if baseline not in durations:
        raise ValueError(f"baseline plan {baseline!r} was not timed; got {sorted(durations)}")
    missing = sorted(set(durations) - set(multiply_adds) | set(durations) - set(formats))
    if missing:
        raise ValueError(f"no multiply-add count or formats for plans {missing}")
    block_calls = block_calls or {}
    summaries = {plan: timing.spread(runs) for plan, runs in durations.items()}
    fastest = min(summaries, key=lambda plan: summaries[plan]["median_ms"])
    fastest_dense = min((plan for plan in (baseline, *dense_plans) if plan in summaries),
                        key=lambda plan: summaries[plan]["median_ms"])
    base = summaries[baseline]["median_ms"]
    dense = summaries[fastest_dense]["median_ms"]
    rows = []
    for plan, summary in summaries.items():
        speedup = base / summary["median_ms"]
        rows.append({
            "method": case["method"], "k": case["k"],
            "sparsity_percent": case["sparsity_percent"], "batch_size": case["batch_size"],
            "plan": plan, "formats": "/".join(formats[plan]),
            **{key: round(value, 5) if isinstance(value, float) else value
               for key, value in summary.items()},
            "calls_per_block": block_calls.get(plan, 0),
            "multiply_adds": multiply_adds[plan],
            "gflops": round(2 * multiply_adds[plan] * case["batch_size"]
                            / summary["median_ms"] / 1e6, 4),
            "speedup_vs_dense": round(speedup, 4),
            "speedup_vs_fastest_dense": round(dense / summary["median_ms"], 4),
            "fastest_dense_plan": fastest_dense,
            "ideal_speedup": ratio(multiply_adds[baseline], multiply_adds[plan]),
            "nonzero_ideal_speedup": case["nonzero_ideal_speedup"],
            "fraction_of_ideal": round(speedup / case["nonzero_ideal_speedup"], 4),
            "is_fastest": plan == fastest,
        })
    return rows


def ratio(numerator: float, denominator: float) -> float:
    """Divides two counts to 4 decimals; inf for a zero denominator (a network with no MAC)."""
    return round(numerator / denominator, 4) if denominator else math.inf


def describe_case(method: str, k: float, masked_weights: Sequence[torch.Tensor],
                  network: compact.CompactNetwork) -> dict[str, Any]:
    """Returns :data:`CASE_KEYS` of one pruned network and its compact form.

    ``nonzero_ideal_speedup`` is the original network's weight count over
    :func:`plans.nonzero_multiply_adds`, the best any plan could do.
    """
    dense_multiply_adds = sum(weight.numel() for weight in masked_weights)
    return {"method": method, "k": k,
            "sparsity_percent": round(100 * pruning.sparsity(masked_weights), 4),
            "nonzero_ideal_speedup": ratio(dense_multiply_adds,
                                           plans.nonzero_multiply_adds(network))}


def batch_of(images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Returns the first ``batch_size`` of ``images``, cycling through them if there are fewer.

    Raises:
        ValueError: If ``images`` is empty or ``batch_size`` is below 1.
    """
    if images.shape[0] < 1 or batch_size < 1:
        raise ValueError(f"need images and a batch size >= 1, got {images.shape[0]} images "
                         f"and batch {batch_size}")
    repeats = -(-batch_size // images.shape[0])
    return images.repeat(repeats, 1)[:batch_size].contiguous()


def benchmark_network(network_plans: Mapping[str, plans.Plan], case: Mapping[str, Any],
                      images: torch.Tensor, batch_sizes: Sequence[int],
                      policy: timing.TimingPolicy, seed: int = 0,
                      clock: Callable[[], float] = time.perf_counter) -> list[dict[str, Any]]:
    """Times every plan of one pruned network at every batch size; rows of :data:`ROW_KEYS`.

    Each batch is the first images of ``images`` (:func:`batch_of`): real images, since the
    kernel skips the activations ReLU zeroed. Plans warm up on the first :data:`WARMUP_BATCH`
    of them; ``seed`` seeds the block order. Call it in ``torch.inference_mode()`` to leave
    autograd out.
    """
    multiply_adds = {name: plan.multiply_adds for name, plan in network_plans.items()}
    formats = {name: plan.formats for name, plan in network_plans.items()}
    rows = []
    for batch_size in batch_sizes:
        batch = batch_of(images, batch_size)
        calls = {name: functools.partial(plan, batch) for name, plan in network_plans.items()}
        warmups = {name: functools.partial(plan, batch[:WARMUP_BATCH])
                   for name, plan in network_plans.items()}
        durations, block_calls = timing.time_blocks(calls, policy, clock, warmups, seed)
        rows.extend(case_rows({**case, "batch_size": batch_size}, durations, multiply_adds,
                              formats, block_calls))
    return rows
