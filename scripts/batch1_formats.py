"""Chooses the density from which the batch-1 kernel reads a hidden matrix densely.

`kernel.vector_format` reads the first matrix by rows (or densely from
`kernel.DENSE_MIN_DENSITY`) and every later matrix by columns below
`kernel.HIDDEN_DENSE_MIN_DENSITY`, densely from it; both of those skip the inputs ReLU zeroed.
For each recipe's first-seed network pruned by weight at k90-k99, this builds the kernel with
each candidate threshold (thresholds that give the same formats share one build), and times one
image at a time over the first 64 validation images (held-out training images, so the choice
is not made on the test set), every build in the same shuffled rounds (`timing.time_blocks`,
9 rounds of 5 ms blocks, 2 threads). It prints each case's formats and milliseconds per image,
and per threshold the mean over the cases of its time relative to the fastest build of the
case.

Run from the repository root after `dvc repro prune`: `python scripts/batch1_formats.py`.
"""

import functools
import statistics

import torch

from prunekit import artifacts, data, layout, params
from prunekit.inference import benchmarking, kernel, timing

THREADS = 2
KS = (90, 95, 97, 99)
THRESHOLDS = (0.15, 0.08, 0.04, 0.02, 0.01)
POLICY = timing.TimingPolicy(rounds=9, block_seconds=0.005)


def builds(weights: list[torch.Tensor], input_units: torch.Tensor | None
           ) -> tuple[dict[float, tuple[str, ...]], dict[tuple[str, ...], kernel.KernelForward]]:
    """Each threshold's formats for a compact network, and one kernel build per distinct formats."""
    formats, by_formats = {}, {}
    for threshold in THRESHOLDS:
        kernel.HIDDEN_DENSE_MIN_DENSITY = threshold
        forward = kernel.KernelForward(weights, input_units, THREADS)
        formats[threshold] = forward.formats
        by_formats.setdefault(forward.formats, forward)
    return formats, by_formats


def main() -> None:
    """Prints one line per recipe and k, then the mean relative time of each threshold."""
    settings = params.load_params(["download", "train"])
    _, validation = data.load_training_splits(layout.DATA_DIR, settings["download"].dataset,
                                              settings["train"].validation)
    images = benchmarking.timed_batches(validation.images, 1)  # The benchmark's 64, one by one.
    torch.set_num_threads(THREADS)
    relative = {threshold: [] for threshold in THRESHOLDS}
    for recipe in settings["train"].recipes:
        for k in KS:
            network = artifacts.read_compact(layout.pruned_model(recipe, "weight", k))[0]
            formats, by_formats = builds(network.weights, network.input_units())
            durations, _ = timing.time_blocks(
                {key: functools.partial(benchmarking.run_each, forward, images)
                 for key, forward in by_formats.items()}, POLICY)
            per_image = {key: 1e3 * statistics.median(values) / len(images)
                         for key, values in durations.items()}
            fastest = min(per_image.values())
            for threshold, key in formats.items():
                relative[threshold].append(per_image[key] / fastest)
            densities = ", ".join(f"{float((weight != 0).float().mean()):.3f}"
                                  for weight in network.weights[:-1])
            timings = "; ".join(f"{'/'.join(key[:-1])} {milliseconds:.4f} ms"
                                for key, milliseconds in per_image.items())
            print(f"{recipe:9} weight k{k}: densities {densities}: {timings}", flush=True)
    for threshold, ratios in relative.items():
        print(f"hidden threshold {threshold}: {statistics.mean(ratios):.3f} of the fastest build "
              f"on average (worst {max(ratios):.3f})")


if __name__ == "__main__":
    main()
