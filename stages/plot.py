"""Stage plot: draws the labelled PNG charts under plots/ from the metrics and tables."""

import pathlib

from prunekit import cli, files, layout, params, plotting


def read_rows(path: pathlib.Path) -> list[dict[str, float]]:
    """Reads a numeric CSV table written by an earlier stage."""
    return [{key: float(value) for key, value in row.items()} for row in files.read_csv(path)]


def main() -> None:
    """Renders accuracy vs sparsity, the training curves and the speed-ups at ``plot.dpi``."""
    dpi = params.load_params(["plot"])["plot"].dpi
    results = files.read_json(layout.METRICS_DIR / "evaluate.json")
    dataset = results["provenance"]["dataset"]
    curves = {path.stem: [{"k": row["k"], "sparsity": row["sparsity_percent"] / 100,
                           "accuracy": row["accuracy_percent"] / 100} for row in read_rows(path)]
              for path in sorted(layout.EVALUATE_TABLES.glob("*.csv"))}
    history = read_rows(layout.TRAIN_HISTORY)
    benchmark_rows = files.read_csv(layout.BENCHMARK_TABLES / "all.csv")
    with files.replace_together() as outputs:
        files.save_figure(outputs.file(layout.PLOTS_DIR / "sparsity_accuracy.png"),
                          plotting.sparsity_accuracy_figure(curves, results["dense"]["accuracy"],
                                                            dataset), dpi)
        files.save_figure(outputs.file(layout.PLOTS_DIR / "training.png"),
                          plotting.training_curve_figure(history, dataset), dpi)
        files.save_figure(outputs.file(layout.PLOTS_DIR / "speedup.png"),
                          plotting.speedup_figure(benchmark_rows), dpi)


if __name__ == "__main__":
    cli.run_stage(main)
