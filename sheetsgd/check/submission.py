"""Finding a lesson and its layout inside a (student-edited) workbook, and reading the student's inputs.

The hidden ``_sheetsgd`` manifest (key | JSON value rows) says which lesson and which columns to
expect; everything else is found by content, so inserted or deleted rows and columns and renamed
or reordered sheets do not matter: the manifest sheet by its header, the Steps sheet by the row
holding the column headers, each column by its header text, each step by its step number, the
inputs through their defined names (which spreadsheet apps keep up to date), the data by its
header row. Whatever cannot be found is named in a one-line SheetsgdError.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from sheetsgd.lessons.sgd.data import Dataset
from sheetsgd.lessons.sgd.engine import make_batches
from sheetsgd.errors import SheetsgdError
from sheetsgd.lessons.sgd.lesson import Lesson, validate
from .structural import find_step_rows, gap_rows
from sheetsgd.lessons.sgd.losses import LOSSES
from sheetsgd.lessons.sgd.models import MODELS
from sheetsgd.lessons.optimizers import OPTIMIZERS
from sheetsgd.lessons.sgd.spec import Column, step_columns
from sheetsgd.read.workbook import Limits, Sheet, Workbook, column_index, column_letters

MANIFEST_SHEET = "_sheetsgd"
HEADER_SCAN_ROWS = 400  # the header row is searched for in the first rows of each sheet
_NAME_REF = re.compile(r"^=?(?:'((?:[^']|'')+)'|([^!'\s]+))!\$?([A-Z]{1,3})\$?([0-9]{1,7})$")


@dataclass
class Submission:
    path: str
    book: Workbook
    manifest: dict
    lesson: Lesson
    columns: list[Column]
    sheet: Sheet  # the Steps sheet
    header_row: int
    start_row: int
    step_rows: list[int]  # sheet row of step 1, 2, …
    col_of: dict[str, int]  # column key -> sheet column (1-based)
    hyper_cells: dict[str, tuple[str, int, int]]  # name -> (sheet, row, column)
    hyper: dict[str, float]  # the sheet's named inputs (including fd_step)
    exercise: list[str]
    batches: list = field(default_factory=list)  # (epoch, example indices) per step, as the engine makes them
    data_sheet: str = ""
    notes: list[str] = field(default_factory=list)
    missing_steps: list[int] = field(default_factory=list)  # step rows deleted (sheetsgd.check.structural)

    def cell_ref(self, key: str, step_index: int) -> str:
        return f"{column_letters(self.col_of[key])}{self.step_rows[step_index]}"


def _strings(sheet: Sheet, max_row: int) -> dict[int, dict[str, int]]:
    """{row: {text: column}} for the text cells of the first rows."""
    return sheet.texts(max_row)


def read_manifest(book: Workbook) -> tuple[dict, str]:
    candidates = [MANIFEST_SHEET] if MANIFEST_SHEET in book.sheet_names else []
    candidates += [n for n in book.sheet_names if n != MANIFEST_SHEET]
    for name in candidates:
        sheet = book.sheet(name)
        if sheet.value(1, 1) != "key" or not str(sheet.value(1, 2) or "").startswith("value"):
            continue
        manifest, texts, rows = {}, {}, {}
        for r in range(2, min(sheet.max_row(), 2000) + 1):
            key, raw = sheet.value(r, 1), sheet.value(r, 2)
            if not isinstance(key, str):
                continue
            if key.endswith("+") and key[:-1] in texts and isinstance(raw, str):  # a long value continues
                texts[key[:-1]] += raw
                continue
            texts[key], rows[key] = raw, r
        for key, raw in texts.items():
            try:
                manifest[key] = json.loads(raw) if isinstance(raw, str) else raw
            except (ValueError, RecursionError):
                raise book.error(f"manifest value for {key!r} is not JSON: the manifest was edited",
                                 f"{name}!B{rows[key]}") from None
        return manifest, name
    raise book.error("no sheetsgd manifest (the hidden _sheetsgd sheet): not a sheetsgd lesson workbook, "
                     "or the manifest sheet was deleted")


def _expect(manifest: dict, key: str, kind, book: Workbook, sheet: str):
    value = manifest.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise book.error(f"manifest entry {key!r} is missing or malformed ({value!r:.60}): the manifest was tampered with",
                         sheet)
    return value


def lesson_from_manifest(manifest: dict, book: Workbook, sheet: str) -> Lesson:
    """The lesson's configuration as the manifest records it; data, initial values and inputs come later."""
    kind = _optional(manifest, "kind", str, "sgd", book, sheet)[:40]
    if kind != "sgd":  # a sheetsgd workbook, but not one with exercise columns to check
        raise book.error(f"this is a {kind!r} lesson workbook; sheetsgd check reads data lessons (linear, "
                         "quadratic and templates like them), the ones `sheetsgd build --exercise` makes", sheet)
    model = _expect(manifest, "model", str, book, sheet)
    loss = _expect(manifest, "loss", str, book, sheet)
    optimizer = _expect(manifest, "optimizer", str, book, sheet)
    if model not in MODELS or loss not in LOSSES or optimizer not in OPTIMIZERS:
        raise book.error(f"manifest names an unknown model/loss/optimizer ({model}, {loss}, {optimizer})", sheet)
    switches = _expect(manifest, "hyper_switches", dict, book, sheet)
    batch_size = _expect(manifest, "batch_size", int, book, sheet)
    epochs = _expect(manifest, "epochs", int, book, sheet)
    if not 1 <= epochs <= 100_000 or not 1 <= batch_size <= 1_000_000:
        raise book.error("manifest epochs or batch_size out of range: the manifest was tampered with", sheet)
    opt = OPTIMIZERS[optimizer]
    hyper = {k: (0.0 if k in opt.optional else float(v)) for k, v in opt.defaults.items()}
    for k, v in switches.items():
        if k in hyper and isinstance(v, (int, float)):
            hyper[k] = float(v)
    seed = _optional(manifest, "seed", int, 0, book, sheet)
    exercise = _optional(manifest, "exercise_defaults", list, [], book, sheet)
    if not all(isinstance(k, str) for k in exercise):
        raise book.error("manifest entry 'exercise_defaults' is malformed: the manifest was tampered with", sheet)
    return Lesson(name=str(manifest.get("lesson", "?"))[:100], title="", description="", tips=[],
                  data=Dataset(np.zeros(1), np.zeros(1)), model=model, loss=loss,
                  init={p: 0.0 for p in MODELS[model].params}, optimizer=optimizer, hyper=hyper,
                  batch_size=batch_size, epochs=epochs, shuffle=_optional(manifest, "shuffle", bool, False, book, sheet),
                  seed=seed, source=book.path, exercise=exercise)


def _optional(manifest: dict, key: str, kind, default, book: Workbook, sheet: str):
    """An optional manifest entry of the given type (absent or null: the default)."""
    value = manifest.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise book.error(f"manifest entry {key!r} is malformed ({value!r:.60}): the manifest was tampered with", sheet)
    return value


def _number(value, what: str, book: Workbook, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        shown = "nothing" if value is None else repr(value)[:40]
        raise book.error(f"{what} must be a number, found {shown}", where)
    return float(value)


def _find_header(book: Workbook, wanted: list[str], prefer: str, min_share: float = 0.8):
    """(sheet, row, {text: column}) of the row holding most of the wanted header texts."""
    best = None
    names = [prefer] if prefer in book.sheet_names else []
    names += [n for n in book.sheet_names if n != prefer]
    for name in names:
        sheet = book.sheet(name)
        for row, texts in _strings(sheet, HEADER_SCAN_ROWS).items():
            hits = sum(1 for w in wanted if w in texts)
            if best is None or hits > best[0]:
                best = (hits, name, row, texts)
        if best and best[0] == len(wanted):
            break
    if best is None or best[0] < max(1, math.ceil(min_share * len(wanted))):
        return None
    return best[1], best[2], best[3]


def locate(path: str, limits: Limits = Limits()) -> Submission:
    book = Workbook(path, limits)
    manifest, manifest_sheet = read_manifest(book)
    lesson = lesson_from_manifest(manifest, book, manifest_sheet)
    headers = _expect(manifest, "columns", dict, book, manifest_sheet)
    wanted = {k: v.get("header") for k, v in headers.items() if isinstance(v, dict) and isinstance(v.get("header"), str)}
    found = _find_header(book, list(wanted.values()), str(manifest.get("steps_sheet", "Steps")))
    if found is None:
        raise book.error("cannot find the Steps sheet: no sheet has a row with the step columns' headers "
                         f"({', '.join(list(wanted.values())[:4])}, …)")
    steps_name, header_row, texts = found
    sheet = book.sheet(steps_name)
    missing = [f"{h!r} ({k})" for k, h in wanted.items() if h not in texts]
    if missing:
        raise book.error(f"column(s) {', '.join(missing)} not found in the header row {header_row}", steps_name)
    col_of = {k: texts[h] for k, h in wanted.items()}

    # inputs first: the data and the named inputs decide the lesson's layout and steps
    hyper, hyper_cells = _read_hyper(book, manifest, sheet, header_row)
    data_sheet, dataset = _read_data(book, manifest)
    lesson.data = dataset
    lesson.fd_step = hyper.get("fd_step", 0.01)
    lesson.hyper = {**lesson.hyper, **{k: v for k, v in hyper.items() if k != "fd_step"}}
    columns = step_columns(lesson)
    if [c.key for c in columns] != [k for k in wanted] and set(c.key for c in columns) != set(wanted):
        raise book.error("the manifest's columns do not match its lesson configuration: the manifest was tampered with",
                         manifest_sheet)

    step_col = col_of["step"]
    start_row = next((r for r in range(header_row + 1, header_row + 50)
                      if sheet.value(r, step_col) == 0), None)
    if start_row is None:
        raise book.error(f"no start row (step 0) below the header row {header_row}", f"{steps_name}!{column_letters(step_col)}")
    batches = make_batches(lesson)
    n_steps = len(batches)
    candidates = range(start_row + 1, min(start_row + 1 + n_steps + 1000, sheet.max_row() + 1))
    values, _, _ = sheet.numbers(step_col, candidates)
    found_rows, missing = find_step_rows(values if isinstance(values, list) else values.tolist(), candidates, n_steps)
    if found_rows is None:
        raise book.error(f"expected steps 1 to {n_steps} below the start row, found {n_steps - len(missing)}",
                         f"{steps_name}!{column_letters(step_col)}")
    step_rows = gap_rows(found_rows, sheet.max_row() + 1)  # a deleted step reads as an empty row
    init = {}
    for p in MODELS[lesson.model].params:
        where = f"{steps_name}!{column_letters(col_of['new_' + p])}{start_row}"
        init[p] = _number(sheet.value(start_row, col_of["new_" + p]), f"the initial {p}", book, where)
    lesson.init = init
    try:
        lesson = validate(lesson)
    except SheetsgdError as exc:
        raise book.error(f"inputs out of range: {exc.message}", steps_name) from None
    exercise = [k for k in (manifest.get("exercise") or manifest.get("exercise_defaults") or []) if k in col_of]
    sub = Submission(path=str(path), book=book, manifest=manifest, lesson=lesson, columns=columns, sheet=sheet,
                     header_row=header_row, start_row=start_row, step_rows=step_rows, col_of=col_of,
                     hyper_cells=hyper_cells, hyper=hyper, exercise=exercise, batches=batches,
                     data_sheet=data_sheet, missing_steps=missing)
    if book.has_macros:
        sub.notes.append("the file holds a macro project (VBA): it was not run")
    if steps_name != manifest.get("steps_sheet", "Steps"):
        sub.notes.append(f"the Steps sheet is named {steps_name!r}")
    return sub


def _read_hyper(book: Workbook, manifest: dict, steps: Sheet, header_row: int):
    names = manifest.get("hyperparameters")
    if not isinstance(names, dict) or "lr" not in names:
        raise book.error("manifest entry 'hyperparameters' is missing or malformed: the manifest was tampered with")
    values, cells = {}, {}
    labels = _strings(steps, header_row)
    for name in names:
        target = book.defined_names.get(name)
        m = _NAME_REF.match(target or "")
        if m:
            sheet_name = (m.group(1) or "").replace("''", "'") or m.group(2)
            row, col = int(m.group(4)), column_index(m.group(3))
            if sheet_name not in book.sheet_names:
                raise book.error(f"the name {name} points at a sheet that does not exist ({sheet_name!r})")
        else:  # no usable defined name: the label in the inputs block, value beside it
            hit = next(((r, texts[name]) for r, texts in labels.items() if name in texts), None)
            if hit is None:
                raise book.error(f"cannot find the input {name}: no defined name and no label", steps.name)
            sheet_name, row, col = steps.name, hit[0], hit[1] + 1
        where = f"{sheet_name}!{column_letters(col)}{row}"
        values[name] = _number(book.sheet(sheet_name).value(row, col), f"input {name}", book, where)
        cells[name] = (sheet_name, row, col)
    return values, cells


def _read_data(book: Workbook, manifest: dict):
    heads = manifest.get("data_headers") or {}
    rows = manifest.get("data_rows")
    if not isinstance(rows, list) or len(rows) != 2 or not all(isinstance(r, int) for r in rows):
        raise book.error("manifest entry 'data_rows' is missing or malformed: the manifest was tampered with")
    n = rows[1] - rows[0] + 1
    if not 1 <= n <= 1_000_000:
        raise book.error("manifest entry 'data_rows' is out of range: the manifest was tampered with")
    x_head, y_head = heads.get("x"), heads.get("y")
    prefer = str(manifest.get("data_sheet", "Data"))
    if isinstance(x_head, str) and isinstance(y_head, str):
        found = _find_header(book, ["#", x_head, y_head], prefer, min_share=1.0)
        if found is None:
            raise book.error(f"cannot find the data: no sheet has a header row '#', {x_head!r}, {y_head!r}")
        name, header_row, texts = found
        x_col, y_col = texts[x_head], texts[y_head]
    else:  # an older manifest: trust its sheet and columns
        name, header_row = prefer, rows[0] - 1
        if name not in book.sheet_names:
            raise book.error(f"no data sheet {name!r}")
        cols = manifest.get("data_columns") or {}
        x_col, y_col = column_index(str(cols.get("x", "B"))), column_index(str(cols.get("y", "C")))
    sheet = book.sheet(name)
    xs, ys = [], []
    for r in range(header_row + 1, header_row + 1 + n):
        xs.append(_number(sheet.value(r, x_col), "a data value", book, f"{name}!{column_letters(x_col)}{r}"))
        ys.append(_number(sheet.value(r, y_col), "a data value", book, f"{name}!{column_letters(y_col)}{r}"))
    return name, Dataset(np.array(xs), np.array(ys), x_head or "x", y_head or "y")
