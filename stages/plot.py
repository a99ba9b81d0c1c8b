"""Stage plot: draws the labelled PNG charts under plots/ from the metrics and tables."""

from prunekit import cli, files, layout, params, plotting


def accuracy_curves(results: dict) -> tuple[dict[str, list[dict[str, float]]], float, str]:
    """Picks the per-method curves, the dense accuracy and the dataset out of evaluate.json.

    Args:
        results: The parsed ``metrics/evaluate.json``.

    Returns:
        Per method, rows with ``k``, ``sparsity`` and ``accuracy`` (fractions); the dense
        network's accuracy; the dataset name.

    Raises:
        InvalidFileError: If an expected entry is missing.
    """
    try:
        curves = {method: sorted(results[method].values(), key=lambda row: row["sparsity"])
                  for method in params.PRUNING_METHODS if method in results}
        dense_accuracy = results["dense"]["accuracy"]
        dataset = results["provenance"]["dataset"]
    except (KeyError, TypeError, AttributeError) as error:
        raise files.InvalidFileError(
            f"{layout.METRICS_DIR / 'evaluate.json'} lacks {error}; rerun the evaluate stage "
            "(dvc repro --force evaluate)") from None
    return curves, dense_accuracy, dataset


def main() -> None:
    """Renders accuracy vs sparsity, the training curves and the speed-ups at ``plot.dpi``.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        FileNotFoundError: If a metrics file or table to draw is missing.
        files.InvalidFileError: If one is corrupt, empty or lacks an entry.
    """
    dpi = params.load_params(["plot"])["plot"].dpi
    curves, dense_accuracy, dataset = accuracy_curves(
        files.read_json(layout.METRICS_DIR / "evaluate.json"))
    history = files.read_numeric_csv(layout.TRAIN_HISTORY)
    benchmark_rows = files.read_csv(layout.BENCHMARK_TABLES / "all.csv")
    with files.replace_together() as outputs:
        files.save_figure(outputs.file(layout.PLOTS_DIR / "sparsity_accuracy.png"),
                          plotting.sparsity_accuracy_figure(curves, dense_accuracy, dataset), dpi)
        files.save_figure(outputs.file(layout.PLOTS_DIR / "training.png"),
                          plotting.training_curve_figure(history, dataset), dpi)
        files.save_figure(outputs.file(layout.PLOTS_DIR / "speedup.png"),
                          plotting.speedup_figure(benchmark_rows), dpi)


if __name__ == "__main__":
    cli.run_stage(main)
