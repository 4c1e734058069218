"""The package's layering (pyproject.toml, ``[tool.importlinter]``): the contracts hold, and each breaks on a
planted import that goes against it (module level or inside a function)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"
TOP_LEVEL = {"__init__.py", "__main__.py", "api.py", "errors.py"}  # besides the subpackages


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", str(root / "pyproject.toml")],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root)})


def test_the_layering_contracts_hold():
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 kept, 0 broken" in proc.stdout


def test_the_top_level_holds_only_subpackages_and_the_faces():
    package = ROOT / "sheetsgd"
    files = {p.name for p in package.iterdir() if p.is_file() and p.suffix == ".py"}
    assert files == TOP_LEVEL
    folders = sorted(p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == ["check", "cli", "feedback", "grade", "lessons", "read", "runtime", "sheet", "write"]
    for folder in folders:  # each says what it owns
        init = (package / folder / "__init__.py").read_text(encoding="utf-8")
        assert init.startswith('"""') and len(init) > 80, folder


PLANTED = [  # (module, line to add, the contract it breaks)
    ("sheet/a1.py", "from sheetsgd.lessons import kinds", "Stages import only the stages below them"),
    ("read/scan.py", "def later():\n    from sheetsgd.check import judge", "Stages import only the stages below them"),
    ("lessons/sgd/engine.py", "import sheetsgd.grade.batch", "Stages import only the stages below them"),
    ("check/rebuild.py", "from sheetsgd.write import lesson_file", "Checking never imports writing"),
    ("api.py", "def later():\n    import sheetsgd.cli.commands", "Nothing imports the command line"),
]


@pytest.mark.parametrize("module, line, contract", PLANTED, ids=[p[0] for p in PLANTED])
def test_a_planted_import_breaks_its_contract(tmp_path, module, line, contract):
    shutil.copytree(ROOT / "sheetsgd", tmp_path / "sheetsgd", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "sheetsgd" / module, "a", encoding="utf-8") as fh:
        fh.write("\n\n" + line + "\n")
    proc = lint(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{contract} BROKEN" in proc.stdout
