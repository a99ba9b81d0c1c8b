"""Every chart has a title, axis labels in percent where people read them, and a legend."""

import pandas
import pytest

from prunekit import plotting, training


def test_sparsity_accuracy_chart_is_labelled_with_a_curve_per_method():
    table = pandas.DataFrame({"method": ["weight", "weight", "unit", "unit"],
                              "sparsity_percent": [89.9, 0.0, 0.0, 89.9],
                              "accuracy_percent": [60.0, 90.0, 90.0, 20.0]})
    figure = plotting.sparsity_accuracy_figure(table, dense_accuracy=0.9, dataset="mnist")
    (axes,) = figure.axes
    assert "mnist" in axes.get_title()
    assert "(%" in axes.get_xlabel() and "(%)" in axes.get_ylabel()
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels[:2] == [plotting.METHOD_LABELS["weight"], plotting.METHOD_LABELS["unit"]]
    weight_line = axes.get_lines()[0]
    assert list(weight_line.get_xdata()) == [0.0, 89.9]  # Sorted by sparsity.
    assert list(weight_line.get_ydata()) == [90.0, 60.0]
    assert axes.get_lines()[2].get_ydata()[0] == pytest.approx(90.0)  # Dense, in percent.


def test_training_chart_shows_loss_and_accuracy_for_both_splits():
    history = pandas.DataFrame(training.history_table([
        training.EpochResult(epoch, 1 / epoch, 0.8, 1.2 / epoch, 0.7, seconds=1.0)
        for epoch in (1, 2, 3)]))
    figure = plotting.training_curve_figure(history, "fashion-mnist")
    assert [axes.get_xlabel() for axes in figure.axes] == ["Epoch", "Epoch"]
    assert figure.axes[1].get_ylabel() == "Accuracy (%)"
    for axes in figure.axes:
        assert axes.get_title()
        assert [text.get_text() for text in axes.get_legend().get_texts()] == ["train", "test"]
    assert list(figure.axes[1].get_lines()[1].get_ydata()) == [70.0] * 3  # Test, in percent.
    assert figure.get_suptitle() == "Training the dense MLP on fashion-mnist"
