"""Stage benchmark: times every inference plan of a recipe's pruned networks, every batch size."""

import logging
import os
import sys
import time

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


def main() -> None:
    """Benchmarks each (method, k) of the recipe on the command line, then writes the rows.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        errors.InputError: If the recipe is not in params.yaml.
        compact.ArtifactError: If a compact artifact is missing or not the expected one.
        model.CheckpointError: If the dense model is missing or of another architecture.
        sparse_inference.PlanMismatchError: If a plan's logits differ from the masked
            network's beyond rounding.
    """
    started = time.perf_counter()
    settings = params.load_params(["benchmark", "train", "prune"])
    config, prune_config = settings["benchmark"], settings["prune"]
    hidden_sizes = settings["train"].hidden_sizes
    recipe, _ = cli.network_arguments(list(settings["train"].recipes))
    policy = benchmarking.TimingPolicy(min_repeats=config.min_repeats,
                                       min_seconds=config.min_seconds,
                                       max_seconds=CAP_FACTOR * config.min_seconds)
    sizes = model.layer_sizes(hidden_sizes)
    paths = layout.pruned_models(recipe, prune_config.methods, prune_config.k_list)
    compact.check_artifacts(paths, sizes)  # Before any timing.
    dense_weights = model.load_weights(
        layout.dense_model(recipe, settings["train"].seeds[0]), hidden_sizes)
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
    run_log = provenance.run_record(
        "cpu", max_seconds_per_plan=round(policy.max_seconds, 3),
        capped_rows=sum(row["repeats"] < config.min_repeats for row in rows),
        load_average_at_start=round(load_average, 2),
        wall_seconds=round(time.perf_counter() - started, 1))
    with files.replace_together() as outputs:
        files.write_csv(outputs.file(layout.MODELS_DIR / recipe / layout.BENCHMARK_FILE), rows)
        files.write_json(outputs.file(layout.stage_log("benchmark", recipe)), run_log)


if __name__ == "__main__":
    cli.run_stage(main)
