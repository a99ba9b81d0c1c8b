"""Every chart has a title, axis labels in percent where people read them, and a legend."""

import runpy

import pytest
from conftest import REPO

from prunekit import files, plotting


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
