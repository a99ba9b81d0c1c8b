"""What produced a result: software versions, hardware, threads, data, peak memory and speed."""

from __future__ import annotations

import pathlib
import platform
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from prunekit import data

_IMPORTED = time.perf_counter()  # About when the stage started, after importing torch.


def peak_memory_mib() -> float:
    """The peak resident memory of this process so far, in MiB (``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo, else what :mod:`platform` reports."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def describe(device: torch.device | str, dataset: str | None = None) -> dict[str, str | int]:
    """Describes the environment a stage ran in: versions, machine, device, threads.

    The ``dataset`` it read, if any, is recorded with its content checksum.
    """
    description: dict[str, str | int] = {
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "machine": f"{platform.machine()} {sys.platform}",
        "cpu": cpu_model(),
        "device": str(device),
        "num_threads": torch.get_num_threads(),
    }
    if dataset is not None:
        description["dataset"] = dataset
        description["dataset_md5"] = data.dataset_checksum(dataset)
    return description


def run_record(device: torch.device | str, dataset: str | None = None,
               **measurements: Any) -> dict[str, Any]:
    """A stage's log (``logs/<stage>.json``): its measurements, peak memory and provenance.

    Also records ``stage_seconds``, the seconds since the stage started.
    """
    return {**measurements, "stage_seconds": round(time.perf_counter() - _IMPORTED, 1),
            "peak_memory_mib": round(peak_memory_mib(), 1),
            "provenance": describe(device, dataset)}


def matmul_seconds_per_epoch(layer_shapes: Sequence[tuple[int, int]], num_samples: int,
                             batch_size: int, device: torch.device, sample_batches: int = 20
                             ) -> float:
    """Times the matrix products of one training epoch on random data, a floor for its time.

    Per weight matrix of shape ``(out, in)`` and batch: the forward product, the gradient of
    the weight and, but for the first layer, that of the input. Times ``sample_batches`` full
    batches after one warm-up batch and scales to the ``num_samples`` of an epoch.
    """
    batch_size = min(batch_size, num_samples)
    weights = [torch.randn(shape, device=device) for shape in layer_shapes]
    inputs = [torch.randn(batch_size, shape[1], device=device) for shape in layer_shapes]
    grads = [torch.randn(batch_size, shape[0], device=device) for shape in layer_shapes]

    def one_batch() -> None:
        """Runs one batch's forward and backward products, discarding the results."""
        for index, (weight, layer_input, grad_output) in enumerate(
                zip(weights, inputs, grads, strict=True)):
            layer_input @ weight.T  # Forward.
            grad_output.T @ layer_input  # Gradient of the weight.
            if index > 0:
                grad_output @ weight  # Gradient of the input.

    def synchronize() -> None:
        """Waits for the products queued on a CUDA device."""
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    one_batch()
    synchronize()
    started = time.perf_counter()
    for _ in range(sample_batches):
        one_batch()
    synchronize()
    return (time.perf_counter() - started) / sample_batches * (num_samples / batch_size)
