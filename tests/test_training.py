"""Training is deterministic for a seed and its measurements are right."""

import os

import pytest
import torch

from prunekit import data, errors, model, training


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


def _penalty(weights, l1, group_lasso):
    """The penalties as a loss, for autograd: ``l1 * sum|W| + group_lasso * sum_rows ||W_row||``.

    The last matrix (to the logits) is left out, as training's penalty gradients leave it out.
    """
    total = torch.zeros((), device=weights[0].device)
    for weight in weights[:-1]:
        total = total + l1 * weight.abs().sum()
        total = total + group_lasso * torch.linalg.vector_norm(weight, dim=1).sum()
    return total


def _tiny_split(seed, count=64):
    generator = torch.Generator().manual_seed(seed)
    return data.Split(torch.rand(count, 784, generator=generator),
                      torch.randint(0, 10, (count,), generator=generator))


def _train(seed):
    training.make_deterministic(seed, num_threads=None)
    network = model.MLP([32, 16])
    history = list(training.fit(network, _tiny_split(0), _tiny_split(1), _tiny_split(2),
                                epochs=2, batch_size=16, recipe=training.Recipe(lr=1e-2),
                                seed=seed))
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
    history = list(training.fit(model.MLP([64]), split, split, _tiny_split(1), epochs=5,
                                batch_size=32, recipe=training.Recipe(lr=1e-2), seed=0))
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].validation_accuracy > 0.9  # The learnable split ...
    assert history[-1].test_accuracy < 0.5  # ... and random labels: each split measured.


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_auto_device_is_the_cpu_without_cuda():
    assert training.resolve_device("auto") == torch.device("cpu")
    assert training.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_device_is_refused_without_cuda():
    with pytest.raises(errors.InputError, match="train.device: got 'cuda:0'.*no CUDA device"):
        training.resolve_device("cuda:0")


def test_auto_device_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training.resolve_device("auto") == torch.device("cuda")


def test_penalty_gradients_match_autograd_and_spare_the_last_matrix():
    weights = [torch.tensor([[3.0, -4.0], [0.0, 0.0], [0.0, -2.0]]),  # Rows of norm 5, 0, 2.
               torch.tensor([[1.0, -1.0, 2.0]])]
    added = [weight.clone().requires_grad_() for weight in weights]
    for weight in added:
        weight.grad = torch.zeros_like(weight)
    training.add_penalty_gradients(added, l1=0.5, group_lasso=2.0)
    expected_first = (0.5 * torch.tensor([[1.0, -1.0], [0.0, 0.0], [0.0, -1.0]])
                      + 2.0 * torch.tensor([[0.6, -0.8], [0.0, 0.0], [0.0, -1.0]]))
    assert torch.allclose(added[0].grad, expected_first)
    assert torch.equal(added[1].grad, torch.zeros(1, 3))
    autograd = [weight.clone().requires_grad_() for weight in weights]
    value = _penalty(autograd, l1=0.5, group_lasso=2.0)
    assert value.item() == pytest.approx(0.5 * 9 + 2.0 * 7)
    value.backward()
    # A zero row's norm has no gradient; add_penalty_gradients takes 0 there. Compare the rest.
    assert torch.allclose(autograd[0].grad[[0, 2]], expected_first[[0, 2]])


def test_optimizer_and_schedule_follow_the_recipe():
    weight = torch.nn.Parameter(torch.ones(2, 2))
    optimizer, scheduler = training.make_optimizer(
        [weight], training.Recipe(optimizer="sgd", lr=0.05, momentum=0.9, schedule="constant"),
        total_steps=10)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["momentum"] == 0.9
    assert optimizer.param_groups[0]["fused"]
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 0.05
    optimizer, scheduler = training.make_optimizer([weight], training.Recipe(lr=0.01),
                                                   total_steps=4)
    assert isinstance(optimizer, torch.optim.Adam)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_l1_and_group_lasso_shrink_what_they_penalise():
    def train(recipe):
        training.make_deterministic(0, num_threads=None)
        network = model.MLP([32, 16])
        for _ in training.fit(network, _tiny_split(0), _tiny_split(1), _tiny_split(2), epochs=3,
                              batch_size=16, recipe=recipe, seed=0):
            pass  # Each epoch runs when its result is asked for.
        return network.weights()

    plain = train(training.Recipe(lr=1e-2))
    l1 = train(training.Recipe(lr=1e-2, l1=1e-2))
    group = train(training.Recipe(lr=1e-2, group_lasso=1e-1))
    assert _penalty(l1, 1.0, 0.0) < 0.8 * _penalty(plain, 1.0, 0.0)
    assert _penalty(group, 0.0, 1.0) < 0.8 * _penalty(plain, 0.0, 1.0)
    # Ramped in over the whole run, the penalty acts at half its strength on average.
    ramped = train(training.Recipe(lr=1e-2, l1=1e-2, penalty_warmup=1.0))
    assert (_penalty(l1, 1.0, 0.0) < _penalty(ramped, 1.0, 0.0)
            < _penalty(plain, 1.0, 0.0))


def test_penalties_rise_linearly_over_their_warmup():
    recipe = training.Recipe(l1=1e-5, penalty_warmup=0.5)
    fractions = [recipe.penalty_fraction(step, total_steps=10) for step in range(10)]
    assert fractions == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert training.Recipe(l1=1e-5).penalty_fraction(0, total_steps=10) == 1.0


def test_fit_yields_each_epoch_when_asked_and_reports_progress_per_batch():
    training.make_deterministic(0, num_threads=None)
    network = model.MLP([16])
    before = [weight.detach().clone() for weight in network.weights()]
    samples = []
    epochs = training.fit(network, _tiny_split(0, count=40), _tiny_split(1), _tiny_split(2),
                          epochs=2, batch_size=16, recipe=training.Recipe(lr=1e-2), seed=0,
                          progress=samples.append)
    assert all(torch.equal(a, b) for a, b in zip(before, network.weights(), strict=True))
    assert next(epochs).epoch == 1
    assert samples == [16, 16, 8]  # One call per batch with its sample count.
    assert [result.epoch for result in epochs] == [2]
    assert sum(samples) == 80


def test_a_recipe_batch_size_overrides_the_shared_one():
    samples = []
    for _ in training.fit(model.MLP([16]), _tiny_split(0, count=40), _tiny_split(1),
                          _tiny_split(2), epochs=1, batch_size=16,
                          recipe=training.Recipe(lr=1e-2, batch_size=32), seed=0,
                          progress=samples.append):
        pass
    assert samples == [32, 8]


def test_glorot_initialisation_draws_within_its_wider_bound():
    torch.manual_seed(0)
    network = model.MLP([1000])
    pytorch_bound = 1 / 784 ** 0.5
    assert network.weights()[0].abs().max() <= pytorch_bound
    training.initialize(network.weights(), "glorot")
    glorot_bound = (6 / (784 + 1000)) ** 0.5
    largest = float(network.weights()[0].detach().abs().max())
    assert pytorch_bound < 0.99 * glorot_bound < largest <= glorot_bound


def test_adam_eps_follows_the_recipe():
    optimizer, _ = training.make_optimizer([torch.nn.Parameter(torch.ones(2))],
                                           training.Recipe(adam_eps=1e-7), total_steps=1)
    assert optimizer.param_groups[0]["eps"] == 1e-7


def test_matmul_floor_leaves_the_training_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    seconds = training.matmul_seconds_per_epoch([(8, 4), (2, 8)], num_samples=64, batch_size=16,
                                                device=torch.device("cpu"), sample_batches=2)
    assert seconds > 0
    assert torch.equal(torch.rand(3), expected)
