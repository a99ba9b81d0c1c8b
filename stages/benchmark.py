"""Stage benchmark: times every inference plan of a recipe's pruned networks, every batch size."""

import logging
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

# Before PyTorch loads OpenMP: its threads (and MKL's, on the same runtime) spin about 0.2 ms
# after a parallel region instead of several, so a PyTorch plan's idle threads no longer slow
# the plan timed after it, while PyTorch's own back-to-back calls run as fast as before
# (docs/benchmark.md).
os.environ.setdefault("GOMP_SPINCOUNT", "20000")

import onnxruntime  # noqa: E402
import torch  # noqa: E402

from prunekit import (  # noqa: E402
    artifacts,
    cli,
    compact,
    data,
    files,
    layout,
    model,
    params,
    provenance,
    pruning,
)
from prunekit.inference import benchmarking, plans, timing  # noqa: E402

logger = logging.getLogger("benchmark")

SEED = 0  # Of the order of the timed blocks.
CHECK_BATCH = 64  # Test images on which every plan is checked against the masked network.


def measure(dense_model: pathlib.Path, paths: Mapping[tuple[str, float], pathlib.Path],
            images: torch.Tensor, hidden_sizes: Sequence[int], batch_sizes: Sequence[int],
            policy: timing.TimingPolicy, num_threads: int) -> list[dict[str, Any]]:
    """Checks every plan of every pruned network on test images, then times them together.

    The dense plans of the unpruned network are the reference every case divides by, timed in
    the same rounds (:func:`benchmarking.benchmark_networks`).

    Args:
        dense_model: The dense checkpoint the networks were pruned from.
        images: Test images (samples, 784), the first of them timed at each batch size.
        paths: Per ``(method, k)``, the compact artifact's path.
        hidden_sizes: The network's hidden layer widths.
        batch_sizes: The batch sizes to time.
        policy: How each plan is timed.
        num_threads: Threads of every plan.

    Returns:
        The rows of :func:`benchmarking.benchmark_networks`.

    Raises:
        artifacts.ArtifactError: If a compact artifact is missing or not the expected one.
        artifacts.CheckpointError: If the dense checkpoint is missing or of other sizes.
        plans.PlanMismatchError: If a plan's logits differ from the masked network's beyond
            rounding.
    """
    sizes = model.layer_sizes(hidden_sizes)
    compact_networks = {(method, k): artifacts.load_compact(path, sizes, method, k)
                        for (method, k), path in paths.items()}  # All checked first.
    dense_weights = artifacts.load_weights(dense_model, hidden_sizes)
    torch.set_num_threads(num_threads)
    check_images = images[:CHECK_BATCH]
    with torch.inference_mode():
        reference = {name: plan for name, plan in plans.build_plans(
            dense_weights, compact.compact(dense_weights), num_threads=num_threads).items()
                     if name in (plans.BASELINE, *plans.DENSE_PLANS)}
        plans.verify_plans(reference, check_images)
        networks = []
        for (method, k), network in compact_networks.items():
            masked = pruning.prune(dense_weights, method, k)
            candidates = plans.build_plans(masked, network, num_threads=num_threads)
            plans.verify_plans(candidates, check_images)
            networks.append((benchmarking.describe_case(method, k, masked, network),
                             candidates))
        rows = benchmarking.benchmark_networks(networks, reference, images, batch_sizes,
                                               policy, SEED)
    for row in rows:
        if row["is_fastest"]:
            logger.info("%s k=%g, batch %d: fastest %s %.2fx over %s (%.2f-%.2fx)",
                        row["method"], row["k"], row["batch_size"], row["plan"],
                        row["speedup_vs_fastest_dense"], row["fastest_dense_plan"],
                        row["speedup_low"], row["speedup_high"])
    return rows


def main() -> None:
    """Benchmarks each (method, k) of the recipe on the command line, then writes the rows.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        errors.InputError: If the recipe is not in params.yaml.
        artifacts.ArtifactError: If a compact artifact is missing or not the expected one.
        artifacts.CheckpointError: If the dense model is missing or of another architecture.
        plans.PlanMismatchError: If a plan's logits differ from the masked network's beyond
            rounding.
    """
    settings = params.load_params(["download", "benchmark", "train", "prune"])
    benchmark_params, train_params = settings["benchmark"], settings["train"]
    recipe, _ = cli.network_arguments(list(train_params.recipes))
    policy = timing.TimingPolicy(rounds=benchmark_params.rounds,
                                 block_seconds=benchmark_params.block_seconds)
    paths = layout.pruned_models(recipe, benchmark_params.methods, benchmark_params.k_list)
    images = data.load_split(layout.DATA_DIR, settings["download"].dataset, train=False).images
    load_average = os.getloadavg()[0]
    rows = [{"run": run, **row} for run in range(1, benchmark_params.runs + 1)
            for row in measure(layout.dense_model(recipe, train_params.seeds[0]), paths, images,
                               train_params.hidden_sizes, benchmark_params.batch_sizes, policy,
                               benchmark_params.num_threads)]
    log = provenance.run_record(
        "cpu", onnxruntime_version=onnxruntime.__version__,
        timing={"rounds": policy.rounds, "block_seconds": policy.block_seconds,
                "load_average_at_start": round(load_average, 2),
                "load_average_at_end": round(os.getloadavg()[0], 2),
                "gomp_spincount": os.environ["GOMP_SPINCOUNT"]})
    with files.replace_together() as outputs:
        files.write_csv(outputs.file(layout.benchmark_table(recipe)), rows)
        files.write_json(outputs.file(layout.stage_log("benchmark", recipe)), log)


if __name__ == "__main__":
    cli.run_stage(main)
