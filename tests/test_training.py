"""Training is deterministic for a seed and its measurements are right."""

import os

import pytest
import torch

from prunekit import data, model, training


@pytest.fixture(autouse=True)
def _restore_global_determinism_settings():
    """make_deterministic changes process-wide settings; put them back after each test."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    workspace_config = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
    if workspace_config is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace_config


def _tiny_split(seed, count=64):
    generator = torch.Generator().manual_seed(seed)
    return data.Split(torch.rand(count, 784, generator=generator),
                      torch.randint(0, 10, (count,), generator=generator))


def _train(seed):
    training.make_deterministic(seed, num_threads=None)
    network = model.MLP([32, 16])
    history = training.fit(network, _tiny_split(0), _tiny_split(1), epochs=2, batch_size=16,
                           lr=1e-2, seed=seed)
    return [weight.detach().clone() for weight in network.weights()], history


def test_same_seed_gives_identical_weights_and_a_different_seed_does_not():
    first, history = _train(seed=7)
    second, _ = _train(seed=7)
    third, _ = _train(seed=8)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, third, strict=True))
    assert [result.epoch for result in history] == [1, 2]


def test_training_reduces_the_loss_on_learnable_data():
    training.make_deterministic(0, num_threads=None)
    labels = torch.arange(256) % 10
    images = 0.1 * torch.rand(256, 784)
    images[torch.arange(256), labels] += 1.0  # Pixel `label` is lit: a rule it can learn.
    split = data.Split(images, labels)
    history = training.fit(model.MLP([64]), split, split, epochs=5, batch_size=32, lr=1e-2,
                           seed=0)
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].test_accuracy > 0.9


def test_loss_and_accuracy_on_known_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, 0.0]])
    labels = torch.tensor([0, 0, 0])
    loss, accuracy = training.loss_and_accuracy(logits, labels)
    assert accuracy == pytest.approx(2 / 3)
    expected = torch.nn.functional.cross_entropy(logits, labels).item()
    assert loss == pytest.approx(expected)
    split = data.Split(torch.zeros(3, 2), labels)
    batched = training.evaluate_logits(lambda images: logits[: len(images)] if len(images) == 3
                                       else logits[1:], split, batch_size=3)
    assert batched == pytest.approx((loss, accuracy))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_auto_device_is_the_cpu_without_cuda():
    assert training.resolve_device("auto") == torch.device("cpu")
    assert training.resolve_device("cpu") == torch.device("cpu")


def test_auto_device_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training.resolve_device("auto") == torch.device("cuda")
