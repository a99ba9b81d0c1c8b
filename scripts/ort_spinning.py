"""How onnxruntime's thread spinning changes its own time and that of the plan timed next.

Times one session per spinning setting beside the `compact_dense` and `kernel` plans of the
same compact network, in warm blocks in shuffled order (`timing.time_blocks`, 7 rounds),
each call over the test images the benchmark stage runs (`benchmarking.timed_batches`: 64
images one at a time at batch 1), three repeats each: `nospin`
(`session.intra_op.allow_spinning = 0`), `spinstop` (`session.force_spinning_stop = 1`) and
`default` (the pool spins on after each call). Run from the repository root after
`dvc repro prune@adam`:
`python scripts/ort_spinning.py unit_k90:256 weight_k0:256 unit_k90:1` (network:batch).
"""

import os

os.environ.setdefault("GOMP_SPINCOUNT", "20000")  # As the benchmark stage sets it.

import functools  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

import onnxruntime  # noqa: E402
import torch  # noqa: E402

from prunekit import artifacts, data, layout  # noqa: E402
from prunekit.inference import benchmarking, engines, plans, timing  # noqa: E402

THREADS = 2
SETTINGS = {"nospin": ("session.intra_op.allow_spinning", "0"),
            "spinstop": ("session.force_spinning_stop", "1"), "default": None}


def session(network, setting: tuple[str, str] | None) -> onnxruntime.InferenceSession:
    """An onnxruntime session of the compact network with one spinning setting."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if setting is not None:
        options.add_session_config_entry(*setting)
    model = engines.onnx_model(network.weights, network.input_units())
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def main() -> None:
    """Prints each case's median milliseconds per batch, per setting and plan."""
    torch.set_num_threads(THREADS)
    images = data.load_split(layout.DATA_DIR, "fashion-mnist", train=False).images
    for case in sys.argv[1:]:
        name, batch_size = case.split(":")
        network, _, _ = artifacts.read_compact(layout.MODELS_DIR / "adam" / "pruned" / f"{name}.pt")
        batches = benchmarking.timed_batches(images, int(batch_size))
        built = plans.compact_plans(network, num_threads=THREADS)
        for setting_name, setting in SETTINGS.items():
            ort = session(network, setting)
            pixels = [batch.numpy() for batch in batches]

            def run_ort(ort=ort, pixels=pixels) -> None:
                for array in pixels:
                    ort.run(None, {"images": array})

            calls = {"ort": run_ort,
                     **{plan: functools.partial(benchmarking.run_each, built[plan], batches)
                        for plan in ("compact_dense", "kernel")}}
            medians = {plan: [] for plan in calls}
            for repeat in range(3):
                durations, _ = timing.time_blocks(calls, timing.TimingPolicy(7, 0.02),
                                                  order_seed=repeat)
                for plan, values in durations.items():
                    medians[plan].append(1e3 * statistics.median(values) / len(batches))
            for plan, values in medians.items():
                print(f"{case} {setting_name:8} {plan:13} "
                      f"{statistics.median(values):.3f} ms (repeats {values})")


if __name__ == "__main__":
    main()
