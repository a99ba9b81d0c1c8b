"""Stage evaluate: test accuracy and real sparsity of the dense and every pruned network."""

import logging

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
    dense = metrics.evaluate_network(dense_weights, test_split)
    results: dict[str, dict[str, dict]] = {}
    rows = []
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
        rows.extend(metrics.accuracy_rows(method, results[method]))
    largest_difference = max(result["max_logit_difference"]
                             for by_k in results.values() for result in by_k.values())
    with files.replace_together() as outputs:
        files.write_csv(outputs.file(layout.ACCURACY_TABLE), rows)
        files.write_json(outputs.file(layout.stage_log("evaluate")), provenance.run_record(
            "cpu", dataset, max_logit_difference=largest_difference,
            results={"dense": dense, **results}))
        files.write_json(outputs.file(layout.ACCURACY_METRICS),
                         metrics.headline_accuracies(dense["accuracy"], results))


if __name__ == "__main__":
    cli.run_stage(main)
