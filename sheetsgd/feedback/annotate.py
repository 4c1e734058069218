"""The annotated copy of a student's workbook: marked cells, notes on them, and a first "Feedback" sheet.

The copy is made at the level of the package's XML, never through a spreadsheet library (which would
drop charts, protection and more): every part is copied byte for byte except the few this edits —
``styles.xml`` (three fills, cell formats cloned from each marked cell's own with the fill changed),
the worksheets with marked cells (their ``s`` attributes, and a ``legacyDrawing`` for the notes),
``workbook.xml`` (the new first sheet, ``localSheetId`` of defined names moved by one, the active
tab), its relationships and ``[Content_Types].xml``; new parts are the Feedback sheet, and a comments
part with its VML drawing per sheet with notes. ``calcChain.xml`` (a cache keyed by sheet) is left
out: spreadsheet apps rebuild it. The input is read with the bounded, DTD-free reader of
sheetsgd.read.package and never written; the output is written beside its target and moved into place.
"""
from __future__ import annotations

import posixpath
import re
import zipfile
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

from sheetsgd.runtime import outputs, progress
from sheetsgd.errors import SheetsgdError
from .sheet import CORRECT, KNOCK_ON, ROOT, cell_position, comments_xml, feedback_sheet_xml, marks, notes, vml_xml
from sheetsgd.read.package import Limits, Workbook, is_part_name

FILLS = {ROOT: "FFFF9999", KNOCK_ON: "FFFFD27F", CORRECT: "FFB7E1A1"}
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_RT = _REL_NS + "/"
_CT = "application/vnd.openxmlformats-officedocument."
# Patterns are anchored at the end of an element's name ("<xf" never matches "<xf-a" or "<xfs"), and every
# part they edit is well-formed (checked first), so each match ends at its own element: linear in the part.
_END = r"(?=[\s/>])"
_XF = re.compile(rf"<xf{_END}[^>]*?/>|<xf{_END}[^>]*?>.*?</xf>", re.S)
_C_TAG = re.compile(rf'<c{_END}([^>]*?)(/?)>')
_ROW = re.compile(rf'<row{_END}[^>]*?\br="([0-9]+)"[^>]*?(?:/>|>.*?</row>)', re.S)
_REF = re.compile(r'\br="([A-Z]{1,3}[0-9]+)"')
_AFTER_LEGACY = ("legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls", "webPublishItems",
                 "tableParts", "extLst")


def annotate(path: str, report: dict, out: str, limits: Limits = Limits(), inputs: outputs.Inputs | None = None) -> dict:
    """Write the annotated copy of ``path`` to ``out`` from its check report (``Report.to_dict()``);
    returns {sheet: number of marked cells}. ``out`` follows the output policy (sheetsgd.runtime.outputs):
    never ``path`` itself or another of ``inputs``, never through a link."""
    path, out = str(path), str(out)
    inputs = inputs or outputs.Inputs()
    inputs.add(path)
    outputs.check_target(out, inputs, "annotated copy")
    if report.get("status") == "error":
        raise SheetsgdError(f"cannot annotate: {report.get('message')}", path)
    book = Workbook(path, limits)
    try:
        return _annotate(book, report, out, inputs)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:  # never a traceback
        raise SheetsgdError(f"cannot annotate: the workbook's XML has a form this cannot edit "
                            f"({type(exc).__name__}: {exc})"[:300], path) from None


def _annotate(book: Workbook, report: dict, out: str, inputs: outputs.Inputs) -> dict:
    progress.stage("annotating: reading")
    # a member named like ../../x or /abs/x is dropped, never copied as it is
    parts = {name: book._read(name) for name in book.members if not name.endswith("/") and is_part_name(name)}
    for name in parts:
        if name.endswith((".xml", ".rels")):
            _well_formed(book, name, parts[name])
    original = dict(parts)
    edit = _Package(book, parts)
    by_sheet, by_note = marks(report), notes(report)
    progress.stage("annotating: styles")
    styles = edit.styles(by_sheet)
    counts = {}
    for sheet in book.sheets:
        name, part = sheet["name"], sheet["part"]
        if part not in parts:
            continue
        progress.stage(f"annotating: {name[:40]}")
        counts[name] = edit.sheet(part, by_sheet.get(name, {}), by_note.get(name, {}), styles)
    edit.add_feedback(feedback_sheet_xml(report, styles["feedback"]))
    for name, data in [*parts.items(), *edit.new.items()]:  # what this edited or made must parse too
        if data is not original.get(name) and name.endswith((".xml", ".rels", ".vml")):
            _well_formed(book, name, data, "the annotated copy's ")
    progress.stage("annotating: writing")
    edit.write(out, inputs)
    return counts


def _well_formed(book: Workbook, name: str, data: bytes, whose: str = "") -> None:
    """``data`` parses as XML without a DTD or entity declarations (expat, no tree: linear, C speed)."""
    def refuse(*_):
        raise _Refused()

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = parser.EntityDeclHandler = refuse
    try:
        parser.Parse(data, True)
    except _Refused:
        raise book.error(f"part {name} declares a DTD or entities, refused") from None
    except expat.ExpatError as exc:
        raise book.error(f"{whose}part {name} is not well-formed XML ({exc})") from None


class _Refused(Exception):
    pass


def _drop(xml: str, element: str, word: str) -> str:
    """``xml`` without the empty ``element`` tags that mention ``word`` (one bounded match per tag)."""
    return re.sub(rf"<{element}{_END}[^>]*>", lambda m: "" if word in m.group(0) and m.group(0).endswith("/>")
                  else m.group(0), xml)


def _attr(tag: str, name: str, value: str | None) -> str:
    """An opening tag with attribute ``name`` set in place (added last, or removed when value is None)."""
    pattern = re.compile(rf'(\s){name}="[^"]*"')
    if value is None:
        return pattern.sub("", tag)
    if pattern.search(tag):
        return pattern.sub(lambda m: f'{m.group(1)}{name}="{value}"', tag, count=1)
    end = len(tag) - (2 if tag.endswith("/>") else 1)
    return f'{tag[:end]} {name}="{value}"{tag[end:]}'


def _open(xml: str, element: str, start: int = 0):
    """The first opening tag of ``element`` (not of a longer name), or None."""
    return re.compile(rf"<{element}{_END}[^>]*>").search(xml, start)


def _count(xml: str, element: str, added: int) -> str:
    m = _open(xml, element)
    if not m:
        raise SheetsgdError(f"the styles part has no <{element}> list")
    tag = m.group(0)
    n = re.search(r'\bcount="([0-9]+)"', tag)
    items = xml[m.end():xml.index(f"</{element}>", m.end())]
    child = {"fills": "fill", "fonts": "font", "cellXfs": "xf"}[element]
    total = len(re.findall(rf"<{child}{_END}", items)) + added
    new = _attr(tag, "count", str(total)) if n else tag
    return xml[:m.start()] + new + xml[m.end():]


def _append(xml: str, element: str, items: str) -> str:
    end = xml.index(f"</{element}>")
    return _count(xml[:end] + items + xml[end:], element, 0)


def _merge_cells(text: str, cells: list[tuple[int, str]]) -> str:
    """A row's XML with new cells ((column, XML) in column order) put before the first cell right of each."""
    if text.endswith("/>") and "</row>" not in text:
        text = text[:-2] + "></row>"
    pieces, at, k = [], 0, 0
    for cm in _C_TAG.finditer(text):
        ref = _REF.search(cm.group(1))
        col = cell_position(ref.group(1))[1] if ref else 0
        while k < len(cells) and cells[k][0] < col:
            pieces += [text[at:cm.start()], cells[k][1]]
            at, k = cm.start(), k + 1
    end = text.rindex("</row>")
    pieces += [text[at:end], *(c for _, c in cells[k:]), text[end:]]
    return "".join(pieces)


class _Package:
    def __init__(self, book: Workbook, parts: dict[str, bytes]):
        self.book, self.parts, self.new = book, parts, {}
        self.types: list[str] = []
        self.vml_block = 100 + len([n for n in parts if n.endswith(".vml")])

    def text(self, name: str) -> str:
        try:
            return self.parts[name].decode("utf-8")
        except UnicodeDecodeError:
            raise self.book.error(f"part {name} is not UTF-8 text") from None
        except KeyError:
            raise self.book.error(f"the archive has no part {name}") from None

    # --- styles ---------------------------------------------------------------------------------------
    def styles(self, by_sheet: dict[str, dict[str, str]]) -> dict:
        name = "xl/styles.xml"
        xml = self.text(name)
        tags = {}
        for element in ("fonts", "fills", "cellXfs"):
            tags[element] = _open(xml, element)
            if not tags[element]:
                raise self.book.error(f"the styles part has no <{element}> list (namespace prefixes?)", name)
        n_fills = len(re.findall(rf"<fill{_END}", xml[tags["fills"].end():xml.index("</fills>")]))
        n_fonts = len(re.findall(rf"<font{_END}", xml[tags["fonts"].end():xml.index("</fonts>")]))
        start = tags["cellXfs"].end()
        xfs = _XF.findall(xml[start:xml.index("</cellXfs>")])
        fill_id = {kind: n_fills + i for i, kind in enumerate(FILLS)}
        xml = _append(xml, "fills", "".join(f'<fill><patternFill patternType="solid"><fgColor rgb="{rgb}"/>'
                                            '<bgColor indexed="64"/></patternFill></fill>' for rgb in FILLS.values()))
        xml = _append(xml, "fonts", '<font><b/><sz val="14"/><name val="Calibri"/><family val="2"/></font>'
                                    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
                                    '<font><u/><sz val="11"/><color rgb="FF0563C1"/><name val="Calibri"/>'
                                    '<family val="2"/></font>')
        wrap = '<alignment vertical="top" wrapText="1"/>'
        new_xfs = [f'<xf numFmtId="0" fontId="{n_fonts}" fillId="0" borderId="0" xfId="0" applyFont="1"/>',
                   f'<xf numFmtId="0" fontId="{n_fonts + 1}" fillId="0" borderId="0" xfId="0" applyFont="1" '
                   'applyAlignment="1"><alignment vertical="top"/></xf>',
                   f'<xf numFmtId="0" fontId="{n_fonts + 1}" fillId="0" borderId="0" xfId="0" applyFont="1" '
                   f'applyAlignment="1">{wrap}</xf>',
                   f'<xf numFmtId="0" fontId="{n_fonts + 2}" fillId="0" borderId="0" xfId="0" applyFont="1" '
                   f'applyAlignment="1">{wrap}</xf>',
                   f'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">{wrap}</xf>']
        new_xfs += [f'<xf numFmtId="0" fontId="0" fillId="{fill_id[k]}" borderId="0" xfId="0" applyFill="1" '
                    f'applyAlignment="1">{wrap}</xf>' for k in FILLS]
        names = ["title", "bold", "header", "link", "wrap", ROOT, KNOCK_ON, CORRECT]
        feedback = {n: len(xfs) + i for i, n in enumerate(names)}
        self._xfs, self._fill_id, self._base = xfs, fill_id, len(xfs) + len(new_xfs)
        self._clones: dict[tuple[int, str], int] = {}
        self._styles_xml, self._new_xfs = xml, new_xfs
        return {"feedback": feedback}

    def _style_for(self, old: int, kind: str) -> int:
        key = (old if 0 <= old < len(self._xfs) else 0, kind)
        if key not in self._clones:
            xf = self._xfs[key[0]] if self._xfs else '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            head = re.match(r"<xf[^>]*?(/?)>", xf)
            tag = _attr(_attr(head.group(0), "fillId", str(self._fill_id[kind])), "applyFill", "1")
            self._new_xfs.append(tag + xf[head.end():])
            self._clones[key] = self._base + len(self._clones)
        return self._clones[key]

    def _finish_styles(self) -> None:
        xml = _append(self._styles_xml, "cellXfs", "".join(self._new_xfs))
        self.parts["xl/styles.xml"] = xml.encode("utf-8")

    # --- worksheets -----------------------------------------------------------------------------------
    def sheet(self, part: str, cell_marks: dict[str, str], cell_notes: dict[str, str], styles) -> int:
        xml = self.text(part)
        changed = 'tabSelected="1"' in xml
        xml = re.sub(rf'(<sheetView{_END}[^>]*?)\s+tabSelected="1"', r"\1", xml)  # the Feedback sheet is the one shown
        if cell_marks:
            if not re.search(rf"<sheetData{_END}", xml):
                raise self.book.error(f"worksheet {part} has no <sheetData> (namespace prefixes?)")
            xml = self._mark(xml, cell_marks)
            changed = True
        rels_name = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
        if cell_notes and "<legacyDrawing" not in xml:  # a sheet with notes of its own keeps only those
            xml, changed = self._notes(part, xml, rels_name, cell_notes), True
        if changed:
            self.parts[part] = xml.encode("utf-8")
        return len(cell_marks)

    def _mark(self, xml: str, cell_marks: dict[str, str]) -> str:
        todo = dict(cell_marks)

        def one(m):
            r = _REF.search(m.group(1))
            if not r or r.group(1) not in todo:
                return m.group(0)
            kind = todo.pop(r.group(1))
            s = re.search(r'\bs="([0-9]+)"', m.group(1))
            return _attr(m.group(0), "s", str(self._style_for(int(s.group(1)) if s else 0, kind)))
        xml = _C_TAG.sub(one, xml)
        return self._insert_missing(xml, todo) if todo else xml

    def _insert_missing(self, xml: str, todo: dict[str, str]) -> str:
        """Cells the sheet does not have (left empty): added, styled, in row and column order, in one
        pass over the rows (and one over each row that gets cells)."""
        by_row: dict[int, list[tuple[int, str]]] = {}
        for cell, kind in todo.items():
            row, col = cell_position(cell)
            by_row.setdefault(row, []).append((col, f'<c r="{cell}" s="{self._style_for(0, kind)}"/>'))
        new_rows = sorted(by_row)
        pieces, at, k = [], 0, 0
        xml = xml.replace("<sheetData/>", "<sheetData></sheetData>")
        for m in _ROW.finditer(xml):
            row = int(m.group(1))
            while k < len(new_rows) and new_rows[k] < row:  # rows the sheet lacks, before this one
                pieces += [xml[at:m.start()], self._new_row(new_rows[k], by_row.pop(new_rows[k]))]
                at, k = m.start(), k + 1
            if k < len(new_rows) and new_rows[k] == row:
                pieces += [xml[at:m.start()], _merge_cells(m.group(0), sorted(by_row.pop(row)))]
                at, k = m.end(), k + 1
        end = xml.index("</sheetData>", at)
        pieces += [xml[at:end], *(self._new_row(r, by_row[r]) for r in new_rows[k:]), xml[end:]]
        return "".join(pieces)

    @staticmethod
    def _new_row(row: int, cells: list[tuple[int, str]]) -> str:
        return f'<row r="{row}">' + "".join(c for _, c in sorted(cells)) + "</row>"

    def _notes(self, part: str, xml: str, rels_name: str, cell_notes: dict[str, str]) -> str:
        k = len(self.new) + 1
        comments, vml = self._free(f"xl/comments_sheetsgd{k}.xml"), self._free(f"xl/drawings/vmlDrawing_sheetsgd{k}.vml")
        self.new[comments] = comments_xml(cell_notes)
        self.new[vml] = vml_xml(cell_notes, self.vml_block)
        self.vml_block += 1
        self.types.append(f'<Override PartName="/{comments}" ContentType="{_CT}spreadsheetml.comments+xml"/>')
        rels = self.text(rels_name) if rels_name in self.parts else (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"></Relationships>')
        base = posixpath.dirname(part)
        vml_id, com_id = self._rel_id(rels, "Vml"), self._rel_id(rels, "Comments")
        rels = rels.replace("</Relationships>",
                            f'<Relationship Id="{vml_id}" Type="{_RT}vmlDrawing" Target="{posixpath.relpath(vml, base)}"/>'
                            f'<Relationship Id="{com_id}" Type="{_RT}comments" Target="{posixpath.relpath(comments, base)}"/>'
                            "</Relationships>")
        self.parts[rels_name] = rels.encode("utf-8")
        element = f'<legacyDrawing xmlns:r="{_REL_NS}" r:id="{vml_id}"/>'
        for tag in _AFTER_LEGACY:
            m = re.search(rf"<{tag}{_END}", xml)
            if m:
                return xml[:m.start()] + element + xml[m.start():]
        end = xml.rindex("</worksheet>")
        return xml[:end] + element + xml[end:]

    def _free(self, name: str) -> str:
        stem, ext = posixpath.splitext(name)
        k = 0
        while name in self.parts or name in self.new:
            k += 1
            name = f"{stem}_{k}{ext}"
        return name

    @staticmethod
    def _rel_id(rels: str, what: str) -> str:
        taken = set(re.findall(r'\bId="([^"]*)"', rels))
        k = 1
        while f"rIdSheetsgd{what}{k}" in taken:
            k += 1
        return f"rIdSheetsgd{what}{k}"

    # --- the Feedback sheet and the workbook ----------------------------------------------------------
    def add_feedback(self, sheet_xml: bytes) -> None:
        self._finish_styles()
        part = self._free("xl/worksheets/sheet_feedback.xml")
        self.new[part] = sheet_xml
        self.types.append(f'<Override PartName="/{part}" ContentType="{_CT}spreadsheetml.worksheet+xml"/>')
        rels_name = "xl/_rels/workbook.xml.rels"
        rels = self.text(rels_name)
        rid = self._rel_id(rels, "Feedback")
        rels = _drop(rels, "Relationship", "calcChain")
        rels = rels.replace("</Relationships>", f'<Relationship Id="{rid}" Type="{_RT}worksheet" '
                                                f'Target="{posixpath.relpath(part, "xl")}"/></Relationships>')
        self.parts[rels_name] = rels.encode("utf-8")
        self.parts.pop("xl/calcChain.xml", None)
        wb = self.text("xl/workbook.xml")
        taken = {n.lower() for n in self.book.sheet_names}
        name, k = "Feedback", 1
        while name.lower() in taken:
            k += 1
            name = f"Feedback {k}"
        ids = [int(x) for x in re.findall(rf'<sheet{_END}[^>]*?\bsheetId="([0-9]+)"', wb)]
        m = _open(wb, "sheets")
        if not m:
            raise self.book.error("workbook.xml has no <sheets> list (namespace prefixes?)")
        prefix = re.search(rf'xmlns:(\w+)="{re.escape(_REL_NS)}"', wb[:m.start()])
        rattr = f'{prefix.group(1)}:id="{rid}"' if prefix else f'xmlns:r="{_REL_NS}" r:id="{rid}"'
        wb = wb[:m.end()] + f'<sheet name={quoteattr(name)} sheetId="{max(ids, default=0) + 1}" {rattr}/>' + wb[m.end():]
        wb = re.sub(rf'(<definedName{_END}[^>]*?\blocalSheetId=")([0-9]+)"', lambda d: f'{d.group(1)}{int(d.group(2)) + 1}"', wb)
        wb = re.sub(rf"<workbookView{_END}[^>]*?/?>", lambda v: _attr(_attr(v.group(0), "activeTab", None), "firstSheet", None), wb)
        self.parts["xl/workbook.xml"] = wb.encode("utf-8")

    def write(self, out: str, inputs: outputs.Inputs) -> None:
        ct = self.text("[Content_Types].xml")
        ct = _drop(ct, "Override", "calcChain")
        extra = "".join(self.types)
        if self.new and any(n.endswith(".vml") for n in self.new) and not re.search(r'Extension="vml"', ct, re.I):
            extra = f'<Default Extension="vml" ContentType="{_CT}vmlDrawing"/>' + extra
        self.parts["[Content_Types].xml"] = ct.replace("</Types>", extra + "</Types>").encode("utf-8")
        with outputs.staged(out, inputs, "annotated copy", suffix=".xlsx") as tmp:
            try:
                with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                    order = list(dict.fromkeys(i.filename for i in self.book.zip.infolist()))  # each name once
                    for name in order:
                        if name in self.parts:
                            z.writestr(name, self.parts[name])
                    for name, data in [*((n, d) for n, d in self.parts.items() if n not in order), *self.new.items()]:
                        z.writestr(name, data)
            except OSError as exc:
                raise SheetsgdError(f"cannot write: {exc.strerror or exc}", out) from None
