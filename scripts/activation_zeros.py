"""Counts the hidden activations that ReLU sets to zero, per recipe and layer.

The batch-1 kernel skips the inputs of a layer that are zero, so the share of zero
activations sets how much of a dense pass it can skip. Prints, for each recipe's first-seed
network unpruned and pruned by weight at the given k, the percentage of zero activations of
each hidden layer over the first 1,000 test images. Run from the repository root after
`dvc repro`: `python scripts/activation_zeros.py 90`.
"""

import sys

import torch

from prunekit import artifacts, data, layout, params, pruning


def zero_percentages(weights: list[torch.Tensor], images: torch.Tensor) -> list[float]:
    """The percentage of zero activations after each hidden layer's ReLU."""
    shares, hidden = [], images
    for weight in weights[:-1]:
        hidden = torch.relu(hidden @ weight.T)
        shares.append(100 * float((hidden == 0).float().mean()))
    return shares


def main() -> None:
    """Prints one line per recipe and pruning, the zero share of each hidden layer."""
    k = float(sys.argv[1]) if len(sys.argv) > 1 else 90.0
    settings = params.load_params(["download", "train"])
    images = data.load_split(layout.DATA_DIR, settings["download"].dataset, train=False).images
    images = images[:1000]
    print(f"input pixels: {100 * float((images == 0).float().mean()):.1f} % zero")
    for recipe in settings["train"].recipes:
        weights = artifacts.load_weights(layout.MODELS_DIR / recipe / "seed0" / "dense.pt")
        for label, pruned in (("dense", weights),
                              (f"weight k{k:g}", pruning.prune(weights, "weight", k))):
            shares = ", ".join(f"{share:.1f}" for share in zero_percentages(pruned, images))
            print(f"{recipe:9} {label:12} zero activations per hidden layer (%): {shares}")


if __name__ == "__main__":
    main()
