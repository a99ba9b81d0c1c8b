"""Tests of the timing loop, with a fake clock, and of the spread of its rounds."""

import gc

import pytest

from prunekit.inference import timing


class FakeClock:
    """A clock that only moves when a fake plan runs; it also records the order of calls."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        """Returns the fake time in seconds."""
        return self.now

    def plan(self, name: str, seconds: float, cold: float | None = None):
        """Returns a fake plan that takes ``seconds`` of fake time, ``cold`` after another plan."""

        def call() -> None:
            warm = bool(self.calls) and self.calls[-1] == name
            self.calls.append(name)
            self.now += seconds if warm or cold is None else cold

        return call


def policy(**overrides) -> timing.TimingPolicy:
    settings = {"rounds": 3, "block_seconds": 0.004, "warmup_calls": 1}
    return timing.TimingPolicy(**{**settings, **overrides})


def test_every_plan_runs_one_warm_block_per_round_in_seeded_random_orders():
    clock = FakeClock()
    calls = {"a": clock.plan("a", 0.001), "b": clock.plan("b", 0.002), "c": clock.plan("c", 0.004)}
    durations, block_calls = timing.time_blocks(calls, policy(rounds=30), clock)
    assert block_calls == {"a": 4, "b": 2, "c": 1}  # As many calls as fill 0.004 s.
    # Warm-up, then block sizing: an untimed call and a timed one each.
    assert clock.calls[:9] == ["a", "b", "c", "a", "a", "b", "b", "c", "c"]
    blocks, position = [], 9
    while position < len(clock.calls):  # A block: one untimed call, then the timed ones.
        name = clock.calls[position]
        size = 1 + block_calls[name]
        assert clock.calls[position:position + size] == [name] * size
        blocks.append(name)
        position += size
    rounds = [tuple(blocks[start:start + 3]) for start in range(0, len(blocks), 3)]
    assert len(rounds) == 30 and all(sorted(order) == ["a", "b", "c"] for order in rounds)
    assert len(set(rounds)) == 6  # The order is drawn afresh: all 3! orders occur.
    assert durations["a"] == pytest.approx([0.001] * 30)  # Mean seconds per call per block.
    assert durations["c"] == pytest.approx([0.004] * 30)
    again = FakeClock()
    timing.time_blocks({name: again.plan(name, seconds) for name, seconds in
                        (("a", 0.001), ("b", 0.002), ("c", 0.004))},
                       policy(rounds=30), again)
    assert again.calls == clock.calls  # Same seed, same orders.


def test_separate_warmups_run_before_timing_and_must_match_the_calls():
    clock = FakeClock()
    calls = {"a": clock.plan("a", 0.004)}
    durations, _ = timing.time_blocks(calls, policy(warmup_calls=2), clock,
                                      warmups={"a": clock.plan("warm a", 0.5)})
    assert clock.calls == ["warm a", "warm a"] + ["a"] * 8  # Sizing, then 3 blocks of 1 + 1.
    assert durations["a"] == pytest.approx([0.004] * 3)  # Warm-up time is not counted.
    with pytest.raises(ValueError, match="warm-ups"):
        timing.time_blocks(calls, policy(), clock, warmups={"b": lambda: None})


def test_blocks_are_sized_from_warm_calls():
    clock = FakeClock()  # Each plan's first call after the other plan's is four times slower.
    calls = {"a": clock.plan("a", 0.0001, cold=0.0004), "b": clock.plan("b", 0.0002, cold=0.0008)}
    durations, block_calls = timing.time_blocks(calls, policy(), clock)
    assert block_calls == {"a": 40, "b": 20}  # Not the 10 and 5 that one cold call gives.
    assert durations["a"] == pytest.approx([0.0001] * 3)  # Each block's untimed call is cold.


def test_block_length_is_bounded():
    bounded = policy(block_seconds=1.0, max_block_calls=50)
    assert bounded.calls_per_block(1e-9) == 50
    assert bounded.calls_per_block(0.0) == 50
    assert bounded.calls_per_block(3.0) == 1
    assert bounded.calls_per_block(0.3) == 3


def test_garbage_collection_is_restored_and_bad_input_rejected():
    assert gc.isenabled()
    timing.time_blocks({"a": lambda: None}, policy())
    assert gc.isenabled()
    with pytest.raises(ValueError, match="empty"):
        timing.time_blocks({}, policy())
    with pytest.raises(ValueError, match="block_seconds"):
        policy(block_seconds=0)
    with pytest.raises(ValueError, match="rounds"):
        policy(rounds=0)


def test_spread_reports_median_quartiles_and_extremes_in_milliseconds():
    summary = timing.spread([0.004, 0.001, 0.100, 0.003, 0.002])
    assert summary == pytest.approx({"median_ms": 3.0, "q1_ms": 2.0, "q3_ms": 4.0,
                                     "iqr_ms": 2.0, "min_ms": 1.0, "max_ms": 100.0,
                                     "rounds": 5})
    with pytest.raises(ValueError):
        timing.spread([])
