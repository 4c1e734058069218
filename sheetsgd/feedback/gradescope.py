"""Gradescope's results format from a check report (``grade --results-json`` and the autograder).

The fields follow Gradescope's autograder specification: a top-level ``score``, ``output`` (with
``output_format``), ``visibility``, ``stdout_visibility``, ``tests`` (each ``score``, ``max_score``,
``status`` passed/failed, ``name``, ``number``, ``output``, ``output_format``, ``tags``,
``visibility``) and ``leaderboard`` (each ``name``, ``value``, ``order``). Numbers are written with
at most 6 significant digits.
"""
from __future__ import annotations

import math
import re

from sheetsgd.runtime.safetext import shown

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


def num(x) -> float | int:
    """A number with at most 6 significant digits (no float noise such as -3.2060934000000003)."""
    if isinstance(x, bool) or x is None:
        return 0
    if isinstance(x, int):
        return x
    x = float(x)
    if not math.isfinite(x):
        return 0
    r = float(f"{x:.6g}")
    return int(r) if r.is_integer() and abs(r) < 2**53 else r


def show(x) -> str:
    """A value as text for the feedback: 6 significant digits, or what the cell holds."""
    if x is None:
        return "(empty)"
    if isinstance(x, bool):
        return str(x).upper()
    if isinstance(x, (int, float)):
        return "not a number" if not math.isfinite(float(x)) else f"{float(x):.6g}"
    return str(x)


def _code(text) -> str:
    """Student text (a formula) as Markdown inline code that it cannot break out of."""
    if text is None:
        return "(none)"
    text = shown(text)[:500]
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def _md(text) -> str:
    """Student-controlled plain text (sheet names, headers) with Markdown's special characters escaped."""
    out = shown(text)  # one line, no control character
    for ch in "\\`*_[]<>#|~":
        out = out.replace(ch, "\\" + ch)
    return out


def column_name(c: dict, several_sheets: bool) -> str:
    where = f"{c.get('sheet')}: " if several_sheets else ""
    return f"{where}{c['header']} ({c['key']})"


POLICIES = ("formulas", "cells")  # the default, knock-ons forgiven (formulas_right); strict (score)


def tests(report: dict, visibility: str = "visible", points: float | None = None,
          policy: str = "formulas") -> list[dict]:
    """One Gradescope test per exercise column: its points out of its cells (scaled to ``points`` in all
    when given), its first wrong step and root cause in Markdown, the mistake names as tags.

    ``policy`` "formulas" (the default grading policy): a cell counts when its formula follows from the
    student's own values, so a column that only follows from a mistake elsewhere passes; "cells": when
    its value is right too (the strict ``score``)."""
    cols = [c for c in report.get("columns", []) if c.get("exercise")]
    several = len({c.get("sheet") for c in cols}) > 1
    total = sum(c["total"] for c in cols)
    scale = (points / total) if points is not None and total else 1.0
    out = []
    for n, c in enumerate(cols, start=1):
        mine = [m for m in report.get("mistakes", []) if m.get("column") == c["key"] and m.get("sheet") == c.get("sheet")]
        got = c["correct"] if policy == "cells" else c.get("local_correct", c["correct"])
        lines = [f"**{got}/{c['total']}** {'cells' if policy == 'cells' else 'formulas'} right in column "
                 f"{_md(c['letter'])}" + (f" of sheet {_md(c.get('sheet'))}" if several else "")
                 + (f" ({c['correct']} with the right value too)." if policy != "cells" and got != c["correct"] else ".")]
        for m in mine:
            lines += ["", f"**{_md(m['title'])}** — first at step {m['step']} ({_md(m['cell'])}): expected "
                          f"{show(m['expected'])}, found {show(m['found'])}; formula {_code(m['formula'])}; "
                          f"{m['cells']} cell(s).", "", f"Hint: {_md(m['hint'])}"]
        if c.get("status") == "knock-on":
            lines += ["", "Its values are off only because a cell it reads is wrong (it follows from "
                      + ", ".join(_md(k) for k in c.get("knock_on_of", [])) + "): fix that first"
                      + (", nothing here." if policy != "cells" else ".")]
        elif not mine and c.get("first_wrong"):
            f = c["first_wrong"]
            lines += ["", f"First wrong at step {f['step']} ({_md(f['cell'])}): found {show(f['found'])}, "
                          f"formula {_code(f['formula'])}."]
        tags = [m["mistake"] for m in mine] + (["knock_on"] if c.get("status") == "knock-on" else [])
        out.append({"name": column_name(c, several), "number": str(n),
                    "score": num(got * scale), "max_score": num(c["total"] * scale),
                    "status": "passed" if got == c["total"] else "failed",
                    "output": "\n".join(lines), "output_format": "md", "tags": tags, "visibility": visibility})
    return out


def summary(report: dict, file_name: str) -> str:
    """The whole submission's feedback in Markdown: verdict, notes, root causes with hints, score."""
    if report.get("status") not in ("correct", "mistakes"):
        return f"**Cannot check {_md(file_name)}**: {_md(report.get('message') or report.get('status'))}"
    score = report.get("score") or {}
    les = report.get("lesson") or {}
    lines = [f"**{_md(file_name)}**: lesson {_md(les.get('name'))}"
             + (f", variant {_md(les['variant'])}" if les.get("variant") else "")
             + f" — grade {score.get('formulas_right', 0)}/{score.get('total', 0)} exercise cells (formulas that follow "
             + f"from your own values), strict score {score.get('correct', 0)}/{score.get('total', 0)}"
             + (" (all correct)." if report["status"] == "correct" else f", {len(report.get('mistakes', []))} mistake(s).")]
    for note in report.get("notes", []):
        lines.append(f"- note: {_md(note)}")
    if report.get("mistakes"):
        lines += ["", "Root causes (fix these first; the cells after them follow):"]
        for m in report["mistakes"]:
            lines.append(f"- {_md(m['header'])} ({_md(m['column'])}, {_md(m['sheet'])}!{_md(m['cell'])}, step "
                         f"{m['step']}): {_md(m['title'])}. Hint: {_md(m['hint'])}")
    if report["status"] != "correct" and score.get("total"):
        lines += ["", "Knock-ons (cells wrong only because a cell they read is wrong) are not counted against you."]
    return "\n".join(lines)


def leaderboard(report: dict) -> list[dict]:
    score = report.get("score") or {}
    share = score.get("share")
    formulas = score.get("formulas_share")
    return [{"name": "Cells right (%)", "value": num(100 * share) if share is not None else 0, "order": "desc"},
            {"name": "Formulas right (%)", "value": num(100 * formulas) if formulas is not None else 0, "order": "desc"}]


def results(report: dict, file_name: str, visibility: str = "visible", stdout_visibility: str = "hidden",
            points: float | None = None, with_leaderboard: bool = False, policy: str = "formulas") -> dict:
    """A whole results.json object for one checked submission (a report that cannot be checked: score 0)."""
    checked = report.get("status") in ("correct", "mistakes")
    the_tests = tests(report, visibility, points, policy) if checked else []
    out = {"score": num(sum(t["score"] for t in the_tests)), "output": summary(report, file_name),
           "output_format": "md", "visibility": visibility, "stdout_visibility": stdout_visibility,
           "tests": the_tests}
    if with_leaderboard:
        out["leaderboard"] = leaderboard(report) if checked else leaderboard({})
    return out


def refusal(reason: str, visibility: str = "visible", stdout_visibility: str = "hidden",
            with_leaderboard: bool = False) -> dict:
    """results.json for a submission that was not checked at all: score 0 and the one-line reason."""
    out = {"score": 0, "output": _md(reason), "output_format": "md", "visibility": visibility,
           "stdout_visibility": stdout_visibility, "tests": []}
    if with_leaderboard:
        out["leaderboard"] = leaderboard({})
    return out
