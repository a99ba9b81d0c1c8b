"""The MLP's shape, its lack of biases, and clear errors for a model file of another shape."""

import pytest
import torch
from conftest import mlp_shapes, reference_logits

from prunekit import artifacts, model


def test_mlp_has_the_given_sizes_and_no_biases():
    network = model.MLP([1000, 1000, 500, 200])
    shapes = [tuple(weight.shape) for weight in network.weights()]
    assert shapes == [(1000, 784), (1000, 1000), (500, 1000), (200, 500), (10, 200)]
    assert all(layer.bias is None for layer in network.layers)
    assert list(network.state_dict()) == [f"layers.{index}.weight" for index in range(5)]


def test_forward_matches_the_functional_form(random_images):
    network = model.MLP([16, 8])
    images = random_images(5)
    with torch.no_grad():
        functional = model.forward_weights(network.weights(), images)
        torch.testing.assert_close(network(images), functional)
        torch.testing.assert_close(functional, reference_logits(network.weights(), images))


def test_zero_input_gives_zero_logits_without_biases():
    assert torch.equal(model.MLP([16])(torch.zeros(2, 784)), torch.zeros(2, 10))


def _save(path, weights):
    torch.save(model.state_dict_from_weights(weights), path)
    return path


def test_load_weights_round_trip(tmp_path, random_weights):
    weights = random_weights(mlp_shapes([20, 10]))
    loaded = artifacts.load_weights(_save(tmp_path / "m.pt", weights), [20, 10])
    assert all(torch.equal(a, b) for a, b in zip(loaded, weights, strict=True))


def test_load_weights_rejects_other_hidden_sizes(tmp_path):
    path = _save(tmp_path / "m.pt", model.MLP([20, 10]).weights())
    with pytest.raises(artifacts.CheckpointError,
                       match="hidden sizes \\[20, 10\\], but train.hidden_sizes is \\[20, 12\\]"):
        artifacts.load_weights(path, [20, 12])


def test_load_weights_rejects_biases_and_broken_chains(tmp_path):
    state = model.MLP([20]).state_dict()
    state["layers.0.bias"] = torch.zeros(20)
    torch.save(state, tmp_path / "bias.pt")
    with pytest.raises(artifacts.CheckpointError, match="bias-free MLP weights only"):
        artifacts.load_weights(tmp_path / "bias.pt")
    broken = _save(tmp_path / "broken.pt", [torch.zeros(20, 784), torch.zeros(10, 21)])
    with pytest.raises(artifacts.CheckpointError, match="do not form an MLP"):
        artifacts.load_weights(broken)


def test_load_weights_rejects_entries_that_are_not_float_tensors(tmp_path):
    for value in (3, torch.zeros(10, 784, dtype=torch.int64)):
        torch.save({"layers.0.weight": value}, tmp_path / "odd.pt")
        with pytest.raises(artifacts.CheckpointError, match="not floating-point tensors"):
            artifacts.load_weights(tmp_path / "odd.pt")


def test_load_weights_rejects_garbage_and_missing_files(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(artifacts.CheckpointError, match="not a readable PyTorch checkpoint"):
        artifacts.load_weights(tmp_path / "garbage.pt")
    with pytest.raises(artifacts.CheckpointError, match="not found; run the train stage"):
        artifacts.load_weights(tmp_path / "missing.pt")


def test_loss_and_accuracy_on_known_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, 0.0]])
    labels = torch.tensor([0, 0, 0])
    accuracy = model.accuracy(logits, labels)
    assert accuracy == pytest.approx(2 / 3)
    assert model.num_correct(logits, labels).ndim == 0
    expected = torch.nn.functional.cross_entropy(logits, labels).item()
    batched = model.loss_and_accuracy(lambda images: logits[: len(images)] if len(images) == 3
                                      else logits[1:], torch.zeros(3, 2), labels, batch_size=3)
    assert batched == pytest.approx((expected, accuracy))


def test_layer_outputs_yield_each_matrix_input_then_the_logits(random_weights, random_images):
    weights = random_weights(mlp_shapes([16, 8]))
    images = random_images(5)
    outputs = list(model.layer_outputs(weights, images))
    assert [tuple(output.shape) for output in outputs] == [(5, 784), (5, 16), (5, 8), (5, 10)]
    torch.testing.assert_close(outputs[1], torch.relu(images @ weights[0].T))
    torch.testing.assert_close(outputs[-1], reference_logits(weights, images))
