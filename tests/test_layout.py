"""The package's layering and the pipeline's code deps, read from the source (nothing is run).

- Studies are the top of the library: the shared packages below never import a study or a stage,
  and no stage imports another stage.
- Imports of distchar's own modules sit at the top of their file, where readers and tools see the
  edge, unless a measured import cost says otherwise in a ``# lazy:`` comment on the line.
- Every stage's deps in dvc.yaml cover every distchar file its command runs (the import closure of
  its notebook and modules): a stale result behind a clean `dvc status` is the worst bug a DVC
  project can have.
- A stage's outputs live in the folder ``distchar.results`` names for it, and notebooks ask that
  module for paths instead of spelling them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from distchar.code_deps import PACKAGE, closure, imported_modules, notebook_source, stage_code
from distchar.results import stage_folder

REPO = PACKAGE.parents[1]
SHARED = ("models", "spectra", "fits", "generator", "lora", "training", "evaluation")
"""Packages below the studies and the stages."""


def own_imports(path: Path) -> list[tuple[ast.AST, str, bool]]:
    """(node, module, inside a function) of every import of a distchar module in ``path``."""
    tree = ast.parse(path.read_text())
    nested = {id(sub) for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
              for sub in ast.walk(node)}  # fmt: skip
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for module in imported_modules(ast.unparse(node)):
                found.append((node, module, id(node) in nested))
    return found


def modules_of(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("package", SHARED)
def test_shared_packages_import_no_study_and_no_stage(package):
    bad = [f"{path.relative_to(PACKAGE)}:{node.lineno} imports {module}"
           for path in modules_of(package) for node, module, _ in own_imports(path)
           if module.startswith(("distchar.studies", "distchar.stages"))]  # fmt: skip
    assert not bad, "a shared package imports a study or a stage: move the shared piece down\n" + "\n".join(bad)


def test_no_stage_imports_another_stage():
    bad = [f"{path.name}:{node.lineno} imports {module}"
           for path in modules_of("stages") for node, module, _ in own_imports(path)
           if module.startswith("distchar.stages.")]  # fmt: skip
    assert not bad, "a stage imports another stage: move what they share into the library\n" + "\n".join(bad)


def test_own_module_imports_sit_at_the_top_unless_a_comment_says_why():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node, module, inside in own_imports(path):
            if inside and "# lazy:" not in lines[node.lineno - 1]:
                bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {module} inside a function")
    assert not bad, "\n".join(bad)


def test_the_closure_follows_imports_made_inside_functions_and_the_packages_above():
    files = {str(p.relative_to(PACKAGE)) for p in closure(["distchar.models.sources"])}
    assert {"models/readers.py", "models/gguf_index.py", "models/__init__.py", "__init__.py"} <= files
    evaluate = {str(p.relative_to(PACKAGE)) for p in closure(["distchar.stages.evaluate"])}
    assert {"models/chat.py", "studies/odds/scoring.py", "tasks/odds.py", "training/batches.py"} <= evaluate
    schema = {str(p.relative_to(PACKAGE)) for p in closure(["distchar.config"])}
    assert "tasks/odds.py" in schema and "models/chat.py" not in schema  # the schema never calls a task


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_every_distchar_file_its_command_runs(name):
    body = STAGES[name].get("do", STAGES[name])
    deps = [d.rstrip("/") for d in body.get("deps", []) if isinstance(d, str)]
    files = [str(p.relative_to(REPO)) for p in stage_code(body["cmd"], REPO)]
    assert files, f"stage {name}: found no distchar code in its command"
    missing = [f for f in files if not any(f == d or f.startswith(d + "/") for d in deps)]
    assert not missing, (
        f"dvc.yaml stage {name} runs these files but lists neither them nor a folder above as deps "
        "(`python -m distchar.code_deps --write` puts them there): " + ", ".join(missing)
    )


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_outputs_live_in_the_folder_distchar_results_names(name):
    body = STAGES[name].get("do", STAGES[name])
    outs = [
        next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics", "plots") for o in body.get(key, [])
    ]
    folder = str(stage_folder(name))
    stray = [o for o in outs if not (o == folder or o.startswith(folder + "/"))]
    assert outs and not stray, f"stage {name} writes outside {folder}/: {stray}"


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_ask_distchar_results_for_paths(path):
    assert "results/" not in notebook_source(path), f"{path.name} spells a results path; use distchar.results"
