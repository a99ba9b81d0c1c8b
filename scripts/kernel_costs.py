"""Where the batch kernel's time goes on the reference recipe's first-seed pruned networks.

The batch kernel's work does not depend on the activations, so a network can be changed to
isolate a cost and timed beside the original. For each network named (default: weight_k90
weight_k95), at batch 256 on 2 threads, all variants in the same shuffled rounds
(`timing.time_blocks`, 21 rounds of 20 ms blocks), one process:

- the whole network, and the kernel's dense pass over the unpruned network (`weight_k0`,
  every weight multiplied: the stage's fastest dense plan on this CPU) with the whole call's
  fraction of the multiply-add ideal over it;
- each layer's non-zeros: the network with that matrix cut to one non-zero per row (same
  shape, so the same passes); the median over rounds of the difference, per non-zero and
  64-image tile on one core (the batch's four tiles are shared by the two threads);
- the passes: every matrix cut to one non-zero per row, with input-column blocks of at most
  1024 (one pass per layer), 256 (the default) and 64 columns, and from the difference
  between 64 and 1024 the cost of one pass over one output row of a tile (its accumulators
  read and written), and the fraction of the ideal the whole call would reach if its row
  passes cost nothing.

Run from the repository root after `dvc repro prune@adam`:
`python scripts/kernel_costs.py weight_k90 weight_k95`.
"""

import statistics
import sys

import torch

from prunekit import artifacts, data, layout
from prunekit.inference import kernel, timing

THREADS = 2
BATCH_SIZE = 256
POLICY = timing.TimingPolicy(rounds=21, block_seconds=0.02)
BLOCKS = (1024, 256, 64)


def one_per_row(weight: torch.Tensor) -> torch.Tensor:
    """A matrix of the same shape with a single small weight per row, in its first column."""
    cut = torch.zeros_like(weight)
    cut[:, 0] = 1e-3
    return cut


def paired_ms(durations: dict[str, list[float]], slower: str, faster: str) -> float:
    """Median over rounds of one variant's seconds less another's, in milliseconds."""
    return 1e3 * statistics.median(a - b for a, b in zip(durations[slower], durations[faster],
                                                         strict=True))


def main() -> None:
    """Prints the whole call, each layer's non-zeros and the passes of each network."""
    names = sys.argv[1:] or ["weight_k90", "weight_k95"]
    torch.set_num_threads(THREADS)
    images = data.load_split(layout.DATA_DIR, "fashion-mnist", train=False).images
    images = images[:BATCH_SIZE].contiguous()
    tiles_per_core = BATCH_SIZE // kernel.TILE / THREADS
    pruned = layout.MODELS_DIR / "adam" / "pruned"
    unpruned, _, _ = artifacts.read_compact(pruned / "weight_k0.pt")
    for name in names:
        network, _, _ = artifacts.read_compact(pruned / f"{name}.pt")
        weights, units = list(network.weights), network.input_units()
        variants = {"whole": kernel.KernelForward(weights, units, THREADS),
                    "dense": kernel.KernelForward(unpruned.weights, None, THREADS, dense=True)}
        for index, weight in enumerate(weights):
            cut = [*weights[:index], one_per_row(weight), *weights[index + 1:]]
            variants[f"layer {index + 1}"] = kernel.KernelForward(cut, units, THREADS)
        minimal = [one_per_row(weight) for weight in weights]
        for block in BLOCKS:
            variants[f"blocks {block}"] = kernel.KernelForward(minimal, units, THREADS,
                                                               block_columns=block)
        durations, _ = timing.time_blocks(
            {label: (lambda forward=forward: forward(images)) for label, forward in
             variants.items()}, POLICY)
        whole, dense = (1e3 * statistics.median(durations[label]) for label in ("whole", "dense"))
        ideal = unpruned.num_weights() / network.num_nonzero()
        print(f"{name}: {whole:.3f} ms a call, the dense pass {dense:.3f} ms, fraction of the "
              f"ideal {dense / whole / ideal:.3f}")
        for index, weight in enumerate(weights):
            cost = paired_ms(durations, "whole", f"layer {index + 1}")
            nonzeros = int(torch.count_nonzero(weight)) - weight.shape[0]
            print(f"  layer {index + 1} {tuple(weight.shape)}: {cost:.3f} ms for {nonzeros} "
                  f"non-zeros, {cost * 1e6 / (nonzeros * tiles_per_core):.2f} ns per "
                  f"non-zero and tile")
        row_passes = {block: int(variants[f"blocks {block}"]._blocked[3].sum())
                      for block in BLOCKS}
        for block in BLOCKS:
            print(f"  one non-zero per row, blocks of {block:4d}: "
                  f"{1e3 * statistics.median(durations[f'blocks {block}']):.3f} ms, "
                  f"{row_passes[block]} row passes per tile")
        extra = paired_ms(durations, f"blocks {min(BLOCKS)}", f"blocks {max(BLOCKS)}")
        extra_passes = row_passes[min(BLOCKS)] - row_passes[max(BLOCKS)]
        per_row = extra / (extra_passes * tiles_per_core)  # Milliseconds.
        passes = per_row * row_passes[kernel.BLOCK_COLUMNS] * tiles_per_core
        print(f"  a pass over one output row of a tile: {per_row * 1e6:.2f} ns; the call's "
              f"{passes:.3f} ms of row passes left out, fraction of the ideal "
              f"{dense / (whole - passes) / ideal:.3f}")


if __name__ == "__main__":
    main()
