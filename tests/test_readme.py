"""The README's result tables are the committed result files, through one rounding path."""

import yaml
from conftest import REPO

from prunekit import aggregate, files


def test_the_readme_holds_the_tables_of_the_committed_results():
    settings = yaml.safe_load((REPO / "params.yaml").read_text())
    cases = aggregate.headline_cases(settings["summarize"]["accuracy_cases"])
    recipes = files.read_table(REPO / "plots" / "summary.csv")
    benchmark = files.read_table(REPO / "plots" / "benchmark" / "all.csv")
    reference = next(iter(settings["train"]["recipes"]))
    tables = [aggregate.recipe_markdown(recipes, cases),
              aggregate.speed_markdown(benchmark[benchmark["recipe"] == reference],
                                       settings["summarize"]["speedup_cases"],
                                       settings["summarize"]["speedup_batch_sizes"])]
    readme = (REPO / "README.md").read_text()
    for table in tables:
        assert table in readme, f"README lacks this table of the committed results:\n{table}"
