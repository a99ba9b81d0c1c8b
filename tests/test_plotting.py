"""Every chart has a title, axis labels in percent where people read them, and a legend."""

import pandas as pd
import pytest

from prunekit import aggregate, plotting


def _aggregated():
    rows = []
    for recipe, shift in (("adam", 0.0), ("l1", 0.1)):
        for seed in (0, 1):
            for method in ("weight", "unit"):
                for k, accuracy in ((0, 0.9), (50, 0.8), (90, 0.4)):
                    for control, scope in (("magnitude", "all"), ("random", "all"),
                                           ("magnitude", "W1"), ("magnitude", "W2")):
                        rows.append({"recipe": recipe, "seed": seed, "method": method,
                                     "control": control, "scope": scope, "draw": 0, "k": k,
                                     "sparsity": k / 100, "dead_units": 0,
                                     "accuracy": min(accuracy + shift + seed / 100, 1.0),
                                     "kept_weights": 1000 - 10 * k,  # Of 1000 weights.
                                     "compact_weights": 1000 - 10 * k * (method == "unit")})
    return aggregate.aggregate_seeds(pd.DataFrame(rows))


def test_seeds_chart_has_a_band_and_a_dashed_control_per_recipe():
    figure = plotting.seeds_sparsity_accuracy_figure(_aggregated(), "fashion-mnist")
    weight_axes = figure.axes[0]
    assert weight_axes.get_title() == plotting.METHOD_LABELS["weight"]
    assert "(%" in weight_axes.get_xlabel() and "(%)" in weight_axes.get_ylabel()
    lines = {line.get_label(): line for line in weight_axes.get_lines()}
    assert lines["adam"].get_linestyle() == "-"
    assert lines["l1: random control"].get_linestyle() == "--"
    assert list(lines["adam"].get_ydata()) == pytest.approx([90.5, 80.5, 40.5])  # Mean, %.
    assert len(weight_axes.collections) == 4  # A band per recipe and control.
    assert "fashion-mnist" in figure.get_suptitle()


def test_layer_sensitivity_chart_draws_each_matrix_and_all():
    figure = plotting.layer_sensitivity_figure(_aggregated(), "unit", "adam", "mnist")
    (axes,) = figure.axes
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels[:3] == ["only W1 pruned", "only W2 pruned", "all prunable matrices"]
    assert "(%)" in axes.get_xlabel() and "unit" in axes.get_title()
    assert list(axes.get_lines()[0].get_xdata()) == pytest.approx([0, 50, 90])
    with pytest.raises(ValueError, match="no unit pruning rows for recipe 'sgd'"):
        plotting.layer_sensitivity_figure(_aggregated(), "unit", "sgd", "mnist")


def test_budget_chart_puts_every_method_on_each_budget_per_recipe():
    figure = plotting.budget_figure(aggregate.budget_curves(_aggregated()), "fashion-mnist")
    assert len(figure.axes) == 2 * 2  # Two budgets, two recipes.
    kept, compact = figure.axes[0], figure.axes[2]  # Recipe adam, first and second row.
    assert "keeps" in kept.get_xlabel() and "dense pass" in compact.get_xlabel()
    lines = {line.get_label(): line for line in kept.get_lines()}
    assert list(lines["unit"].get_xdata()) == pytest.approx([10, 50, 100])
    assert lines["weight: random control"].get_linestyle() == "--"
    assert list({line.get_label(): line for line in compact.get_lines()}["weight"].get_xdata()
                ) == pytest.approx([100, 100, 100])  # Dense multiply-adds stay.
    assert kept.get_xscale() == "log" and "matched budgets" in figure.get_suptitle()


def test_weights_chart_draws_a_histogram_and_the_mass_removed_per_matrix():
    statistics = pd.DataFrame([
        {"recipe": recipe, "seed": 0, "layer": layer, "quantity": quantity, "x": x, "value": v}
        for recipe in ("adam", "l1") for layer in ("W1", "W2")
        for quantity, x, v in (("zero_fraction", 0, 0.0), ("abs_weight_histogram", 0.01, 0.4),
                               ("abs_weight_histogram", 0.1, 0.6), ("l1_removed_weight", 50, 0.1),
                               ("l1_removed_weight", 90, 0.5))])
    tables = aggregate.weight_statistics(statistics)
    figure = plotting.weights_figure(tables["histograms"], tables["l1_removed"], "weight", "mnist")
    assert len(figure.axes) == 2 * 2
    top, bottom = figure.axes[0], figure.axes[2]
    assert "W1" in top.get_title() and top.get_xscale() == "log"
    assert list(top.get_lines()[0].get_ydata()) == pytest.approx([40, 60])
    assert list(bottom.get_lines()[0].get_ydata()) == pytest.approx([10, 50])
    assert "(%)" in bottom.get_xlabel() and "(%)" in bottom.get_ylabel()


def test_recipe_training_chart_has_a_line_per_recipe():
    history = pd.DataFrame([{"recipe": recipe, "seed": seed, "epoch": epoch,
                             "train_loss": 1 / epoch, "test_accuracy": 0.8 + seed / 100,
                             "validation_accuracy": 0.7,
                             "train_accuracy": 0.9, "test_loss": 0.5}
                            for recipe in ("adam", "sgd") for seed in (0, 1)
                            for epoch in (1, 2)])
    figure = plotting.recipe_training_figure(aggregate.training_curves(history), "mnist")
    loss_axes, accuracy_axes = figure.axes
    assert [text.get_text() for text in accuracy_axes.get_legend().get_texts()] == ["adam", "sgd"]
    assert list(accuracy_axes.get_lines()[0].get_ydata()) == pytest.approx([80.5, 80.5])
    validation = accuracy_axes.get_lines()[1]
    assert validation.get_linestyle() == "--"
    assert list(validation.get_ydata()) == pytest.approx([70, 70])
    assert accuracy_axes.get_title() == "Test accuracy, validation dashed"
    assert accuracy_axes.get_ylabel() == "Accuracy (%)" and loss_axes.get_xlabel() == "Epoch"


def test_reference_chart_draws_both_methods_with_bands_and_dashed_controls():
    curves = pd.concat([aggregate.accuracy_curves(_aggregated(), method)
                        for method in ("weight", "unit")])
    figure = plotting.sparsity_accuracy_figure(curves, "adam", "mnist")
    (axes,) = figure.axes
    assert "adam" in axes.get_title() and "mnist" in axes.get_title()
    assert "(%" in axes.get_xlabel() and "(%)" in axes.get_ylabel()
    lines = {line.get_label(): line for line in axes.get_lines()}
    weight = lines[plotting.METHOD_LABELS["weight"]]
    assert list(weight.get_xdata()) == pytest.approx([0, 50, 90])  # Sparsity, percent.
    assert list(weight.get_ydata()) == pytest.approx([90.5, 80.5, 40.5])  # Mean over seeds.
    assert lines[plotting.METHOD_LABELS["unit"] + ": random control"].get_linestyle() == "--"
    assert len(axes.collections) == 4  # A min-max band per method and control.


def test_penalty_tradeoff_chart_draws_mean_per_strength_in_percent():
    runs = pd.DataFrame([{"strength": strength, "seed": seed, "dense": 0.9 - strength * 1e3,
                          "weight_k90": 0.8 + strength * 1e3 + seed / 100}
                         for strength in (1e-5, 2e-5) for seed in (0, 2)])
    figure = plotting.penalty_tradeoff_figure(runs, "L1", {"dense": "dense",
                                                           "weight_k90": "weight k90"})
    (axes,) = figure.axes
    assert axes.get_xscale() == "log" and "L1" in axes.get_title()
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["dense", "weight k90"]
    assert list(axes.get_lines()[1].get_ydata()) == pytest.approx([82.0, 83.0])
    assert axes.get_ylabel() == "Test accuracy (%)"
