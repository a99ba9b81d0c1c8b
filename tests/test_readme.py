"""The tables of README and docs/results.md are the committed result files, one rounding path."""

import importlib.util

import pandas as pd
import pytest
import yaml
from conftest import REPO

from prunekit import aggregate, files

PLOTS = REPO / "plots"
# The paired differences the README shows: (comparison, recipe, method, k).
README_PAIRS = [("magnitude - random", "adam", "weight", 90),
                ("magnitude - random", "adam", "unit", 70),
                ("global - weight", "adam", "global", 80),
                ("global - weight", "adam", "global", 95),
                ("global - weight", "group", "global", 95),
                ("l1 - adam", "l1", "weight", 90),
                ("constant - adam", "constant", "weight", 90),
                ("sgd - adam", "sgd", "weight", 90)]


def readme_tables() -> list[str]:
    """The README's recipe, speed and paired-difference tables, from the committed files."""
    settings = yaml.safe_load((REPO / "params.yaml").read_text())
    cases = aggregate.headline_cases(settings["summarize"]["accuracy_cases"])
    benchmark = files.read_table(PLOTS / "benchmark" / "all.csv")
    reference = next(iter(settings["train"]["recipes"]))
    return [aggregate.recipe_markdown(files.read_table(PLOTS / "summary.csv"), cases),
            aggregate.speed_markdown(benchmark[benchmark["recipe"] == reference],
                                     settings["summarize"]["speedup_cases"],
                                     settings["summarize"]["speedup_batch_sizes"]),
            aggregate.paired_markdown(files.read_table(PLOTS / "paired.csv"), README_PAIRS)]


def results_tables() -> list[str]:
    """docs/results.md's per-k tables of the reference recipe, from the committed files."""
    def curve(table: pd.DataFrame, **selection) -> pd.DataFrame:
        chosen = pd.Series(True, index=table.index)
        for column, value in selection.items():
            chosen &= table[column] == value
        return table[chosen]

    reference = "adam"
    methods = {method: files.read_table(PLOTS / "accuracy" / f"{method}.csv")
               for method in ("weight", "unit", "global")}
    accuracy = {f"{method}{label}": curve(table, recipe=reference, control=control)
                for method, table in methods.items()
                for label, control in (("", "magnitude"), (" random", "random"))}
    layers = {f"{method} {scope}": curve(files.read_table(PLOTS / "layers" / f"{method}.csv"),
                                         recipe=reference, scope=scope)
              for method in ("weight", "unit") for scope in ("W1", "W2", "W3", "W4")}
    dead = files.read_table(PLOTS / "dead_units.csv")
    dead_units = {recipe: curve(dead, recipe=recipe) for recipe in dead["recipe"].unique()}
    sizes = files.read_table(PLOTS / "file_sizes.csv")
    file_sizes = {method: curve(sizes, recipe=reference, method=method)
                  for method in sizes["method"].unique()}
    return [aggregate.k_markdown(accuracy), aggregate.k_markdown(layers),
            aggregate.k_markdown(dead_units, "dead_units"),
            aggregate.k_markdown(file_sizes, "file_percent", decimals=2)]


def peer_gap_tables() -> list[str]:
    """docs/experiments.md's peer-gap table, from docs/peer_gap.csv by the script that made it."""
    spec = importlib.util.spec_from_file_location("peer_gap", REPO / "scripts" / "peer_gap.py")
    peer_gap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer_gap)
    return [peer_gap.markdown(pd.read_csv(REPO / peer_gap.OUTPUT))]


@pytest.mark.parametrize("document, tables", [("README.md", readme_tables),
                                              ("docs/results.md", results_tables),
                                              ("docs/experiments.md", peer_gap_tables)])
def test_the_documents_hold_the_tables_of_the_committed_results(document, tables):
    text = (REPO / document).read_text()
    for table in tables():
        assert table in text, f"{document} lacks this table of the committed results:\n{table}"
