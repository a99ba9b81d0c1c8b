"""Where the pipeline keeps its files, relative to the repository root (mirrors dvc.yaml)."""

import pathlib

DATA_DIR = pathlib.Path("data/idx")
DENSE_MODEL = pathlib.Path("models/dense.pt")
PRUNED_DIR = pathlib.Path("models/pruned")
METRICS_DIR = pathlib.Path("metrics")
PLOTS_DIR = pathlib.Path("plots")
TRAIN_HISTORY = PLOTS_DIR / "train" / "history.csv"
EVALUATE_TABLES = PLOTS_DIR / "evaluate"
BENCHMARK_TABLES = PLOTS_DIR / "benchmark"


def pruned_model(method: str, label: str) -> pathlib.Path:
    """Returns the compact artifact path of one (method, k), e.g. models/pruned/unit_k90.pt."""
    return PRUNED_DIR / f"{method}_{label}.pt"
