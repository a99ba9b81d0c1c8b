"""Training and evaluation of the MLP on in-memory tensors, batched by indexing."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from prunekit import data

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train: optimizer, learning-rate schedule and sparsity-inducing penalties.

    The penalties act on the prunable matrices only (all but the last, to the logits):
    ``l1`` times the sum of absolute weights, and ``group_lasso`` times the sum of the L2
    norms of the rows (one group per output neuron, as unit pruning removes rows). 0 is off.

    Attributes:
        optimizer: ``adam`` or ``sgd``.
        lr: Initial learning rate.
        momentum: SGD momentum, from 0 to below 1; must be 0 with Adam.
        schedule: ``cosine`` (decay to zero over all steps) or ``constant``.
        l1: Strength of the L1 penalty, >= 0.
        group_lasso: Strength of the group-lasso penalty, >= 0.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    schedule: str = "cosine"
    l1: float = 0.0
    group_lasso: float = 0.0

    def __post_init__(self):
        """Rejects values no training could use.

        Raises:
            ValueError: Naming every bad field, its value and what is allowed, one per line.
        """
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer: got {self.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule: got {self.schedule!r}; allowed: {', '.join(SCHEDULES)}")
        if not _finite_number(self.lr) or self.lr <= 0:
            problems.append(f"lr: got {self.lr!r}; allowed: a number > 0")
        if not _finite_number(self.momentum) or not 0 <= self.momentum < 1:
            problems.append(f"momentum: got {self.momentum!r}; allowed: a number from 0 to "
                            "below 1")
        elif self.momentum != 0 and self.optimizer != "sgd":
            problems.append(f"momentum: got {self.momentum!r}; allowed: 0 unless optimizer is "
                            "sgd")
        for name in ("l1", "group_lasso"):
            value = getattr(self, name)
            if not _finite_number(value) or value < 0:
                problems.append(f"{name}: got {value!r}; allowed: a number >= 0 (0 is off)")
        if problems:
            raise ValueError("\n".join(problems))


def parse_recipes(raw: Mapping[str, Any]) -> dict[str, Recipe]:
    """Builds named recipes from a mapping such as ``{"l1": {"l1": 1e-5}}``, checking them all.

    Fields left out take :class:`Recipe`'s defaults (today's Adam with cosine decay).

    Args:
        raw: Recipe name to a mapping of :class:`Recipe` fields.

    Returns:
        The recipes, in the mapping's order.

    Raises:
        ValueError: Listing every problem at once, each as ``<name>.<field>: ...``: no recipe,
            a recipe that is not a mapping, an unknown field, or a value :class:`Recipe` rejects.
    """
    fields = [field.name for field in dataclasses.fields(Recipe)]
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(f"expected a non-empty mapping of recipe names to fields, got {raw!r}")
    problems = []
    recipes = {}
    for name, settings in raw.items():
        if not isinstance(settings, Mapping):
            problems.append(f"{name}: expected a mapping of fields ({', '.join(fields)}), "
                            f"got {settings!r}")
            continue
        unknown = [key for key in settings if key not in fields]
        problems.extend(f"{name}.{key}: unknown field; allowed: {', '.join(fields)}"
                        for key in unknown)
        if unknown:
            continue
        try:
            recipes[name] = Recipe(**settings)
        except ValueError as error:
            problems.extend(f"{name}.{problem}" for problem in str(error).splitlines())
    if problems:
        raise ValueError("\n".join(problems))
    return recipes


def _finite_number(value: object) -> bool:
    """Whether ``value`` is a finite int or float, booleans excluded."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def make_optimizer(parameters: Sequence[torch.Tensor], recipe: Recipe, total_steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Builds the recipe's optimizer and its learning-rate schedule, stepped once per batch.

    Args:
        parameters: The tensors to optimise.
        recipe: The training recipe.
        total_steps: Batches over the whole run; the cosine schedule reaches zero there.

    Returns:
        The optimizer and its scheduler.
    """
    if recipe.optimizer == "adam":
        optimizer = torch.optim.Adam(parameters, lr=recipe.lr)
    else:
        optimizer = torch.optim.SGD(parameters, lr=recipe.lr, momentum=recipe.momentum)
    if recipe.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    return optimizer, scheduler


@torch.no_grad()
def add_penalty_gradients(weights: Sequence[torch.Tensor], l1: float, group_lasso: float
                          ) -> None:
    """Adds the penalties' gradients to the ``.grad`` of every prunable matrix, in place.

    Equivalent to adding ``l1 * sum|W| + group_lasso * sum_rows ||W_row||_2`` over all matrices
    but the last to the loss, without a second backward pass: the gradient of ``|w|`` is
    ``sign(w)`` (0 at 0) and that of a row's norm is the row over its norm (0 for a zero row).

    Args:
        weights: Every (out, in) weight matrix with its gradient, first layer first; the last
            is left alone.
        l1: L1 strength; 0 skips it.
        group_lasso: Group-lasso strength; 0 skips it.
    """
    for weight in weights[:-1]:
        if l1:
            weight.grad.add_(torch.sign(weight), alpha=l1)
        if group_lasso:
            row_norms = torch.linalg.vector_norm(weight, dim=1, keepdim=True)  # (out, 1)
            scale = group_lasso / torch.where(row_norms > 0, row_norms, torch.inf)
            weight.grad.addcmul_(weight, scale)


def penalty(weights: Sequence[torch.Tensor], l1: float, group_lasso: float) -> torch.Tensor:
    """Computes ``l1 * sum|W| + group_lasso * sum_rows ||W_row||_2`` over all matrices but the last.

    Args:
        weights: Every (out, in) weight matrix, first layer first.
        l1: L1 strength.
        group_lasso: Group-lasso strength.

    Returns:
        The penalty, a scalar tensor.
    """
    total = torch.zeros((), device=weights[0].device)
    for weight in weights[:-1]:
        total = total + l1 * weight.abs().sum()
        total = total + group_lasso * torch.linalg.vector_norm(weight, dim=1).sum()
    return total


@dataclasses.dataclass(frozen=True)
class EpochResult:
    """What one training epoch measured."""

    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float


def history_table(history: Sequence[EpochResult]) -> list[dict[str, float | int]]:
    """Lays out the training history as table rows, without wall-clock times.

    Args:
        history: What :func:`fit` returned.

    Returns:
        One row per epoch with ``epoch``, the losses and the accuracies (fractions), so that
        the table repeats exactly across runs.
    """
    return [{key: value for key, value in dataclasses.asdict(result).items() if key != "seconds"}
            for result in history]


def resolve_device(requested: str) -> torch.device:
    """Turns ``train.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) into a device.

    Args:
        requested: The ``train.device`` value.

    Returns:
        For ``auto``, CUDA if available, else the CPU; otherwise the device named.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def make_deterministic(seed: int, num_threads: int | None) -> None:
    """Seeds every source of randomness and pins deterministic kernels.

    Args:
        seed: Seed for Python, NumPy and PyTorch.
        num_threads: Intra-op threads for PyTorch, or None for its default. Matrix-product
            results may depend on the thread count, so it is fixed for the whole run.
    """
    # Needed by cuBLAS for deterministic results; harmless on the CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if num_threads is not None:
        torch.set_num_threads(num_threads)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, split: data.Split,
                batch_size: int, generator: torch.Generator,
                progress: Callable[[int], None] | None = None, l1: float = 0.0,
                group_lasso: float = 0.0) -> tuple[float, float]:
    """Runs one epoch of minibatch training over a shuffled split held on the model's device.

    Args:
        model: The network, in training mode on the split's device.
        optimizer: Its optimizer.
        scheduler: A learning-rate schedule stepped after every batch.
        split: The training data.
        batch_size: Samples per step (the last batch may be smaller).
        generator: CPU random generator that decides the shuffling.
        progress: Called with the number of samples after each batch, e.g. a progress bar.
        l1: L1 strength on the prunable matrices (see :func:`add_penalty_gradients`).
        group_lasso: Group-lasso strength on the prunable matrices.

    Returns:
        Mean training cross-entropy (penalties excluded) and accuracy over the epoch.
    """
    model.train()
    weights = [parameter for name, parameter in model.named_parameters()
               if name.endswith("weight")]
    num_samples = split.labels.shape[0]
    order = torch.randperm(num_samples, generator=generator).to(split.labels.device)
    loss_sum = torch.zeros((), device=split.labels.device)
    correct = torch.zeros((), dtype=torch.int64, device=split.labels.device)
    for start in range(0, num_samples, batch_size):
        batch = order[start:start + batch_size]
        images, labels = split.images[batch], split.labels[batch]  # (batch, 784), (batch,)
        logits = model(images)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if l1 or group_lasso:
            add_penalty_gradients(weights, l1, group_lasso)
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach() * labels.shape[0]
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        if progress is not None:
            progress(labels.shape[0])
    return float(loss_sum) / num_samples, int(correct) / num_samples


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Scores logits against the true labels.

    Args:
        logits: Shape (samples, 10).
        labels: Class indices, shape (samples,).

    Returns:
        Mean cross-entropy and accuracy (fraction of samples whose largest logit is the
        label's).
    """
    loss = float(nn.functional.cross_entropy(logits, labels))
    accuracy = int((logits.argmax(dim=1) == labels).sum()) / labels.shape[0]
    return loss, accuracy


@torch.no_grad()
def evaluate_logits(logits_fn: Callable[[torch.Tensor], torch.Tensor], split: data.Split,
                    batch_size: int = 10_000) -> tuple[float, float]:
    """Measures mean cross-entropy and accuracy of any logits function on a split.

    Args:
        logits_fn: Maps images (batch, 784) to logits (batch, 10).
        split: The data to evaluate on.
        batch_size: Samples per forward pass, to bound memory.

    Returns:
        Mean loss and accuracy (fractions).
    """
    num_samples = split.labels.shape[0]
    loss_sum = accuracy_sum = 0.0
    for start in range(0, num_samples, batch_size):
        labels = split.labels[start:start + batch_size]
        loss, accuracy = loss_and_accuracy(logits_fn(split.images[start:start + batch_size]),
                                           labels)
        loss_sum += loss * labels.shape[0]
        accuracy_sum += accuracy * labels.shape[0]
    return loss_sum / num_samples, accuracy_sum / num_samples


def fit(model: nn.Module, train_split: data.Split, test_split: data.Split, epochs: int,
        batch_size: int, recipe: Recipe, seed: int,
        on_epoch_start: Callable[[int], Callable[[int], None] | None] | None = None
        ) -> list[EpochResult]:
    """Trains with a recipe, evaluating after each epoch.

    Args:
        model: The network, already on the device of both splits.
        train_split: Training data.
        test_split: Test data, used only to report progress (never to choose anything).
        epochs: Passes over the training data.
        batch_size: Samples per step.
        recipe: Optimizer, schedule and penalties.
        seed: Seed of the shuffling generator.
        on_epoch_start: Called with the epoch number; may return a per-batch progress callback.

    Returns:
        One :class:`EpochResult` per epoch.
    """
    steps_per_epoch = -(-train_split.labels.shape[0] // batch_size)
    optimizer, scheduler = make_optimizer(list(model.parameters()), recipe,
                                          epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, epochs + 1):
        progress = on_epoch_start(epoch) if on_epoch_start is not None else None
        started = time.perf_counter()
        train_loss, train_accuracy = train_epoch(model, optimizer, scheduler, train_split,
                                                 batch_size, generator, progress,
                                                 recipe.l1, recipe.group_lasso)
        _synchronize(train_split.images.device)
        seconds = time.perf_counter() - started
        model.eval()
        test_loss, test_accuracy = evaluate_logits(model, test_split)
        history.append(EpochResult(epoch, train_loss, train_accuracy, test_loss, test_accuracy,
                                   seconds))
        logger.info("epoch %d/%d: train loss %.4f, test accuracy %.4f (%.1f s)", epoch, epochs,
                    train_loss, test_accuracy, seconds)
    return history


def _synchronize(device: torch.device) -> None:
    """Waits for queued GPU work so that wall-clock timings are complete.

    Args:
        device: The device the work was queued on; nothing is waited for on the CPU.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_seconds_per_epoch(layer_shapes: Sequence[tuple[int, int]], num_samples: int,
                             batch_size: int, device: torch.device, sample_batches: int = 20
                             ) -> float:
    """Times only the matrix products of one training epoch, as a floor for the epoch time.

    Per layer and batch that is the forward product and the backward products: the gradient
    of the weight, and of the input for every layer but the first (autograd skips that one,
    as the images need no gradient). Runs ``sample_batches`` full-size batches on
    random data after one warm-up batch and scales to the epoch.

    Args:
        layer_shapes: ``(out, in)`` of every weight matrix.
        num_samples: Samples in one epoch.
        batch_size: Samples per batch.
        device: Where to run the products.
        sample_batches: How many batches to time.

    Returns:
        Estimated seconds of matrix products per epoch.
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

    one_batch()
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(sample_batches):
        one_batch()
    _synchronize(device)
    return (time.perf_counter() - started) / sample_batches * (num_samples / batch_size)
