"""Timing of inference plans, interleaved and summarised with their spread, as table rows.

One *case* is one pruned network (method, k) at one batch size. All plans of a case are timed
in the same loop: after warm-up, each round calls every plan still being timed once, in a fresh
seeded random order, so that drift in the machine's speed (another process, frequency changes)
hits every plan alike and no plan always runs right after the same one. Each plan holds its own
copy of its matrices (see :mod:`prunekit.sparse_inference`), so a call finds in the cache only
what its own earlier calls, or other plans' unrelated data, left there: the regime of a server
that runs several models, not of one model alone in the cache.

A plan leaves the rotation once it has ``min_repeats`` runs and ``min_seconds`` of timed runs,
or once it has ``max_seconds`` of timed runs and at least ``capped_repeats`` runs. The cap
bounds the slow cases (batch 10,000 of the dense network takes ~0.2 s a call on 2 threads),
where ``min_repeats`` runs alone would take seconds per plan; such rows report fewer runs.

Compare speed-ups, not absolute times, across runs: interleaving protects the ratios within a
case, but on a machine whose cache and memory bandwidth are shared (another process, other
tenants of a virtual machine's host) the cache-bound sparse plans slow down far more than the
compute-bound dense ones; runs here differed by up to 2x for them, ~10 % for dense products.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from prunekit import compact, files, pruning, sparse_inference

# A capped plan still gets this many timed runs (its median is then the middle one of three).
CAPPED_REPEATS = 3
# No plan is timed more often than this in one case, however fast it is.
MAX_REPEATS = 100_000
# Warm-up calls run on at most this many images: enough to pay one-time costs (thread pool,
# first touch of the weights, lazy set-up) without a full call, which at batch 10,000 takes up
# to a second per plan; the median of the timed runs absorbs what a first big call adds.
WARMUP_BATCH = 256

# The speed-ups metrics/benchmark.json reports: (method, k) at each headline batch size.
HEADLINE_CASES = (("weight", 90), ("weight", 95), ("weight", 99), ("unit", 90))
HEADLINE_BATCHES = (1, 256)

ROW_KEYS = ("method", "k", "sparsity_percent", "batch_size", "plan", "formats", "median_ms",
            "q1_ms", "q3_ms", "iqr_ms", "min_ms", "max_ms", "repeats", "multiply_adds",
            "speedup_vs_dense", "ideal_speedup", "nonzero_ideal_speedup", "is_fastest")
CASE_KEYS = ("method", "k", "sparsity_percent", "nonzero_ideal_speedup")


@dataclasses.dataclass(frozen=True)
class TimingPolicy:
    """How long each plan of a case is timed.

    Attributes:
        min_repeats: Timed runs each plan gets at least (unless capped).
        min_seconds: Timed seconds each plan gets at least (unless capped).
        max_seconds: Timed seconds after which a plan stops once it has ``capped_repeats``
            runs, even short of ``min_repeats``.
        warmup_calls: Untimed calls of each plan before timing starts.
        capped_repeats: Runs a plan gets at least, even when capped.
        max_repeats: Runs after which a plan stops in any case.
    """

    min_repeats: int
    min_seconds: float
    max_seconds: float
    warmup_calls: int = 1
    capped_repeats: int = CAPPED_REPEATS
    max_repeats: int = MAX_REPEATS

    def __post_init__(self) -> None:
        """Checks the values.

        Raises:
            ValueError: If a count is below 1 (warm-up below 0), a duration is not positive,
                or ``max_seconds`` is below ``min_seconds``.
        """
        if min(self.min_repeats, self.capped_repeats, self.max_repeats) < 1:
            raise ValueError("min_repeats, capped_repeats and max_repeats must be >= 1")
        if self.warmup_calls < 0:
            raise ValueError(f"warmup_calls must be >= 0, got {self.warmup_calls}")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(f"need 0 < min_seconds <= max_seconds, got {self.min_seconds} "
                             f"and {self.max_seconds}")

    def is_done(self, repeats: int, seconds: float) -> bool:
        """Decides whether a plan may leave the rotation.

        Args:
            repeats: The plan's timed runs so far.
            seconds: Their total duration.

        Returns:
            True once it has ``min_repeats`` runs and ``min_seconds``; or ``max_seconds`` and
            ``capped_repeats`` runs (``min_repeats`` if fewer); or ``max_repeats`` runs.
        """
        return ((repeats >= self.min_repeats and seconds >= self.min_seconds)
                or (seconds >= self.max_seconds
                    and repeats >= min(self.capped_repeats, self.min_repeats))
                or repeats >= self.max_repeats)


def time_interleaved(calls: Mapping[str, Callable[[], object]], policy: TimingPolicy,
                     clock: Callable[[], float] = time.perf_counter,
                     warmups: Mapping[str, Callable[[], object]] | None = None,
                     order_seed: int = 0) -> dict[str, list[float]]:
    """Times several callables in rounds of random order, after warm-up, with GC paused.

    Args:
        calls: The callables to compare, by name; each is called without arguments.
        policy: When each callable may stop.
        clock: Seconds as a float; a fake clock makes the loop testable.
        warmups: Per name, what to call ``policy.warmup_calls`` times before timing starts,
            e.g. the same plan on fewer images; None warms up with ``calls`` themselves.
        order_seed: Seed of the order of the calls within each round.

    Returns:
        Per name, the duration in seconds of each timed call, in the order they ran.

    Raises:
        ValueError: If ``calls`` is empty or ``warmups`` names other callables.
    """
    if not calls:
        raise ValueError("nothing to time: calls is empty")
    warmups = calls if warmups is None else warmups
    if set(warmups) != set(calls):
        raise ValueError(f"warm-ups for {sorted(warmups)} do not match calls {sorted(calls)}")
    for _ in range(policy.warmup_calls):
        for warmup in warmups.values():
            warmup()
    durations: dict[str, list[float]] = {name: [] for name in calls}
    seconds = dict.fromkeys(calls, 0.0)
    active = list(calls)
    collecting = gc.isenabled()
    gc.disable()
    order = random.Random(order_seed)
    try:
        while active:
            for name in order.sample(active, len(active)):
                started = clock()
                calls[name]()
                duration = clock() - started
                durations[name].append(duration)
                seconds[name] += duration
            active = [name for name in active
                      if not policy.is_done(len(durations[name]), seconds[name])]
    finally:
        if collecting:
            gc.enable()
    return durations


def summarize(durations: Sequence[float]) -> dict[str, float | int]:
    """Summarises timed runs in milliseconds: median, quartiles, extremes and count.

    Args:
        durations: Seconds per run.

    Returns:
        ``median_ms``, ``q1_ms``, ``q3_ms``, ``iqr_ms``, ``min_ms``, ``max_ms`` and
        ``repeats``.

    Raises:
        ValueError: If ``durations`` is empty.
    """
    if not durations:
        raise ValueError("no timed runs to summarise")
    milliseconds = 1e3 * np.asarray(durations, dtype=np.float64)
    q1, median, q3 = np.percentile(milliseconds, [25, 50, 75])
    return {"median_ms": float(median), "q1_ms": float(q1), "q3_ms": float(q3),
            "iqr_ms": float(q3 - q1), "min_ms": float(milliseconds.min()),
            "max_ms": float(milliseconds.max()), "repeats": len(durations)}


def case_rows(case: Mapping[str, Any], durations: Mapping[str, Sequence[float]],
              multiply_adds: Mapping[str, int], formats: Mapping[str, Sequence[str]],
              baseline: str = sparse_inference.BASELINE) -> list[dict[str, Any]]:
    """Turns one case's timings into table rows, one per plan, with speed-ups.

    Args:
        case: :data:`CASE_KEYS` and ``batch_size`` of the case (see :func:`describe_case`).
        durations: Per plan, the seconds of each timed run.
        multiply_adds: Per plan, its ideal multiply-adds per sample.
        formats: Per plan, the format (``dense``/``csr``) of each matrix.
        baseline: The plan the speed-ups are relative to.

    Returns:
        Rows with the keys :data:`ROW_KEYS`; ``is_fastest`` marks the plan (baseline included)
        with the smallest median, so the fastest plan is never slower than the baseline.

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
    summaries = {plan: summarize(runs) for plan, runs in durations.items()}
    fastest = min(summaries, key=lambda plan: summaries[plan]["median_ms"])
    base = summaries[baseline]["median_ms"]
    rows = []
    for plan, summary in summaries.items():
        rows.append({
            "method": case["method"], "k": case["k"],
            "sparsity_percent": case["sparsity_percent"], "batch_size": case["batch_size"],
            "plan": plan, "formats": "/".join(formats[plan]),
            **{key: round(value, 5) if isinstance(value, float) else value
               for key, value in summary.items()},
            "multiply_adds": multiply_adds[plan],
            "speedup_vs_dense": round(base / summary["median_ms"], 4),
            "ideal_speedup": ratio(multiply_adds[baseline], multiply_adds[plan]),
            "nonzero_ideal_speedup": case["nonzero_ideal_speedup"],
            "is_fastest": plan == fastest,
        })
    return rows


def ratio(numerator: float, denominator: float) -> float:
    """Divides two counts for a speed-up column, infinite for a zero denominator.

    A network pruned so far that a whole layer is gone (unit pruning near k = 100) computes
    constant logits with no multiply-add at all: its ideal speed-up is unbounded.

    Args:
        numerator: E.g. the baseline's multiply-adds.
        denominator: E.g. a plan's multiply-adds.

    Returns:
        ``numerator / denominator`` rounded to 4 decimals, or ``math.inf`` if ``denominator``
        is zero.
    """
    return round(numerator / denominator, 4) if denominator else math.inf


def describe_case(method: str, percent: float, masked_weights: Sequence[torch.Tensor],
                  network: compact.CompactNetwork) -> dict[str, Any]:
    """Describes one pruned network for its benchmark rows.

    Args:
        method: The pruning method.
        percent: The pruning percentage ``k``.
        masked_weights: The full-size masked matrices.
        network: The compact network made from them.

    Returns:
        :data:`CASE_KEYS`: ``sparsity_percent`` is the share of zero weights over all
        matrices in percent; ``nonzero_ideal_speedup`` is the original network's weight count
        over :func:`sparse_inference.nonzero_multiply_adds`, the best any plan could do.
    """
    dense_multiply_adds = sum(weight.numel() for weight in masked_weights)
    return {"method": method, "k": percent,
            "sparsity_percent": round(100 * pruning.sparsity(masked_weights), 4),
            "nonzero_ideal_speedup": ratio(dense_multiply_adds,
                                           sparse_inference.nonzero_multiply_adds(network))}


def random_images(batch_size: int, input_size: int, seed: int) -> torch.Tensor:
    """Returns reproducible stand-in images, uniform in [0, 1) like the scaled pixels.

    Args:
        batch_size: Number of images.
        input_size: Pixels per image.
        seed: Seed of the generator.

    Returns:
        A float32 tensor (batch_size, input_size).

    Raises:
        ValueError: If a size is below 1.
    """
    if batch_size < 1 or input_size < 1:
        raise ValueError(f"sizes must be >= 1, got batch {batch_size} and input {input_size}")
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch_size, input_size, generator=generator)


def benchmark_network(plans: Mapping[str, sparse_inference.Plan], case: Mapping[str, Any],
                      input_size: int, batch_sizes: Sequence[int], policy: TimingPolicy,
                      seed: int = 0, clock: Callable[[], float] = time.perf_counter
                      ) -> list[dict[str, Any]]:
    """Times every plan of one pruned network at every batch size.

    Plans are warmed up on the first :data:`WARMUP_BATCH` images of each batch. Call it
    inside ``torch.inference_mode()`` to leave autograd out of the timings.

    Args:
        plans: The plans by name, the baseline among them.
        case: :data:`CASE_KEYS` of the network (see :func:`describe_case`).
        input_size: Pixels per image the plans take.
        batch_sizes: The batch sizes, each one case.
        policy: How long each plan is timed.
        seed: Seed of the random input images.
        clock: Seconds as a float.

    Returns:
        Rows with the keys :data:`ROW_KEYS`, batch by batch.
    """
    multiply_adds = {name: plan.multiply_adds for name, plan in plans.items()}
    formats = {name: plan.formats for name, plan in plans.items()}
    rows = []
    for batch_size in batch_sizes:
        images = random_images(batch_size, input_size, seed)
        calls = {name: functools.partial(plan, images) for name, plan in plans.items()}
        warmups = {name: functools.partial(plan, images[:WARMUP_BATCH])
                   for name, plan in plans.items()}
        durations = time_interleaved(calls, policy, clock, warmups)
        rows.extend(case_rows({**case, "batch_size": batch_size}, durations, multiply_adds,
                              formats))
    return rows


def _label(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """Returns the method, ``k`` label and ``batch`` label of a row.

    Args:
        row: A benchmark row, as built or read back from its CSV file.

    Returns:
        E.g. ``("weight", "k95", "batch256")``.
    """
    return (str(row["method"]), pruning.percent_label(float(row["k"])),
            f"batch{int(row['batch_size'])}")


def summarize_rows(rows: Sequence[Mapping[str, Any]],
                   headline_cases: Sequence[tuple[str, float]] = HEADLINE_CASES,
                   headline_batches: Sequence[int] = HEADLINE_BATCHES) -> dict[str, Any]:
    """Condenses benchmark rows into the headline speed-ups and a record of the fastest plans.

    Args:
        rows: Rows from :func:`case_rows`, or read back from their CSV file (strings).
        headline_cases: ``(method, k)`` pairs to report at each of ``headline_batches``;
            pairs and batch sizes that were not measured are left out.
        headline_batches: Batch sizes of the headline figures.

    Returns:
        ``headline``: per ``batch<N>`` and ``<method>_<k label>``, the fastest plan's speed-up
        over the masked dense network; ``dense_median_ms``: per batch size, the median over
        cases of the baseline's median time; ``fastest``: per method, k label and batch
        label, the fastest plan with its speed-up and ideal speed-up.
    """
    fastest: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    dense_ms: dict[str, list[float]] = {}
    for row in rows:
        method, k_label, batch_label = _label(row)
        if row["plan"] == sparse_inference.BASELINE:
            dense_ms.setdefault(batch_label, []).append(float(row["median_ms"]))
        if files.csv_bool(row["is_fastest"]):
            fastest.setdefault(method, {}).setdefault(k_label, {})[batch_label] = {
                "plan": row["plan"], "speedup": round(float(row["speedup_vs_dense"]), 2),
                "ideal_speedup": round(float(row["ideal_speedup"]), 2)}
    headline: dict[str, dict[str, float]] = {}
    for batch_size in headline_batches:
        for method, percent in headline_cases:
            label = pruning.percent_label(percent)
            entry = fastest.get(method, {}).get(label, {}).get(f"batch{batch_size}")
            if entry is not None:
                headline.setdefault(f"batch{batch_size}", {})[f"{method}_{label}"] = (
                    entry["speedup"])
    return {"headline": headline,
            "dense_median_ms": {batch: round(float(np.median(times)), 4)
                                for batch, times in dense_ms.items()},
            "fastest": fastest}


def series_tables(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Lays out the fastest and the ideal speed-up of every case for ``dvc plots``.

    Args:
        rows: Rows from :func:`case_rows`, or read back from their CSV file (strings).

    Returns:
        Per name ``batch<N>``, rows sorted by method and sparsity with ``series`` (e.g.
        ``weight: fastest plan`` or ``weight: ideal``), ``method``, ``k``,
        ``sparsity_percent``, ``speedup`` and ``plan``.
    """
    tables: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if not files.csv_bool(row["is_fastest"]):
            continue
        method, _, batch_label = _label(row)
        case = {"method": method, "k": row["k"], "sparsity_percent": row["sparsity_percent"]}
        tables.setdefault(batch_label, []).extend([
            {"series": f"{method}: fastest plan", **case, "speedup": row["speedup_vs_dense"],
             "plan": row["plan"]},
            {"series": f"{method}: ideal", **case, "speedup": row["nonzero_ideal_speedup"],
             "plan": "ideal"}])
    return {name: sorted(table, key=lambda row: (row["series"], float(row["sparsity_percent"])))
            for name, table in tables.items()}
