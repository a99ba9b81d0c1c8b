"""Outputs are replaced all together, or not at all."""

import json

import pytest
import torch

from prunekit import files


def test_outputs_replace_old_ones_only_on_success(tmp_path):
    model, metrics = tmp_path / "model.bin", tmp_path / "metrics" / "m.json"
    with files.replace_together() as outputs:
        outputs.file(model).write_bytes(b"old model")
        files.write_json(outputs.file(metrics), {"accuracy": 0.5})
    with pytest.raises(RuntimeError), files.replace_together() as outputs:
        outputs.file(model).write_bytes(b"half-written new mod")
        raise RuntimeError("interrupted between two outputs")
    assert model.read_bytes() == b"old model"
    assert json.loads(metrics.read_text()) == {"accuracy": 0.5}
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["m.json", "metrics", "model.bin"]


def test_keyboard_interrupt_leaves_no_temporary_files(tmp_path):
    with pytest.raises(KeyboardInterrupt), files.replace_together() as outputs:
        outputs.directory(tmp_path / "pruned").joinpath("a.pt").write_bytes(b"x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_directory_output_holds_exactly_the_new_files(tmp_path):
    folder = tmp_path / "pruned"
    with files.replace_together() as outputs:
        staging = outputs.directory(folder)
        (staging / "weight_k50.pt").write_bytes(b"1")
        (staging / "weight_k90.pt").write_bytes(b"2")
    with files.replace_together() as outputs:
        (outputs.directory(folder) / "weight_k90.pt").write_bytes(b"3")
    assert [(path.name, path.read_bytes()) for path in folder.iterdir()] == [
        ("weight_k90.pt", b"3")]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pruned"]


def test_csv_needs_rows(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        files.write_csv(tmp_path / "t.csv", [])
    files.write_csv(tmp_path / "t.csv", [{"k": 0, "acc": 0.5}, {"k": 90, "acc": 0.25}])
    assert (tmp_path / "t.csv").read_text() == "k,acc\n0,0.5\n90,0.25\n"
    assert files.read_table(tmp_path / "t.csv").to_dict("records") == [
        {"k": 0, "acc": 0.5}, {"k": 90, "acc": 0.25}]


def test_saved_checkpoints_are_byte_identical_whatever_the_temporary_name(tmp_path):
    state = {"layers.0.weight": torch.arange(6.0).reshape(2, 3)}
    for name in ("a.pt", "b.pt"):
        with files.replace_together() as outputs:
            files.save_torch(outputs.file(tmp_path / name), state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_tables_name_the_bad_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv not found; run the stage"):
        files.read_table(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("epoch,loss\n")
    with pytest.raises(files.InvalidFileError, match="empty.csv has no rows; rerun"):
        files.read_table(tmp_path / "empty.csv")
    (tmp_path / "text.csv").write_text("epoch,loss\n1,high\n")
    with pytest.raises(files.InvalidFileError,
                       match="text.csv holds a value that is not a number in column 'loss'"):
        files.read_table(tmp_path / "text.csv", numeric=("epoch", "loss"))
    with pytest.raises(files.InvalidFileError, match="text.csv lacks the column 'accuracy'"):
        files.read_table(tmp_path / "text.csv", numeric=("accuracy",))
    (tmp_path / "good.csv").write_text("epoch,loss\n1,0.5\n")
    table = files.read_table(tmp_path / "good.csv", numeric=("epoch", "loss"))
    assert table.to_dict("records") == [{"epoch": 1, "loss": 0.5}]
