"""Stage benchmark: times every inference plan of every pruned network at every batch size."""

import logging
import os
import pathlib
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import onnxruntime
import torch
import tqdm

from prunekit import (
    benchmarking,
    cli,
    compact,
    files,
    layout,
    model,
    params,
    provenance,
    pruning,
    sparse_inference,
)

logger = logging.getLogger("benchmark")

SEED = 0  # Of the random stand-in images: timings do not depend on pixel values.
CHECK_BATCH = 64  # Images on which every plan is checked against the masked network.
LOG = pathlib.Path("logs/benchmark.json")


def file_sizes(dense_model: pathlib.Path, paths: Mapping[tuple[str, float], pathlib.Path]
               ) -> list[dict[str, Any]]:
    """Compares each compact artifact's file size with the dense model file's.

    Args:
        dense_model: The dense checkpoint.
        paths: Per ``(method, percent)``, the compact artifact's path.

    Returns:
        One row per artifact: ``method``, ``k``, ``bytes`` and ``fraction_of_dense`` (4
        decimals).
    """
    dense_bytes = dense_model.stat().st_size
    return [{"method": method, "k": percent, "bytes": path.stat().st_size,
             "fraction_of_dense": round(path.stat().st_size / dense_bytes, 4)}
            for (method, percent), path in paths.items()]


def measure(dense_model: pathlib.Path, paths: Mapping[tuple[str, float], pathlib.Path],
            hidden_sizes: Sequence[int], batch_sizes: Sequence[int],
            policy: benchmarking.TimingPolicy, num_threads: int) -> list[dict[str, Any]]:
    """Checks and times every plan of every pruned network.

    Args:
        dense_model: The dense checkpoint the networks were pruned from.
        paths: Per ``(method, percent)``, the compact artifact's path.
        hidden_sizes: The network's hidden layer widths.
        batch_sizes: The batch sizes to time.
        policy: How each plan is timed.
        num_threads: Threads of every plan.

    Returns:
        The rows of :func:`benchmarking.benchmark_network`, network by network.

    Raises:
        compact.ArtifactError: If a compact artifact is missing or not the expected one.
        model.CheckpointError: If the dense checkpoint is missing or of other sizes.
        sparse_inference.PlanMismatchError: If a plan's logits differ from the masked
            network's beyond rounding.
    """
    sizes = model.layer_sizes(hidden_sizes)
    compact.check_artifacts(paths, sizes)  # Before any timing.
    dense_weights = model.load_weights(dense_model, hidden_sizes)
    torch.set_num_threads(num_threads)
    check_images = benchmarking.random_images(CHECK_BATCH, sizes[0], SEED + 1)
    rows = []
    with torch.inference_mode():
        for method, percent in tqdm.tqdm(paths, desc="benchmark", unit="network",
                                          disable=not sys.stderr.isatty()):
            network = compact.load_compact(paths[method, percent], sizes, method, percent)
            masked = pruning.prune(dense_weights, method, percent)
            plans = sparse_inference.build_plans(masked, network, num_threads=num_threads)
            sparse_inference.verify_plans(plans, check_images)
            case = benchmarking.describe_case(method, percent, masked, network)
            del masked  # Only the baseline plans keep the masked matrices from here on.
            case_rows = benchmarking.benchmark_network(plans, case, sizes[0], batch_sizes,
                                                       policy, SEED)
            rows.extend(case_rows)
            logger.info("%s k=%g: fastest %s", method, percent, ", ".join(
                f"batch {row['batch_size']} {row['plan']} {row['speedup_vs_dense']:.2f}x "
                f"({row['speedup_vs_fastest_dense']:.2f}x over {row['fastest_dense_plan']})"
                for row in case_rows if row["is_fastest"]))
    return rows


def main() -> None:
    """Benchmarks each (method, k) of params.yaml's ``prune`` section, then writes the results.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        compact.ArtifactError: If a compact artifact is missing or not the expected one.
        model.CheckpointError: If models/dense.pt is missing or not of ``train.hidden_sizes``.
        sparse_inference.PlanMismatchError: If a plan's logits differ from the masked
            network's beyond rounding.
    """
    started = time.perf_counter()
    settings = params.load_params(["benchmark", "train", "prune"])
    config, prune_config = settings["benchmark"], settings["prune"]
    policy = benchmarking.TimingPolicy(rounds=config.rounds, block_seconds=config.block_seconds)
    paths = layout.pruned_models(prune_config.methods, prune_config.k_list)
    load_average = os.getloadavg()[0]
    rows = measure(layout.DENSE_MODEL, paths, settings["train"].hidden_sizes,
                   config.batch_sizes, policy, config.num_threads)
    log = {
        "provenance": {**provenance.describe(torch.device("cpu")),
                       "onnxruntime_version": onnxruntime.__version__},
        "timing": {"rounds": policy.rounds, "block_seconds": policy.block_seconds,
                   "load_average_at_start": round(load_average, 2),
                   "load_average_at_end": round(os.getloadavg()[0], 2),
                   "wall_seconds": round(time.perf_counter() - started, 1)},
    }
    with files.replace_together() as outputs:
        tables = outputs.directory(layout.BENCHMARK_TABLES)
        for name, table in benchmarking.series_tables(rows).items():
            files.write_csv(tables / f"{name}.csv", table)
        files.write_csv(tables / "all.csv", rows)
        files.write_csv(tables / "file_sizes.csv", file_sizes(layout.DENSE_MODEL, paths))
        files.write_json(outputs.file(LOG), log)
        files.write_json(outputs.file(layout.METRICS_DIR / "benchmark.json"),
                         benchmarking.summarize_rows(rows))


if __name__ == "__main__":
    cli.run_stage(main)
