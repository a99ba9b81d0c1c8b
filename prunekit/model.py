"""The bias-free ReLU multilayer perceptron: its forward pass, accuracy and state-dict keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

INPUT_SIZE = 28 * 28
NUM_CLASSES = 10


def layer_sizes(hidden_sizes: Sequence[int]) -> list[int]:
    """Returns every layer's width, input and logits included: ``[784, *hidden_sizes, 10]``."""
    return [INPUT_SIZE, *hidden_sizes, NUM_CLASSES]


def layer_outputs(weights: Sequence[torch.Tensor], images: torch.Tensor
                  ) -> Iterator[torch.Tensor]:
    """Yields what enters each (out, in) matrix, the images first, then the logits (batch, 10).

    The one forward pass of the project: ``logits = W_L relu(... relu(W_1 x))``.
    """
    activations = images  # (batch, in)
    for weight in weights[:-1]:
        yield activations
        activations = torch.relu_(activations @ weight.T)  # (batch, out); in place: no copy.
    yield activations
    yield activations @ weights[-1].T


def forward_weights(weights: Sequence[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """Returns the logits of images (batch, in) through the MLP of these (out, in) matrices."""
    *_, logits = layer_outputs(weights, images)
    return logits


class MLP(nn.Module):
    """A ReLU MLP without biases, run by :func:`forward_weights`.

    Its state dict holds one ``(out, in)`` matrix per layer, under ``layers.<i>.weight``.
    """

    def __init__(self, hidden_sizes: Sequence[int]):
        super().__init__()
        sizes = layer_sizes(hidden_sizes)
        self.layers = nn.ModuleList(
            nn.Linear(in_size, out_size, bias=False)
            for in_size, out_size in zip(sizes[:-1], sizes[1:], strict=True))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Returns the logits (batch, 10) of flattened images (batch, 784)."""
        return forward_weights(self.weights(), images)

    def weights(self) -> list[torch.Tensor]:
        """Returns the layers' own (out, in) weight parameters, not copies, first layer first."""
        return [layer.weight for layer in self.layers]


def num_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Counts the samples whose largest logit (samples, 10) is their label, as a 0-d tensor."""
    return (logits.argmax(dim=1) == labels).sum()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of samples whose largest logit is their label."""
    return int(num_correct(logits, labels)) / labels.shape[0]


@torch.no_grad()
def loss_and_accuracy(logits_fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                      labels: torch.Tensor, batch_size: int = 10_000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of a function from images (batch, 784) to logits.

    ``batch_size`` samples per call bound the memory.
    """
    num_samples = labels.shape[0]
    loss_sum = accuracy_sum = 0.0
    for start in range(0, num_samples, batch_size):
        batch_labels = labels[start:start + batch_size]
        logits = logits_fn(images[start:start + batch_size])
        loss_sum += float(nn.functional.cross_entropy(logits, batch_labels)) * len(batch_labels)
        accuracy_sum += accuracy(logits, batch_labels) * len(batch_labels)
    return loss_sum / num_samples, accuracy_sum / num_samples


def weight_key(layer_index: int) -> str:
    """Returns the state-dict key of a layer's weight matrix (layers counted from 0)."""
    return f"layers.{layer_index}.weight"


def state_dict_from_weights(weights: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Returns an :class:`MLP` state dict of the matrices, detached and contiguous."""
    return {weight_key(index): weight.detach().contiguous() for index, weight in enumerate(weights)}
