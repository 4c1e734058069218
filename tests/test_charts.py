"""The charts, read from the chart XML of built workbooks: the lr finder draws the whole recorded curve (to
the blow-up) and marks both suggestions; too-high draws each run on an axis fitted to it; the optimizers'
per-step losses carry a moving average; and a blank student version's charts hold no number computed
from a blank (recalculated in LibreOffice)."""
from __future__ import annotations

import math
import re

import openpyxl
import pytest
from openpyxl.utils import column_index_from_string

from sheetsgd.lessons import kinds
from sheetsgd.write.lesson_file import build_student
from sheetsgd.lessons.lr_finder.finder import train_finder

from test_presentation import OPTIONS
from xlsx_parts import chart_parts

C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
_REF = re.compile(r"^'?(?P<sheet>[^'!]+)'?!\$(?P<c1>[A-Z]+)\$(?P<r1>\d+)(?::\$(?P<c2>[A-Z]+)\$(?P<r2>\d+))?$")


def _series(root):
    """[(name, categories ref, values ref, element)] of a chart."""
    out = []
    for ser in root.iter(f"{C}ser"):
        name = "".join(t.text or "" for t in ser.find(f"{C}tx").iter(f"{C}v")) if ser.find(f"{C}tx") is not None \
            else ""
        cat = ser.find(f"{C}cat") if ser.find(f"{C}cat") is not None else ser.find(f"{C}xVal")
        val = ser.find(f"{C}val") if ser.find(f"{C}val") is not None else ser.find(f"{C}yVal")
        ref = lambda el: el.find(f".//{C}f").text if el is not None and el.find(f".//{C}f") is not None else ""
        out.append((name, ref(cat), ref(val), ser))
    return out


def _cells(ref: str) -> tuple[str, int, int, int]:
    m = _REF.match(ref)
    assert m and m["c1"] == (m["c2"] or m["c1"]), ref
    return m["sheet"], column_index_from_string(m["c1"]), int(m["r1"]), int(m["r2"] or m["r1"])


def test_lr_finder_draws_the_whole_curve_and_marks_both_suggestions(tmp_path):
    lesson = kinds.load("lr-finder", **OPTIONS["lr-finder"])
    path = tmp_path / "f.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    trace = train_finder(lesson)
    (chart,) = [root for sheet, root in chart_parts(path).values() if sheet == "Chart"]
    series = _series(chart)
    wb = openpyxl.load_workbook(path, data_only=True)
    whole = [s for s in series if "every recorded step" in s[0]]
    assert whole, [s[0] for s in series]
    sheet, col, r1, r2 = _cells(whole[0][2])
    smooth = [wb[sheet].cell(r, col).value for r in range(r1, r2 + 1)]
    assert len(smooth) == trace.n_recorded  # every recorded row, the one the loss blew up in last
    best = min(smooth)
    assert smooth[-1] > lesson.finder["stop_factor"] * best  # the blow-up is drawn
    plotted = [s for s in series if "fastai" in s[0]]
    sheet, col, p1, p2 = _cells(plotted[0][2])
    shown = [wb[sheet].cell(r, col).value for r in range(p1, p2 + 1)]
    assert max(v for v in shown if isinstance(v, float)) < smooth[-1]  # fastai's curve stops before it
    suggestions = {wb["Chart"]["A3"].value: wb["Chart"]["B3"].value, wb["Chart"]["A4"].value: wb["Chart"]["B4"].value}
    for label, lr in suggestions.items():
        (mark,) = [s for s in series if s[0] == label]
        xs = _cells(mark[1])
        ys = _cells(mark[2])
        assert [wb[xs[0]].cell(r, xs[1]).value for r in range(xs[2], xs[3] + 1)] == [lr, lr]  # a vertical line
        low, high = (wb[ys[0]].cell(r, ys[1]).value for r in range(ys[2], ys[3] + 1))
        assert low == pytest.approx(best) and high == pytest.approx(max(smooth))
    y_axis = [ax for ax in chart.iter(f"{C}valAx")][1]
    assert y_axis.find(f"{C}scaling/{C}logBase") is not None  # falls by a factor, blows up by thousands


def test_too_high_draws_each_run_on_its_own_axis(tmp_path):
    lesson = kinds.load("too-high", **OPTIONS["too-high"])
    path = tmp_path / "t.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    charts = [root for sheet, root in chart_parts(path).values() if sheet == "Runs"]
    assert len(charts) == len(lesson.runs)
    wb = openpyxl.load_workbook(path)
    headers = {c.column: c.value for c in wb["Runs"][10] if c.value}  # the header row (1-based row 10 or near)
    for run, chart in zip(lesson.runs, charts):
        ((name, _, values, _),) = _series(chart)
        assert name == run.label
        sheet, col, _, _ = _cells(values)
        header = next((wb[sheet].cell(r, col).value for r in range(1, 20)
                       if isinstance(wb[sheet].cell(r, col).value, str) and ": x" in wb[sheet].cell(r, col).value), "")
        assert header.startswith(run.label) and header.endswith(": x"), header
        for axis in chart.iter(f"{C}valAx"):
            scaling = axis.find(f"{C}scaling")
            assert scaling.find(f"{C}min") is None and scaling.find(f"{C}max") is None  # fitted to the run
    assert headers is not None


def test_optimizer_charts_smooth_each_step_loss():
    import tempfile
    from pathlib import Path

    lesson = kinds.load("optimizers", epochs=2)
    path = Path(tempfile.mkdtemp()) / "o.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    per_step = [root for sheet, root in chart_parts(path).values()
                if sheet == "Compare" and "Loss by step" in "".join(t.text or "" for t in root.iter(
                    "{http://schemas.openxmlformats.org/drawingml/2006/main}t"))]
    assert len(per_step) == 4
    for chart in per_step:
        ((_, _, _, ser),) = _series(chart)
        trend = ser.find(f"{C}trendline")
        assert trend is not None and trend.find(f"{C}trendlineType").get("val") == "movingAvg"
        assert int(trend.find(f"{C}period").get("val")) >= 2


STUDENT_CHARTS = ["linear", "optimizers", "lr-finder", "too-high", "titanic-logistic", "collab-filter", "attention"]


def test_blank_student_charts_hold_no_number_computed_from_a_blank(tmp_path, recalc):
    """Each blank student version recalculated in LibreOffice: every chart series reads either the hidden
    _charts sheet, all #N/A until the blanks are filled, or cells whose values are those of the full
    version (nothing in them follows from a blank)."""
    files = []
    for name in STUDENT_CHARTS:
        lesson = kinds.load(name, **OPTIONS[name])
        kind = kinds.kind_of(lesson)
        kind.build(lesson, tmp_path / f"{name}.xlsx")
        build_student(kind, lesson, tmp_path / f"{name}-student.xlsx", "")
        files += [tmp_path / f"{name}.xlsx", tmp_path / f"{name}-student.xlsx"]
    out = dict(zip((f.stem for f in files), recalc(files)))
    checked_na = 0
    for name in STUDENT_CHARTS:
        student = openpyxl.load_workbook(out[f"{name}-student"], data_only=True)
        full = openpyxl.load_workbook(out[name], data_only=True)
        for sheet, chart in chart_parts(tmp_path / f"{name}-student.xlsx").values():
            for label, categories, values, _ in _series(chart):
                for ref in (categories, values):
                    if not ref:
                        continue
                    s, col, r1, r2 = _cells(ref)
                    got = [student[s].cell(r, col).value for r in range(r1, r2 + 1)]
                    if s == "_charts":
                        assert all(v in ("#N/A", None) for v in got), (name, label, got[:5])
                        checked_na += 1
                    else:
                        expected = [full[s].cell(r, col).value for r in range(r1, r2 + 1)]
                        same = [a == b or (isinstance(a, float) and isinstance(b, float) and
                                           math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)) for a, b in zip(got, expected)]
                        assert all(same), (name, sheet, label, ref, got[:5], expected[:5])
    assert checked_na >= len(STUDENT_CHARTS)  # every lesson has a chart of answers, hidden until filled
