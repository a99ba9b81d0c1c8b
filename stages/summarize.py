"""Stage summarize: statistics over seeds, the metrics and the plot data of every recipe."""

import logging
import math
import pathlib
import shutil
from collections.abc import Callable

import pandas as pd

from prunekit import aggregate, cli, files, layout, params, provenance

logger = logging.getLogger("summarize")

def read_networks(recipes: list[str], seeds: tuple[int, ...], name: str) -> pd.DataFrame:
    """Concatenates the table ``name`` of every network's folder, adding ``recipe`` and ``seed``.

    Only the networks params.yaml names are read, so a seed or recipe taken out of it leaves
    nothing behind in the results.
    """
    return pd.concat([files.read_table(layout.results_of(recipe, seed) / name)
                      .assign(recipe=recipe, seed=seed)
                      for recipe in recipes for seed in seeds], ignore_index=True)


def read_recipes(recipes: list[str], path_of: Callable[[str], pathlib.Path]) -> pd.DataFrame:
    """Concatenates one per-recipe table, adding a ``recipe`` column."""
    return pd.concat([files.read_table(path_of(recipe)).assign(recipe=recipe)
                      for recipe in recipes], ignore_index=True)


def finite(mapping: dict) -> dict:
    """Drops NaN values (a headline k not measured) from a mapping of numbers."""
    return {key: value for key, value in mapping.items() if not math.isnan(value)}


def main() -> None:
    """Aggregates the sweeps, histories, file sizes and benchmarks named by params.yaml.

    First removes the results of networks params.yaml no longer names (layout.leftover_results),
    so that this stage's deps are the results of exactly the configured networks.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        FileNotFoundError: If a network's table is missing.
        files.InvalidFileError: If one is corrupt or empty.
    """
    settings = params.load_params(["train", "prune", "summarize"])
    train_params, summarize_params = settings["train"], settings["summarize"]
    layer_recipe = settings["prune"].layer_sensitivity
    recipes, reference = list(train_params.recipes), next(iter(train_params.recipes))
    for leftover in layout.leftover_results(recipes, train_params.seeds):
        shutil.rmtree(leftover)
        logger.warning("removed %s: params.yaml no longer names its recipe or seed, and it would "
                       "change this stage's deps (results/); the DVC cache keeps it, and dvc "
                       "repro restores it if they come back", leftover)
    sweeps = read_networks(recipes, train_params.seeds, layout.SWEEP_FILE)
    aggregated = aggregate.aggregate_seeds(sweeps)
    history = aggregate.training_curves(read_networks(recipes, train_params.seeds,
                                                      layout.HISTORY_FILE))
    file_sizes = read_recipes(recipes, layout.file_sizes_table)
    benchmarks = aggregate.combine_runs(read_recipes(recipes, layout.benchmark_table))
    cases = aggregate.headline_cases(summarize_params.accuracy_cases)
    headline = aggregate.headline(aggregated, cases)
    speedups = aggregate.headline_speedups(benchmarks, cases, summarize_params.table_batch_size)
    with files.replace_together() as outputs:
        accuracy = outputs.directory(layout.ACCURACY_TABLES)
        layers = outputs.directory(layout.LAYER_TABLES)
        for method in aggregated["method"].unique():
            files.write_csv(accuracy / f"{method}.csv",
                            aggregate.accuracy_curves(aggregated, method))
            if layer_recipe is None:
                continue
            curves = aggregate.layer_curves(aggregated, method, layer_recipe)
            if (curves["scope"] != "all").any():  # Global pruning prunes no matrix alone.
                files.write_csv(layers / f"{method}.csv", curves)
        files.write_csv(outputs.file(layout.DEAD_UNITS), aggregate.dead_units(aggregated))
        files.write_csv(outputs.file(layout.BUDGET_TABLE), aggregate.budget_curves(aggregated))
        files.write_csv(outputs.file(layout.PAIRED_TABLE),
                        aggregate.paired_differences(sweeps, reference))
        weight_tables = outputs.directory(layout.WEIGHT_TABLES)
        for name, table in aggregate.weight_statistics(
                read_networks(recipes, train_params.seeds, layout.WEIGHTS_FILE)).items():
            files.write_csv(weight_tables / f"{name}.csv", table)
        files.write_csv(outputs.file(layout.TRAIN_HISTORY), history)
        files.write_csv(outputs.file(layout.FILE_SIZES), file_sizes.assign(
            series=file_sizes["recipe"] + ": " + file_sizes["method"]))
        speedup_folder = outputs.directory(layout.BENCHMARK_TABLES / "speedup")
        for name, table in aggregate.fastest_speedups(benchmarks, reference).items():
            files.write_csv(speedup_folder / f"{name}.csv", table)
        files.write_csv(outputs.file(layout.BENCHMARK_TABLES / "all.csv"), benchmarks)
        files.write_csv(outputs.file(layout.SUMMARY_TABLE),
                        aggregate.recipe_table(aggregated, cases, speedups))
        files.write_json(outputs.file(layout.stage_log("summarize")), provenance.run_record(
            "cpu", networks=len(recipes) * len(train_params.seeds)))
        files.write_json(outputs.file(layout.ACCURACY_METRICS),
                         {recipe: finite(row) for recipe, row in
                          headline.round(4).to_dict("index").items()})
        files.write_json(outputs.file(layout.BENCHMARK_METRICS), aggregate.benchmark_metrics(
            benchmarks[benchmarks["recipe"] == reference], summarize_params.speedup_cases,
            summarize_params.speedup_batch_sizes))
    logger.info("summarized %d networks of %d recipes", len(recipes) * len(train_params.seeds),
                len(recipes))


if __name__ == "__main__":
    cli.run_stage(main)
