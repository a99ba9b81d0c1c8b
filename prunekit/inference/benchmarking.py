"""Benchmark tables: every inference plan of a pruned network timed, as rows with speed-ups.

One *case* is one pruned network (method, k) at one batch size. :mod:`prunekit.timing` times
the plans of every case of a network together with the dense plans of the unpruned network,
the *reference*, in the same rounds, so every case divides by the same well-sampled baseline;
this module shapes the rows (median, spread, GFLOP/s, speed-ups over the reference's torch
dense plan and over its fastest dense plan with a 95 % interval from the rounds, fraction of
the multiply-add ideal).
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
# Distinct test images a timed call runs, in consecutive batches of the timed size (at least
# one batch): the kernels skip the activations ReLU zeroed, whose share varies from image to
# image (the adam dense network's batch-1 pass took 0.024 ms on the first test image and 0.042
# ms a call over the first 64, docs/benchmark.md).
TIMED_IMAGES = 64

ROW_KEYS = ("method", "k", "sparsity_percent", "batch_size", "plan", "formats", "median_ms",
            "q1_ms", "q3_ms", "iqr_ms", "min_ms", "max_ms", "rounds", "calls_per_block",
            "multiply_adds", "gflops", "dense_ms", "fastest_dense_ms", "speedup_vs_dense",
            "speedup_vs_fastest_dense", "speedup_low", "speedup_high", "interval_coverage",
            "fastest_dense_plan", "ideal_speedup", "nonzero_ideal_speedup",
            "fraction_of_ideal", "is_fastest")
COVERAGE = 0.95  # Of the interval around speedup_vs_fastest_dense, where the rounds allow it.
CASE_KEYS = ("method", "k", "sparsity_percent", "nonzero_ideal_speedup")


def median_interval(values: Sequence[float], coverage: float = COVERAGE
                    ) -> tuple[float, float, float]:
    """A distribution-free interval for the median of ``values``, from order statistics.

    The narrowest pair ``(x_(j), x_(n+1-j))`` of the sorted values whose chance of holding the
    median is at least ``coverage`` (a binomial count with p = 1/2); with too few values for
    that, the smallest and the largest.

    Returns:
        The low and high ends and the interval's coverage.

    Raises:
        ValueError: If ``values`` is empty.
    """
    if not values:
        raise ValueError("no values to bound")
    ordered, count = sorted(values), len(values)

    def covered(trimmed: int) -> float:
        """The chance that x_(trimmed) <= median <= x_(count + 1 - trimmed)."""
        return 1 - 2 * sum(math.comb(count, below) for below in range(trimmed)) / 2 ** count

    trimmed = 1
    while 2 * (trimmed + 1) <= count and covered(trimmed + 1) >= coverage:
        trimmed += 1
    return ordered[trimmed - 1], ordered[count - trimmed], covered(trimmed)


def case_rows(case: Mapping[str, Any], durations: Mapping[str, Sequence[float]],
              multiply_adds: Mapping[str, int], formats: Mapping[str, Sequence[str]],
              block_calls: Mapping[str, int] | None = None,
              baseline: str = plans.BASELINE,
              dense_plans: Sequence[str] = plans.DENSE_PLANS,
              reference: Mapping[str, Sequence[float]] | None = None) -> list[dict[str, Any]]:
    """Turns one case's timings into table rows, one per plan, with speed-ups.

    Args:
        case: :data:`CASE_KEYS` and ``batch_size`` of the case.
        durations: Per plan, the seconds per call of each round.
        multiply_adds: Per plan, its multiply-adds per sample.
        formats: Per plan, the format (``dense``/``csr``) of each matrix.
        block_calls: Per plan, the timed calls per block (0 where unknown).
        baseline: The dense plan ``speedup_vs_dense`` is relative to (PyTorch's).
        dense_plans: The other dense plans; the fastest of these and the baseline is the
            reference of ``speedup_vs_fastest_dense``.
        reference: Per dense plan of the unpruned network, its seconds per call in the same
            rounds as ``durations``; None takes the case's own dense plans.

    Returns:
        Rows of :data:`ROW_KEYS`. ``dense_ms`` and ``fastest_dense_ms`` are the reference's
        medians; ``speedup_low`` and ``speedup_high`` bound the median of the per-round ratios
        of the fastest dense plan's time to the plan's (:func:`median_interval`, coverage
        ``interval_coverage``); ``fraction_of_ideal`` is ``speedup_vs_fastest_dense`` over
        the multiply-add ideal; ``is_fastest`` marks the smallest median, dense plans included;
        ``gflops`` counts two operations per multiply-add.

    Raises:
        ValueError: If the baseline was not timed, a plan lacks its multiply-adds or formats,
            or the case lacks a key.
    """
    missing_keys = [key for key in (*CASE_KEYS, "batch_size") if key not in case]
    if missing_keys:
        raise ValueError(f"case lacks {missing_keys}")
    reference = durations if reference is None else reference
    if baseline not in reference:
        raise ValueError(f"baseline plan {baseline!r} was not timed; got {sorted(reference)}")
    missing = sorted(set(durations) - set(multiply_adds) | set(durations) - set(formats))
    if missing:
        raise ValueError(f"no multiply-add count or formats for plans {missing}")
    block_calls = block_calls or {}
    summaries = {plan: timing.spread(runs) for plan, runs in durations.items()}
    dense_medians = {plan: timing.spread(reference[plan])["median_ms"]
                     for plan in (baseline, *dense_plans) if plan in reference}
    fastest = min(summaries, key=lambda plan: summaries[plan]["median_ms"])
    fastest_dense = min(dense_medians, key=dense_medians.get)
    base, dense = dense_medians[baseline], dense_medians[fastest_dense]
    rows = []
    for plan, summary in summaries.items():
        speedup = dense / summary["median_ms"]
        low, high, coverage = median_interval(
            [dense_time / time for dense_time, time in zip(reference[fastest_dense],
                                                           durations[plan], strict=True)])
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
            "dense_ms": round(base, 5), "fastest_dense_ms": round(dense, 5),
            "speedup_vs_dense": round(base / summary["median_ms"], 4),
            "speedup_vs_fastest_dense": round(speedup, 4),
            "speedup_low": round(low, 4), "speedup_high": round(high, 4),
            "interval_coverage": round(coverage, 4),
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


def timed_batches(images: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Splits the first images into the batches one timed call runs (:data:`TIMED_IMAGES`).

    Consecutive batches of ``batch_size`` from the first images of ``images`` (:func:`batch_of`),
    as many as cover ``TIMED_IMAGES`` images: 64 batches of one image, one batch of 256.
    """
    count = -(-TIMED_IMAGES // batch_size)
    return list(batch_of(images, count * batch_size).split(batch_size))


def run_each(plan: Callable[[torch.Tensor], object], batches: Sequence[torch.Tensor]) -> None:
    """Runs ``plan`` on each batch in turn: one timed call."""
    for batch in batches:
        plan(batch)


def benchmark_networks(networks: Sequence[tuple[Mapping[str, Any], Mapping[str, plans.Plan]]],
                       reference: Mapping[str, plans.Plan], images: torch.Tensor,
                       batch_sizes: Sequence[int], policy: timing.TimingPolicy, seed: int = 0,
                       clock: Callable[[], float] = time.perf_counter) -> list[dict[str, Any]]:
    """Times every plan of every pruned network at every batch size; rows of :data:`ROW_KEYS`.

    ``networks`` are ``(case, plans)`` pairs (:func:`describe_case`); ``reference`` the dense
    plans of the unpruned network. At each batch size one :func:`timing.time_blocks` session
    holds all of them, so every plan runs in the same rounds, in one random order per round,
    and every case's speed-ups divide by the same reference medians. Each timed call runs a
    plan on the same batches of the first images of ``images`` (:func:`timed_batches`): real
    images, since the kernels skip the activations ReLU zeroed, and enough of them that no one
    image's zeros set the figure; a row's times are per batch. Plans warm up on the first
    :data:`WARMUP_BATCH` images of the first batch; ``seed`` seeds the block order. Call it in
    ``torch.inference_mode()`` to leave autograd out.
    """
    owners = {("reference", name): plan for name, plan in reference.items()}
    owners.update({(index, name): plan for index, (_, network_plans) in enumerate(networks)
                   for name, plan in network_plans.items()})
    keys = {f"{owner}/{name}": plan for (owner, name), plan in owners.items()}
    rows = []
    for batch_size in batch_sizes:
        batches = timed_batches(images, batch_size)
        calls = {key: functools.partial(run_each, plan, batches) for key, plan in keys.items()}
        warmups = {key: functools.partial(plan, batches[0][:WARMUP_BATCH])
                   for key, plan in keys.items()}
        call_durations, block_calls = timing.time_blocks(calls, policy, clock, warmups, seed)
        # Per batch: a timed call ran len(batches) of them.
        durations = {key: [seconds / len(batches) for seconds in values]
                     for key, values in call_durations.items()}
        block_calls = {key: count * len(batches) for key, count in block_calls.items()}
        reference_durations = {name: durations[f"reference/{name}"] for name in reference}
        for index, (case, network_plans) in enumerate(networks):
            rows.extend(case_rows(
                {**case, "batch_size": batch_size},
                {name: durations[f"{index}/{name}"] for name in network_plans},
                {name: plan.multiply_adds for name, plan in network_plans.items()},
                {name: plan.formats for name, plan in network_plans.items()},
                {name: block_calls[f"{index}/{name}"] for name in network_plans},
                reference=reference_durations))
    return rows
