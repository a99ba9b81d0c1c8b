"""Stage evaluate: test accuracy and real sparsity of the dense and every pruned network."""

import logging

import torch

from prunekit import cli, compact, data, files, layout, metrics, model, params, provenance, pruning

logger = logging.getLogger("evaluate")


def main() -> None:
    """Evaluates each (method, k) of params.yaml, checking its compact artifact on the way.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        model.CheckpointError: If models/dense.pt is missing or not of ``train.hidden_sizes``.
        compact.ArtifactError: If a compact artifact is missing, not the expected one, or does
            not reproduce its masked network's logits.
        data.DatasetError: If a test file in data/idx/ is missing, corrupt or of another
            dataset.
    """
    settings = params.load_params(["download", "train", "prune"])
    dataset, config = settings["download"].dataset, settings["prune"]
    sizes = model.layer_sizes(settings["train"].hidden_sizes)
    dense_weights = model.load_weights(layout.DENSE_MODEL, settings["train"].hidden_sizes)
    paths = layout.pruned_models(config.methods, config.k_list)
    compact.check_artifacts(paths, sizes)  # Before any evaluation.
    test_split = data.load_split(layout.DATA_DIR, dataset, train=False)
    results = {"dense": metrics.evaluate_network(dense_weights, test_split)}
    tables = {}
    for method in config.methods:
        results[method] = {}
        for percent in config.k_list:
            label = pruning.percent_label(percent)
            masked = pruning.prune(dense_weights, method, percent)
            path = paths[method, percent]
            network = compact.load_compact(path, sizes, method, percent)
            try:
                result = metrics.evaluate_network(masked, test_split, network)
            except metrics.EquivalenceError as error:
                raise compact.ArtifactError(f"{path}: {error}; run the prune stage again "
                                            "(dvc repro prune --force)") from None
            results[method][label] = {"k": percent, **result}
            logger.info("%s %s: sparsity %.4f, accuracy %.4f", method, label,
                        result["sparsity"], result["accuracy"])
        tables[method] = metrics.curve_rows(results[method])
    results["provenance"] = provenance.describe(torch.device("cpu"), dataset)
    with files.replace_together() as outputs:
        tables_folder = outputs.directory(layout.EVALUATE_TABLES)
        for method, rows in tables.items():
            files.write_csv(tables_folder / f"{method}.csv", rows)
        files.write_json(outputs.file(layout.METRICS_DIR / "evaluate.json"), results)


if __name__ == "__main__":
    cli.run_stage(main)
