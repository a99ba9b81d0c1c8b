"""Stage evaluate: accuracy of one network pruned every way, at every k (no file per variant)."""

import logging

from prunekit import artifacts, cli, data, evaluation, files, layout, params, provenance

logger = logging.getLogger("evaluate")


def main() -> None:
    """Evaluates the network of the recipe and seed given on the command line, pruned every way.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        errors.InputError: If the recipe or seed is not in params.yaml.
        artifacts.CheckpointError: If the dense model is missing or of another architecture.
        data.DatasetError: If a file in data/idx/ is missing, corrupt or of another dataset.
    """
    settings = params.load_params(["download", "train", "prune"])
    dataset, train_params, prune_params = (settings["download"].dataset, settings["train"],
                                           settings["prune"])
    recipe, seed = cli.network_arguments(list(train_params.recipes), train_params.seeds)
    weights = artifacts.load_weights(layout.dense_model(recipe, seed), train_params.hidden_sizes)
    test_split = data.load_split(layout.DATA_DIR, dataset, train=False)
    _, validation = data.load_training_splits(layout.DATA_DIR, dataset, train_params.validation)
    table = evaluation.accuracy_table(
        weights, test_split.images, test_split.labels, prune_params.k_list, prune_params.methods,
        prune_params.random_draws, random_seed=seed,
        single_layers=recipe == prune_params.layer_sensitivity,
        validation=(validation.images, validation.labels))
    results = evaluation.magnitude_results(table)
    logger.info("%s seed %d: dense %.4f; %s", recipe, seed, results["dense"]["accuracy"],
                ", ".join(f"{method} {label} {result['accuracy']:.4f}"
                          for method in prune_params.methods
                          for label, result in results[method].items()))
    folder = layout.results_of(recipe, seed)
    with files.replace_together() as outputs:
        files.write_csv(outputs.file(folder / layout.SWEEP_FILE), table)
        files.write_json(outputs.file(folder / layout.EVALUATION_FILE), results)
        files.write_csv(outputs.file(folder / layout.WEIGHTS_FILE), evaluation.weight_statistics(
            weights, prune_params.k_list, prune_params.methods))
        files.write_json(outputs.file(layout.stage_log("evaluate", recipe, seed)),
                         provenance.run_record("cpu", dataset, variants=len(table)))


if __name__ == "__main__":
    cli.run_stage(main)
