"""A bad parameter stops a stage with a message naming the key, the value and what is allowed."""

import copy
import pathlib
import re

import pytest
import yaml

from prunekit import errors, params, training

REPO_PARAMS = pathlib.Path(__file__).resolve().parent.parent / "params.yaml"
ALL_SECTIONS = ["download", "train", "prune", "benchmark", "summarize", "plot"]


@pytest.fixture
def document():
    return yaml.safe_load(REPO_PARAMS.read_text())


def test_the_repository_params_are_valid_and_typed(document):
    parsed = params.parse_params(document, ALL_SECTIONS)
    assert parsed["train"].hidden_sizes == (1000, 1000, 500, 200)
    assert parsed["prune"].k_list == (0, 25, 50, 60, 70, 80, 90, 95, 97, 99)
    assert parsed["prune"].methods == ("weight", "unit", "global")
    assert parsed["download"].dataset == "fashion-mnist"


@pytest.mark.parametrize(("section", "key", "value", "allowed"), [
    ("prune", "k_list", [0, 50, 101], "101 is not"),
    ("prune", "k_list", [-1, 50], "-1 is not"),
    ("prune", "k_list", [], "a non-empty list"),
    ("prune", "k_list", [50, 90, 50], "duplicated: \\[50\\]"),
    ("prune", "k_list", "90", "a non-empty list"),
    ("prune", "methods", ["weight", "random"], "'random' is not"),
    ("prune", "methods", ["unit", "unit"], "duplicated"),
    ("download", "dataset", "cifar10", "one of fashion-mnist, mnist"),
    ("train", "hidden_sizes", [1000, 0], "positive integers"),
    ("train", "hidden_sizes", [1000, 2.5], "positive integers"),
    ("train", "hidden_sizes", "big", "positive integers"),
    ("train", "hidden_sizes", [], "a non-empty list"),
    ("train", "seeds", [], "a non-empty list of distinct items"),
    ("train", "seeds", [0, 1, 0], "duplicated: \\[0\\]"),
    ("train", "seeds", [0, -1], "-1 is not"),
    ("train", "recipes", {}, "a non-empty mapping of recipe names"),
    ("train", "recipes", [1, 2], "a non-empty mapping of recipe names"),
    ("prune", "random_draws", -1, "an integer >= 0"),
    ("prune", "layer_sensitivity", "a b", "null or a recipe name of train.recipes"),
    ("train", "epochs", 0, "an integer >= 1"),
    ("train", "epochs", "ten", "an integer >= 1"),
    ("train", "epochs", 2.0, "an integer >= 1"),
    ("train", "epochs", True, "an integer >= 1"),
    ("train", "batch_size", 0, "an integer >= 1"),
    ("train", "limit", 0, "null or an integer from 1 to 60000"),
    ("train", "limit", 60001, "null or an integer from 1 to 60000"),
    ("train", "limit", 59000, "null or at most 55000, the training images left after the 5000"),
    ("train", "validation", 0, "an integer from 1 to 30000"),
    ("train", "device", "tpu", "auto, cpu, cuda or cuda:N"),
    ("train", "num_threads", 0, "null or an integer >= 1"),
    ("benchmark", "batch_sizes", [0, 256], "0 is not"),
    ("benchmark", "block_seconds", 0, "a finite number > 0"),
    ("plot", "dpi", 5, "an integer from 30 to 1200"),
    ("download", "source_dir", 42, "null or a folder path"),
])
def test_bad_value_names_key_value_and_what_is_allowed(document, section, key, value, allowed):
    document[section][key] = value
    with pytest.raises(params.ParamsError) as error:
        params.parse_params(document, [section])
    message = str(error.value)
    assert f"{section}.{key}: got {value!r}" in message
    assert re.search(allowed, message)


def test_unknown_key_is_reported_with_a_suggestion(document):
    document["train"]["epoch"] = document["train"].pop("epochs")
    with pytest.raises(params.ParamsError) as error:
        params.parse_params(document, ["train"])
    message = str(error.value)
    assert "train.epoch: unknown key (did you mean 'epochs'?)" in message
    assert "train.epochs: missing" in message


def test_unknown_section_is_reported_with_a_suggestion(document):
    document["trian"] = {"epochs": 3}
    with pytest.raises(params.ParamsError, match="trian: unknown section \\(did you mean 'train'"):
        params.parse_params(document, ["prune"])


def test_every_problem_is_reported_at_once(document):
    document["prune"]["k_list"] = [120]
    document["prune"]["methods"] = ["magic"]
    with pytest.raises(params.ParamsError) as error:
        params.parse_params(document, ["prune"])
    assert "prune.k_list" in str(error.value) and "prune.methods" in str(error.value)


def test_only_the_sections_a_stage_reads_are_checked(document):
    bad = copy.deepcopy(document)
    bad["plot"]["dpi"] = -1
    assert params.parse_params(bad, ["prune"])["prune"].methods == ("weight", "unit",
                                                                       "global")


def test_malformed_yaml_is_reported(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: [1, 2\n")
    with pytest.raises(params.ParamsError, match="not valid YAML"):
        params.load_params(["train"], path)


def test_a_key_given_twice_is_reported(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 3\n  epochs: 5\n")
    with pytest.raises(params.ParamsError, match="key 'epochs' is given twice"):
        params.load_params(["train"], path)


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    # What `dvc exp run -S train.recipes.l1.l1=2e-5` writes: YAML 1.2, a string to YAML 1.1.
    path = tmp_path / "params.yaml"
    text = REPO_PARAMS.read_text()
    path.write_text(text.replace("l1: 3.0e-5", "l1: 2e-05", 1).replace(
        "schedule: constant}", "schedule: constant, adam_eps: 1E-07}", 1))
    recipes = params.load_params(["train"], path)["train"].recipes
    assert (recipes["l1"].l1, recipes["constant"].adam_eps) == (2e-5, 1e-7)


@pytest.mark.parametrize(("section", "key", "value"), [
    ("train", "recipes", {"adam": {"lr": float("nan")}}),
    ("train", "recipes", {"adam": {"lr": float("inf")}}),
    ("benchmark", "block_seconds", float("inf")), ("prune", "k_list", [float("nan")]),
])
def test_nan_and_infinity_are_refused(document, section, key, value):
    document[section][key] = value
    with pytest.raises(params.ParamsError, match=f"{section}.{key}(.adam.lr)?: got"):
        params.parse_params(document, [section])


def test_each_bad_recipe_field_is_named_with_its_recipe(document):
    document["train"]["recipes"]["l1"]["l1"] = -1e-5
    document["train"]["recipes"]["group"]["group_laso"] = 1e-4
    document["train"]["recipes"]["bad name!"] = {"optimizer": "adam"}
    with pytest.raises(params.ParamsError) as error:
        params.parse_params(document, ["train"])
    message = str(error.value)
    assert "train.recipes.l1.l1: got -1e-05; allowed: a number >= 0 (0 is off)" in message
    assert "train.recipes.group.group_laso: unknown field; allowed:" in message
    assert "train.recipes.bad name!: not a valid recipe name" in message


def test_recipes_become_typed_recipes_with_the_reference_first(document):
    recipes = params.parse_params(document, ["train"])["train"].recipes
    assert next(iter(recipes)) == "adam"
    assert recipes["l1"].l1 > 0 and recipes["group"].group_lasso > 0
    assert recipes["sgd"].optimizer == "sgd" and recipes["constant"].schedule == "constant"


def _recipe_problems(document, **fields):
    """The message that parsing train.recipes ``{"bad": fields}`` raises."""
    document["train"]["recipes"] = {"bad": fields}
    with pytest.raises(ValueError) as caught:  # params.ParamsError is a ValueError.
        params.parse_params(document, ["train"])
    return str(caught.value)


def test_recipe_rejects_bad_fields_naming_each(document):
    message = _recipe_problems(document, optimizer="rmsprop", l1=-1e-5,
                               group_lasso=float("nan"))
    assert "l1: got -1e-05" in message
    assert "optimizer: got 'rmsprop'" in message
    assert "group_lasso: got nan" in message
    assert "momentum: got 0.9; allowed: 0 unless optimizer is sgd" in _recipe_problems(
        document, momentum=0.9)
    assert "schedule" in _recipe_problems(document, schedule="step")
    for warmup in (-0.1, 1.5, True):
        assert f"penalty_warmup: got {warmup}; allowed: a fraction" in _recipe_problems(
            document, penalty_warmup=warmup)
    with pytest.raises(TypeError, match="unexpected keyword argument 'l2'"):
        training.Recipe(l2=1.0)


def test_layer_sensitivity_must_name_a_recipe_of_train(document):
    document["prune"]["layer_sensitivity"] = "x"
    with pytest.raises(params.ParamsError) as caught:
        params.parse_params(document, ["train", "prune"])
    assert ("prune.layer_sensitivity: got 'x'; allowed: null or one of train.recipes "
            "(adam, sgd, constant, l1, group)") in str(caught.value)
    assert params.parse_params(document, ["prune"])["prune"].layer_sensitivity == "x"
    document["prune"]["layer_sensitivity"] = None
    assert params.parse_params(document, ["train", "prune"])["prune"].layer_sensitivity is None


@pytest.mark.parametrize(("key", "value", "message"), [
    ("k_list", [91, 98], r"benchmark.k_list: got \[91, 98\]; \[91, 98\] not in prune.k_list; "
     r"allowed: values of prune.k_list \[0, 25, 50"),
    ("methods", ["weight", "global"], r"benchmark.methods: got \['weight', 'global'\]; "
     r"\['global'\] not in prune.methods; allowed: values of prune.methods \['weight', 'unit'\]"),
])
def test_what_the_benchmark_times_must_be_pruned(document, tmp_path, key, value, message):
    document["prune"]["methods"] = ["weight", "unit"]
    document["benchmark"][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(errors.InputError, match=message):
        params.load_params(["benchmark", "train", "prune"], path)  # As the benchmark stage.
    assert list(params.load_params(["benchmark"], path)["benchmark"].model_dump()[key]) == value


def test_missing_file_and_non_mapping_document(tmp_path):
    with pytest.raises(params.ParamsError, match="not found"):
        params.load_params(["train"], tmp_path / "params.yaml")
    with pytest.raises(params.ParamsError, match="must be a mapping of sections"):
        params.parse_params(["train"], ["train"])
    with pytest.raises(params.ParamsError, match="train: expected a mapping of keys"):
        params.parse_params({"train": 3}, ["train"])


def test_recipes_fill_defaults_and_every_problem_is_listed(document):
    document["train"]["recipes"] = {"adam": {}, "l1": {"l1": 1e-5},
                                    "sgd": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}}
    recipes = params.parse_params(document, ["train"])["train"].recipes
    assert training.Recipe(**recipes["adam"].model_dump()) == training.Recipe()
    assert training.Recipe(**recipes["l1"].model_dump()) == training.Recipe(l1=1e-5)
    assert recipes["sgd"].momentum == 0.9
    document["train"]["recipes"] = {"l1": {"l1": -1e-5}, "group": {"group_lasso": 1e-4, "l3": 1},
                                    "bad": 3, "sgd": {"optimizer": "sgd", "adam_eps": 1e-7},
                                    "big": {"init": "he", "batch_size": 0}}
    with pytest.raises(params.ParamsError) as caught:
        params.parse_params(document, ["train"])
    assert str(caught.value).splitlines()[1:] == [
        "  train.recipes.l1.l1: got -1e-05; allowed: a number >= 0 (0 is off)",
        "  train.recipes.group.l3: unknown field; allowed: optimizer, lr, momentum, schedule, l1, "
        "group_lasso, penalty_warmup, adam_eps, init, batch_size",
        "  train.recipes.bad: expected a mapping of fields (optimizer, lr, momentum, schedule, l1, "
        "group_lasso, penalty_warmup, adam_eps, init, batch_size), got 3",
        "  train.recipes.sgd.adam_eps: got 1e-07; allowed: only with optimizer adam",
        "  train.recipes.big.init: got 'he'; allowed: pytorch or glorot",
        "  train.recipes.big.batch_size: got 0; allowed: null (train.batch_size) or an integer "
        ">= 1"]
