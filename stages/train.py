"""Stage train: fits one bias-free ReLU MLP per recipe and seed (models/<recipe>/seed<N>/)."""

import itertools
import logging
import statistics
import sys
import time
from collections.abc import Callable

import tqdm

from prunekit import cli, data, files, layout, model, params, provenance, timing, training

logger = logging.getLogger("train")

# Batches of matrix products timed before each epoch and after the last: an epoch's floor, the
# time its time is compared with, is the mean of the samples just before and just after it.
MATMUL_SAMPLE_BATCHES = 15


def main() -> None:
    """Trains the network of the recipe and seed given on the command line.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        errors.InputError: If the recipe or seed is not in params.yaml.
        data.DatasetError: If a file in data/idx/ is missing, corrupt or of another dataset.
    """
    settings = params.load_params(["download", "train"])
    dataset, config = settings["download"].dataset, settings["train"]
    recipe, seed = cli.network_arguments(list(config.recipes), config.seeds)
    training.make_deterministic(seed, config.num_threads)
    device = training.resolve_device(config.device)
    train_split = data.load_split(layout.DATA_DIR, dataset, train=True, limit=config.limit)
    test_split = data.load_split(layout.DATA_DIR, dataset, train=False)
    train_split, test_split = (
        data.Split(split.images.to(device), split.labels.to(device))
        for split in (train_split, test_split))
    network = model.MLP(config.hidden_sizes).to(device)
    num_samples = train_split.labels.shape[0]

    bars: list[tqdm.tqdm] = []

    def progress_bar(epoch: int) -> Callable[[int], object]:
        """Closes the last epoch's progress bar and returns the ``update`` of a new one."""
        for bar in bars:
            bar.close()
        bars[:] = [tqdm.tqdm(total=num_samples, desc=f"epoch {epoch}/{config.epochs}",
                             unit="img", unit_scale=True, leave=False,
                             disable=not sys.stderr.isatty())]
        return bars[0].update

    shapes = [tuple(weight.shape) for weight in network.weights()]
    matmul_samples: list[float] = []

    def sample_matmul_seconds() -> None:
        """Times an epoch's matrix products alone, here and now.

        On a shared machine their speed drifts by tens of percent between minutes, so each
        epoch is compared with samples taken right before and right after it.
        """
        matmul_samples.append(timing.matmul_seconds_per_epoch(
            shapes, num_samples, config.batch_size, device, MATMUL_SAMPLE_BATCHES))

    def before_epoch(epoch: int) -> Callable[[int], object]:
        """Samples the products before an epoch and opens the epoch's progress bar."""
        sample_matmul_seconds()
        return progress_bar(epoch)

    logger.info("training %s seed %d on %d %s images for %d epochs on %s", recipe, seed,
                num_samples, dataset, config.epochs, device)
    started = time.perf_counter()
    history = training.fit(network, train_split, test_split, config.epochs, config.batch_size,
                           config.recipes[recipe], seed,
                           on_epoch_start=before_epoch)
    for bar in bars:
        bar.close()
    sample_matmul_seconds()  # The sample after the last epoch.
    total_seconds = time.perf_counter() - started
    train_seconds = sum(result.seconds for result in history)
    seconds_per_epoch = train_seconds / config.epochs
    matmul_seconds = [(before + after) / 2
                      for before, after in itertools.pairwise(matmul_samples)]
    ratios = [result.seconds / matmul for result, matmul in
              zip(history, matmul_seconds, strict=True)]
    final = history[-1]
    run_log = provenance.run_record(
        device, dataset, test_accuracy=final.test_accuracy, train_accuracy=final.train_accuracy,
        train_samples=num_samples, seconds=round(total_seconds, 2),
        seconds_per_epoch=round(seconds_per_epoch, 3),
        matmul_seconds_per_epoch=round(statistics.median(matmul_seconds), 3),
        epoch_over_matmul_ratio=round(statistics.median(ratios), 3),
        epoch_seconds=[round(result.seconds, 3) for result in history],
        epoch_matmul_seconds=[round(seconds, 3) for seconds in matmul_seconds],
        matmul_samples_seconds=[round(seconds, 3) for seconds in matmul_samples],
        epoch_over_matmul_ratios=[round(ratio, 3) for ratio in ratios])
    folder = layout.network_dir(recipe, seed)
    with files.replace_together() as outputs:
        files.save_torch(outputs.file(layout.dense_model(recipe, seed)),
                         model.state_dict_from_weights(
                             [weight.detach().cpu() for weight in network.weights()]))
        files.write_csv(outputs.file(folder / layout.HISTORY_FILE),
                        training.history_table(history))
        files.write_json(outputs.file(layout.stage_log("train", recipe, seed)), run_log)
    logger.info("test accuracy %.4f; wrote %s", final.test_accuracy, folder)


if __name__ == "__main__":
    cli.run_stage(main)
