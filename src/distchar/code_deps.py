"""Which of distchar's source files a piece of code runs: the transitive closure of its imports.

DVC reruns a stage when one of its declared deps changes, so a stage whose deps miss a module its
code imports keeps a stale result behind a clean ``dvc status``. ``stage_code`` reads a stage's
command in ``dvc.yaml`` (``python -m distchar.X`` and the papermill notebook it runs), follows
every ``import`` of a ``distchar`` module (at the top of a file or inside a function, read from
the source, never executed) and returns the files; a test holds ``dvc.yaml``'s deps to it, and
stage 06's checkpoint fingerprint hashes the same files.

Importing ``distchar.a.b`` also runs ``distchar/__init__.py`` and ``distchar/a/__init__.py``, so
those are part of the closure too.

One module is read for what its import runs, not for its functions: ``distchar.config`` (the
params schema; every stage validates params.yaml with it). From it the closure follows imports at
module level only, so that the lazy imports inside the task records' functions (which the schema
lists, never calls) do not make every stage depend on the odds harness; a stage that calls those
functions imports ``distchar.tasks`` itself, and from there every import is followed.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

PACKAGE = Path(__file__).resolve().parent
ROOT = "distchar"


def module_file(name: str) -> Path | None:
    """The file of module ``name`` (``distchar.x.y``), or None when it is not a distchar module."""
    if name != ROOT and not name.startswith(ROOT + "."):
        return None
    base = PACKAGE.joinpath(*name.split(".")[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


SCHEMA_ONLY = frozenset({"distchar.config"})
"""Modules whose closure is their module-level imports (see the module docstring)."""


def imported_modules(source: str, module_level: bool = False) -> set[str]:
    """The distchar modules the code ``source`` imports anywhere, or at module level only
    (``from P import n`` counts the module ``P.n`` when there is one, else the module ``P``)."""
    found: set[str] = set()
    tree = ast.parse(source)
    nodes = (
        [n for top in tree.body if not isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
         for n in ast.walk(top)]
        if module_level
        else ast.walk(tree)
    )  # fmt: skip
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if module_file(alias.name)}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and module_file(node.module):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    return found


def notebook_source(path: Path) -> str:
    """The Python of a notebook's code cells (IPython magics and shell lines left out)."""
    cells = json.loads(Path(path).read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            lines += [line for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def closure(modules: Iterable[str]) -> list[Path]:
    """Every file run by importing ``modules`` and calling their functions, sorted: the modules,
    the packages above them and, transitively, everything they import (from ``SCHEMA_ONLY``
    modules on, module-level imports only)."""
    deep: set[str] = set()
    shallow: set[str] = set()
    todo = [(name, True) for name in modules]
    while todo:
        name, follow_all = todo.pop()
        follow_all = follow_all and name not in SCHEMA_ONLY
        if module_file(name) is None or name in deep or (not follow_all and name in shallow):
            continue
        (deep if follow_all else shallow).add(name)
        parts = name.split(".")
        todo += [(".".join(parts[:i]), follow_all) for i in range(1, len(parts))]
        imports = imported_modules(module_file(name).read_text(), module_level=not follow_all)
        todo += [(module, follow_all) for module in sorted(imports)]
    return sorted(module_file(name) for name in deep | shallow)


_MODULE_RUN = re.compile(r"python -m (distchar(?:\.\w+)*)")
_NOTEBOOK = re.compile(r"(?:^|\s)(notebooks/[^\s/]+\.ipynb)")  # the input; the output is under results/


def stage_code(command: str, root: Path = Path(".")) -> list[Path]:
    """The distchar files a ``dvc.yaml`` stage command runs: its ``python -m distchar...`` modules
    and the imports of the notebook papermill executes."""
    modules = set(_MODULE_RUN.findall(command))
    modules |= {f"{m}.__main__" for m in modules if module_file(f"{m}.__main__")}  # `python -m PACKAGE` runs it
    for notebook in _NOTEBOOK.findall(command):
        modules |= imported_modules(notebook_source(Path(root) / notebook))
    return closure(modules)


def covering_deps(files: Iterable[Path], root: Path) -> list[str]:
    """``files`` as dvc.yaml deps relative to ``root``: a folder where every .py file under it is
    among them, the file otherwise."""
    files = {Path(f).resolve() for f in files}
    folders: set[Path] = set()
    for folder in sorted({f.parent for f in files if f.parent != PACKAGE}, key=lambda d: len(d.parts)):
        if any(folder == kept or kept in folder.parents for kept in folders):
            continue
        python = set(folder.rglob("*.py"))
        if python and python <= files:
            folders.add(folder)
    loose = [f for f in files if not any(kept in f.parents for kept in folders)]
    return sorted(str(p.relative_to(Path(root).resolve())) for p in [*folders, *loose])


def rewrite_deps(path: Path) -> str:
    """dvc.yaml's text with each stage's distchar deps replaced by ``covering_deps`` of its command
    (other deps, comments and order kept; data files under src/, such as .npz, stay)."""
    text = Path(path).read_text()
    stages = yaml.safe_load(text)["stages"]
    needed = {name: covering_deps(stage_code(s.get("do", s)["cmd"], Path(path).parent), Path(path).parent)
              for name, s in stages.items()}  # fmt: skip
    out, current, in_deps, written, indent = [], None, False, False, ""
    for line in text.splitlines():
        header = re.match(r"^  (\w+):\s*$", line)
        if header and header.group(1) in stages:
            current, in_deps, written = header.group(1), False, False
        item = line.strip()
        if item == "deps:":
            in_deps, indent = True, line[: len(line) - len(line.lstrip())] + "  "
        elif in_deps and item.startswith("- "):
            dep = Path(item[2:])
            if item[2:].startswith("src/distchar") and dep.suffix in (".py", ""):  # code, not data
                if not written:
                    out += [f"{indent}- {dep}" for dep in needed[current]]
                    written = True
                continue
        elif in_deps:
            if not written:
                out += [f"{indent}- {dep}" for dep in needed[current]]
                written = True
            in_deps = False
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m distchar.code_deps [--write] [dvc.yaml]``: the distchar deps each stage's command
    needs, printed, or (``--write``) put into dvc.yaml in place of the listed ones."""
    args = sys.argv[1:] if argv is None else argv
    write = "--write" in args
    args = [a for a in args if a != "--write"]
    path = Path(args[0] if args else "dvc.yaml")
    if write:
        path.write_text(rewrite_deps(path))
        return 0
    for name, stage in yaml.safe_load(path.read_text())["stages"].items():
        body = stage.get("do", stage)
        print(f"{name}:")
        for dep in covering_deps(stage_code(body["cmd"], path.parent), path.parent):
            print(f"  - {dep}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
