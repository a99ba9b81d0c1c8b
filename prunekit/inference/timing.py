"""Timing callables in warm blocks, and the spread of their times over rounds.

After a warm-up, each round runs, in a fresh seeded random order, one *block* per callable: an
untimed call, then back-to-back timed calls; the block's mean time per call is the round's
figure. Blocks keep a plan's weights in the cache as a served model finds them; the random
order spreads drift in the machine's speed over all callables alike. See docs/benchmark.md.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

MAX_BLOCK_CALLS = 10_000  # No block holds more timed calls than this, however fast the call.
# Blocks are sized from warm calls back to back that last this share of a block (at least one).
SIZING_SHARE = 0.1


@dataclasses.dataclass(frozen=True)
class TimingPolicy:
    """How each callable is timed.

    Attributes:
        rounds: Blocks per callable, one per round; the reported figure is their median.
        block_seconds: Target duration of a block's timed calls: as many calls as fit, at
            least one, judged from warm calls (:func:`time_blocks`).
        warmup_calls: Untimed calls of each callable before the first round.
        max_block_calls: The most timed calls in one block.
    """

    rounds: int
    block_seconds: float
    warmup_calls: int = 1
    max_block_calls: int = MAX_BLOCK_CALLS

    def __post_init__(self) -> None:
        """Raises ValueError for a count below its minimum or a non-positive block time."""
        if min(self.rounds, self.max_block_calls) < 1:
            raise ValueError(f"rounds and max_block_calls must be >= 1, got {self.rounds} and "
                             f"{self.max_block_calls}")
        if self.warmup_calls < 0:
            raise ValueError(f"warmup_calls must be >= 0, got {self.warmup_calls}")
        if not 0 < self.block_seconds < math.inf:
            raise ValueError(f"block_seconds must be a number > 0, got {self.block_seconds}")

    def calls_per_block(self, seconds_per_call: float) -> int:
        """Returns how many timed calls of a callable taking ``seconds_per_call`` fill a block."""
        if seconds_per_call <= 0:
            return self.max_block_calls
        return max(1, min(self.max_block_calls, round(self.block_seconds / seconds_per_call)))


def time_blocks(calls: Mapping[str, Callable[[], object]], policy: TimingPolicy,
                clock: Callable[[], float] = time.perf_counter,
                warmups: Mapping[str, Callable[[], object]] | None = None,
                order_seed: int = 0) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Times callables in warm blocks, one block each per round in random order, GC paused.

    Args:
        calls: The callables to compare, by name; each is called without arguments.
        policy: Rounds and block length.
        clock: Seconds as a float; a fake clock makes the loop testable.
        warmups: Per name, what to call ``policy.warmup_calls`` times before timing starts,
            e.g. the same plan on fewer images; None warms up with ``calls`` themselves.
        order_seed: Seed of the order of the blocks within each round.

    Returns:
        Per name, the mean seconds per call of each round's block, in round order; and per
        name, the timed calls per block.

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
    block_calls = {name: policy.calls_per_block(_warm_seconds_per_call(call, policy, clock))
                   for name, call in calls.items()}
    durations: dict[str, list[float]] = {name: [] for name in calls}
    order = random.Random(order_seed)
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(policy.rounds):
            for name in order.sample(list(calls), len(calls)):
                call, count = calls[name], block_calls[name]
                call()  # Untimed: brings the plan's data back after the other plans' blocks.
                started = clock()
                for _ in range(count):
                    call()
                durations[name].append((clock() - started) / count)
    finally:
        if collecting:
            gc.enable()
    return durations, block_calls


def _warm_seconds_per_call(call: Callable[[], object], policy: TimingPolicy,
                           clock: Callable[[], float]) -> float:
    """Times a callable as a block finds it: after one untimed call, back to back.

    One call after the other callables' warm-ups can be ten times slower than the calls of a
    block (caches cold, worker threads asleep), and blocks sized by it held a tenth of their
    calls. The timed calls last :data:`SIZING_SHARE` of a block, at least one call.
    """
    call()
    count, started = 0, clock()
    while True:
        call()
        count += 1
        elapsed = clock() - started
        if elapsed >= SIZING_SHARE * policy.block_seconds or count >= policy.max_block_calls:
            return elapsed / count


def spread(durations: Sequence[float]) -> dict[str, float | int]:
    """Summarises seconds per call, one per round, as ``median_ms``, quartiles, extremes, rounds.

    Raises:
        ValueError: If ``durations`` is empty.
    """
    if not durations:
        raise ValueError("no timed runs to summarise")
    milliseconds = 1e3 * np.asarray(durations, dtype=np.float64)
    q1, median, q3 = np.percentile(milliseconds, [25, 50, 75])
    return {"median_ms": float(median), "q1_ms": float(q1), "q3_ms": float(q3),
            "iqr_ms": float(q3 - q1), "min_ms": float(milliseconds.min()),
            "max_ms": float(milliseconds.max()), "rounds": len(durations)}
