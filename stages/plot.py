"""Stage plot: draws the labelled PNG charts under plots/ from the metrics and tables."""

from prunekit import cli, files, layout, params, plotting


def main() -> None:
    """Renders accuracy vs sparsity, the training curves and the speed-ups at ``plot.dpi``.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        FileNotFoundError: If a metrics file or table to draw is missing.
        files.InvalidFileError: If one is corrupt, empty or lacks an entry.
    """
    settings = params.load_params(["download", "plot"])
    dataset, dpi = settings["download"].dataset, settings["plot"].dpi
    headline = files.read_json(layout.ACCURACY_METRICS)
    if not isinstance(headline, dict) or not isinstance(headline.get("dense"), float):
        raise files.InvalidFileError(f"{layout.ACCURACY_METRICS} lacks the dense accuracy; "
                                     "rerun the evaluate stage (dvc repro --force evaluate)")
    accuracy = files.read_table(layout.ACCURACY_TABLE,
                                numeric=("sparsity_percent", "accuracy_percent"))
    history = files.read_table(layout.TRAIN_HISTORY,
                               numeric=("epoch", "loss", "accuracy_percent"))
    benchmark_rows = files.read_table(layout.BENCHMARK_TABLES / "all.csv")
    with files.replace_together() as outputs:
        files.save_figure(outputs.file(layout.PLOTS_DIR / "sparsity_accuracy.png"),
                          plotting.sparsity_accuracy_figure(accuracy, headline["dense"], dataset),
                          dpi)
        files.save_figure(outputs.file(layout.PLOTS_DIR / "training.png"),
                          plotting.training_curve_figure(history, dataset), dpi)
        files.save_figure(outputs.file(layout.PLOTS_DIR / "speedup.png"),
                          plotting.speedup_figure(benchmark_rows.to_dict("records")), dpi)


if __name__ == "__main__":
    cli.run_stage(main)
