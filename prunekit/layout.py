"""Where the pipeline keeps its files, relative to the repository root (mirrors dvc.yaml)."""

import pathlib
from collections.abc import Sequence

from prunekit import names

DATA_DIR = pathlib.Path("data/idx")
MODELS_DIR = pathlib.Path("models")
METRICS_DIR = pathlib.Path("metrics")
ACCURACY_METRICS = METRICS_DIR / "accuracy.json"
BENCHMARK_METRICS = METRICS_DIR / "benchmark.json"
PLOTS_DIR = pathlib.Path("plots")
ACCURACY_TABLES = PLOTS_DIR / "accuracy"
LAYER_TABLES = PLOTS_DIR / "layers"
TRAIN_HISTORY = PLOTS_DIR / "train" / "history.csv"
DEAD_UNITS = PLOTS_DIR / "dead_units.csv"
FILE_SIZES = PLOTS_DIR / "file_sizes.csv"
BENCHMARK_TABLES = PLOTS_DIR / "benchmark"
SUMMARY_TABLE = PLOTS_DIR / "summary.csv"
BUDGET_TABLE = PLOTS_DIR / "budget.csv"  # Accuracy against the weights and multiply-adds kept.
WEIGHT_TABLES = PLOTS_DIR / "weights"  # |w| histograms and the L1 mass pruning removes.
CHARTS_DIR = PLOTS_DIR / "charts"
# Run records (timings, peak memory, provenance): DVC outputs, kept out of the metrics.
LOGS_DIR = pathlib.Path("logs")
PARAMS_CHECK = LOGS_DIR / "params_check.txt"  # The same text whenever params.yaml is valid.


def network_dir(recipe: str, seed: int) -> pathlib.Path:
    """Returns the folder of one trained network and its results, e.g. models/adam/seed0."""
    return MODELS_DIR / recipe / f"seed{seed}"


def dense_model(recipe: str, seed: int) -> pathlib.Path:
    """Returns the dense network of a recipe and seed, e.g. models/adam/seed0/dense.pt."""
    return network_dir(recipe, seed) / "dense.pt"


def pruned_dir(recipe: str) -> pathlib.Path:
    """Returns the folder of a recipe's compact pruned networks, e.g. models/adam/pruned."""
    return MODELS_DIR / recipe / "pruned"


def pruned_model(recipe: str, method: str, k: float) -> pathlib.Path:
    """Returns a compact artifact, e.g. models/adam/pruned/unit_k90.pt for ``unit``, 90."""
    return pruned_dir(recipe) / f"{method}_{names.k_label(k)}.pt"


def pruned_models(recipe: str, methods: Sequence[str], k_list: Sequence[float]
                  ) -> dict[tuple[str, float], pathlib.Path]:
    """Returns :func:`pruned_model` per (method, k), methods first, in the given order."""
    return {(method, k): pruned_model(recipe, method, k) for method in methods for k in k_list}


def stage_log(stage: str, recipe: str | None = None, seed: int | None = None) -> pathlib.Path:
    """Returns a run record: logs/plot.json, logs/prune/adam.json, logs/train/adam/seed0.json."""
    if recipe is None:
        return LOGS_DIR / f"{stage}.json"
    if seed is None:
        return LOGS_DIR / stage / f"{recipe}.json"
    return LOGS_DIR / stage / recipe / f"seed{seed}.json"


# Files of one network, in its network_dir: training history, sweep table, evaluation summary.
HISTORY_FILE = "history.csv"
SWEEP_FILE = "sweep.csv"
EVALUATION_FILE = "evaluate.json"
WEIGHTS_FILE = "weights.csv"  # Per matrix: |w| histogram, exact zeros, L1 mass removed per k.
FILE_SIZES_FILE = "file_sizes.csv"  # In a recipe's pruned_dir.
BENCHMARK_FILE = "benchmark.csv"  # In a recipe's folder, beside pruned_dir.


def file_sizes_table(recipe: str) -> pathlib.Path:
    """Returns a recipe's table of compact file sizes, models/adam/pruned/file_sizes.csv."""
    return pruned_dir(recipe) / FILE_SIZES_FILE


def benchmark_table(recipe: str) -> pathlib.Path:
    """Returns a recipe's benchmark rows, models/adam/benchmark.csv."""
    return MODELS_DIR / recipe / BENCHMARK_FILE
