"""Rosters of students for per-student variants: ``build LESSON --variants roster.csv -o DIR/``.

A roster is a CSV file with a header row naming an ``id`` column (any case; a ``name`` column is
copied to the index, other columns are ignored). Each ID must be unique, 1 to 100 printable
characters. Each student's workbook is ``DIR/<ID sanitised>.xlsx``: letters, digits, ``.``, ``-``
and ``_`` kept, every other character ``_``, leading and trailing dots and underscores dropped,
at most 80 characters; two IDs that give the same file name are refused. ``DIR/variants.csv``
lists id, name and file.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

from sheetsgd.runtime import outputs
from sheetsgd.errors import SheetsgdError
from sheetsgd.runtime.inputfile import MAX_ROSTER_BYTES, read_regular
from sheetsgd.lessons.variants import check_id, collisions


def read_roster(path: str) -> list[tuple[str, str]]:
    """(ID, file stem) per student of a roster CSV: a header row with an ``id`` column (and optionally
    ``name``; other columns are ignored). The file stem is the ID, sanitised."""
    rows = list(csv.DictReader(_roster_text(path).splitlines()))
    if not rows or "id" not in {(k or "").strip().lower() for k in rows[0]}:
        raise SheetsgdError("the roster needs a header row with an 'id' column (and at least one student)", path)
    out, seen, stems = [], set(), set()
    for n, row in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        try:
            id_ = check_id(row.get("id", ""))
        except SheetsgdError as exc:
            raise SheetsgdError(exc.message, f"{path} line {n}") from None
        if id_ in seen:
            raise SheetsgdError(f"ID {id_!r} appears twice", f"{path} line {n}")
        seen.add(id_)
        stem = file_stem(id_)
        if stem.lower() in stems:
            raise SheetsgdError(f"ID {id_!r} gives the same file name as an earlier one ({stem}.xlsx)", f"{path} line {n}")
        stems.add(stem.lower())
        out.append((id_, stem))
    return out


def _roster_text(path: str) -> str:
    """The roster's text: a regular file (a FIFO or a device is refused unread) of bounded size, UTF-8."""
    try:
        return read_regular(path, "roster", MAX_ROSTER_BYTES).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SheetsgdError(f"cannot read the roster: {exc}", path) from None


def file_stem(variant: str) -> str:
    """A safe file name for an ID: letters, digits, '.', '-', '_' kept, anything else '_' (no leading dot)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", unicodedata.normalize("NFKD", variant)).strip("._") or "student"
    return stem[:80]


def build_roster(load, roster: str, folder: str, exercise, quiet: bool = False):
    """One workbook per roster student into ``folder`` (``load(ID)`` gives that student's lesson), and
    ``folder/variants.csv`` (id, name, file). Returns ([{id, file}], colliding ID pairs)."""
    from sheetsgd.lessons import runbounds

    students = read_roster(roster)
    names = {}
    for row in csv.DictReader(_roster_text(roster).splitlines()):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        names[row.get("id", "")] = row.get("name", "")
    out = Path(folder)
    if out.suffix.lower() == ".xlsx":
        raise SheetsgdError("with --variants, -o is a folder (one workbook per student)", folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SheetsgdError(f"cannot create the folder: {exc.strerror}", folder) from None
    written = []
    inputs = None
    for id_, stem in students:
        lesson = load(id_)
        if not written:
            runbounds.guard(lesson.spec, "build")
            inputs = outputs.Inputs([roster, lesson.source])  # never replaced by a student's workbook
        path = out / f"{stem}.xlsx"
        lesson.build(path, exercise, progress=False, inputs=inputs)
        written.append({"id": id_, "file": str(path)})
    origin = load(students[0][0]).spec.origin
    collided = collisions(origin["name"], origin["template"], [id_ for id_, _ in students])
    from sheetsgd.runtime.safetext import safe_cell

    index = io.StringIO()
    w = csv.writer(index)
    w.writerow(["id", "name", "file"])
    for row in written:
        w.writerow([safe_cell(row["id"]), safe_cell(names.get(row["id"], "")), Path(row["file"]).name])
    outputs.write_text(out / "variants.csv", index.getvalue(), inputs, "index", newline="")
    return written, collided
