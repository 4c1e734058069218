"""Editing a saved workbook's XML as an adversary would: formulas replaced, saved values kept (a zip edit)."""
from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path


def sheet_parts(path: Path) -> dict[str, str]:
    """{sheet name: its worksheet part} of an .xlsx file."""
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
    target = {m.group(1): m.group(2) for m in re.finditer(r'<Relationship Id="([^"]+)"[^>]*?Target="([^"]+)"', rels)}
    target.update({m.group(2): m.group(1) for m in re.finditer(r'<Relationship Target="([^"]+)"[^>]*?Id="([^"]+)"', rels)})
    out = {}
    for m in re.finditer(r'<sheet [^>]*?name="([^"]+)"[^>]*?r:id="([^"]+)"', book):
        t = target[m.group(2)].lstrip("/")
        out[m.group(1)] = t if t.startswith("xl/") else "xl/" + t
    return out


def forge(src: Path, dst: Path, columns: dict[str, list[str]], formula: str = "0*A1",
          rows: tuple[int, int] | None = None) -> int:
    """Copy src to dst with the formulas of ``columns`` {sheet: [letters]} replaced by ``formula`` ({r}: the
    cell's row, {f}: its formula; optionally
    only in ``rows`` (first, last)), every saved value kept. Returns the number of cells changed."""
    parts = sheet_parts(src)
    changed = 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            for sheet, letters in columns.items():
                if parts.get(sheet) != item.filename:
                    continue
                pattern = re.compile(r'(<c r="(' + "|".join(letters) + r')(\d+)"[^>]*>)(<f[^>]*>)([^<]*)(</f>)')

                def swap(m):
                    nonlocal changed
                    if rows and not rows[0] <= int(m.group(3)) <= rows[1]:
                        return m.group(0)
                    changed += 1
                    text = formula.replace("{r}", m.group(3)).replace("{f}", html.unescape(m.group(5)))
                    return m.group(1) + '<f>' + text.replace("&", "&amp;").replace("<", "&lt;") + m.group(6)
                data = pattern.sub(swap, data.decode()).encode()
            zout.writestr(item, data)
    return changed


def share_column(src: Path, dst: Path, sheet: str, letter: str, master: str | None = None) -> None:
    """Copy src to dst with a column's formulas written as Excel writes a filled-down column: one shared
    formula (its text on the first cell, ``master`` instead if given), the others followers, values kept."""
    part = sheet_parts(src)[sheet]
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == part:
                first = []

                def sub(m):
                    if not first:
                        first.append(m.group(2))
                        return (f'{m.group(1)}<f t="shared" ref="{letter}{m.group(2)}:{letter}1048576" si="7">'
                                f'{master or m.group(3)}</f>')
                    return f'{m.group(1)}<f t="shared" si="7"/>'
                data = re.sub(r'(<c r="' + letter + r'(\d+)"[^>]*>)<f[^>]*>([^<]*)</f>', sub, data.decode()).encode()
            zout.writestr(item, data)
