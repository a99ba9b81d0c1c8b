"""Stage prune: writes one compact artifact per (method, k) under models/pruned/, no retraining."""

import logging

from prunekit import cli, compact, files, layout, model, params, provenance, pruning

logger = logging.getLogger("prune")


def main() -> None:
    """Prunes the dense network by every method and k in params.yaml's ``prune`` section.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        model.CheckpointError: If models/dense.pt is missing or not of ``train.hidden_sizes``.
    """
    settings = params.load_params(["train", "prune"])
    config = settings["prune"]
    dense_weights = model.load_weights(layout.DENSE_MODEL, settings["train"].hidden_sizes)
    dense_bytes = layout.DENSE_MODEL.stat().st_size
    total_weights = sum(weight.numel() for weight in dense_weights)
    rows = []
    with files.replace_together() as outputs:
        staging = outputs.directory(layout.PRUNED_DIR)
        for method in config.methods:
            for percent in config.k_list:
                label = pruning.percent_label(percent)
                network = compact.compact(pruning.prune(dense_weights, method, percent))
                path = staging / layout.pruned_model(method, label).name
                encodings = compact.save_compact(path, network, method, percent)
                file_bytes = path.stat().st_size
                rows.append({
                    "series": f"{method} pruning", "method": method, "k": percent,
                    "file_percent": round(100 * file_bytes / dense_bytes, 2),
                    "file_bytes": file_bytes, "compact_weights": network.num_weights(),
                    "nonzero_weights": network.num_nonzero(),
                    "encodings": ", ".join(f"{count} {name}" for name, count in
                                           sorted(encodings.items())),
                })
                logger.info("%s %s: %d of %d weights remain, file %.1f %% of dense", method,
                            label, network.num_nonzero(), total_weights,
                            100 * file_bytes / dense_bytes)
        files.write_csv(outputs.file(layout.FILE_SIZES), rows)
        files.write_json(outputs.file(layout.stage_log("prune")), provenance.run_record(
            "cpu", dense_file_bytes=dense_bytes, dense_weights=total_weights))


if __name__ == "__main__":
    cli.run_stage(main)
