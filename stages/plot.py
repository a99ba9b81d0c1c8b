"""Stage plot: draws the labelled PNG charts under plots/ from the summarized plot data."""

import pathlib
from collections.abc import Sequence

import pandas as pd

from prunekit import cli, files, layout, params, plotting

CURVE_COLUMNS = ("k", "sparsity", "accuracy_mean", "accuracy_min", "accuracy_max")


def read_tables(folder: pathlib.Path, methods: Sequence[str]) -> pd.DataFrame:
    """Concatenates the per-method curve tables of a folder."""
    return pd.concat([files.read_table(folder / f"{method}.csv", numeric=CURVE_COLUMNS)
                      for method in methods], ignore_index=True)


def main() -> None:
    """Renders accuracy vs sparsity, layer sensitivity, training and speed-ups at ``plot.dpi``.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        FileNotFoundError: If a table to draw is missing.
        files.InvalidFileError: If one is corrupt, empty or lacks a column.
    """
    settings = params.load_params(["download", "train", "prune", "plot"])
    dataset, dpi = settings["download"].dataset, settings["plot"].dpi
    methods, reference = settings["prune"].methods, next(iter(settings["train"].recipes))
    curves = read_tables(layout.ACCURACY_TABLES, methods)
    history = files.read_table(layout.TRAIN_HISTORY,
                               numeric=("epoch", "train_loss_mean", "test_accuracy_mean"))
    benchmark = files.read_table(layout.BENCHMARK_TABLES / "all.csv",
                                 numeric=("sparsity_percent", "speedup_vs_dense"))
    budget = files.read_table(layout.BUDGET_TABLE, numeric=(
        *CURVE_COLUMNS, *plotting.BUDGETS))
    figures = {
        "sparsity_accuracy.png": plotting.sparsity_accuracy_figure(curves, reference, dataset),
        "recipes.png": plotting.seeds_sparsity_accuracy_figure(curves, dataset),
        "budget.png": plotting.budget_figure(budget, dataset),
        "weights.png": plotting.weights_figure(
            files.read_table(layout.WEIGHT_TABLES / "histograms.csv", numeric=("x", "value")),
            files.read_table(layout.WEIGHT_TABLES / "l1_removed.csv", numeric=("x", "value")),
            "weight", dataset),
        "training.png": plotting.recipe_training_figure(history, dataset),
        "speedup.png": plotting.speedup_figure(
            benchmark[benchmark["recipe"] == reference],
            f"Inference speed-up of the {reference} recipe's pruned networks over the dense one"),
    }
    layer_recipe = settings["prune"].layer_sensitivity
    layer_methods = [method for method in methods  # Those with a matrix pruned alone.
                     if (layout.LAYER_TABLES / f"{method}.csv").is_file()]
    if layer_recipe is not None and layer_methods:
        layers = read_tables(layout.LAYER_TABLES, layer_methods)
        figures.update({f"layers_{method}.png": plotting.layer_sensitivity_figure(
            layers, method, layer_recipe, dataset) for method in layer_methods})
    with files.replace_together() as outputs:
        charts = outputs.directory(layout.CHARTS_DIR)
        for name, figure in figures.items():
            files.save_figure(charts / name, figure, dpi)


if __name__ == "__main__":
    cli.run_stage(main)
