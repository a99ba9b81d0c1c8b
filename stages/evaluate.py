"""Stage evaluate: accuracy of one network pruned every way, at every k (no file per variant)."""

import logging

from prunekit import artifacts, cli, data, files, layout, params, provenance, sweep

logger = logging.getLogger("evaluate")


def main() -> None:
    """Sweeps the network of the recipe and seed given on the command line.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        errors.InputError: If the recipe or seed is not in params.yaml.
        artifacts.CheckpointError: If the dense model is missing or of another architecture.
        data.DatasetError: If a test file in data/idx/ is missing, corrupt or of another
            dataset.
    """
    settings = params.load_params(["download", "train", "prune"])
    dataset, train, config = settings["download"].dataset, settings["train"], settings["prune"]
    recipe, seed = cli.network_arguments(list(train.recipes), train.seeds)
    cli.check_recipe_name(config.layer_sensitivity, list(train.recipes),
                          "prune.layer_sensitivity")
    weights = artifacts.load_weights(layout.dense_model(recipe, seed), train.hidden_sizes)
    test_split = data.load_split(layout.DATA_DIR, dataset, train=False)
    table = sweep.sweep(weights, test_split.images, test_split.labels, config.k_list,
                        config.methods, config.random_draws, random_seed=seed,
                        single_layers=recipe == config.layer_sensitivity)
    summary = sweep.summary(table)
    logger.info("%s seed %d: dense %.4f; %s", recipe, seed, summary["dense"]["accuracy"],
                ", ".join(f"{method} {label} {result['accuracy']:.4f}"
                          for method in config.methods
                          for label, result in summary[method].items()))
    folder = layout.network_dir(recipe, seed)
    with files.replace_together() as outputs:
        files.write_csv(outputs.file(folder / layout.SWEEP_FILE), table)
        files.write_json(outputs.file(folder / layout.EVALUATION_FILE), summary)
        files.write_json(outputs.file(layout.stage_log("evaluate", recipe, seed)),
                         provenance.run_record("cpu", dataset, variants=len(table)))


if __name__ == "__main__":
    cli.run_stage(main)
