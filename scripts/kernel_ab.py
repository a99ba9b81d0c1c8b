"""Times the batch kernel of this checkout against the kernel of an earlier commit.

Both versions of `prunekit/inference/kernel.py` and `kernel.c` (the earlier one read with
`git show`) run the reference recipe's first-seed pruned networks at one batch size, beside
the dense plans of the unpruned network, in warm blocks in shuffled order
(`timing.time_blocks`, 7 rounds, three repeats); both kernels' dense passes over the unpruned
network are timed too (`kernel dense` and `kernel dense <revision>`). Every kernel's logits
are checked against PyTorch first. For each network it prints both kernels' median
milliseconds and their fraction of the multiply-add ideal over the fastest dense plan of this
checkout (PyTorch, onnxruntime or the kernel's dense pass).
Run from the repository root after `dvc repro prune@adam`:
`python scripts/kernel_ab.py 47eb499 weight_k90 weight_k95 weight_k99 unit_k90`.

With `--no-avx512` both kernels are built with `-mno-avx512f`, as for a CPU with AVX2 only;
PyTorch and onnxruntime still use AVX-512 where the CPU has it, so then compare the kernels'
times with each other, not their fractions of the ideal.
"""

import os

os.environ.setdefault("GOMP_SPINCOUNT", "20000")  # As the benchmark stage sets it.

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import torch  # noqa: E402

from prunekit import artifacts, data, layout  # noqa: E402
from prunekit.inference import engines, kernel, plans, timing  # noqa: E402

THREADS = 2
BATCH_SIZE = 256
REPEATS = 3
REPOSITORY = pathlib.Path(__file__).resolve().parents[1]


def earlier_kernel(revision: str, folder: pathlib.Path):
    """Imports kernel.py and kernel.c as they were at ``revision`` from ``folder``."""
    for name in ("kernel.py", "kernel.c"):
        source = subprocess.run(["git", "-C", str(REPOSITORY), "show",
                                 f"{revision}:prunekit/inference/{name}"],
                                capture_output=True, text=True, check=True).stdout
        (folder / name).write_text(source)
    spec = importlib.util.spec_from_file_location("earlier_kernel", folder / "kernel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    """Prints each plan's median milliseconds and each kernel's fraction of the ideal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-avx512", action="store_true",
                        help="build both kernels without AVX-512 (-mno-avx512f)")
    parser.add_argument("revision", help="the commit whose kernel to time against this one")
    parser.add_argument("names", nargs="+", help="pruned networks, e.g. weight_k90")
    arguments = parser.parse_args()
    revision, names = arguments.revision, arguments.names
    extra_flags = ("-mno-avx512f",) if arguments.no_avx512 else ()
    kernel.FLAGS += extra_flags
    torch.set_num_threads(THREADS)
    images = data.load_split(layout.DATA_DIR, "fashion-mnist", train=False).images
    batch = images[:BATCH_SIZE].contiguous()
    pruned = layout.MODELS_DIR / "adam" / "pruned"
    dense, _, _ = artifacts.read_compact(pruned / "weight_k0.pt")
    calls = {"torch dense": plans.masked_dense_plan(dense.weights),
             "onnxruntime dense": engines.OrtForward(dense.weights, None, THREADS),
             "kernel dense": kernel.KernelForward(dense.weights, None, THREADS, dense=True)}
    dense_names = list(calls)
    with tempfile.TemporaryDirectory() as folder:
        earlier = earlier_kernel(revision, pathlib.Path(folder))
        earlier.FLAGS += extra_flags
        calls[f"kernel dense {revision}"] = earlier.KernelForward(dense.weights, None, THREADS,
                                                                  dense=True)
        dense_reference = calls["torch dense"](batch)
        for label in ("kernel dense", f"kernel dense {revision}"):
            torch.testing.assert_close(calls[label](batch), dense_reference, rtol=1e-4,
                                       atol=1e-4)
        ideal = {}
        for name in names:
            network, _, _ = artifacts.read_compact(pruned / f"{name}.pt")
            ideal[name] = dense.num_weights() / network.num_nonzero()
            calls[f"{name} torch"] = plans.compact_dense_plan(network)
            reference = calls[f"{name} torch"](batch)
            for label, module in (("now", kernel), (revision, earlier)):
                forward = module.KernelForward(network.weights, network.input_units(), THREADS)
                torch.testing.assert_close(forward(batch), reference, rtol=1e-4, atol=1e-4)
                calls[f"{name} kernel {label}"] = forward
        timed = {label: (lambda call=call: call(batch)) for label, call in calls.items()}
        medians = {label: [] for label in timed}
        for repeat in range(REPEATS):
            durations, _ = timing.time_blocks(timed, timing.TimingPolicy(7, 0.01),
                                              order_seed=repeat)
            for label, values in durations.items():
                medians[label].append(1e3 * statistics.median(values))
    fastest_dense = min(statistics.median(medians[label]) for label in dense_names)
    for label, values in medians.items():
        median = statistics.median(values)
        line = f"{label:26} {median:7.3f} ms (repeats {', '.join(f'{v:.3f}' for v in values)})"
        network = label.split()[0]
        if network in ideal and " kernel " in label:
            line += f"  fraction of ideal {fastest_dense / median / ideal[network]:.2f}"
        print(line)


if __name__ == "__main__":
    main()
