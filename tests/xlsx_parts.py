"""Every formula a built .xlsx carries, read from its XML parts: cell formulas, conditional-format rules,
data validations, defined names and chart series ranges (openpyxl reads only some of them)."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_CHART = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_OFFICE_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def sheet_parts(z: zipfile.ZipFile) -> dict[str, str]:
    """{sheet name: its part's path in the package}."""
    book = ElementTree.fromstring(z.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    target = {r.get("Id"): r.get("Target") for r in rels.iter(f"{_REL}Relationship")}
    out = {}
    for s in book.iter(f"{_MAIN}sheet"):
        t = target[s.get(f"{_OFFICE_REL}id")]
        out[s.get("name")] = t.lstrip("/") if t.startswith("/") else "xl/" + t
    return out


def formula_parts(path) -> list[tuple[str, str, str]]:
    """[(kind, where, formula)] for every formula of the workbook: kind is "cell", "conditional format",
    "data validation", "defined name" or "chart"."""
    out = []
    with zipfile.ZipFile(path) as z:
        for sheet, part in sheet_parts(z).items():
            for event, el in ElementTree.iterparse(z.open(part)):
                if el.tag == f"{_MAIN}c":
                    f = el.find(f"{_MAIN}f")
                    if f is not None and f.text:
                        out.append(("cell", f"{sheet}!{el.get('r')}", f.text))
                    el.clear()
                elif el.tag == f"{_MAIN}conditionalFormatting":
                    for rule in el.iter(f"{_MAIN}formula"):
                        out.append(("conditional format", f"{sheet}!{el.get('sqref')}", rule.text or ""))
                elif el.tag == f"{_MAIN}dataValidation":
                    for tag in ("formula1", "formula2"):
                        for f in el.iter(f"{_MAIN}{tag}"):
                            out.append(("data validation", f"{sheet}!{el.get('sqref')}", f.text or ""))
        book = ElementTree.fromstring(z.read("xl/workbook.xml"))
        for name in book.iter(f"{_MAIN}definedName"):
            out.append(("defined name", name.get("name"), name.text or ""))
        for part in sorted(n for n in z.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)):
            for f in ElementTree.fromstring(z.read(part)).iter(f"{_CHART}f"):
                out.append(("chart", part, f.text or ""))
    return out


def chart_parts(path) -> dict[str, tuple[str, ElementTree.Element]]:
    """{chart part: (the sheet it is drawn on, its XML root)}."""
    out = {}
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        for sheet, part in sheet_parts(z).items():
            rels_name = str(Path(part).parent / "_rels" / (Path(part).name + ".rels"))
            if rels_name not in names:
                continue
            for r in ElementTree.fromstring(z.read(rels_name)).iter(f"{_REL}Relationship"):
                if not r.get("Type", "").endswith("/drawing"):
                    continue
                drawing = _resolve(part, r.get("Target"))
                drels = str(Path(drawing).parent / "_rels" / (Path(drawing).name + ".rels"))
                if drels not in names:
                    continue
                for c in ElementTree.fromstring(z.read(drels)).iter(f"{_REL}Relationship"):
                    if c.get("Type", "").endswith("/chart"):
                        chart = _resolve(drawing, c.get("Target"))
                        out[chart] = (sheet, ElementTree.fromstring(z.read(chart)))
    return out


def _resolve(base: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    parts = list(Path(base).parent.parts)
    for piece in target.split("/"):
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)
