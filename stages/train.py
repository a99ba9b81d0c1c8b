"""Stage train: fits one bias-free ReLU MLP per recipe and seed (models/<recipe>/seed<N>/)."""

import itertools
import logging
import statistics
import sys
import time

import tqdm

from prunekit import cli, data, files, layout, model, params, provenance, training

logger = logging.getLogger("train")

# Batches of matrix products timed before each epoch and after the last: an epoch's floor, the
# time its time is compared with, is the mean of the samples just before and just after it. On
# a shared machine their speed drifts by tens of percent between minutes.
MATMUL_SAMPLE_BATCHES = 15


def main() -> None:
    """Trains the network of the recipe and seed given on the command line.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        errors.InputError: If the recipe or seed is not in params.yaml.
        data.DatasetError: If a file in data/idx/ is missing, corrupt or of another dataset.
    """
    settings = params.load_params(["download", "train"])
    dataset, train_params = settings["download"].dataset, settings["train"]
    recipe, seed = cli.network_arguments(list(train_params.recipes), train_params.seeds)
    training.make_deterministic(seed, train_params.num_threads)
    device = training.resolve_device(train_params.device)
    splits = (*data.load_training_splits(layout.DATA_DIR, dataset, train_params.validation,
                                         train_params.limit),
              data.load_split(layout.DATA_DIR, dataset, train=False))
    train_split, validation_split, test_split = (split.to(device) for split in splits)
    network = model.MLP(train_params.hidden_sizes).to(device)
    num_samples, epochs = train_split.labels.shape[0], train_params.epochs
    network_recipe = training.Recipe(**train_params.recipes[recipe].model_dump())
    batch_size = network_recipe.batch_size or train_params.batch_size
    shapes = [tuple(weight.shape) for weight in network.weights()]

    def matmul_floor() -> float:
        """Times an epoch's matrix products alone, here and now."""
        return training.matmul_seconds_per_epoch(shapes, num_samples, batch_size, device,
                                                 MATMUL_SAMPLE_BATCHES)

    logger.info("training %s seed %d on %d %s images (%d held out for validation) for %d "
                "epochs, batch %d, on %s", recipe, seed, num_samples, dataset,
                validation_split.labels.shape[0], epochs, batch_size, device)
    started = time.perf_counter()
    matmul_samples, history = [matmul_floor()], []
    with tqdm.tqdm(total=epochs * num_samples, unit="img", unit_scale=True, leave=False,
                   disable=not sys.stderr.isatty()) as bar:
        for result in training.fit(network, train_split, validation_split, test_split, epochs,
                                   batch_size, network_recipe, seed, progress=bar.update):
            matmul_samples.append(matmul_floor())  # After this epoch, before the next.
            history.append(result)
            logger.info("epoch %d/%d: train loss %.4f, validation accuracy %.4f, test accuracy "
                        "%.4f (%.1f s)", result.epoch, epochs, result.train_loss,
                        result.validation_accuracy, result.test_accuracy, result.seconds)
    total_seconds = time.perf_counter() - started
    matmul_seconds = [(before + after) / 2
                      for before, after in itertools.pairwise(matmul_samples)]
    ratios = [result.seconds / matmul
              for result, matmul in zip(history, matmul_seconds, strict=True)]
    final = history[-1]
    run_log = provenance.run_record(
        device, dataset, test_accuracy=final.test_accuracy,
        validation_accuracy=final.validation_accuracy, train_accuracy=final.train_accuracy,
        train_samples=num_samples, validation_samples=validation_split.labels.shape[0],
        batch_size=batch_size, seconds=round(total_seconds, 2),
        seconds_per_epoch=round(sum(result.seconds for result in history) / epochs, 3),
        matmul_seconds_per_epoch=round(statistics.median(matmul_seconds), 3),
        epoch_over_matmul_ratio=round(statistics.median(ratios), 3),
        epoch_seconds=[round(result.seconds, 3) for result in history],
        epoch_matmul_seconds=[round(seconds, 3) for seconds in matmul_seconds],
        matmul_samples_seconds=[round(seconds, 3) for seconds in matmul_samples],
        epoch_over_matmul_ratios=[round(ratio, 3) for ratio in ratios])
    with files.replace_together() as outputs:
        files.save_torch(outputs.file(layout.dense_model(recipe, seed)),
                         model.state_dict_from_weights(
                             [weight.detach().cpu() for weight in network.weights()]))
        files.write_csv(outputs.file(layout.results_of(recipe, seed) / layout.HISTORY_FILE),
                        training.history_table(history))
        files.write_json(outputs.file(layout.stage_log("train", recipe, seed)), run_log)
    logger.info("validation accuracy %.4f, test accuracy %.4f; wrote %s and %s",
                final.validation_accuracy, final.test_accuracy, layout.dense_model(recipe, seed),
                layout.results_of(recipe, seed))


if __name__ == "__main__":
    cli.run_stage(main)
