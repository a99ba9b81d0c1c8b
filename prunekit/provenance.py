"""What produced a result: software versions, hardware, threads, data, peak memory, stage time."""

from __future__ import annotations

import pathlib
import platform
import resource
import sys
import time
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

    ``cpu_capability`` is the widest vector instruction set PyTorch uses on this CPU (AVX2 or
    AVX512): models of one name differ in it, and the timings with it. The ``dataset`` read, if
    any, is recorded with its content checksum.
    """
    description: dict[str, str | int] = {
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "machine": f"{platform.machine()} {sys.platform}",
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if torch.device(device).type == "cuda"
                        else cpu_model()),
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
