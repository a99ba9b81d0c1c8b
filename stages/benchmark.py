"""Stage benchmark: times every inference plan of every pruned network at every batch size."""

import logging
import os
import pathlib
import sys
import time
from collections.abc import Sequence

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

# A plan stops after CAP_FACTOR * min_seconds of timed runs (given 3 runs) even short of
# min_repeats: at batch 10,000 a dense forward pass takes ~0.2 s, and the stage must stay short.
CAP_FACTOR = 3
SEED = 0  # Of the random stand-in images: timings do not depend on pixel values.
CHECK_BATCH = 64  # Images on which every plan is checked against the masked network.


def file_size_ratios(paths: dict[tuple[str, float], pathlib.Path],
                     cases: Sequence[tuple[str, float]] = benchmarking.HEADLINE_CASES
                     ) -> dict[str, float]:
    """Compares the headline cases' compact artifact sizes with the dense model file's.

    Args:
        paths: Per ``(method, percent)``, the compact artifact's path.
        cases: The ``(method, k)`` pairs to report; pairs not pruned are left out.

    Returns:
        Per ``<method>_<k label>``, the artifact's size as a fraction of ``models/dense.pt``'s,
        to 4 decimals.
    """
    dense_bytes = layout.DENSE_MODEL.stat().st_size
    return {f"{method}_{pruning.percent_label(percent)}": round(
        paths[method, percent].stat().st_size / dense_bytes, 4)
        for method, percent in cases if (method, percent) in paths}


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
    hidden_sizes = settings["train"].hidden_sizes
    policy = benchmarking.TimingPolicy(min_repeats=config.min_repeats,
                                       min_seconds=config.min_seconds,
                                       max_seconds=CAP_FACTOR * config.min_seconds)
    sizes = model.layer_sizes(hidden_sizes)
    paths = layout.pruned_models(prune_config.methods, prune_config.k_list)
    compact.check_artifacts(paths, sizes)  # Before any timing.
    dense_weights = model.load_weights(layout.DENSE_MODEL, hidden_sizes)
    torch.set_num_threads(config.num_threads)
    load_average = os.getloadavg()[0]
    check_images = benchmarking.random_images(CHECK_BATCH, sizes[0], SEED + 1)
    rows = []
    with torch.inference_mode():
        for method, percent in tqdm.tqdm(paths, desc="benchmark", unit="network",
                                          disable=not sys.stderr.isatty()):
            network = compact.load_compact(paths[method, percent], sizes, method, percent)
            masked = pruning.prune(dense_weights, method, percent)
            plans = sparse_inference.build_plans(masked, network)
            sparse_inference.verify_plans(plans, check_images)
            case = benchmarking.describe_case(method, percent, masked, network)
            del masked  # Only the baseline plan keeps the masked matrices from here on.
            case_rows = benchmarking.benchmark_network(plans, case, sizes[0], config.batch_sizes,
                                                       policy, SEED)
            rows.extend(case_rows)
            logger.info("%s k=%g: fastest %s", method, percent, ", ".join(
                f"batch {row['batch_size']} {row['plan']} {row['speedup_vs_dense']:.2f}x"
                for row in case_rows if row["is_fastest"]))
    summary = benchmarking.summarize_rows(rows)
    run_log = provenance.run_record(
        "cpu", max_seconds_per_plan=round(policy.max_seconds, 3),
        capped_rows=sum(row["repeats"] < config.min_repeats for row in rows),
        load_average_at_start=round(load_average, 2),
        wall_seconds=round(time.perf_counter() - started, 1),
        dense_median_ms=summary["dense_median_ms"], fastest=summary["fastest"])
    with files.replace_together() as outputs:
        files.write_csv(outputs.file(layout.BENCHMARK_TABLES / "all.csv"), rows)
        speedups = outputs.directory(layout.BENCHMARK_TABLES / "speedup")
        for name, table in benchmarking.series_tables(rows).items():
            files.write_csv(speedups / f"{name}.csv", table)
        files.write_json(outputs.file(layout.stage_log("benchmark")), run_log)
        files.write_json(outputs.file(layout.BENCHMARK_METRICS), {
            "speedup": summary["headline"], "file_size_vs_dense": file_size_ratios(paths)})


if __name__ == "__main__":
    cli.run_stage(main)
