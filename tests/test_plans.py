"""Tests of the inference plans: same logits as the masked network, and exact cost counts."""

import numpy as np
import pytest
import torch
from conftest import mlp_shapes, reference_logits

from prunekit import compact, pruning
from prunekit.inference import engines, kernel, plans

SMALL = mlp_shapes([64, 48, 32])
DEFAULT = mlp_shapes([1000, 1000, 500, 200])


def assert_plans_match(masked: list[torch.Tensor], built: dict, inputs: torch.Tensor) -> None:
    reference = reference_logits(masked, inputs)
    scale = max(float(reference.abs().max()), 1.0)
    for name, plan in built.items():
        logits = plan(inputs)
        assert logits.shape == reference.shape, name
        torch.testing.assert_close(logits / scale, reference / scale, rtol=0, atol=1e-5,
                                   msg=f"plan {name}")


@pytest.mark.parametrize("method", ["weight", "unit"])
@pytest.mark.parametrize("percent", [0, 50, 90, 99])
def test_every_plan_reproduces_masked_logits_on_a_small_network(method, percent, random_weights,
                                                                random_images):
    masked = pruning.prune(random_weights(SMALL), method, percent)
    network = compact.compact(masked)
    # Forcing CSR everywhere and a mid threshold covers CSR, dense and mixed layers.
    built = plans.build_plans(masked, network, csr_max_density=1.0, num_threads=2)
    built["mixed"] = plans.transposed_plan(network, 0.3, "mixed")
    expected = set(plans.PLAN_NAMES)
    if not all(weight.numel() for weight in network.weights):  # A whole layer was pruned.
        expected -= {"mkl_csr", "compact_kernel", "kernel"}
    assert set(built) == {*expected, "mixed"}
    for batch_size in (1, 37, plans.BATCH_TILE + 3):  # The last one is sliced.
        assert_plans_match(masked, built, random_images(batch_size))


def test_plans_reproduce_masked_logits_on_the_default_network(random_weights, random_images):
    dense = random_weights(DEFAULT)
    inputs = random_images(5)
    with torch.inference_mode():
        for method, percent in (("weight", 95), ("unit", 90)):
            masked = pruning.prune(dense, method, percent)
            built = plans.build_plans(masked, compact.compact(masked), num_threads=2)
            assert_plans_match(masked, built, inputs)
            differences = plans.verify_plans(built, inputs)
            assert set(differences) == set(built)


def hand_built() -> list[torch.Tensor]:
    """A 4-3-2 network: hidden neuron 1 has no input, input pixel 2 is read by nobody."""
    first = torch.tensor([[1.0, 0.0, 0.0, 2.0],
                          [0.0, 0.0, 0.0, 0.0],
                          [0.0, 3.0, 0.0, 0.0]])
    last = torch.tensor([[1.0, 1.0, 1.0],
                         [0.0, 2.0, -1.0]])
    return [first, last]


def test_multiply_adds_of_a_hand_built_network():
    masked = hand_built()
    network = compact.compact(masked)
    # Compact: first (2, 3) = [[1, 0, 2], [0, 3, 0]] with 3 non-zeros, last (2, 2) =
    # [[1, 1], [0, -1]]; the last matrix always counts in full.
    built = plans.build_plans(masked, network, hybrid_max_density=0.25, csr_max_density=1.0)
    costs = {name: plan.multiply_adds for name, plan in built.items()}
    assert costs == {"masked_dense": 12 + 6, "compact_dense": 6 + 4, "compact_csr": 3 + 4,
                     "compact_hybrid": 6 + 4}  # First density 0.5 > 0.25: hybrid keeps it dense.
    assert plans.nonzero_multiply_adds(network) == 3 + 4
    assert built["compact_csr"].formats == ("csr", "dense")
    assert built["compact_hybrid"].formats == ("dense", "dense")
    inputs = torch.tensor([[1.0, 2.0, 5.0, -1.0], [0.5, 1.0, 9.0, 1.0]])
    expected = torch.tensor([[6.0, -6.0], [5.5, -3.0]])  # Hidden relu([-1, 0, 6]), [2.5, 0, 3].
    for plan in built.values():
        torch.testing.assert_close(plan(inputs), expected)


def test_all_csr_plan_is_skipped_above_its_density_limit(random_weights):
    masked = pruning.prune(random_weights(SMALL), "weight", 40)
    built = plans.build_plans(masked, compact.compact(masked))
    assert "compact_csr" not in built
    assert built["compact_hybrid"].formats == ("dense",) * 4


def test_hybrid_uses_csr_only_for_sparse_hidden_matrices(random_weights):
    masked = pruning.prune(random_weights(SMALL), "weight", 90)
    built = plans.build_plans(masked, compact.compact(masked))
    assert built["compact_hybrid"].formats == ("csr", "csr", "csr", "dense")
    unit = pruning.prune(random_weights(SMALL), "unit", 90)
    assert plans.build_plans(unit, compact.compact(unit))[
        "compact_hybrid"].formats == ("dense",) * 4


def test_to_csr_round_trips_with_int32_indices():
    weight = torch.tensor([[0.0, 1.5, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, -3.0]])
    csr = plans.to_csr(weight)
    assert csr.layout == torch.sparse_csr
    assert csr.crow_indices().dtype == torch.int32 and csr.col_indices().dtype == torch.int32
    assert csr.crow_indices().tolist() == [0, 1, 1, 3]
    torch.testing.assert_close(csr.to_dense(), weight)
    with pytest.raises(ValueError, match="2-D"):
        plans.to_csr(torch.zeros(3))


def test_density():
    assert plans.density(torch.tensor([[0.0, 1.0], [2.0, 0.0]])) == 0.5
    assert plans.density(torch.zeros(0, 3)) == 0.0


def test_mismatched_networks_and_bad_thresholds_are_rejected(random_weights):
    masked = hand_built()
    other = compact.compact(pruning.prune(random_weights(mlp_shapes([8])), "weight", 50))
    with pytest.raises(ValueError, match="do not match"):
        plans.build_plans(masked, other)
    with pytest.raises(ValueError, match="max_density"):
        plans.transposed_plan(compact.compact(masked), 1.5, "bad")


def test_verify_plans_catches_a_wrong_plan():
    masked = hand_built()
    built = plans.build_plans(masked, compact.compact(masked))
    wrong = plans.Plan(name="wrong", forward=lambda x: built["compact_dense"](x) + 1,
                       multiply_adds=1, formats=("dense", "dense"))
    with pytest.raises(plans.PlanMismatchError, match="wrong"):
        plans.verify_plans({**built, "wrong": wrong}, torch.ones(2, 4))


def test_kernel_plan_is_left_out_without_a_compiler(monkeypatch, caplog, random_weights):
    masked = pruning.prune(random_weights(SMALL), "weight", 90)

    def no_compiler():
        raise kernel.KernelUnavailableError("no C compiler")

    monkeypatch.setattr(kernel, "library", no_compiler)
    built = plans.compact_plans(compact.compact(masked), num_threads=1)
    assert "kernel" not in built and "compact_kernel" not in built and "mkl_csr" in built
    assert "no C compiler" in caplog.text


def test_a_failing_compiler_runs_once_and_its_error_reaches_the_log(monkeypatch, caplog, tmp_path,
                                                                    random_weights):
    runs = tmp_path / "runs"
    compiler = tmp_path / "broken-cc"
    compiler.write_text(f"#!/bin/sh\necho run >> {runs}\necho 'broken: no such header' >&2\n"
                        "exit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("CC", str(compiler))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    network = compact.compact(pruning.prune(random_weights(SMALL), "weight", 90))
    for _ in range(2):
        built = plans.compact_plans(network, num_threads=1)
        assert "kernel" not in built and "compact_kernel" not in built and "mkl_csr" in built
    assert runs.read_text().splitlines() == ["run"]  # Four kernel plans, one compile.
    assert caplog.text.count("broken: no such header") == 4


# The batch kernel's 16-float code where the CPU has AVX-512, and the 8-float code (AVX2) that
# other machines run, compiled here without AVX-512.
@pytest.mark.parametrize("extra_flags", [(), ("-mno-avx512f",)], ids=["native", "no-avx512"])
def test_kernel_threads_share_any_batch_and_read_only_the_kept_pixels(extra_flags, monkeypatch,
                                                                      random_weights,
                                                                      random_images):
    monkeypatch.setattr(kernel, "FLAGS", kernel.FLAGS + extra_flags)
    masked = pruning.prune(random_weights(SMALL), "weight", 90)
    network = compact.compact(masked)
    assert network.input_units() is not None  # Some pixels are read by nobody.
    forward = kernel.KernelForward(network.weights, network.input_units(), num_threads=3)
    # 4, 1, 3 and 2 tiles of 64: the kernel's worker threads, kept between calls, get every
    # share of a batch, or none.
    for batch_size in (256, 1, 64, 130, 200, 70):
        inputs = random_images(batch_size)
        torch.testing.assert_close(forward(inputs), reference_logits(masked, inputs),
                                   rtol=1e-4, atol=1e-5, msg=f"batch {batch_size}")
    narrow = int(network.input_units().max())  # Too few pixels: the last one read is missing.
    for batch_size in (1, 70):
        with pytest.raises(ValueError, match="the network reads"):
            forward(random_images(batch_size)[:, :narrow])


@pytest.mark.parametrize("extra_flags", [(), ("-mno-avx512f",)], ids=["native", "no-avx512"])
def test_batch_kernel_multiplies_dense_blocks_densely_and_sparse_ones_in_csr(
        extra_flags, monkeypatch, random_weights, random_images):
    monkeypatch.setattr(kernel, "FLAGS", kernel.FLAGS + extra_flags)
    # 37 rows, the widest layer, is no multiple of the dense passes' groups of 6 rows.
    shapes, densities = [(37, 30), (21, 37), (10, 21)], [0.9, 0.3, 1.0]
    weights = [random_weights([shape], seed=index, density=density)[0]
               for index, (shape, density) in enumerate(zip(shapes, densities, strict=True))]
    packed = kernel._pack_passes(weights, block_columns=16, keep_zeros=False)
    pointers, pointer_starts, flags = packed[0], packed[4], packed[-1]
    dense_passes = [bool(flag & kernel.DENSE_PASS) for flag in flags]
    assert dense_passes == [True, True, False, False, False, True, True]  # 2, 3 and 2 blocks.
    # A dense pass's pointers are its first column and its width: 30 columns split 15 + 15.
    first_layer = [pointers[start:start + 2].tolist() for start in pointer_starts[:2]]
    assert first_layer == [[0, 15], [15, 15]]
    # Blocks of 16 columns: dense passes that add to the previous block's rows; the default
    # blocks: each layer one pass, the first dense one applying ReLU as it writes.
    for block_columns in (16, kernel.BLOCK_COLUMNS):
        forward = kernel.KernelForward(weights, None, num_threads=2, block_columns=block_columns)
        for batch_size in (256, 70):
            inputs = random_images(batch_size, width=30)
            torch.testing.assert_close(forward(inputs), reference_logits(weights, inputs),
                                       rtol=1e-4, atol=1e-5,
                                       msg=f"batch {batch_size}, blocks of {block_columns}")


@pytest.mark.parametrize("num_threads", [1, 2, 3])
@pytest.mark.parametrize(("method", "percent", "formats"), [
    # Hidden densities 0.038 and 0.051 after compaction, either side of
    # HIDDEN_DENSE_MIN_DENSITY (0.04); the last matrix is never pruned.
    ("weight", 97, ("csr", "csc", "dense", "dense")),
    # 75 of 150 units left: a run of 64 dense rows and a tail of 11 (padded to 16).
    ("unit", 50, ("dense",) * 4),
])
def test_kernel_reads_one_image_by_rows_columns_or_densely(num_threads, method, percent, formats,
                                                           monkeypatch, random_weights,
                                                           random_images):
    monkeypatch.setattr(kernel, "PART_MIN_MULTIPLY_ADDS", 1)  # Every thread gets a part.
    masked = pruning.prune(random_weights(mlp_shapes([150, 97, 33])), method, percent)
    network = compact.compact(masked)
    forward = kernel.KernelForward(network.weights, network.input_units(), num_threads)
    assert forward.formats == formats
    assert forward.one_image_threads == num_threads
    image = random_images(1)
    image[:, ::3] = 0  # Zero pixels, and so zero activations, are skipped.
    for inputs in (image, random_images(1, seed=2)):
        torch.testing.assert_close(forward(inputs), reference_logits(masked, inputs),
                                   rtol=1e-4, atol=1e-5)


def test_kernel_splits_rows_by_non_zeros_and_dense_rows_by_whole_vectors():
    weight = torch.zeros(40, 5)
    weight[:10] = 1.0  # 5 non-zeros in each of the first 10 rows, 1 in the other 30.
    weight[10:, 0] = 1.0
    assert kernel._row_starts(weight, 2, 1) == [0, 8, 40]  # 40 non-zeros each.
    assert kernel._row_starts(weight, 3, 1) == [0, 6, 14, 40]  # 30, 24 and 26.
    assert kernel._row_starts(weight, 3, 8) == [0, 8, 16, 40]
    assert kernel._row_starts(torch.zeros(4, 3), 2, 1) == [0, 1, 4]


def test_kernel_plan_is_left_out_for_layers_wider_than_its_indices(monkeypatch, caplog,
                                                                   random_weights):
    monkeypatch.setattr(kernel, "MAX_INDEX", 100)  # The network below is 784 wide.
    network = compact.compact(pruning.prune(random_weights(SMALL), "weight", 90))
    built = plans.compact_plans(network, num_threads=1)
    assert "kernel" not in built and "compact_kernel" not in built and "mkl_csr" in built
    assert "beyond the kernels' 16-bit indices" in caplog.text


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint16])
def test_kernel_buffers_start_on_a_cache_line(dtype):
    for size in (1, 7, 1000):
        array = np.arange(size, dtype=dtype)
        aligned = kernel._cache_aligned(array)
        assert aligned.ctypes.data % kernel.CACHE_LINE_BYTES == 0
        np.testing.assert_array_equal(aligned, array)
        assert aligned.dtype == dtype


def test_onnxruntime_threads_spin_only_while_a_call_runs(random_weights):
    # A pool left spinning after a call slows the plan timed next on two cores (benchmark.md).
    forward = engines.OrtForward(random_weights(SMALL), None, num_threads=2)
    options = forward._session.get_session_options()
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
