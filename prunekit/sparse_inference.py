"""Inference plans for a pruned network: dense, compacted and sparse forward passes.

A :class:`Plan` is built once from a pruned network (building is not part of what is timed)
and then maps flattened images (batch, 784) to logits (batch, 10). Every plan computes the same
logits as the masked dense network, up to float32 rounding:

* ``masked_dense``: the full-size matrices with pruned weights set to zero, ``h @ W.T`` per
  layer. The baseline: it does exactly the work of the unpruned network, whatever ``k``
  (MKL's dense products do not skip zeros).
* ``masked_ort``: the same matrices run by onnxruntime, the other dense reference.
* ``compact_dense``: what :meth:`compact.CompactNetwork.logits` computes, dense products on
  the matrices left after dead neurons were removed; ``compact_ort`` runs them on onnxruntime.
* ``compact_csr``: the compact network with every hidden matrix in ``torch.sparse`` CSR and
  the activations kept transposed, (features, batch), so that each layer is one
  ``W_csr @ h`` product. The last matrix (to the logits) stays dense.
* ``compact_hybrid``: the same transposed pass, but a hidden matrix is stored as CSR only if its
  density is at most :data:`HYBRID_MAX_DENSITY`; denser ones stay dense (``W @ h``).
* ``mkl_csr``: every matrix as an MKL inspector-executor CSR handle (:mod:`prunekit.engines`).
* ``kernel_csr``: the compiled whole-network CSR kernel (:mod:`prunekit.kernels`).

Each plan holds its own copy of its matrices, so that no plan finds another's weights in the
cache. Each counts the multiply-adds per sample its kernels cannot avoid: every weight of a
dense matrix, the non-zeros of a CSR one; ``baseline MACs / plan MACs`` is its ideal
(FLOP-count) speed-up. The measurements behind :data:`HYBRID_MAX_DENSITY`,
:data:`CSR_MAX_DENSITY` and :data:`BATCH_TILE` are in docs/benchmark.md.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence

import torch

from prunekit import compact, engines, kernels, metrics, model

logger = logging.getLogger(__name__)

# Hidden matrices at most this dense are stored as CSR by the hybrid plan (see module doc).
HYBRID_MAX_DENSITY = 0.25
# Above this density in any hidden matrix the all-CSR plan is not built: it cannot win.
CSR_MAX_DENSITY = 0.4
# Plans with a CSR matrix run larger batches in slices of this many images (see module doc).
BATCH_TILE = 512

BASELINE = "masked_dense"
# Plans that run the full-size masked network densely, like the baseline.
DENSE_PLANS = ("masked_ort",)
PLAN_NAMES = (BASELINE, *DENSE_PLANS, "compact_dense", "compact_ort", "compact_csr",
              "compact_hybrid", "mkl_csr", "kernel_csr")


class PlanMismatchError(RuntimeError):
    """Raised when a plan's logits differ from the masked dense network's beyond rounding."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """A ready-to-run forward pass of one pruned network.

    Attributes:
        name: One of :data:`PLAN_NAMES`.
        forward: Maps images (batch, original input size) to logits (batch, 10).
        multiply_adds: Ideal multiply-adds per sample of the plan's kernels: every weight of a
            dense matrix, only the non-zeros of a CSR one.
        formats: Per weight matrix, first layer first, ``dense`` or ``csr``.
    """

    name: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    multiply_adds: int
    formats: tuple[str, ...]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Runs the plan.

        Args:
            images: Flattened images, shape (batch, original input size).

        Returns:
            The logits, shape (batch, 10).
        """
        return self.forward(images)


def density(weight: torch.Tensor) -> float:
    """Returns the fraction of non-zero entries of a matrix (0.0 for an empty one).

    Args:
        weight: Any tensor.

    Returns:
        Non-zeros divided by the number of entries.
    """
    if weight.numel() == 0:
        return 0.0
    return int(torch.count_nonzero(weight)) / weight.numel()


def to_csr(weight: torch.Tensor) -> torch.Tensor:
    """Converts a dense matrix to CSR with int32 indices (MKL's native index type).

    Args:
        weight: A 2-D float matrix.

    Returns:
        A ``torch.sparse_csr`` tensor equal to ``weight``.

    Raises:
        ValueError: If ``weight`` is not 2-D or has too many non-zeros for int32 indices.
    """
    if weight.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {tuple(weight.shape)}")
    nonzero = weight != 0  # (rows, columns)
    nnz = int(nonzero.sum())
    if nnz >= torch.iinfo(torch.int32).max:
        raise ValueError(f"{nnz} non-zeros do not fit int32 CSR indices")
    row_pointers = torch.zeros(weight.shape[0] + 1, dtype=torch.int32)
    row_pointers[1:] = torch.cumsum(nonzero.sum(dim=1), dim=0)
    columns = torch.nonzero(nonzero)[:, 1].to(torch.int32)  # Row-major order.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(row_pointers, columns, weight[nonzero].contiguous(),
                                       size=tuple(weight.shape), check_invariants=True)


def _row_major_forward(weights: Sequence[torch.Tensor], input_units: torch.Tensor | None,
                       images: torch.Tensor) -> torch.Tensor:
    """Selects the input pixels the network reads, then runs :func:`model.forward_weights`.

    Args:
        weights: The dense (out, in) matrices, first layer first.
        input_units: Indices of the input pixels the network reads, or None for all of them.
        images: Flattened images, shape (batch, original input size).

    Returns:
        The logits, shape (batch, 10).
    """
    pixels = images if input_units is None else images.index_select(1, input_units)
    return model.forward_weights(weights, pixels)


def _transposed_forward(hidden: Sequence[torch.Tensor], last: torch.Tensor,
                        input_units: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
    """Runs the MLP on activations kept transposed, (features, batch), for every layer.

    Args:
        hidden: The hidden layers' (out, in) matrices, each dense or CSR.
        last: The dense (10, in) matrix to the logits.
        input_units: Indices of the input pixels the network reads, or None for all of them.
        images: Flattened images, shape (batch, original input size).

    Returns:
        The logits, shape (batch, 10) (a transposed view).
    """
    if input_units is None:
        activations = images.T.contiguous()  # (inputs, batch)
    else:
        activations = images.T.index_select(0, input_units)  # (kept inputs, batch)
    for matrix in hidden:
        activations = torch.relu_(matrix @ activations)  # (out, batch)
    return (last @ activations).T


def _tiled_forward(forward: Callable[[torch.Tensor], torch.Tensor], tile: int,
                   images: torch.Tensor) -> torch.Tensor:
    """Runs ``forward`` on slices of at most ``tile`` images and joins the logits.

    The loop is over slices of the batch, not over samples: it keeps each slice's activations
    in cache for the whole forward pass (cache blocking).

    Args:
        forward: Maps images (batch, input size) to logits (batch, 10).
        tile: Most images per slice.
        images: Flattened images, shape (batch, original input size).

    Returns:
        The logits, shape (batch, 10).
    """
    if images.shape[0] <= tile:
        return forward(images)
    return torch.cat([forward(batch_slice) for batch_slice in images.split(tile)])


def masked_dense_plan(masked_weights: Sequence[torch.Tensor]) -> Plan:
    """Builds the baseline: the full-size masked matrices, as the unpruned network runs.

    It computes :func:`model.forward_weights` with the same code as ``compact_dense`` (in-place
    ReLU included), so that the two differ only in the matrices they multiply.

    Args:
        masked_weights: The (out, in) matrices with pruned weights set to zero.

    Returns:
        The ``masked_dense`` plan; its multiply-adds are all weights of the original network.
    """
    weights = tuple(weight.detach().clone() for weight in masked_weights)
    return Plan(name=BASELINE, forward=functools.partial(_row_major_forward, weights, None),
                multiply_adds=sum(weight.numel() for weight in weights),
                formats=("dense",) * len(weights))


def compact_dense_plan(network: compact.CompactNetwork) -> Plan:
    """Builds the compact network's forward pass: dense products on the smaller matrices.

    It computes :meth:`compact.CompactNetwork.logits`, but selects the input pixels with
    ``index_select`` (or not at all when every pixel is read) instead of ``images[:, kept]``,
    whose advanced indexing alone takes 0.28 ms at batch 256, half the time of the unit k90
    network.

    Args:
        network: The compact network.

    Returns:
        The ``compact_dense`` plan; its multiply-adds are all compacted weights.
    """
    input_units = network.kept_units[0]
    reads_every_input = input_units.numel() == network.layer_sizes[0]
    forward = functools.partial(_row_major_forward,
                                tuple(weight.clone() for weight in network.weights),
                                None if reads_every_input else input_units)
    return Plan(name="compact_dense", forward=forward, multiply_adds=network.num_weights(),
                formats=("dense",) * len(network.weights))


def transposed_plan(network: compact.CompactNetwork, max_density: float, name: str) -> Plan:
    """Builds a transposed-activation plan: CSR for the sparse hidden matrices, dense otherwise.

    A plan with a CSR matrix runs batches larger than :data:`BATCH_TILE` slice by slice.

    Args:
        network: The compact network.
        max_density: Hidden matrices whose density is at most this are stored as CSR; 1.0 puts
            every hidden matrix in CSR. The last matrix (to the logits) is always dense.
        name: The plan's name.

    Returns:
        The plan; its multiply-adds count non-zeros of CSR matrices and all weights of dense ones.

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
    input_units = network.kept_units[0]
    reads_every_input = input_units.numel() == network.layer_sizes[0]
    forward = functools.partial(_transposed_forward, tuple(hidden),
                                network.weights[-1].clone(),
                                None if reads_every_input else input_units)
    if "csr" in formats:
        forward = functools.partial(_tiled_forward, forward, BATCH_TILE)
    return Plan(name=name, forward=forward, multiply_adds=multiply_adds,
                formats=(*formats, "dense"))


def nonzero_multiply_adds(network: compact.CompactNetwork) -> int:
    """Returns the fewest multiply-adds per sample any plan needs: the all-CSR plan's count.

    That is the non-zeros of every hidden matrix plus every weight of the last (dense) one,
    whether or not the all-CSR plan is built for this network.

    Args:
        network: The compact network.

    Returns:
        The multiply-add count.
    """
    hidden = sum(int(torch.count_nonzero(weight)) for weight in network.weights[:-1])
    return hidden + network.weights[-1].numel()


def hidden_densities(network: compact.CompactNetwork) -> list[float]:
    """Measures the density of each hidden (prunable) compact matrix.

    Args:
        network: The compact network.

    Returns:
        Per matrix but the last, first layer first, its fraction of non-zero entries.
    """
    return [density(weight) for weight in network.weights[:-1]]


def _input_units(network: compact.CompactNetwork) -> torch.Tensor | None:
    """Returns the input pixels the compact network reads, or None when it reads them all."""
    input_units = network.kept_units[0]
    return None if input_units.numel() == network.layer_sizes[0] else input_units


def compact_plans(network: compact.CompactNetwork, num_threads: int | None = None,
                  hybrid_max_density: float = HYBRID_MAX_DENSITY,
                  csr_max_density: float = CSR_MAX_DENSITY) -> dict[str, Plan]:
    """Builds every plan that runs the compact network alone.

    ``compact_dense`` and ``compact_hybrid`` are always built, ``compact_ort`` with
    ``num_threads``; the all-CSR plans (``compact_csr``, and with ``num_threads`` ``mkl_csr``
    and ``kernel_csr``, which hold the last matrix as CSR too and need every matrix non-empty)
    only when no hidden compact matrix is denser than ``csr_max_density``; ``kernel_csr`` is
    left out, with a warning, where its kernel cannot be compiled.

    Args:
        network: The compact network (e.g. loaded with :func:`compact.load_compact`).
        num_threads: Threads of the other engines' plans (:mod:`prunekit.engines`); None
            builds PyTorch plans only.
        hybrid_max_density: Density up to which the hybrid plan uses CSR for a hidden matrix.
        csr_max_density: Density above which the all-CSR plans are not built.

    Returns:
        The plans by name, in :data:`PLAN_NAMES` order.
    """
    weights, input_units = network.weights, _input_units(network)
    sparse = max(hidden_densities(network), default=0.0) <= csr_max_density
    plans = {"compact_dense": compact_dense_plan(network),
             "compact_hybrid": transposed_plan(network, hybrid_max_density, "compact_hybrid")}
    if sparse:
        plans["compact_csr"] = transposed_plan(network, 1.0, "compact_csr")
    if num_threads is not None:
        plans["compact_ort"] = Plan("compact_ort", engines.OrtForward(weights, input_units,
                                                                      num_threads),
                                    network.num_weights(), ("dense",) * len(weights))
    if sparse and num_threads is not None and all(weight.numel() for weight in weights):
        csr_formats = ("csr",) * len(weights)
        plans["mkl_csr"] = Plan("mkl_csr", engines.MklForward(weights, input_units,
                                                              num_threads),
                                network.num_nonzero(), csr_formats)
        try:
            plans["kernel_csr"] = Plan("kernel_csr", engines.KernelForward(
                weights, input_units, num_threads), network.num_nonzero(), csr_formats)
        except kernels.KernelUnavailableError as error:
            logger.warning("no kernel_csr plan: %s", error)
    return {name: plans[name] for name in PLAN_NAMES if name in plans}


def build_plans(masked_weights: Sequence[torch.Tensor], network: compact.CompactNetwork,
                hybrid_max_density: float = HYBRID_MAX_DENSITY,
                csr_max_density: float = CSR_MAX_DENSITY,
                num_threads: int | None = None) -> dict[str, Plan]:
    """Builds every plan that applies to one pruned network.

    The baseline ``masked_dense``, ``masked_ort`` (onnxruntime on the same matrices) with
    ``num_threads``, and the plans of :func:`compact_plans`.

    Args:
        masked_weights: The full-size masked (out, in) matrices, first layer first.
        network: The compact network made from them (e.g. loaded with
            :func:`compact.load_compact`).
        hybrid_max_density: Density up to which the hybrid plan uses CSR for a hidden matrix.
        csr_max_density: Density above which the all-CSR plans are not built.
        num_threads: Threads of the other engines' plans; None builds PyTorch plans only.

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
        plans["masked_ort"] = Plan("masked_ort", engines.OrtForward(masked_weights, None,
                                                                    num_threads),
                                   sum(weight.numel() for weight in masked_weights),
                                   ("dense",) * len(masked_weights))
    return {name: plans[name] for name in PLAN_NAMES if name in plans}


def verify_plans(plans: Mapping[str, Plan], images: torch.Tensor,
                 tolerance: float = metrics.LOGIT_TOLERANCE) -> dict[str, float]:
    """Checks that every plan reproduces the baseline's logits on some images.

    Args:
        plans: Plans by name, :data:`BASELINE` among them.
        images: Flattened images, shape (batch, original input size).
        tolerance: Largest allowed difference, relative to the largest baseline logit.

    Returns:
        Per plan, its largest logit difference from the baseline (relative).

    Raises:
        ValueError: If the baseline plan is missing.
        PlanMismatchError: If a plan differs by more than ``tolerance``.
    """
    if BASELINE not in plans:
        raise ValueError(f"no {BASELINE!r} plan to compare with; got {sorted(plans)}")
    reference = plans[BASELINE](images)
    differences = {name: metrics.max_logit_difference(reference, plan(images))
                   for name, plan in plans.items()}
    wrong = {name: difference for name, difference in differences.items()
             if difference > tolerance}
    if wrong:
        raise PlanMismatchError(f"plans differ from {BASELINE} beyond {tolerance}: {wrong}")
    return differences
