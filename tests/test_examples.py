"""The examples run as a user would run them."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import openpyxl

from sheetsgd.lessons import kinds
from sheetsgd.lessons.sgd.lesson import bundled_lessons
from sheetsgd.lessons.optimizers import OPTIMIZERS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_build_all_builds_every_lesson_with_every_optimizer(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["build_all.py", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "build_all.py"), run_name="__main__")
    built = sorted(p.name for p in tmp_path.glob("*.xlsx"))
    expected = [f"{n}-{o}.xlsx" if kinds.load(n).kind == "sgd" else f"{n}.xlsx"
                for n in bundled_lessons() for o in (OPTIMIZERS if kinds.load(n).kind == "sgd" else [None])]
    assert built == sorted(expected)
    wb = openpyxl.load_workbook(tmp_path / "linear-adam.xlsx", read_only=True)
    assert "Steps" in wb.sheetnames
    assert "steps" in capsys.readouterr().out
