"""dvc.yaml lists, for every stage, exactly the project modules the stage imports."""

import ast
import pathlib

import pytest
import yaml
from conftest import REPO

PROJECT_PACKAGES = ("prunekit", "stages")
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def imported_names(path: pathlib.Path) -> set[str]:
    """Every dotted name an import statement of ``path`` may load."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_file(name: str) -> pathlib.Path | None:
    """The project file that importing ``name`` runs, or None for other packages."""
    if name.split(".")[0] not in PROJECT_PACKAGES:
        return None
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(script: pathlib.Path) -> set[str]:
    """The stage script, its package and every project module they import, repo-relative."""
    pending, found = [script, script.parent / "__init__.py"], set()
    while pending:
        path = pending.pop()
        if path in found:
            continue
        found.add(path)
        for name in imported_names(path):
            parts = name.split(".")
            for end in range(1, len(parts) + 1):  # ``a.b.c`` runs a, a.b and a.b.c.
                module = module_file(".".join(parts[:end]))
                if module is not None:
                    pending.append(module)
    return {path.relative_to(REPO).as_posix() for path in found}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_are_exactly_its_import_closure(name):
    stage = STAGES[name].get("do", STAGES[name])  # foreach stages nest their definition.
    module = stage["cmd"].split()[2]  # python -m stages.<name> [arguments]
    script = REPO.joinpath(*module.split(".")).with_suffix(".py")
    code_deps = {dep for dep in stage["deps"] if dep.endswith(".py")}
    assert code_deps == import_closure(script)


def test_the_closure_follows_imports_through_other_modules():
    closure = import_closure(REPO / "stages" / "benchmark.py")
    # benchmark imports inference.plans, which imports engines and kernel; not benchmark.
    assert {"prunekit/inference/__init__.py", "prunekit/inference/plans.py",
            "prunekit/inference/engines.py", "prunekit/inference/kernel.py"} <= closure
    assert "prunekit/inference/kernel.py" not in import_closure(REPO / "stages" / "plot.py")


SCIENCE = ("model", "pruning", "evaluation", "compact", "training", "aggregate", "plotting",
           "inference/plans", "inference/engines", "inference/kernel", "inference/timing",
           "inference/benchmarking")
CONFIGURATION_AND_FILES = ("params", "cli", "files", "artifacts", "layout", "data", "provenance")
ALSO_READS = {"training": {"data"}}  # The training loop takes the dataset's in-memory splits.


@pytest.mark.parametrize("name", SCIENCE)
def test_science_modules_reach_no_configuration_or_file_io(name):
    closure = import_closure(REPO / "prunekit" / f"{name}.py")
    reached = {path.removeprefix("prunekit/").removesuffix(".py") for path in closure}
    assert reached.isdisjoint(set(CONFIGURATION_AND_FILES) - ALSO_READS.get(name, set()))
    assert not any(path.startswith("stages/") for path in closure)


@pytest.mark.parametrize("name", ("params", "layout", "files", "cli", "provenance", "errors"))
def test_the_configuration_ring_imports_no_science(name):
    closure = import_closure(REPO / "prunekit" / f"{name}.py")
    reached = {path.removeprefix("prunekit/").removesuffix(".py") for path in closure}
    assert reached <= {*CONFIGURATION_AND_FILES, "errors", "names", "__init__"}


def test_the_lock_file_holds_only_stages_that_exist():
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        defined = {stage.addressing for stage in repo.index.stages}
    locked = set(yaml.safe_load((REPO / "dvc.lock").read_text())["stages"])
    assert locked <= defined
