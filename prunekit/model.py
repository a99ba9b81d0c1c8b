"""The bias-free ReLU multilayer perceptron, its forward pass and its state-dict keys."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

INPUT_SIZE = 28 * 28
NUM_CLASSES = 10


def layer_sizes(hidden_sizes: Sequence[int]) -> list[int]:
    """Returns every layer's width, input and logits included: ``[784, *hidden_sizes, 10]``."""
    return [INPUT_SIZE, *hidden_sizes, NUM_CLASSES]


class MLP(nn.Module):
    """A ReLU MLP without biases: ``logits = W_L relu(... relu(W_1 x))``.

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
        activations = images
        for layer in self.layers[:-1]:
            activations = torch.relu(layer(activations))
        return self.layers[-1](activations)

    def weights(self) -> list[torch.Tensor]:
        """Returns the layers' own (out, in) weight parameters, not copies, first layer first."""
        return [layer.weight for layer in self.layers]


def forward_weights(weights: Sequence[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """Returns the logits of images (batch, in) through the MLP of these (out, in) matrices."""
    activations = images
    for weight in weights[:-1]:
        activations = torch.relu_(activations @ weight.T)  # (batch, out); in place: no copy.
    return activations @ weights[-1].T


def weight_key(layer_index: int) -> str:
    """Returns the state-dict key of a layer's weight matrix (layers counted from 0)."""
    return f"layers.{layer_index}.weight"


def state_dict_from_weights(weights: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Returns an :class:`MLP` state dict of the matrices, detached and contiguous."""
    return {weight_key(index): weight.detach().contiguous() for index, weight in enumerate(weights)}
