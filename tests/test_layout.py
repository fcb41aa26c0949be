"""The package's layout shows its architecture, and stays so.

The top level is the model a learner reads beside min-dalle; `course/` and `lab/` use it and
never the other way round. `hub/` (getting the published files) sits between the model's
layers and `pipeline.py`: it reads the layout and builds modules to verify files, and
`MinDalle(..., allow_download=True)` calls it, as min-dalle's MinDalle downloads its own
files. These tests read every import statement (no module is run) so that a shortcut import
that runs back up fails here, not in a reader's head.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dalle_core"
WINGS = ("course", "lab", "hub")
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def wing_of(module: str) -> str:
    """'dalle_core.course.data' -> 'course'; a top-level module -> 'model'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in WINGS else "model"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every dalle_core module `path` imports, relative imports resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if node.level or target.startswith("dalle_core"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("dalle_core"))
    return {name for name in found if (ROOT / Path(*name.split("."))).with_suffix(".py").is_file()
            or (ROOT / Path(*name.split(".")) / "__init__.py").is_file()}


def test_the_top_level_is_the_model_and_small():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 14, top
    assert {"config.py", "tokenizer.py", "attention.py", "encoder.py", "decoder.py", "sampling.py",
            "vqgan.py", "pipeline.py", "weights.py", "trace.py"} <= set(top)
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == {*WINGS, "assets"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_back_up(path):
    name = module_name(path)
    if name == "dalle_core.__main__":
        return  # the command line sits above every wing
    own = wing_of(name)
    for target in imported_modules(path):
        other = wing_of(target)
        if name == "dalle_core.pipeline" and other == "hub":
            continue  # MinDalle(allow_download=True) fetches: the one documented step down
        assert other in ("model", own), (
            f"{name} ({own}) imports {target} ({other}): imports run from the wings to the model only"
        )
        assert not (own == "hub" and target == "dalle_core.pipeline"), (
            f"{name} imports the pipeline, which imports hub/"
        )


def test_architecture_page_maps_every_module():
    """docs/architecture.md names every file of the package (a new file gets its line)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [
        str(p.relative_to(PACKAGE))
        for p in MODULES
        if p.name != "__init__.py" and not re.search(rf"\b{re.escape(p.name)}\b", text)
    ]
    assert not missing, f"docs/architecture.md does not mention {missing}"
