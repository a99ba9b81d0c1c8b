"""The peer gap (issue 19): the `constant` recipe with one training factor changed at a time.

Peers' Keras runs of this network keep about 80-82 % at weight k90; the `constant` recipe
(Adam, lr 1e-3 constant) keeps far less. Each factor below is a DVC experiment that retrains
and evaluates only the `constant` recipe's networks (its three seeds), run in the workspace
one after the other:

    dvc exp run -n constant-batch128 -S '+train.recipes.constant.batch_size=128'
        evaluate@constant-0 evaluate@constant-1 evaluate@constant-2       (on one line)

Run from the root of a clean clone after `make setup` (about 15 minutes a factor on two cores,
batch 32 longer): `python scripts/peer_gap.py`. It resets params.yaml to the commit's before
each experiment, appends each seed's test accuracies to docs/peer_gap.csv and skips the
factors already there, so an interrupted run resumes. `python scripts/peer_gap.py --table`
prints the table docs/experiments.md shows: each factor against the unchanged recipe, paired
by seed (networks of one seed share their initial weights' seed and batch order).
"""

import argparse
import json
import pathlib
import subprocess
import sys

import pandas as pd

from prunekit import layout

OUTPUT = pathlib.Path("docs/peer_gap.csv")
RECIPE = "constant"
BASELINE = f"{RECIPE}-baseline"
SEEDS = (0, 1, 2)
# Experiment name: the params it sets (an empty list is the unchanged recipe, the baseline).
FACTORS = {
    BASELINE: [],
    f"{RECIPE}-batch128": [f"+train.recipes.{RECIPE}.batch_size=128"],
    f"{RECIPE}-glorot": [f"+train.recipes.{RECIPE}.init=glorot"],
    f"{RECIPE}-eps1e-7": [f"+train.recipes.{RECIPE}.adam_eps=1e-7"],
    f"{RECIPE}-batch32": [f"+train.recipes.{RECIPE}.batch_size=32"],
    f"{RECIPE}-keras": [f"+train.recipes.{RECIPE}.batch_size=32",
                        f"+train.recipes.{RECIPE}.init=glorot",
                        f"+train.recipes.{RECIPE}.adam_eps=1e-7"],
}
# The columns recorded per seed: (method, k label) of evaluate.json, None for the dense network.
CASES = {"dense": None, "weight_k90": ("weight", "k90"), "weight_k95": ("weight", "k95"),
         "global_k90": ("global", "k90"), "unit_k50": ("unit", "k50"),
         "unit_k70": ("unit", "k70")}


def command(name: str) -> list[str]:
    """The `dvc exp run` command of one factor."""
    settings = [word for setting in FACTORS[name] for word in ("-S", setting)]
    return ["dvc", "exp", "run", "-n", name, *settings,
            *[f"evaluate@{RECIPE}-{seed}" for seed in SEEDS]]


def measured_rows(name: str) -> list[dict]:
    """Each seed's test accuracies (percent) as the last experiment left them in results/."""
    rows = []
    for seed in SEEDS:
        evaluation = json.loads((layout.results_of(RECIPE, seed) / layout.EVALUATION_FILE)
                                .read_text())
        training = json.loads(layout.stage_log("train", RECIPE, seed).read_text())
        row = {"experiment": name, "params": " ".join(FACTORS[name]), "seed": seed}
        for column, case in CASES.items():
            result = evaluation["dense"] if case is None else evaluation[case[0]][case[1]]
            row[column] = round(100 * result["accuracy"], 2)
        row["train_seconds"] = round(training["seconds"], 1)
        rows.append(row)
    return rows


def run_all() -> None:
    """Runs every factor not yet in OUTPUT and appends its rows."""
    done = set(pd.read_csv(OUTPUT)["experiment"]) if OUTPUT.exists() else set()
    for name in FACTORS:
        if name in done:
            continue
        subprocess.run(["git", "checkout", "--", "params.yaml"], check=True)
        print(" ".join(command(name)), flush=True)
        subprocess.run(command(name), check=True)
        table = pd.DataFrame(measured_rows(name))
        table.to_csv(OUTPUT, mode="a", header=not OUTPUT.exists(), index=False)
    subprocess.run(["git", "checkout", "--", "params.yaml"], check=True)


def mean_std(values: pd.Series) -> str:
    """Percent, mean ± sample std over seeds, to 1 decimal like the docs' other tables."""
    return f"{values.mean():.1f} ± {values.std():.1f}"


def markdown(table: pd.DataFrame) -> str:
    """Each factor's means over seeds and its paired difference from the baseline."""
    baseline = table[table["experiment"] == BASELINE].set_index("seed")
    lines = ["| experiment | dense | weight k90 | weight k90 − baseline | above 0 | weight k95 | "
             "global k90 | unit k70 | training a network |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, runs in table.groupby("experiment", sort=False):
        runs = runs.set_index("seed")
        difference = runs["weight_k90"] - baseline["weight_k90"].reindex(runs.index)
        cells = [mean_std(runs[column]) for column in ("dense", "weight_k90")]
        cells += (["–", "–"] if name == BASELINE else
                  [f"{difference.mean():+.1f} ± {difference.std():.1f}",
                   f"{(difference > 0).sum()} of {len(difference)}"])
        cells += [mean_std(runs[column])
                  for column in ("weight_k95", "global_k90", "unit_k70")]
        cells.append(f"{runs['train_seconds'].mean() / 60:.1f} min")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Runs the missing factors, or with --table prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the table, run nothing")
    if parser.parse_args().table:
        sys.stdout.write(markdown(pd.read_csv(OUTPUT)))
    else:
        run_all()


if __name__ == "__main__":
    main()
