"""Training and evaluation of the MLP on in-memory tensors, batched by indexing."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from prunekit import data, timing

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train: optimizer, learning-rate schedule and sparsity-inducing penalties.

    ``cosine`` decays the rate to zero over all steps. The penalties act on the prunable
    matrices only (see :func:`penalty`); 0 is off. ``penalty_warmup`` is the fraction of the
    steps over which they rise linearly from 0 to their strength, so that the network learns
    its features before it is made sparse (0: full strength from the first step). Momentum is
    for SGD only.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    schedule: str = "cosine"
    l1: float = 0.0
    group_lasso: float = 0.0
    penalty_warmup: float = 0.0

    def __post_init__(self):
        """Raises ValueError naming every bad field, its value and what is allowed, one a line."""
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
        if not _finite_number(self.penalty_warmup) or not 0 <= self.penalty_warmup <= 1:
            problems.append(f"penalty_warmup: got {self.penalty_warmup!r}; allowed: a fraction "
                            "of the training from 0 to 1")
        if problems:
            raise ValueError("\n".join(problems))

    def penalty_fraction(self, step: int, total_steps: int) -> float:
        """The fraction of their strengths the penalties have at a step (0 is the first)."""
        warmup_steps = self.penalty_warmup * total_steps
        return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def _finite_number(value: object) -> bool:
    """Whether ``value`` is a finite int or float, booleans excluded."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def make_optimizer(parameters: Sequence[torch.Tensor], recipe: Recipe, total_steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Builds the recipe's optimizer and learning-rate schedule (stepped once per batch).

    ``total_steps`` is the number of batches of the run; the cosine schedule reaches zero there.
    The step is PyTorch's fused one (one kernel over all parameters, CPU and CUDA): the same
    update as the default loop up to rounding, in less time per epoch (docs/results.md).
    """
    if recipe.optimizer == "adam":
        optimizer = torch.optim.Adam(parameters, lr=recipe.lr, fused=True)
    else:
        optimizer = torch.optim.SGD(parameters, lr=recipe.lr, momentum=recipe.momentum,
                                    fused=True)
    if recipe.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    return optimizer, scheduler


@torch.no_grad()
def add_penalty_gradients(weights: Sequence[torch.Tensor], l1: float, group_lasso: float
                          ) -> None:
    """Adds the gradient of :func:`penalty` to the ``.grad`` of every matrix but the last.

    No second backward pass: the gradient of ``|w|`` is ``sign(w)`` (0 at 0) and that of a
    row's norm is the row over its norm (0 for a zero row). A strength of 0 is skipped.
    """
    for weight in weights[:-1]:
        if l1:
            weight.grad.add_(torch.sign(weight), alpha=l1)
        if group_lasso:
            row_norms = torch.linalg.vector_norm(weight, dim=1, keepdim=True)  # (out, 1)
            scale = group_lasso / torch.where(row_norms > 0, row_norms, torch.inf)
            weight.grad.addcmul_(weight, scale)


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
    """One row per epoch of losses and accuracies (fractions), without the run-dependent seconds."""
    return [{key: value for key, value in dataclasses.asdict(result).items() if key != "seconds"}
            for result in history]


def resolve_device(requested: str) -> torch.device:
    """The device named by ``train.device``; ``auto`` is CUDA if present, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def make_deterministic(seed: int, num_threads: int | None) -> None:
    """Seeds Python, NumPy and PyTorch and pins deterministic kernels.

    ``num_threads`` (None: PyTorch's default) is fixed for the run, as matrix products may
    depend on the thread count.
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
                progress: Callable[[int], None] | None = None, recipe: Recipe = Recipe(),
                first_step: int = 0, total_steps: int = 1) -> tuple[float, float]:
    """Runs one epoch of minibatch training over a split held on the model's device.

    The CPU ``generator`` decides the shuffling; ``progress`` is called with the number of
    samples after each batch. The ``recipe`` gives the penalties, at their strength for the
    step: ``first_step`` is this epoch's first of the run's ``total_steps``.

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
    for step, start in enumerate(range(0, num_samples, batch_size), start=first_step):
        batch = order[start:start + batch_size]
        images, labels = split.images[batch], split.labels[batch]  # (batch, 784), (batch,)
        logits = model(images)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.l1 or recipe.group_lasso:
            fraction = recipe.penalty_fraction(step, total_steps)
            add_penalty_gradients(weights, recipe.l1 * fraction, recipe.group_lasso * fraction)
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach() * labels.shape[0]
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        if progress is not None:
            progress(labels.shape[0])
    return float(loss_sum) / num_samples, int(correct) / num_samples


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (a fraction) of logits (samples, 10) against labels."""
    loss = float(nn.functional.cross_entropy(logits, labels))
    accuracy = int((logits.argmax(dim=1) == labels).sum()) / labels.shape[0]
    return loss, accuracy


@torch.no_grad()
def evaluate_logits(logits_fn: Callable[[torch.Tensor], torch.Tensor], split: data.Split,
                    batch_size: int = 10_000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of a function from images (batch, 784) to logits.

    ``batch_size`` samples per call bound the memory.
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
    """Trains a model on the device of both splits with a recipe, evaluating after each epoch.

    ``test_split`` only reports progress, never chooses anything; ``seed`` seeds the shuffling;
    ``on_epoch_start`` is called with the epoch number and may return a per-batch progress
    callback.
    """
    steps_per_epoch = -(-train_split.labels.shape[0] // batch_size)
    total_steps = epochs * steps_per_epoch
    optimizer, scheduler = make_optimizer(list(model.parameters()), recipe, total_steps)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, epochs + 1):
        progress = on_epoch_start(epoch) if on_epoch_start is not None else None
        started = time.perf_counter()
        train_loss, train_accuracy = train_epoch(model, optimizer, scheduler, train_split,
                                                 batch_size, generator, progress, recipe,
                                                 (epoch - 1) * steps_per_epoch, total_steps)
        timing.synchronize(train_split.images.device)
        seconds = time.perf_counter() - started
        model.eval()
        test_loss, test_accuracy = evaluate_logits(model, test_split)
        history.append(EpochResult(epoch, train_loss, train_accuracy, test_loss, test_accuracy,
                                   seconds))
        logger.info("epoch %d/%d: train loss %.4f, test accuracy %.4f (%.1f s)", epoch, epochs,
                    train_loss, test_accuracy, seconds)
    return history
