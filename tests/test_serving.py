"""Tests of the deployment call: a compact artifact in, the masked network's logits out."""

import pytest
import torch
from conftest import mlp_shapes, reference_logits

from prunekit import artifacts, compact, files, pruning
from prunekit.inference import plans, serving


@pytest.fixture(scope="module")
def saved(tmp_path_factory, random_weights):
    """A weight-pruned k90 network of the default shape saved as an artifact, with its masks."""
    dense = random_weights(mlp_shapes([1000, 1000, 500, 200]))
    masked = pruning.prune(dense, "weight", 90)
    path = tmp_path_factory.mktemp("pruned") / "weight_k90.pt"
    artifacts.save_compact(path, compact.compact(masked), "weight", 90)
    return path, masked


@pytest.mark.parametrize("plan", [None, "compact_ort", "mkl_csr", "kernel", "masked_dense",
                                  "masked_kernel"])
@pytest.mark.parametrize("batch_size", [1, 37])
def test_loaded_network_gives_the_masked_logits(saved, tmp_path, plan, batch_size,
                                                 random_images):
    path, masked = saved
    images = random_images(batch_size)
    predict = serving.load(path, batch_size=batch_size, plan=plan,
                           table=tmp_path / "missing.csv")
    with torch.inference_mode():
        logits = predict(images)
        reference = reference_logits(masked, images)
    scale = float(reference.abs().max())
    torch.testing.assert_close(logits / scale, reference / scale, rtol=0, atol=1e-5)


def test_plan_comes_from_the_benchmark_table_at_the_nearest_batch_size(saved, tmp_path, caplog):
    table = tmp_path / "results" / "adam" / "benchmark.csv"  # Where the benchmark stage puts it.
    table.parent.mkdir(parents=True)
    # Three runs: mkl_csr wins one at batch 1, kernel has the smaller median there.
    rows = [{"run": run, "method": "weight", "k": 90, "batch_size": batch, "plan": plan,
             "formats": "csr", "median_ms": milliseconds, "speedup_vs_dense": 1 / milliseconds,
             "speedup_vs_fastest_dense": 1 / milliseconds, "fastest_dense_plan": "masked_ort",
             "is_fastest": False}
            for batch, plan, times in ((1, "kernel", (1.0, 1.1, 1.0)),
                                       (1, "mkl_csr", (1.2, 0.9, 1.5)),
                                       (256, "mkl_csr", (3.0, 3.1, 2.9)))
            for run, milliseconds in enumerate(times, start=1)]
    files.write_csv(table, rows)
    assert serving.fastest_plan(table, "weight", 90, 4) == "kernel"
    assert serving.fastest_plan(table, "weight", 90, 64) == "mkl_csr"
    assert serving.fastest_plan(table, "unit", 90, 1) is None
    assert serving.fastest_plan(tmp_path / "none.csv", "weight", 90, 1) is None
    artifact = tmp_path / "models" / "adam" / "pruned" / "weight_k90.pt"
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(saved[0].read_bytes())
    with caplog.at_level("INFO"):
        assert callable(serving.load(artifact, batch_size=4))  # Its recipe's table, found.
    assert "serving plan kernel" in caplog.text


def test_a_masked_plan_is_served_by_the_same_engine_on_the_compact_network(saved, caplog):
    with caplog.at_level("INFO"):
        serving.load(saved[0], plan="masked_kernel")
        serving.load(saved[0], plan="masked_ort")
    assert "serving plan compact_kernel" in caplog.text
    assert "serving plan compact_ort" in caplog.text


def test_bad_plans_and_files_are_rejected(saved, tmp_path):
    with pytest.raises(ValueError, match="does not apply"):
        serving.load(saved[0], plan="no_such_plan")
    with pytest.raises(artifacts.ArtifactError, match="not found"):
        serving.load(tmp_path / "absent.pt")
    assert "masked_dense" in plans.PLAN_NAMES
