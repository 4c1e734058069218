"""Recalculating a student's workbook in a child process, on a bounded copy, under time and memory limits.

IronCalc is a native extension: a formula it cannot handle (3,000 nested parentheses) crashes the process
that runs it, and a long computation inside it does not see Python's signals. So it runs in a forked child
with an address-space cap, the parent waits with a deadline (the check's ``--timeout``, see
:mod:`sheetsgd.runtime.deadline`) and kills it past that; a crash is one line. LibreOffice runs as its own process
group under the same deadline and an address-space cap (:mod:`sheetsgd.check.recalc.libreoffice`).

No engine sees the student's file itself: it gets a copy without conditional formats and data
validations (formulas of their own, which IronCalc evaluates per cell: a student version's COUNTBLANK
hints made loading one LibreOffice-saved Titanic file take minutes), and only after every formula of
every sheet and every defined name is within :data:`sheetsgd.check.own_formulas.MAX_NESTING` and
:data:`~sheetsgd.check.own_formulas.MAX_FORMULA_CHARS` (over them: one line naming the cell).
"""
from __future__ import annotations

import faulthandler
import io
import os
import pickle
import re
import select
import signal
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from sheetsgd.runtime import deadline
from sheetsgd.errors import SheetsgdError
from sheetsgd.check.own_formulas import over_bounds
from sheetsgd.lessons.runbounds import cap_memory
from sheetsgd.read.package import input_bytes
from sheetsgd.read.workbook import CellError, column_letters

ENGINE_MEMORY_MB = 2048  # address space an engine may use beyond what the checker has when it starts one
LIBREOFFICE_MEMORY_MB = ENGINE_MEMORY_MB + 1024  # LibreOffice's own processes (it runs in 1 GB)
ENGINE_TIMEOUT = 600.0  # seconds, when no --timeout is running
# an empty cell typed as a number (<c r="B5" s="3" t="n"/>, as openpyxl saves a blank): IronCalc reads it as 0,
# every spreadsheet as blank; the copy leaves the type out
_EMPTY_NUMBER = re.compile(rb'(<c\b[^>]*?)\s+t="n"(\s*/>)')
_EXTRAS = re.compile(rb"<conditionalFormatting\b.*?</conditionalFormatting>|<dataValidations\b.*?</dataValidations>"
                     rb"|<extLst>.*?</extLst>", re.S)


def check_bounds(book) -> None:
    """Refuse (one line naming the cell) a workbook with a formula over the bounds, before an engine runs."""
    for name, target in book.defined_names.items():
        reason = over_bounds((target or "").encode())
        if reason:
            raise SheetsgdError(f"the defined name {name[:40]!r} holds {reason}: refused")
    for sheet_name in book.sheet_names:
        sheet = book.sheet(sheet_name)
        _, has_f, _ = sheet._whole_sheet_arrays()
        at = np.flatnonzero(has_f)
        for k, text in enumerate(sheet.raw_formulas(at)):
            if len(text) > 100 and text.count(b"(") > 20 or len(text) > 4096:
                reason = over_bounds(text)
                if reason:
                    i = int(at[k])
                    cell = f"{column_letters(int(sheet._cols[i]))}{int(sheet._rows[i])}"
                    raise SheetsgdError(f"{reason}: refused (no engine recalculates it)", f"{sheet_name}!{cell}")


def engine_copy(path: str, book, folder: str) -> Path:
    """A copy for an engine: every formula within the bounds, sheets without conditional formats or validations."""
    check_bounds(book)
    limit = book.limits.max_total_mb * 2**20
    out = Path(folder, "submission.xlsx")
    try:
        with zipfile.ZipFile(io.BytesIO(input_bytes(path))) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
            infos = zin.infolist()
            if sum(i.file_size for i in infos) > limit:
                raise SheetsgdError(f"the file inflates to over {book.limits.max_total_mb:g} MB: not recalculated")
            for info in infos:
                data = zin.read(info)
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    data = _EMPTY_NUMBER.sub(rb"\1\2", _EXTRAS.sub(b"", data))
                zout.writestr(info.filename, data)
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
        raise SheetsgdError(f"cannot copy the file for recalculation ({type(exc).__name__})", path) from None
    return out


def time_left() -> float:
    left = deadline.remaining()
    return ENGINE_TIMEOUT if left is None else max(0.1, min(left, ENGINE_TIMEOUT))


def _die_with_parent() -> None:
    try:  # Linux: the kernel kills the child when its parent dies
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - other platforms: the alarm still ends it
        pass


def _ironcalc(path: str, wanted: dict, inputs: dict) -> dict:
    """In the child: load, set inputs, evaluate, read the wanted cells {sheet: (rows, cols)} -> {sheet: values}."""
    import ironcalc

    delay = float(os.environ.get("SHEETSGD_TEST_ENGINE_DELAY", "0") or 0)  # the tests' slow engine
    if delay > 0:
        time.sleep(delay)
    model = ironcalc.load_from_xlsx(path, "en", "UTC")
    names = [s["name"] for s in model.get_worksheets_properties()]
    for (sheet, row, col), number in inputs.items():
        model.update_cell_with_number(names.index(sheet), row, col, number)
    model.evaluate()
    out = {}
    for sheet, (rows, cols) in wanted.items():
        index, get, values = names.index(sheet), model.get_cell_value, []
        for r, c in zip(rows, cols):
            v = get(index, r, c)
            if isinstance(v, str) and v.startswith("#"):
                v = CellError(v)  # IronCalc's errors (#CIRC!, #NUM!, …): never a number
            elif isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            values.append(v)
        out[sheet] = values
    return out


def run_ironcalc(path: str, wanted: dict, inputs: dict | None = None, memory_mb: float = ENGINE_MEMORY_MB) -> dict:
    """IronCalc's values of the wanted cells, computed in a forked child under the time and memory limits."""
    timeout = time_left()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the checker
        code = 0
        try:
            os.close(read_fd)
            faulthandler.disable()  # a crash in the engine is reported by the parent, in one line
            devnull = os.open(os.devnull, os.O_WRONLY)  # IronCalc prints a line per formula without a value
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(int(timeout) + 5)  # ends itself too, should the parent be killed (grade's worker timeout)
            _die_with_parent()
            cap_memory(memory_mb)
            try:
                message = ("ok", _ironcalc(path, wanted, inputs or {}))
            except BaseException as exc:  # a Rust panic is a BaseException
                message = ("error", f"{type(exc).__name__}: {str(exc)[:160]}")
            payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks, end, status = [], time.monotonic() + timeout, None
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise SheetsgdError(f"the embedded engine (IronCalc) did not finish within {timeout:g} s")
            ready, _, _ = select.select([read_fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        os.close(read_fd)
        if pid:  # out of time, interrupted (--timeout), or a bug: the child goes with it
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    if os.WIFSIGNALED(status) or not chunks:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
        raise SheetsgdError(f"the embedded engine (IronCalc) crashed recalculating the file ({how}; its memory "
                            f"cap is {memory_mb:g} MB)")
    kind, result = pickle.loads(b"".join(chunks))
    if kind != "ok":
        raise SheetsgdError(f"the embedded engine could not recalculate the file ({result})")
    return result


def ironcalc_sources(path: str, book, sheets: list[str], inputs: dict | None = None):
    """{sheet: value(row, col)} for every formula cell of ``sheets``, recalculated by IronCalc (in a child)."""
    wanted = {}
    for name in sheets:
        sheet = book.sheet(name)
        at = np.flatnonzero(sheet._whole_sheet_arrays()[1])
        wanted[name] = (sheet._rows[at].tolist(), sheet._cols[at].tolist())
    with tempfile.TemporaryDirectory(prefix="sheetsgd-engine-") as folder:
        values = run_ironcalc(str(engine_copy(path, book, folder)), wanted, inputs)
    out = {}
    for name, (rows, cols) in wanted.items():
        table = dict(zip(zip(rows, cols), values[name]))
        out[name] = lambda row, col, table=table: table.get((row, col))
    return out


def libreoffice_book(path: str, book, limits):
    """The workbook as LibreOffice recalculates it (a copy; its own process group, under the deadline)."""
    from .libreoffice import recalc_libreoffice
    from sheetsgd.read.workbook import Workbook

    folder = tempfile.mkdtemp(prefix="sheetsgd-check-")
    src = Path(folder, "in")
    src.mkdir()
    copy = engine_copy(path, book, str(src))
    [out] = recalc_libreoffice([copy], Path(folder, "out"), timeout=time_left(), memory_mb=LIBREOFFICE_MEMORY_MB)
    return Workbook(str(out), limits)
