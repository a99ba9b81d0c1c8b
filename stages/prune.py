"""Stage prune: one compact artifact per (method, k) of a recipe's first-seed network."""

import logging

from prunekit import (
    artifacts,
    cli,
    compact,
    data,
    files,
    layout,
    names,
    params,
    provenance,
    pruning,
)
from prunekit.inference import plans

logger = logging.getLogger("prune")

# Test images on which every compact network must reproduce its masked network's logits.
CHECK_IMAGES = 2000


def main() -> None:
    """Prunes the first seed's network of the recipe on the command line, every method and k.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        errors.InputError: If the recipe is not in params.yaml.
        artifacts.CheckpointError: If the dense model is missing or of another architecture.
        data.DatasetError: If a test file in data/idx/ is missing, corrupt or of another
            dataset.
        plans.PlanMismatchError: If a compact network does not reproduce its masked
            one.
    """
    settings = params.load_params(["download", "train", "prune"])
    train_params, prune_params = settings["train"], settings["prune"]
    recipe, _ = cli.network_arguments(list(train_params.recipes))
    dense_path = layout.dense_model(recipe, train_params.seeds[0])
    dense_weights = artifacts.load_weights(dense_path, train_params.hidden_sizes)
    images = data.load_split(layout.DATA_DIR, settings["download"].dataset,
                             train=False).images[:CHECK_IMAGES]
    dense_bytes = dense_path.stat().st_size
    total_weights = sum(weight.numel() for weight in dense_weights)
    rows, largest_difference = [], 0.0
    with files.replace_together() as outputs:
        staging = outputs.directory(layout.pruned_dir(recipe))
        for method in prune_params.methods:
            for k in prune_params.k_list:
                masked = pruning.prune(dense_weights, method, k)
                network = compact.compact(masked)
                checked = (plans.masked_dense_plan(masked), plans.compact_dense_plan(network))
                differences = plans.verify_plans({plan.name: plan for plan in checked}, images)
                largest_difference = max(largest_difference, *differences.values())
                path = staging / layout.pruned_model(recipe, method, k).name
                encodings = artifacts.save_compact(path, network, method, k)
                file_bytes = path.stat().st_size
                rows.append({
                    "recipe": recipe, "method": method, "k": k,
                    "file_percent": round(100 * file_bytes / dense_bytes, 2),
                    "file_bytes": file_bytes, "compact_weights": network.num_weights(),
                    "nonzero_weights": network.num_nonzero(),
                    "encodings": ", ".join(f"{count} {name}" for name, count in
                                           sorted(encodings.items())),
                })
                logger.info("%s %s %s: %d of %d weights remain, file %.1f %% of dense", recipe,
                            method, names.k_label(k), network.num_nonzero(), total_weights,
                            100 * file_bytes / dense_bytes)
        files.write_csv(outputs.file(layout.file_sizes_table(recipe)), rows)
        files.write_json(outputs.file(layout.stage_log("prune", recipe)), provenance.run_record(
            "cpu", dense_file_bytes=dense_bytes, dense_weights=total_weights,
            max_logit_difference=largest_difference))


if __name__ == "__main__":
    cli.run_stage(main)
