"""Inference plans for a pruned network: dense, compacted and sparse forward passes.

A :class:`Plan` is built once (building is not timed) and maps flattened images (batch, 784) to
logits (batch, 10). Every plan computes the masked network's logits up to float32 rounding:

* ``masked_dense``, the baseline: the full-size matrices with zeros, as the unpruned network
  runs (dense products do not skip zeros); ``masked_ort`` runs them on onnxruntime and
  ``masked_kernel`` on the compiled kernel, every weight multiplied (one image still skips
  zero activations).
* ``compact_dense``: dense products on the compact network (dead neurons removed);
  ``compact_ort`` runs it on onnxruntime.
* ``compact_csr``: every hidden matrix in ``torch.sparse`` CSR, activations kept transposed,
  (features, batch), so each layer is one ``W_csr @ h``; the last matrix stays dense.
  ``compact_hybrid`` uses CSR only for hidden matrices at most :data:`HYBRID_MAX_DENSITY` dense.
* ``mkl_csr``: MKL inspector-executor CSR handles (:mod:`prunekit.inference.engines`).
* ``kernel``: the compiled whole-network kernel (:mod:`prunekit.inference.kernel`): one image
  with each layer read by rows, by columns or densely; batches in CSR tiles.
  ``compact_kernel`` runs the compact network on the same kernel as ``masked_kernel`` does the
  masked one, every weight multiplied: what serves a network whose fastest plan was
  ``masked_kernel``.

Each plan holds its own copy of its matrices, so no plan finds another's weights in the cache,
and counts the multiply-adds per sample its kernels cannot avoid (every weight of a dense
matrix, the non-zeros of a CSR one). The measurements behind the constants are in
docs/benchmark.md.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence

import torch

from prunekit import compact, model
from prunekit.inference import engines, kernel

logger = logging.getLogger(__name__)

HYBRID_MAX_DENSITY = 0.25  # Hidden matrices at most this dense are CSR in the hybrid plan.
CSR_MAX_DENSITY = 0.4  # Above this density in any hidden matrix, all-CSR plans cannot win.
BATCH_TILE = 512  # Plans with a CSR matrix run larger batches in slices of this many images.
# A plan sums fewer (or reordered) terms than the masked network; float32 rounding differs by
# far less than this, relative to the largest logit.
LOGIT_TOLERANCE = 1e-4

BASELINE = "masked_dense"
# Other plans that run the full-size masked network densely.
DENSE_PLANS = ("masked_ort", "masked_kernel")
PLAN_NAMES = (BASELINE, *DENSE_PLANS, "compact_dense", "compact_ort", "compact_kernel",
              "compact_csr", "compact_hybrid", "mkl_csr", "kernel")


class PlanMismatchError(RuntimeError):
    """Raised when a plan's logits differ from the masked dense network's beyond rounding."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """A ready-to-run forward pass of one pruned network.

    Attributes:
        name: One of :data:`PLAN_NAMES`.
        forward: Maps images (batch, original input size) to logits (batch, 10).
        multiply_adds: Multiply-adds per sample of the plan's kernels.
        formats: Per weight matrix, first layer first, ``dense`` or ``csr``.
    """

    name: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    multiply_adds: int
    formats: tuple[str, ...]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Maps images (batch, original input size) to logits (batch, 10)."""
        return self.forward(images)


def density(weight: torch.Tensor) -> float:
    """Returns the fraction of non-zero entries of a tensor (0.0 for an empty one)."""
    if weight.numel() == 0:
        return 0.0
    return int(torch.count_nonzero(weight)) / weight.numel()


def to_csr(weight: torch.Tensor) -> torch.Tensor:
    """Converts a 2-D matrix to ``torch.sparse`` CSR with int32 indices (MKL's native type).

    Raises:
        ValueError: If ``weight`` is not 2-D or has too many non-zeros for int32 indices.
    """
    row_pointers, columns, values = compact.csr_arrays(weight)
    if values.numel() >= torch.iinfo(torch.int32).max:
        raise ValueError(f"{values.numel()} non-zeros do not fit int32 CSR indices")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(row_pointers.to(torch.int32), columns.to(torch.int32),
                                       values, size=tuple(weight.shape), check_invariants=True)


def _transposed_forward(hidden: Sequence[torch.Tensor], last: torch.Tensor,
                        input_units: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
    """Runs the MLP on transposed activations, (features, batch); ``hidden`` dense or CSR."""
    if input_units is None:
        activations = images.T.contiguous()  # (inputs, batch)
    else:
        activations = images.T.index_select(0, input_units)  # (kept inputs, batch)
    for matrix in hidden:
        activations = torch.relu_(matrix @ activations)  # (out, batch)
    return (last @ activations).T


def _tiled_forward(forward: Callable[[torch.Tensor], torch.Tensor], tile: int,
                   images: torch.Tensor) -> torch.Tensor:
    """Runs ``forward`` on slices of at most ``tile`` images (cache blocking), joins the logits."""
    if images.shape[0] <= tile:
        return forward(images)
    return torch.cat([forward(batch_slice) for batch_slice in images.split(tile)])


def masked_dense_plan(masked_weights: Sequence[torch.Tensor]) -> Plan:
    """Builds the baseline, the full-size masked matrices; it counts every weight."""
    weights = tuple(weight.detach().clone() for weight in masked_weights)
    return Plan(name=BASELINE, forward=functools.partial(model.forward_weights, weights),
                multiply_adds=sum(weight.numel() for weight in weights),
                formats=("dense",) * len(weights))


def compact_dense_plan(network: compact.CompactNetwork) -> Plan:
    """Builds :meth:`compact.CompactNetwork.logits` on copies of its matrices."""
    copy = dataclasses.replace(network, weights=tuple(weight.clone() for weight in network.weights))
    return Plan(name="compact_dense", forward=copy.logits, multiply_adds=network.num_weights(),
                formats=("dense",) * len(network.weights))


def transposed_plan(network: compact.CompactNetwork, max_density: float, name: str) -> Plan:
    """Builds a transposed-activation plan: CSR for the sparse hidden matrices, dense otherwise.

    Args:
        network: The compact network.
        max_density: Hidden matrices at most this dense are stored as CSR (1.0: all of them).
            The last matrix (to the logits) is always dense.
        name: The plan's name.

    Raises:
        ValueError: If ``max_density`` is outside [0, 1].
    """
    if not 0 <= max_density <= 1:
        raise ValueError(f"max_density must be from 0 to 1, got {max_density}")
    hidden = []
    formats = []
    multiply_adds = network.weights[-1].numel()
    for weight in network.weights[:-1]:
        if density(weight) <= max_density:
            hidden.append(to_csr(weight))
            formats.append("csr")
            multiply_adds += int(torch.count_nonzero(weight))
        else:
            hidden.append(weight.clone())
            formats.append("dense")
            multiply_adds += weight.numel()
    forward = functools.partial(_transposed_forward, tuple(hidden), network.weights[-1].clone(),
                                network.input_units())
    if "csr" in formats:
        forward = functools.partial(_tiled_forward, forward, BATCH_TILE)
    return Plan(name=name, forward=forward, multiply_adds=multiply_adds,
                formats=(*formats, "dense"))


def nonzero_multiply_adds(network: compact.CompactNetwork) -> int:
    """Returns the fewest multiply-adds per sample any plan needs: the all-CSR plan's count.

    That is the non-zeros of every hidden matrix plus every weight of the last (dense) one.
    """
    hidden = sum(int(torch.count_nonzero(weight)) for weight in network.weights[:-1])
    return hidden + network.weights[-1].numel()


def hidden_densities(network: compact.CompactNetwork) -> list[float]:
    """Returns the density of each compact matrix but the last, first layer first."""
    return [density(weight) for weight in network.weights[:-1]]


def compact_plans(network: compact.CompactNetwork, num_threads: int | None = None,
                  hybrid_max_density: float = HYBRID_MAX_DENSITY,
                  csr_max_density: float = CSR_MAX_DENSITY) -> dict[str, Plan]:
    """Builds every plan that runs the compact network alone.

    ``compact_dense`` and ``compact_hybrid`` are always built; with ``num_threads``, also
    ``compact_ort`` and, where every matrix is non-empty, ``compact_kernel`` and ``kernel``
    (left out, with a warning, where the kernel cannot be compiled). The all-CSR plans
    (``compact_csr``, and with ``num_threads`` ``mkl_csr``, which needs every matrix
    non-empty) only when no hidden matrix is denser than ``csr_max_density``.

    Args:
        network: The compact network.
        num_threads: Threads of the other engines' plans; None builds PyTorch plans only.
        hybrid_max_density: Density up to which the hybrid plan uses CSR for a hidden matrix.
        csr_max_density: Density above which the all-CSR plans are not built.

    Returns:
        The plans by name, in :data:`PLAN_NAMES` order.
    """
    weights, input_units = network.weights, network.input_units()
    sparse = max(hidden_densities(network), default=0.0) <= csr_max_density
    non_empty = all(weight.numel() for weight in weights)
    plans = {"compact_dense": compact_dense_plan(network),
             "compact_hybrid": transposed_plan(network, hybrid_max_density, "compact_hybrid")}
    if sparse:
        plans["compact_csr"] = transposed_plan(network, 1.0, "compact_csr")
    if num_threads is not None:
        plans["compact_ort"] = Plan("compact_ort", engines.OrtForward(weights, input_units,
                                                                      num_threads),
                                    network.num_weights(), ("dense",) * len(weights))
    if sparse and num_threads is not None and non_empty:
        plans["mkl_csr"] = Plan("mkl_csr", engines.MklForward(weights, input_units,
                                                              num_threads),
                                network.num_nonzero(), ("csr",) * len(weights))
    if num_threads is not None and non_empty:
        plans.update(_kernel_plan("compact_kernel", weights, input_units, num_threads,
                                  network.num_weights(), dense=True))
        plans.update(_kernel_plan("kernel", weights, input_units, num_threads,
                                  network.num_nonzero()))
    return {name: plans[name] for name in PLAN_NAMES if name in plans}


def _kernel_plan(name: str, weights: Sequence[torch.Tensor], input_units: torch.Tensor | None,
                 num_threads: int, multiply_adds: int, dense: bool = False) -> dict[str, Plan]:
    """Builds ``{name: plan}`` on the compiled kernel; ``{}``, with a warning, without it."""
    try:
        forward = kernel.KernelForward(weights, input_units, num_threads, dense=dense)
    except kernel.KernelUnavailableError as error:
        logger.warning("no %s plan: %s", name, error)
        return {}
    return {name: Plan(name, forward, multiply_adds, forward.formats)}


def build_plans(masked_weights: Sequence[torch.Tensor], network: compact.CompactNetwork,
                hybrid_max_density: float = HYBRID_MAX_DENSITY,
                csr_max_density: float = CSR_MAX_DENSITY,
                num_threads: int | None = None) -> dict[str, Plan]:
    """Builds every plan of one pruned network: the masked ones and :func:`compact_plans`.

    Args:
        masked_weights: The full-size masked (out, in) matrices, first layer first.
        network: The compact network made from them.
        hybrid_max_density: Density up to which the hybrid plan uses CSR for a hidden matrix.
        csr_max_density: Density above which the all-CSR plans are not built.
        num_threads: Threads of the other engines' plans (``masked_ort`` and
            ``masked_kernel`` among them); None builds PyTorch plans only.

    Returns:
        The plans by name, baseline first, in :data:`PLAN_NAMES` order.

    Raises:
        ValueError: If the compact network was not made from a network of the same shape.
    """
    shapes = [tuple(weight.shape) for weight in masked_weights]
    original = [(network.layer_sizes[index + 1], network.layer_sizes[index])
                for index in range(len(network.layer_sizes) - 1)]
    if shapes != original:
        raise ValueError(f"masked matrices of shapes {shapes} do not match the compact "
                         f"network's original layer sizes {list(network.layer_sizes)}")
    plans = {BASELINE: masked_dense_plan(masked_weights),
             **compact_plans(network, num_threads, hybrid_max_density, csr_max_density)}
    if num_threads is not None:
        all_weights = sum(weight.numel() for weight in masked_weights)
        plans["masked_ort"] = Plan("masked_ort", engines.OrtForward(masked_weights, None,
                                                                    num_threads),
                                   all_weights, ("dense",) * len(masked_weights))
        plans.update(_kernel_plan("masked_kernel", masked_weights, None, num_threads,
                                  all_weights, dense=True))
    return {name: plans[name] for name in PLAN_NAMES if name in plans}


def max_logit_difference(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Returns max |candidate - reference| over the largest |reference| logit (at least 1)."""
    scale = max(float(reference.abs().max()), 1.0)
    return float((candidate - reference).abs().max()) / scale


@torch.no_grad()
def verify_plans(plans: Mapping[str, Plan], images: torch.Tensor,
                 tolerance: float = LOGIT_TOLERANCE) -> dict[str, float]:
    """Checks that every plan reproduces the baseline's logits on ``images``.

    Returns:
        Per plan, its :func:`max_logit_difference` from the baseline.

    Raises:
        ValueError: If the baseline plan is missing.
        PlanMismatchError: If a plan differs by more than ``tolerance``.
    """
    if BASELINE not in plans:
        raise ValueError(f"no {BASELINE!r} plan to compare with; got {sorted(plans)}")
    reference = plans[BASELINE](images)
    differences = {name: max_logit_difference(reference, plan(images))
                   for name, plan in plans.items()}
    wrong = {name: difference for name, difference in differences.items()
             if difference > tolerance}
    if wrong:
        raise PlanMismatchError(f"plans differ from {BASELINE} beyond {tolerance}: {wrong}")
    return differences
