"""Where the pipeline keeps its files, relative to the repository root (mirrors dvc.yaml)."""

import pathlib
from collections.abc import Sequence

from prunekit import pruning

DATA_DIR = pathlib.Path("data/idx")
DENSE_MODEL = pathlib.Path("models/dense.pt")
PRUNED_DIR = pathlib.Path("models/pruned")
METRICS_DIR = pathlib.Path("metrics")
ACCURACY_METRICS = METRICS_DIR / "accuracy.json"
BENCHMARK_METRICS = METRICS_DIR / "benchmark.json"
PLOTS_DIR = pathlib.Path("plots")
TRAIN_HISTORY = PLOTS_DIR / "train" / "history.csv"
FILE_SIZES = PLOTS_DIR / "prune" / "file_sizes.csv"
ACCURACY_TABLE = PLOTS_DIR / "evaluate" / "accuracy.csv"
BENCHMARK_TABLES = PLOTS_DIR / "benchmark"
# Run records (timings, peak memory, provenance): DVC outputs, kept out of the metrics.
LOGS_DIR = pathlib.Path("logs")


def stage_log(stage: str) -> pathlib.Path:
    """Returns the run record of a stage, e.g. logs/train.json."""
    return LOGS_DIR / f"{stage}.json"


def pruned_model(method: str, label: str) -> pathlib.Path:
    """Returns the compact artifact path of one (method, k), e.g. models/pruned/unit_k90.pt.

    Args:
        method: The pruning method, e.g. ``unit``.
        label: The k label from :func:`pruning.percent_label`, e.g. ``k90``.

    Returns:
        The path, relative to the repository root.
    """
    return PRUNED_DIR / f"{method}_{label}.pt"


def pruned_models(methods: Sequence[str], k_list: Sequence[float]
                  ) -> dict[tuple[str, float], pathlib.Path]:
    """Returns the artifact path of every (method, k), methods first, in the given order.

    Args:
        methods: The pruning methods, e.g. ``("weight", "unit")``.
        k_list: The pruning percentages, from 0 to 100.

    Returns:
        Per ``(method, percent)``, the path from :func:`pruned_model`.
    """
    return {(method, percent): pruned_model(method, pruning.percent_label(percent))
            for method in methods for percent in k_list}
