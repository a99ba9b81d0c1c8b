"""Deploying a pruned network: load a compact artifact, get back its fastest forward pass.

    >>> from prunekit.inference import serving
    >>> predict = serving.load("models/adam/pruned/unit_k90.pt", batch_size=1)
    >>> logits = predict(images)  # float32 (batch, 784) -> (batch, 10)

The plan is the fastest one the benchmark stage measured for that network at the measured
batch size nearest to ``batch_size`` (from ``results/<recipe>/benchmark.csv``), or the one
``plan=`` names. A masked plan (the full-size network) is
served by its compact counterpart, which computes the same logits with the dead neurons left out.
"""

from __future__ import annotations

import logging
import math
import pathlib
from collections.abc import Callable

import torch

from prunekit import aggregate, artifacts, files, layout
from prunekit.inference import plans

logger = logging.getLogger(__name__)

# What serves a plan that needs the full-size masked matrices, which an artifact lacks.
COMPACT_COUNTERPART = {plans.BASELINE: "compact_dense", "masked_ort": "compact_ort",
                       "masked_kernel": "compact_kernel"}
# Served when no benchmark table names a plan: onnxruntime's dense products on the compact
# network apply to any network, but can be several times slower than the fastest plan
# (docs/inference-notes.md).
DEFAULT_PLAN = "compact_ort"


def fastest_plan(table: str | pathlib.Path, method: str, k: float,
                 batch_size: int) -> str | None:
    """Names the plan the benchmark ``table`` found fastest for a network, or None.

    The nearest measured batch size counts, by ratio: 64 is nearer to 256 than to 1.
    """
    table = pathlib.Path(table)
    if not table.is_file():
        return None
    rows = aggregate.fastest_rows(aggregate.combine_runs(files.read_table(table)))
    rows = rows[(rows["method"] == method) & (rows["k"] == k)]
    if rows.empty:
        return None
    distance = (rows["batch_size"] / batch_size).map(lambda ratio: abs(math.log(ratio)))
    return str(rows.loc[distance.idxmin(), "plan"])


def load(path: str | pathlib.Path, batch_size: int = 1, plan: str | None = None,
         num_threads: int = 2, table: str | pathlib.Path | None = None
         ) -> Callable[[torch.Tensor], torch.Tensor]:
    """Loads a compact artifact and returns the forward pass to run it with.

    Args:
        path: A compact artifact written by the prune stage, e.g.
            ``models/adam/pruned/unit_k90.pt``.
        batch_size: The batch size it will mostly run at (any size works).
        plan: A plan of :data:`plans.PLAN_NAMES` to use; None picks the fastest
            the benchmark measured (:func:`fastest_plan`), else :data:`DEFAULT_PLAN`.
        num_threads: Threads the plan may use (PyTorch plans use PyTorch's setting).
        table: The benchmark table to pick the plan from; None: the recipe's
            ``results/<recipe>/benchmark.csv`` beside the ``models`` folder of ``path``.

    Returns:
        A function from float32 images (batch, 784) to logits (batch, 10); call it under
        ``torch.inference_mode()`` for PyTorch plans.

    Raises:
        artifacts.ArtifactError: If the file is missing or not a compact artifact.
        ValueError: If ``plan`` is unknown or does not apply to this network (e.g. a CSR plan
            for a dense one).
    """
    network, method, k = artifacts.read_compact(path)
    if table is None:
        table = layout.benchmark_table_of_artifact(pathlib.Path(path))
    chosen = plan or fastest_plan(table, method, k, batch_size) or DEFAULT_PLAN
    chosen = COMPACT_COUNTERPART.get(chosen, chosen)
    available = plans.compact_plans(network, num_threads)
    if chosen not in available:
        raise ValueError(f"plan {chosen!r} does not apply to {path}; choose from "
                         f"{sorted(available)}")
    logger.info("%s: serving plan %s", path, chosen)
    return available[chosen].forward
