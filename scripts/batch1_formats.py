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

import statistics

import torch

from prunekit import artifacts, data, layout, params
from prunekit.inference import kernel, timing

THREADS = 2
IMAGES = 64
KS = (90, 95, 97, 99)
THRESHOLDS = (0.15, 0.08, 0.04, 0.02, 0.01)
POLICY = timing.TimingPolicy(rounds=9, block_seconds=0.005)


def builds(weights: list[torch.Tensor], input_units: torch.Tensor | None
           ) -> dict[float, kernel.KernelForward]:
    """The kernel of a compact network with each threshold; thresholds with equal formats share."""
    by_formats, chosen = {}, {}
    for threshold in THRESHOLDS:
        kernel.HIDDEN_DENSE_MIN_DENSITY = threshold
        forward = kernel.KernelForward(weights, input_units, THREADS)
        chosen[threshold] = by_formats.setdefault(forward.formats, forward)
    return chosen


def main() -> None:
    """Prints one line per recipe and k, then the mean relative time of each threshold."""
    settings = params.load_params(["download", "train"])
    _, validation = data.load_training_splits(layout.DATA_DIR, settings["download"].dataset,
                                              settings["train"].validation)
    images = [image.unsqueeze(0).contiguous() for image in validation.images[:IMAGES]]
    torch.set_num_threads(THREADS)
    relative = {threshold: [] for threshold in THRESHOLDS}
    for recipe in settings["train"].recipes:
        for k in KS:
            network = artifacts.read_compact(layout.pruned_model(recipe, "weight", k))[0]
            chosen = builds(network.weights, network.input_units())
            distinct = {id(forward): forward for forward in chosen.values()}

            def one_pass(forward: kernel.KernelForward) -> None:
                for image in images:
                    forward(image)

            durations, _ = timing.time_blocks(
                {key: (lambda forward=forward: one_pass(forward))
                 for key, forward in distinct.items()}, POLICY)
            per_image = {key: 1e3 * statistics.median(values) / IMAGES
                         for key, values in durations.items()}
            fastest = min(per_image.values())
            for threshold, forward in chosen.items():
                relative[threshold].append(per_image[id(forward)] / fastest)
            densities = ", ".join(f"{float((weight != 0).float().mean()):.3f}"
                                  for weight in network.weights[:-1])
            timings = "; ".join(
                f"{'/'.join(distinct[key].formats[:-1])} {milliseconds:.4f} ms"
                for key, milliseconds in per_image.items())
            print(f"{recipe:9} weight k{k}: densities {densities}: {timings}", flush=True)
    for threshold, ratios in relative.items():
        print(f"hidden threshold {threshold}: {statistics.mean(ratios):.3f} of the fastest build "
              f"on average (worst {max(ratios):.3f})")


if __name__ == "__main__":
    main()
