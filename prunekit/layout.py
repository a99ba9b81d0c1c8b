"""Where the pipeline keeps its files, relative to the repository root (mirrors dvc.yaml)."""

import pathlib
from collections.abc import Sequence

from prunekit import names

DATA_DIR = pathlib.Path("data/idx")
MODELS_DIR = pathlib.Path("models")  # Networks: dense checkpoints and compact artifacts.
# What the stages measured, per network and per recipe: the only folder summarize reads, so
# it hashes no checkpoint (results_of and leftover_results).
RESULTS_DIR = pathlib.Path("results")
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
PAIRED_TABLE = PLOTS_DIR / "paired.csv"  # Differences between variants of the same seed.
WEIGHT_TABLES = PLOTS_DIR / "weights"  # |w| histograms and the L1 mass pruning removes.
CHARTS_DIR = PLOTS_DIR / "charts"
# Run records (timings, peak memory, provenance): DVC outputs, kept out of the metrics.
LOGS_DIR = pathlib.Path("logs")
PARAMS_CHECK = LOGS_DIR / "params_check.txt"  # The same text whenever params.yaml is valid.


def seed_folder(seed: int) -> str:
    """Names the folder of one seed's network, e.g. seed0."""
    return f"seed{seed}"


def dense_model(recipe: str, seed: int) -> pathlib.Path:
    """Returns the dense network of a recipe and seed, e.g. models/adam/seed0/dense.pt."""
    return MODELS_DIR / recipe / seed_folder(seed) / "dense.pt"


def results_of(recipe: str, seed: int | None = None) -> pathlib.Path:
    """Returns the results folder of a recipe (results/adam) or of one network (.../seed0)."""
    folder = RESULTS_DIR / recipe
    return folder if seed is None else folder / seed_folder(seed)


def leftover_results(recipes: Sequence[str], seeds: Sequence[int]) -> list[pathlib.Path]:
    """The folders under results/ of recipes or seeds these lists no longer name.

    Outputs of stages that no longer exist: DVC leaves them in the workspace (its cache keeps
    them), where they would change the hash of the results folder.
    """
    if not RESULTS_DIR.is_dir():
        return []
    seed_names = {seed_folder(seed) for seed in seeds}
    return sorted(path for recipe_folder in RESULTS_DIR.iterdir()
                  for path in ([recipe_folder] if recipe_folder.name not in recipes else
                               [child for child in recipe_folder.iterdir()
                                if child.is_dir() and child.name not in seed_names]))


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


# Files of one network, in its results_of(recipe, seed): training history, sweep table,
# evaluation summary.
HISTORY_FILE = "history.csv"
SWEEP_FILE = "sweep.csv"
EVALUATION_FILE = "evaluate.json"
WEIGHTS_FILE = "weights.csv"  # Per matrix: |w| histogram, exact zeros, L1 mass removed per k.
FILE_SIZES_FILE = "file_sizes.csv"  # In a recipe's results_of(recipe).
BENCHMARK_FILE = "benchmark.csv"  # Likewise.


def file_sizes_table(recipe: str) -> pathlib.Path:
    """Returns a recipe's table of compact file sizes, results/adam/file_sizes.csv."""
    return results_of(recipe) / FILE_SIZES_FILE


def benchmark_table(recipe: str) -> pathlib.Path:
    """Returns a recipe's benchmark rows, results/adam/benchmark.csv."""
    return results_of(recipe) / BENCHMARK_FILE


def benchmark_table_of_artifact(artifact: pathlib.Path) -> pathlib.Path:
    """The benchmark table of a compact artifact's recipe, under the artifact's project root.

    ``models/adam/pruned/unit_k90.pt`` gives ``results/adam/benchmark.csv``.
    """
    root = pathlib.Path(artifact).parents[len(pruned_dir("recipe").parts)]
    return root / benchmark_table(pathlib.Path(artifact).parent.parent.name)
