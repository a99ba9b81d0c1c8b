"""The bias-free ReLU multilayer perceptron and its checkpoint format."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import torch
from torch import nn

from prunekit import errors, files

INPUT_SIZE = 28 * 28
NUM_CLASSES = 10


class CheckpointError(errors.InputError):
    """A model file is missing, unreadable or of another architecture."""


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


def load_weights(path: str | pathlib.Path, hidden_sizes: Sequence[int] | None = None
                 ) -> list[torch.Tensor]:
    """Loads a dense checkpoint's weight matrices, float32 on the CPU, first layer first.

    With ``hidden_sizes`` None, any well-formed chain from 784 inputs to 10 logits is accepted.

    Raises:
        CheckpointError: If the file is missing, unreadable, or not an MLP of the expected sizes.
    """
    fix = "run the train stage again (dvc repro train)"
    state = files.load_checkpoint(path, CheckpointError, fix)
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path} does not hold a state dict; {fix}")
    expected_keys = [weight_key(index) for index in range(len(state))]
    if sorted(state) != sorted(expected_keys):
        raise CheckpointError(f"{path} has keys {sorted(state)}, expected {expected_keys} "
                              f"(bias-free MLP weights only); {fix}")
    weights = [state[key] for key in expected_keys]
    if not all(isinstance(weight, torch.Tensor) and weight.is_floating_point()
               for weight in weights):
        raise CheckpointError(f"{path} holds entries that are not floating-point tensors; {fix}")
    shapes = [tuple(weight.shape) for weight in weights]
    matrices = all(weight.ndim == 2 for weight in weights)
    chained = matrices and all(later.shape[1] == earlier.shape[0]
                               for earlier, later in zip(weights[:-1], weights[1:], strict=True))
    if not chained or shapes[0][1] != INPUT_SIZE or shapes[-1][0] != NUM_CLASSES:
        raise CheckpointError(f"{path} holds matrices of shapes {shapes}, which do not form an "
                              f"MLP from {INPUT_SIZE} inputs to {NUM_CLASSES} logits; {fix}")
    found_sizes = [shape[0] for shape in shapes[:-1]]
    if hidden_sizes is not None and found_sizes != list(hidden_sizes):
        raise CheckpointError(f"{path} has hidden sizes {found_sizes}, but train.hidden_sizes is "
                              f"{list(hidden_sizes)}; {fix}")
    return [weight.to(torch.float32) for weight in weights]
