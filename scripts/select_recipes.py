"""Chooses the recipes' learning rates and penalties on the validation split.

Trains one network per candidate with the pipeline's own code and settings (params.yaml:
dataset, architecture, epochs, batch size, validation size; seed 0), prunes it without
retraining and measures it on the validation set. The rules, fixed before any run: for the
l1 and group-lasso strengths (and the l1 warm-up), the candidate with the highest mean
validation accuracy over the recipe's target cases (l1: dense, weight k90, weight k95; group:
dense, unit k50, unit k70); for the learning rates of `adam` and `sgd`, which have no pruning
target, the highest dense validation accuracy, a lead within LR_TIE points (about the dense
accuracy's std over seeds) keeping the current rate. Test accuracies are recorded beside them
for the record; they choose nothing.

Run from the repository root after `dvc repro download` (about 3 minutes a candidate on two
cores): `python scripts/select_recipes.py`. It appends to docs/selection.csv and skips the
candidates already there, so an interrupted run resumes.
"""

import dataclasses
import pathlib
import time

import pandas as pd
import torch

from prunekit import data, evaluation, layout, model, names, params, provenance, training

OUTPUT = pathlib.Path("docs/selection.csv")
SEED = 0
BASE = training.Recipe(optimizer="adam", lr=1e-3, schedule="cosine")
SGD = training.Recipe(optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine")
CANDIDATES = {
    "adam": [dataclasses.replace(BASE, lr=lr) for lr in (1e-3, 5e-4, 2e-3)],
    "sgd": [dataclasses.replace(SGD, lr=lr) for lr in (0.05, 0.025, 0.1)],
    "l1": [dataclasses.replace(BASE, l1=strength, penalty_warmup=warmup)
           for strength, warmup in ((1e-5, 0.5), (2e-5, 0.5), (3e-5, 0.5), (5e-5, 0.5),
                                    (3e-5, 0.0))]
    # adam's validated rate, with the chosen strength and half of it (a step shrinks a weight
    # by about lr * strength).
    + [dataclasses.replace(BASE, lr=2e-3, l1=strength, penalty_warmup=warmup)
       for strength, warmup in ((3e-5, 0.5), (1.5e-5, 0.5), (3e-5, 0.0))],
    "group": [dataclasses.replace(BASE, group_lasso=strength) for strength in (1e-4, 2e-4, 4e-4)]
    + [dataclasses.replace(BASE, lr=2e-3, group_lasso=strength) for strength in (2e-4, 1e-4)],
}
TARGET_CASES = {"adam": [], "sgd": [], "l1": [("weight", 90), ("weight", 95)],
                "group": [("unit", 50), ("unit", 70)]}
LR_TIE = 0.1  # points of dense validation accuracy


def measure(recipe: training.Recipe, cases: list[tuple[str, int]], settings: dict) -> dict:
    """Trains one network with ``recipe`` and measures it dense and pruned at ``cases``."""
    train_params, dataset = settings["train"], settings["download"].dataset
    training.make_deterministic(SEED, train_params.num_threads)
    train_split, validation_split = data.load_training_splits(
        layout.DATA_DIR, dataset, train_params.validation, train_params.limit)
    test_split = data.load_split(layout.DATA_DIR, dataset, train=False)
    network = model.MLP(train_params.hidden_sizes)
    started = time.perf_counter()
    for _ in training.fit(network, train_split, validation_split, test_split,
                          train_params.epochs, train_params.batch_size, recipe, SEED):
        pass
    seconds = time.perf_counter() - started
    # k0 of any method is the dense network, all a learning-rate candidate is measured at.
    methods = sorted({method for method, _ in cases}, key=names.METHODS.index) or ["weight"]
    table = evaluation.accuracy_table(
        network.weights(), test_split.images, test_split.labels,
        [0, *sorted({k for _, k in cases})], methods, random_draws=0, single_layers=False,
        validation=(validation_split.images, validation_split.labels))
    row = {"seconds": round(seconds, 1)}
    for method, k in [(methods[0], 0), *cases]:
        chosen = table[(table["method"] == method) & (table["k"] == k)].iloc[0]
        label = "dense" if k == 0 else f"{method}_{names.k_label(k)}"
        row[f"validation_{label}"] = round(100 * chosen["validation_accuracy"], 2)
        row[f"test_{label}"] = round(100 * chosen["accuracy"], 2)
    return row


def main() -> None:
    """Measures the candidates not yet in docs/selection.csv on this CPU, then prints each choice.

    A CPU model trains other weights than another (docs/many-machines.md), so candidates are
    measured, and compared, per CPU: the choice is made among this CPU's rows.
    """
    settings = params.load_params(["download", "train"])
    cpu = f"{provenance.cpu_model()} ({torch.backends.cpu.get_cpu_capability()})"
    done = pd.read_csv(OUTPUT) if OUTPUT.is_file() else pd.DataFrame()
    for recipe_name, candidates in CANDIDATES.items():
        for recipe in candidates:
            key = {"recipe": recipe_name, "lr": recipe.lr, "l1": recipe.l1,
                   "group_lasso": recipe.group_lasso, "penalty_warmup": recipe.penalty_warmup,
                   "seed": SEED, "cpu": cpu}
            if len(done) and (done[list(key)] == pd.Series(key)).all(axis=1).any():
                continue
            row = {**key, **measure(recipe, TARGET_CASES[recipe_name], settings)}
            print(row, flush=True)
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            done.to_csv(OUTPUT, index=False)
    for recipe_name, cases in TARGET_CASES.items():
        rows = done[(done["recipe"] == recipe_name) & (done["cpu"] == cpu)].copy()
        if rows.empty:
            continue
        columns = ["validation_dense", *[f"validation_{m}_{names.k_label(k)}" for m, k in cases]]
        rows["validation_target_mean"] = rows[columns].mean(axis=1)
        best = rows.loc[rows["validation_target_mean"].idxmax()]
        if not cases:  # A learning rate: the current one (listed first) unless clearly beaten.
            current = rows.iloc[0]
            if best["validation_dense"] - current["validation_dense"] <= LR_TIE:
                best = current
        print(f"{recipe_name}: chosen lr {best['lr']}, l1 {best['l1']}, group_lasso "
              f"{best['group_lasso']}, warm-up {best['penalty_warmup']} (validation target "
              f"mean {best['validation_target_mean']:.2f})")


if __name__ == "__main__":
    main()
