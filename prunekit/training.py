"""Training the MLP on in-memory tensors, batched by indexing, and the floor of an epoch's time."""

from __future__ import annotations

import dataclasses
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from prunekit import data, errors, model


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train: optimizer, learning-rate schedule, sparsity-inducing penalties, start.

    ``cosine`` decays the rate to zero over all steps. The penalties act on the prunable
    matrices only (see :func:`add_penalty_gradients`); 0 is off. ``penalty_warmup`` is the
    fraction of the steps over which they rise linearly from 0 to their strength, so that the
    network learns its features before it is made sparse (0: full strength from the first
    step). Momentum is for SGD only, ``adam_eps`` for Adam. ``init`` is ``pytorch`` (its
    default for ``nn.Linear``) or ``glorot`` (Keras's default, :func:`initialize`);
    ``batch_size`` None leaves it to the caller. ``params.RecipeParams`` validates the values.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    schedule: str = "cosine"
    l1: float = 0.0
    group_lasso: float = 0.0
    penalty_warmup: float = 0.0
    adam_eps: float = 1e-8
    init: str = "pytorch"
    batch_size: int | None = None

    def penalty_fraction(self, step: int, total_steps: int) -> float:
        """The fraction of their strengths the penalties have at a step (0 is the first)."""
        warmup_steps = self.penalty_warmup * total_steps
        return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def make_optimizer(parameters: Sequence[torch.Tensor], recipe: Recipe, total_steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Builds the recipe's optimizer and learning-rate schedule (stepped once per batch).

    ``total_steps`` is the number of batches of the run; the cosine schedule reaches zero there.
    The step is PyTorch's fused one (one kernel over all parameters, CPU and CUDA): the same
    update as the default loop up to rounding, in less time per epoch (docs/results.md).
    """
    if recipe.optimizer == "adam":
        optimizer = torch.optim.Adam(parameters, lr=recipe.lr, eps=recipe.adam_eps, fused=True)
    else:
        optimizer = torch.optim.SGD(parameters, lr=recipe.lr, momentum=recipe.momentum,
                                    fused=True)
    if recipe.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    return optimizer, scheduler


@torch.no_grad()
def initialize(weights: Sequence[torch.Tensor], init: str) -> None:
    """Draws the matrices afresh from the global generator for ``glorot``; ``pytorch`` keeps them.

    Glorot (Xavier) uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), about 1.7 times
    PyTorch's bound of 1 / sqrt(fan_in) for a 1000x1000 matrix.
    """
    if init == "glorot":
        for weight in weights:
            nn.init.xavier_uniform_(weight)


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
    validation_loss: float
    validation_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float


def history_table(history: Sequence[EpochResult]) -> list[dict[str, float | int]]:
    """One row per epoch of losses and accuracies (fractions), without the run-dependent seconds."""
    return [{key: value for key, value in dataclasses.asdict(result).items() if key != "seconds"}
            for result in history]


def resolve_device(requested: str) -> torch.device:
    """The device named by ``train.device``; ``auto`` is CUDA if present, else the CPU.

    Raises:
        errors.InputError: If it names a CUDA device this machine lacks.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type == "cuda" and (device.index or 0) >= count:
        raise errors.InputError(f"train.device: got {requested!r}, but this machine has "
                                f"{count or 'no'} CUDA device{'s' * (count != 1)}; use auto or cpu")
    return device


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


def train_epoch(network: nn.Module, optimizer: torch.optim.Optimizer,
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
    network.train()
    weights = [parameter for name, parameter in network.named_parameters()
               if name.endswith("weight")]
    num_samples = split.labels.shape[0]
    order = torch.randperm(num_samples, generator=generator).to(split.labels.device)
    loss_sum = torch.zeros((), device=split.labels.device)
    correct = torch.zeros((), dtype=torch.int64, device=split.labels.device)
    for step, start in enumerate(range(0, num_samples, batch_size), start=first_step):
        batch = order[start:start + batch_size]
        images, labels = split.images[batch], split.labels[batch]  # (batch, 784), (batch,)
        logits = network(images)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.l1 or recipe.group_lasso:
            fraction = recipe.penalty_fraction(step, total_steps)
            add_penalty_gradients(weights, recipe.l1 * fraction, recipe.group_lasso * fraction)
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach() * labels.shape[0]
        correct += model.num_correct(logits.detach(), labels)
        if progress is not None:
            progress(labels.shape[0])
    return float(loss_sum) / num_samples, int(correct) / num_samples


def fit(network: nn.Module, train_split: data.Split, validation_split: data.Split,
        test_split: data.Split, epochs: int, batch_size: int, recipe: Recipe, seed: int,
        progress: Callable[[int], object] | None = None) -> Iterator[EpochResult]:
    """Trains a network on the device of the splits, yielding what each epoch measured.

    Each epoch runs when the next result is asked for, so the caller can measure the machine
    between epochs. ``validation_split`` is for choices; ``test_split`` only reports, never
    chooses anything. ``batch_size`` applies unless the recipe sets its own; ``seed`` seeds
    the shuffling; ``progress`` is called with the number of samples after each batch.
    """
    batch_size = recipe.batch_size or batch_size
    initialize(network.weights(), recipe.init)
    steps_per_epoch = -(-train_split.labels.shape[0] // batch_size)
    total_steps = epochs * steps_per_epoch
    optimizer, scheduler = make_optimizer(list(network.parameters()), recipe, total_steps)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        train_loss, train_accuracy = train_epoch(network, optimizer, scheduler, train_split,
                                                 batch_size, generator, progress, recipe,
                                                 (epoch - 1) * steps_per_epoch, total_steps)
        synchronize(train_split.images.device)
        seconds = time.perf_counter() - started
        network.eval()
        measured = [model.loss_and_accuracy(network, split.images, split.labels)
                    for split in (validation_split, test_split)]
        yield EpochResult(epoch, train_loss, train_accuracy, *measured[0], *measured[1], seconds)


def synchronize(device: torch.device) -> None:
    """Waits for the work queued on a CUDA device, so that wall-clock timings are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_seconds_per_epoch(layer_shapes: Sequence[tuple[int, int]], num_samples: int,
                             batch_size: int, device: torch.device, sample_batches: int = 20
                             ) -> float:
    """Times the matrix products of one training epoch on random data, a floor for its time.

    Per weight matrix of shape ``(out, in)`` and batch: the forward product, the gradient of
    the weight and, but for the first layer, that of the input. Times ``sample_batches`` full
    batches after one warm-up batch and scales to the ``num_samples`` of an epoch.
    """
    batch_size = min(batch_size, num_samples)
    generator = torch.Generator().manual_seed(0)  # Leaves the global one, training's, alone.

    def random_tensor(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(device)

    weights = [random_tensor(*shape) for shape in layer_shapes]
    inputs = [random_tensor(batch_size, shape[1]) for shape in layer_shapes]
    grads = [random_tensor(batch_size, shape[0]) for shape in layer_shapes]

    def one_batch() -> None:
        """Runs one batch's forward and backward products, discarding the results."""
        for index, (weight, layer_input, grad_output) in enumerate(
                zip(weights, inputs, grads, strict=True)):
            layer_input @ weight.T  # Forward.
            grad_output.T @ layer_input  # Gradient of the weight.
            if index > 0:
                grad_output @ weight  # Gradient of the input.

    one_batch()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(sample_batches):
        one_batch()
    synchronize(device)
    return (time.perf_counter() - started) / sample_batches * (num_samples / batch_size)
