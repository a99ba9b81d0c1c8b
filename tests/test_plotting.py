"""Every chart has a title, axis labels in percent where people read them, and a legend."""

import runpy

import pandas as pd
import pytest
from conftest import REPO

from prunekit import aggregate, files, plotting


def test_sparsity_accuracy_chart_is_labelled_with_a_curve_per_method():
    curves = {"weight": [{"k": 0, "sparsity": 0.0, "accuracy": 0.9},
                         {"k": 90, "sparsity": 0.899, "accuracy": 0.6}],
              "unit": [{"k": 0, "sparsity": 0.0, "accuracy": 0.9},
                       {"k": 90, "sparsity": 0.899, "accuracy": 0.2}]}
    figure = plotting.sparsity_accuracy_figure(curves, dense_accuracy=0.9, dataset="mnist")
    (axes,) = figure.axes
    assert "mnist" in axes.get_title()
    assert "(%" in axes.get_xlabel() and "(%)" in axes.get_ylabel()
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels[:2] == [plotting.METHOD_LABELS["weight"], plotting.METHOD_LABELS["unit"]]
    weight_line = axes.get_lines()[0]
    assert list(weight_line.get_xdata()) == pytest.approx([0.0, 89.9])  # Percent, not fractions.
    assert list(weight_line.get_ydata()) == pytest.approx([90.0, 60.0])


def test_training_chart_shows_loss_and_accuracy_for_both_splits():
    history = [{"epoch": epoch, "train_loss": 1 / epoch, "test_loss": 1.2 / epoch,
                "train_accuracy": 0.8, "test_accuracy": 0.7} for epoch in (1, 2, 3)]
    figure = plotting.training_curve_figure(history, "fashion-mnist")
    assert [axes.get_xlabel() for axes in figure.axes] == ["Epoch", "Epoch"]
    assert figure.axes[1].get_ylabel() == "Accuracy (%)"
    for axes in figure.axes:
        assert axes.get_title() and len(axes.get_legend().get_texts()) == 2
    assert figure.get_suptitle() == "Training the dense MLP on fashion-mnist"


def test_plot_stage_names_an_incomplete_evaluation_file():
    accuracy_curves = runpy.run_path(str(REPO / "stages" / "plot.py"))["accuracy_curves"]
    complete = {"dense": {"accuracy": 0.9}, "provenance": {"dataset": "mnist"},
                "unit": {"k90": {"k": 90, "sparsity": 0.9, "accuracy": 0.2},
                         "k0": {"k": 0, "sparsity": 0.0, "accuracy": 0.9}}}
    curves, dense_accuracy, dataset = accuracy_curves(complete)
    assert [row["k"] for row in curves["unit"]] == [0, 90] and dataset == "mnist"
    assert dense_accuracy == 0.9
    with pytest.raises(files.InvalidFileError, match="evaluate.json lacks 'provenance'"):
        accuracy_curves({key: value for key, value in complete.items() if key != "provenance"})


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
                                     "accuracy": min(accuracy + shift + seed / 100, 1.0)})
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


def test_recipe_training_chart_has_a_line_per_recipe():
    history = pd.DataFrame([{"recipe": recipe, "seed": seed, "epoch": epoch,
                             "train_loss": 1 / epoch, "test_accuracy": 0.8 + seed / 100}
                            for recipe in ("adam", "sgd") for seed in (0, 1)
                            for epoch in (1, 2)])
    figure = plotting.recipe_training_figure(history, "mnist")
    loss_axes, accuracy_axes = figure.axes
    assert [text.get_text() for text in accuracy_axes.get_legend().get_texts()] == ["adam", "sgd"]
    assert list(accuracy_axes.get_lines()[0].get_ydata()) == pytest.approx([80.5, 80.5])
    assert accuracy_axes.get_ylabel() == "Accuracy (%)" and loss_axes.get_xlabel() == "Epoch"


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
