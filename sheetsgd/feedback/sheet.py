"""What the annotated workbook says: the cells to mark, the notes on them, and the "Feedback" sheet.

Everything here is computed from the check report as JSON data (``Report.to_dict()``, the same data
``grade`` workers return), so one report gives the same marks wherever it was made. The package
editing that puts it into a copy of the student's file: sheetsgd.feedback.annotate.
"""
from __future__ import annotations

import math
import os
import re
from xml.sax.saxutils import escape, quoteattr

from sheetsgd.check.cellmarks import expand
from sheetsgd.check.report import headline, show_value
from sheetsgd.sheet.refs import column_index

ROOT, KNOCK_ON, CORRECT = "root", "knock-on", "correct"
MAX_NOTES = 1000  # notes per sheet (every root-cause cell up to this many)
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CELL = re.compile(r"^([A-Z]{1,3})([0-9]+)$")


def marks(report: dict) -> dict[str, dict[str, str]]:
    """{sheet: {cell: ROOT | KNOCK_ON | CORRECT}}: root causes win over knock-ons over correct cells."""
    out: dict[str, dict[str, str]] = {}
    rank = {ROOT: 3, KNOCK_ON: 2, CORRECT: 1}
    for c in report.get("columns", []):
        sheet = out.setdefault(c.get("sheet", "Steps"), {})
        for kind, key in ((ROOT, "root_cells"), (KNOCK_ON, "knock_on_cells"), (CORRECT, "correct_cells")):
            for cell in expand(c.get(key) or []):
                if rank[kind] > rank.get(sheet.get(cell), 0):
                    sheet[cell] = kind
    return {s: m for s, m in out.items() if m}


def notes(report: dict) -> dict[str, dict[str, str]]:
    """{sheet: {cell: note text}}: every root-cause cell (mistake, expected vs found, hint), and the first
    knock-on cell of each column (what it follows from)."""
    out: dict[str, dict[str, str]] = {}
    by_column = {(c.get("sheet"), c.get("letter"), c.get("key")): c for c in report.get("columns", [])}
    for m in report.get("mistakes", []):
        col = by_column.get((m.get("sheet"), m.get("letter"), m.get("column")))
        values = {w["cell"]: w for w in m.get("wrong_cells") or []}
        cells = expand(col.get("root_cells") or []) if col else [m.get("cell", "")]
        sheet = out.setdefault(m.get("sheet", "Steps"), {})
        for cell in filter(_CELL.match, cells):  # a deleted step row has no cell to put a note on
            if len(sheet) >= MAX_NOTES or cell in sheet:
                continue
            w = values.get(cell)
            seen = (f"Expected {show_value(w['expected'])}, found {show_value(w['found'])}." if w else
                    f"First at step {m['step']} ({m['cell']}): expected {show_value(m['expected'])}, found {show_value(m['found'])}.")
            sheet[cell] = f"{m['title']} ({m['header']})\n{seen}\nHint: {m['hint']}"
    for c in report.get("columns", []):
        first = expand((c.get("knock_on_cells") or [])[:1])[:1]
        sheet = out.setdefault(c.get("sheet", "Steps"), {})
        if first and first[0] not in sheet and len(sheet) < MAX_NOTES:
            sheet[first[0]] = (f"Knock-on ({c['header']}): this formula follows from the cells it reads, but "
                               f"they are wrong because of {', '.join(c.get('knock_on_of') or []) or 'a mistake above'}. "
                               "Fix the root cause (red) and it comes right.")
    return {s: n for s, n in out.items() if n}


def text(value) -> str:
    """Student-controlled text made safe for an XML part: no control characters, within a cell's limit."""
    return _ILLEGAL.sub("\ufffd", str(value))[:32_000]


def link(sheet: str, cell: str) -> str:
    return "'" + sheet.replace("'", "''") + "'!" + cell


def _cell(ref: str, value, style: int | None) -> str:
    s = f' s="{style}"' if style is not None else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f'<c r="{ref}"{s}><v>{value!r}</v></c>'
    if value is None or value == "":
        return f'<c r="{ref}"{s}/>' if s else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{escape(text(value))}</t></is></c>'


def feedback_rows(report: dict) -> list[list]:
    """The Feedback sheet as rows of (value, style name, link target or None); a value in column B whose
    style is "long" spans columns B:D (merged, wrapped)."""
    correct = (report.get("score") or {}).get("correct") or 0
    total = (report.get("score") or {}).get("total") or 0
    les = report.get("lesson") or {}
    mistakes = report.get("mistakes") or []
    none = ("", None, None)
    rows = [[(f"Feedback on {os.path.basename(report.get('file', ''))}", "title", None)],
            [("Verdict", "bold", None), ("all correct" if report.get("status") == "correct"
                                         else f"{len(mistakes)} mistake(s) to fix", "long", None)],
            [("Grade", "bold", None), (headline((report.get("score") or {}).get("formulas_right") or 0, correct, total),
                                       "long", None)],
            [("Lesson", "bold", None), (f"{les.get('name')} ({les.get('optimizer')}, {les.get('loss')}, "
                                        f"{les.get('steps')} steps)", "long", None)],
            [("Colours", "bold", None), ("root cause", "root", None),
             ("the formula does not follow from your own values (see the cell's note)", None, None)],
            [none, ("knock-on", "knock-on", None), ("wrong only because a cell it reads is wrong", None, None)],
            [none, ("correct", "correct", None), ("a correct exercise cell", None, None)],
            [], [("Root causes", "title", None)]]
    for m in mistakes:
        where = (f"{m['sheet']}!{m['cell']}", "link", link(m["sheet"], m["cell"])) if m.get("sheet") and \
            _CELL.match(str(m.get("cell"))) else (str(m.get("cell", "")), "long", None)
        rows += [[("Cell", "header", None), where],
                 [("Mistake", "bold", None), (m["title"], "long", None)],
                 [("Column", "bold", None), (f"{m['header']} ({m['column']}), first at step {m['step']}, "
                                             f"{m['cells']} cell(s)", "long", None)],
                 [("Expected", "bold", None), (show_value(m["expected"]), "long", None)],
                 [("Found", "bold", None), (show_value(m["found"]), "long", None)],
                 [("Your formula", "bold", None), (m.get("formula") or "(none)", "long", None)],
                 [("Hint", "bold", None), (m["hint"], "long", None)], []]
    if not mistakes:
        rows += [[("none: every checked cell follows from your own values", None, None)], []]
    knock = [c for c in report.get("columns", []) if c.get("status") == "knock-on"]
    if knock:
        rows += [[("Knock-ons (not separate mistakes)", "title", None)],
                 [(h, "header", None) for h in ("First wrong", "Column", "Correct", "Follows from")]]
        for c in knock:
            first = expand((c.get("knock_on_cells") or [])[:1])[:1]
            rows.append([(f"{c['sheet']}!{first[0]}", "link", link(c["sheet"], first[0])) if first else none,
                         (f"{c['header']} ({c['key']})", "wrap", None), (f"{c['correct']}/{c['total']}", None, None),
                         (", ".join(c.get("knock_on_of") or []), "wrap", None)])
        rows.append([])
    rows += [[("Exercise columns", "title", None)],
             [(h, "header", None) for h in ("First wrong", "Column", "Correct", "Status")]]
    for c in report.get("columns", []):
        if c.get("exercise"):
            f = c.get("first_wrong")
            rows.append([(f"{c['sheet']}!{f['cell']}", "link", link(c["sheet"], f["cell"])) if f else ("—", None, None),
                         (f"{c['header']} ({c['key']})", "wrap", None), (f"{c['correct']}/{c['total']}", None, None),
                         (c["status"], {"root cause": "root", "knock-on": "knock-on"}.get(c["status"], "correct"), None)])
    if report.get("notes"):
        rows += [[], [("Notes", "title", None)]] + [[("", None, None), (n, "long", None)] for n in report["notes"]]
    return rows


WIDTHS = (16, 34, 10, 44)


def feedback_sheet_xml(report: dict, styles: dict[str, int]) -> bytes:
    """The Feedback worksheet part (inline strings, internal hyperlinks, no shared strings touched)."""
    out, links, merged = [], [], []
    span = sum(WIDTHS[1:]) - 2
    for r, row in enumerate(feedback_rows(report), start=1):
        cells, lines = [], 1
        for k, (value, style, target) in enumerate(row):
            ref = f"{'ABCD'[k]}{r}"
            cells.append(_cell(ref, value, styles.get("wrap" if style == "long" else style) if style else None))
            if target:
                links.append(f'<hyperlink ref="{ref}" location={quoteattr(text(target))} '
                             f'display={quoteattr(text(value))}/>')
            if style == "long" and k == 1:
                merged.append(f'<mergeCell ref="B{r}:D{r}"/>')
                lines = max(lines, len(str(value)) // span + 1)
            elif style == "wrap":
                lines = max(lines, len(str(value)) // (WIDTHS[k] - 2) + 1)
        height = f' ht="{15 * lines}" customHeight="1"' if lines > 1 else ""
        out.append(f'<row r="{r}"{height}>{"".join(cells)}</row>' if any(cells) else "")
    cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>' for i, w in enumerate(WIDTHS, start=1))
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
           'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
           '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
           '<sheetViews><sheetView tabSelected="1" workbookViewId="0"/></sheetViews>'
           f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>{"".join(out)}</sheetData>'
           + (f'<mergeCells count="{len(merged)}">{"".join(merged)}</mergeCells>' if merged else "")
           + (f'<hyperlinks>{"".join(links)}</hyperlinks>' if links else "")
           + '<pageMargins left="0.5" right="0.5" top="0.6" bottom="0.6" header="0.3" footer="0.3"/>'
           '<pageSetup orientation="portrait" fitToWidth="1" fitToHeight="0"/></worksheet>')
    return xml.encode("utf-8")


def cell_position(cell: str) -> tuple[int, int]:
    """'D12' -> (row 12, column 4)."""
    m = _CELL.match(cell)
    return int(m.group(2)), column_index(m.group(1))


def comments_xml(cell_notes: dict[str, str]) -> bytes:
    items = "".join(f'<comment ref="{cell}" authorId="0"><text><r><rPr><sz val="9"/><rFont val="Tahoma"/></rPr>'
                    f'<t xml:space="preserve">{escape(text(note))}</t></r></text></comment>'
                    for cell, note in sorted(cell_notes.items(), key=lambda kv: cell_position(kv[0])))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<comments xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f'<authors><author>sheetsgd</author></authors><commentList>{items}</commentList></comments>').encode("utf-8")


def vml_xml(cell_notes: dict[str, str], block: int) -> bytes:
    """The legacy drawing that shows the notes (hidden until the pointer is on the cell)."""
    shapes = []
    for i, cell in enumerate(sorted(cell_notes, key=cell_position)):
        row, col = cell_position(cell)
        shapes.append(
            f'<v:shape id="_x0000_s{block * 1024 + i + 1}" type="#_x0000_t202" style="position:absolute;'
            'margin-left:80pt;margin-top:2pt;width:260pt;height:110pt;z-index:1;visibility:hidden" '
            'fillcolor="#ffffe1" o:insetmode="auto"><v:fill color2="#ffffe1"/>'
            '<v:shadow on="t" color="black" obscured="t"/><v:path o:connecttype="none"/>'
            '<v:textbox style="mso-direction-alt:auto"><div style="text-align:left"></div></v:textbox>'
            '<x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/>'
            f'<x:Anchor>{col}, 15, {max(row - 2, 0)}, 2, {col + 4}, 15, {row + 6}, 2</x:Anchor>'
            f'<x:AutoFill>False</x:AutoFill><x:Row>{row - 1}</x:Row><x:Column>{col - 1}</x:Column>'
            '</x:ClientData></v:shape>')
    return ('<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:x="urn:schemas-microsoft-com:office:excel">'
            f'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{block}"/></o:shapelayout>'
            '<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
            '<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>'
            + "".join(shapes) + "</xml>").encode("utf-8")
