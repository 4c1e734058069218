"""No unbounded run: the size of what a command would produce, estimated from the lesson before computing.

``build`` of every kind and ``trace`` call :func:`guard` first. The estimate is the workbook's cells,
rows, columns and longest formula (the data lessons' and Titanic's own planners, a count of rows ×
columns for the other kinds); past Google Sheets' 10 M cells or Excel's limits the command is refused
with advice, before any training. ``trace`` prints one number per step and column, so the same bound
keeps it to seconds and a bounded amount of memory.
"""
from __future__ import annotations

import contextlib
import os

from sheetsgd.errors import SheetsgdError
from .sizeguard import WorkbookSize


def _sgd_size(lesson) -> WorkbookSize:
    from sheetsgd.lessons.sgd.spec import step_columns
    from sheetsgd.lessons.sgd.workbook import estimate_size

    return estimate_size(lesson, step_columns(lesson))


def _function_size(lesson) -> WorkbookSize:
    columns = 1 + (6 if lesson.schedule else 5) * len(lesson.runs)  # a schedule: an lr column per run
    rows = lesson.steps + 10 + len(lesson.runs) + 7  # the named inputs above the steps
    return WorkbookSize(cells=rows * columns + 4 * len(lesson.runs), formula_cells=lesson.steps * (columns - 1),
                        longest_formula=200, max_rows=rows, max_columns=columns)


def _compare_size(lesson) -> WorkbookSize:
    sizes = [_sgd_size(les) for les in lesson.lessons().values()]
    steps, epochs = lesson.base.n_steps, lesson.base.epochs
    compare_cells = (steps + epochs) * (2 + len(sizes))
    return WorkbookSize(cells=sum(s.cells for s in sizes) + compare_cells,
                        formula_cells=sum(s.formula_cells for s in sizes) + compare_cells,
                        longest_formula=max(s.longest_formula for s in sizes),
                        max_rows=max([s.max_rows for s in sizes] + [steps + 10]),
                        max_columns=max(s.max_columns for s in sizes))


def _finder_size(lesson) -> WorkbookSize:
    from sheetsgd.lessons.lr_finder.finder import finder_columns

    n_it, base = lesson.num_it, lesson.base
    columns = len(finder_columns(lesson))
    cells = (n_it + 10) * columns
    rows, width = n_it + 10, columns
    data = getattr(base, "data", None)
    if getattr(base, "kind", "sgd") == "titanic":
        per_example = len(data.feature_keys) + 2 * len(base.init) + 10
        example_rows = n_it * base.batch_size
        cells += example_rows * per_example + len(data) * (len(data.feature_keys) + 10)
        rows = max(rows, example_rows + 10)
        width = max(width, per_example)
    elif data is not None:
        cells += 3 * len(data)
        rows = max(rows, len(data) + 2)
    return WorkbookSize(cells=cells, formula_cells=cells, longest_formula=0, max_rows=rows, max_columns=width)


def _titanic_size(lesson) -> WorkbookSize:
    from sheetsgd.lessons.tabular.workbook import TitanicWorkbook

    return TitanicWorkbook(lesson).size()


def _collab_size(lesson) -> WorkbookSize:
    from sheetsgd.lessons.collab.layout import Layout

    lay = Layout(lesson)
    k, U, M, S = lay.k, lay.U, lay.M, lay.S
    per_step = U * (3 * M + 2 + lay.v2) + (lay.N + 1) * (6 + 2 * k) + lay.H * 6 + (U + M) * (4 + 3 * k) + 5  # + Loss row
    cells = S * per_step + (U + M) * (k + 4) + U * (3 * M + 2)
    rows = S * max(U, M, lay.N, lay.H) + 10
    return WorkbookSize(cells=cells, formula_cells=cells, longest_formula=300 + 60 * k, max_rows=rows,
                        max_columns=3 * M + 6 + 2 * k)


def _attention_size(lesson) -> WorkbookSize:
    from sheetsgd.lessons.attention.layout import Layout

    lay = Layout(lesson)
    return WorkbookSize(cells=lay.cells, formula_cells=lay.cells, longest_formula=60 * lay.T * lay.T,
                        max_rows=lay.S * max(lay.B, lay.T) + 10, max_columns=len(lay.ex_keys))



def _conv_size(lesson) -> WorkbookSize:
    from sheetsgd.lessons.conv.layout import estimate

    return estimate(lesson)

ESTIMATORS = {"attention": _attention_size, "conv": _conv_size, "collab": _collab_size, "sgd": _sgd_size,
              "function": _function_size, "optimizers": _compare_size, "lr-finder": _finder_size, "titanic": _titanic_size}

ADVICE = {"attention": "use fewer epochs (--epochs), a smaller batch or shorter sequences",
          "conv": "use fewer epochs, fewer training images or smaller images",
          "collab": "use fewer steps (--epochs), fewer users or movies, or a lower density",
          "sgd": "use fewer epochs or a larger batch (or fewer rows)",
          "titanic": "use fewer epochs, a larger batch or fewer rows",
          "function": "use fewer steps (--epochs) or fewer runs",
          "optimizers": "use fewer epochs, a larger batch or fewer optimizers",
          "lr-finder": "use fewer rows (num_it, --epochs) or a smaller batch"}


def cap_memory(max_memory_mb: float):
    """Cap this process's address space (the soft limit) at what it has now plus ``max_memory_mb``
    (``check``, each ``grade`` worker): past it an allocation fails with MemoryError, reported as one
    line. Returns the previous soft limit, for :func:`memory_cap` to restore."""
    try:
        import resource

        with open("/proc/self/statm") as fh:  # the address space already mapped (Linux)
            start = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = start + int(max_memory_mb * 2**20)
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        return soft
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on every platform
        return None


@contextlib.contextmanager
def memory_cap(max_memory_mb: float):
    """:func:`cap_memory` for the block only (``check`` run in a caller's process keeps its own limit)."""
    previous = cap_memory(max_memory_mb)
    try:
        yield
    finally:
        if previous is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (previous, resource.getrlimit(resource.RLIMIT_AS)[1]))


def estimate(lesson) -> WorkbookSize:
    return ESTIMATORS[getattr(lesson, "kind", "sgd")](lesson)


# A check rebuilds the lesson its manifest names; the rebuild may cost at most this many cells per cell the
# submitted file itself holds, plus a constant (a student version leaves its exercise columns blank; a
# small lesson is always affordable): a 30 KB file never buys a 10 M-cell rebuild.
CHECK_CELLS_PER_FILE_CELL = 4
CHECK_FREE_CELLS = 100_000


def file_cells(book) -> int:
    """The cells the workbook's worksheets hold (each sheet read once, as the check reads them anyway)."""
    from sheetsgd.errors import SheetsgdError as Refused

    held = 0
    book.read_sheets()
    for name in book.sheet_names:
        try:
            held += len(book.sheet(name)._rows)
        except Refused:  # a chart sheet, a missing part: holds no cells (the check says why if it matters)
            pass
    return held


def guard_check(lesson, book) -> WorkbookSize:
    """:func:`guard`, and the rebuild bounded by the submitted file's own cells (one-line refusal)."""
    size = guard(lesson, "check")
    book.shared_strings()  # bounded (sheetsgd.read.package) before any engine loads the file
    if size.cells > CHECK_FREE_CELLS:
        held = file_cells(book)
        budget = CHECK_CELLS_PER_FILE_CELL * held + CHECK_FREE_CELLS
        if size.cells > budget:
            raise book.error(f"its manifest names a lesson of {size.cells:,} cells, far more than the file holds "
                             f"({held:,} cells; a check rebuilds at most {CHECK_CELLS_PER_FILE_CELL} × the file's "
                             f"cells + {CHECK_FREE_CELLS:,}): a tampered manifest?")
    return size


def guard(lesson, command: str = "build") -> WorkbookSize:
    """Refuse (one-line SheetsgdError) a lesson whose workbook would not fit, before computing anything."""
    kind = getattr(lesson, "kind", "sgd")
    size = estimate(lesson)
    advice = ADVICE[kind]
    if command == "trace":
        problems = size.problems()
        if problems:
            raise SheetsgdError(f"run too large to trace: its workbook would hold {'; '.join(problems)}: {advice}",
                                getattr(lesson, "source", None) or None)
        return size
    size.check(getattr(lesson, "source", None) or None, advice=advice)
    return size
