"""How every lesson kind's sheets look: a number format per column from its values, widths from rendered text.

One module decides it for all writers (data lessons, too-high, the optimizers, the lr finders, Titanic,
collab-filter):

- :func:`number_format` — one format for a column, from the engine's values of that column: integers
  as ``0``; fixed decimals giving :data:`SIGNIFICANT` significant digits to the column's small
  magnitudes (the 5th percentile of its non-zero values); scientific (``0.000E+00``) only where magnitudes demand it (very large or very small
  values, or a column spanning many orders of magnitude, as a diverging run does).
- :func:`render` — the text a spreadsheet shows for a value in such a format (for measuring).
- :func:`text_width` — the width of a text in column-width units, measured with a real font
  (Pillow's FreeType binding and DejaVu Sans, the font LibreOffice draws Calibri with where Calibri
  and Carlito are absent; DejaVu is wider than both, so a width fitted to it fits in Excel too).
- :class:`Widths` — per sheet, the widest text each column must hold (header words, values, labels):
  ``fit`` widens a column, never narrows it, so blocks and labels sharing a column all fit.
- :func:`quantity` / :func:`quantity_format` — one format per quantity across a workbook (every loss,
  accuracy, weight): the first column of a quantity decides it, the others follow (the book keeps them).

Row heights, print set-up and values beyond a column's magnitude: :mod:`sheetsgd.sheet.readable`.
"""
from __future__ import annotations

import functools
import math
import re
import subprocess

import numpy as np

SIGNIFICANT = 4  # significant digits shown for the smallest magnitude of a column
SCIENTIFIC = "0.000E+00"
MAX_DECIMALS = 6
FONT_SIZE = 11  # xlsxwriter's default (Calibri 11)
HEADER_LINES = 3  # header rows are 45 points high: three wrapped lines of text
MAX_WIDTH = 60  # a column never grows wider than this (longer labels wrap or overflow into empty cells)
_FONT_FILES = {False: ("DejaVuSans.ttf", "DejaVu Sans"), True: ("DejaVuSans-Bold.ttf", "DejaVu Sans:bold")}


def _finite(values) -> np.ndarray:
    """The finite numbers among ``values`` (texts such as error codes and "" left out)."""
    try:
        arr = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        out = []
        for v in values:
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                continue
        arr = np.asarray(out, dtype=float)
    return arr[np.isfinite(arr)]


def number_format(values, given: str = "General") -> str:
    """The one number format of a column holding ``values`` (non-numbers and non-finite values ignored).

    ``given`` is kept when it is not a plain numeric format (text, percentages, dates)."""
    if not _numeric(given):
        return given
    sections = given.split(";")
    if len(sections) >= 3 and sections[2] == "":  # zero shows empty (collab's unrated errors): kept so
        base = number_format(values)
        return f"{base};-{base};" + ";" * (len(sections) - 3)
    nums = _finite(values)
    if not nums.size:
        return given if given != "General" else "0.000"
    mags = np.abs(nums[nums != 0])
    if np.all(nums == np.round(nums)) and (not mags.size or mags.max() < 1e9):
        return "0"
    # the small end of the column's typical magnitudes: a value that merely passes near zero (a z crossing
    # 0, a gradient at convergence) shows as 0.000… rather than turning the whole column scientific
    lo, hi = float(np.percentile(mags, 5)), float(mags.max())
    if hi >= 1e6 or lo < 10.0 ** -(MAX_DECIMALS - SIGNIFICANT + 1) or hi / lo >= 1e5:
        return SCIENTIFIC
    decimals = min(MAX_DECIMALS, max(0, SIGNIFICANT - 1 - math.floor(math.log10(lo))))
    return "0." + "0" * decimals if decimals else "0"


def _numeric(given: str) -> bool:
    """Whether a format is a plain number format (not text, a percentage, a date or a time)."""
    return not (any(ch in given for ch in '%@"/') or given.lower().startswith(("d", "m", "y", "h")))


def render(value, num_format: str) -> str:
    """The text a spreadsheet shows for ``value`` in ``num_format`` (as far as measuring it goes)."""
    if isinstance(value, str):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "#NUM!"
    if ";" in num_format:  # positive;negative;zero sections
        sections = num_format.split(";")
        if v == 0 and len(sections) > 2:
            return render(0.0, sections[2]) if sections[2] else ""
        return ("-" if v < 0 else "") + render(abs(v), sections[0])
    if num_format == "0":
        return f"{v:.0f}"
    if num_format.startswith("0.") and "E" not in num_format:
        return f"{v:.{len(num_format) - 2}f}"
    if "E" in num_format:
        decimals = num_format.index("E") - 2 if "." in num_format else 0
        mantissa, exp = f"{v:.{decimals}E}".split("E")
        return f"{mantissa}E{exp[0]}{int(exp[1:]):02d}"
    return f"{v:.10g}"


@functools.lru_cache(maxsize=None)
def _font(bold: bool):
    try:
        from PIL import ImageFont
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return None
    name, pattern = _FONT_FILES[bold]
    candidates = [name]
    try:
        found = subprocess.run(["fc-match", "-f", "%{file}", pattern], capture_output=True, text=True, timeout=10)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(found.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += [f"/usr/share/fonts/truetype/dejavu/{name}", f"/usr/share/fonts/dejavu/{name}"]
    for candidate in candidates:
        try:
            return ImageFont.truetype(candidate, FONT_SIZE)
        except OSError:
            continue
    return ImageFont.load_default(FONT_SIZE)


@functools.lru_cache(maxsize=65536)
def text_width(text: str, bold: bool = False) -> float:
    """Column-width units (Excel's: the width of '0' in Calibri 11, 7 pixels) that ``text`` needs, padding included.

    Measured at 11 points and 96 dpi with DejaVu Sans; a column of width w is 7w + 5 pixels wide."""
    font = _font(bold)
    if not text:
        return 0.0
    if font is None:  # pragma: no cover - no font at all: a wide estimate
        points = 8.0 * len(text)
    else:
        points = max(font.getlength(line) for line in text.split("\n"))
    pixels = points * 96 / 72 + 8  # cell padding on both sides, and a little room
    return round(max(0.0, (pixels - 5) / 7) + 0.5, 1)


def header_width(header: str, lines: int = HEADER_LINES) -> float:
    """The narrowest width at which ``header`` (bold, wrapped at spaces) fits in ``lines`` lines without
    breaking a word."""
    words = header.split()
    if not words:
        return 0.0
    widest_word = max(text_width(w, True) for w in words)
    whole = text_width(header, True)
    if whole <= widest_word or lines <= 1:
        return max(whole, widest_word) if lines <= 1 else whole
    lo, hi = widest_word, whole
    for _ in range(20):  # the smallest width that wraps into `lines` lines
        mid = (lo + hi) / 2
        if _lines_at(words, mid) <= lines:
            hi = mid
        else:
            lo = mid
    return round(hi + 0.5, 1)


def _lines_at(words: list[str], width: float) -> int:
    n, line = 1, ""
    for w in words:
        trial = f"{line} {w}" if line else w
        if line and text_width(trial, True) > width:
            n, line = n + 1, w
        else:
            line = trial
    return n


def values_width(values, num_format: str) -> float:
    """The width the widest rendered value of a column needs (the extremes and a sample are measured)."""
    texts = set()
    nums = _finite(values)
    if nums.size:
        mags = np.abs(nums)

        def shown(v):  # a fixed format shows a value of a million and more in scientific (a conditional format)
            return render(v, "0.00E+00" if abs(v) >= 1e6 and _decimals(num_format) is not None else num_format)
        for v in (nums.min(), nums.max(), nums[mags.argmin()], nums[mags.argmax()]):
            texts.add(shown(float(v)))
        step = max(1, nums.size // 200)
        texts.update(shown(float(v)) for v in nums[::step])
    for v in values:  # an overflow shows #NUM!, a cached error its text; a blank ("") nothing
        if isinstance(v, float) and not math.isfinite(v):
            texts.add("#NUM!")
        elif isinstance(v, str) and v.startswith("#"):
            texts.add(v)
    return max((text_width(t) for t in texts), default=0.0)


def column_width(header: str, values=(), num_format: str = "General", minimum: float = 4.0,
                 lines: int = HEADER_LINES) -> float:
    """The width of a column: its header wrapped on ``lines`` lines and every value of it rendered in its format."""
    return min(MAX_WIDTH, max(minimum, header_width(header, lines), values_width(list(values), num_format)))


class Widths:
    """The widest content of each column of one worksheet so far; ``fit`` sets the column to it."""

    def __init__(self, ws):
        self.ws = ws
        self.width: dict[int, float] = {}

    def fit(self, col: int, width: float) -> None:
        if width > self.width.get(col, 0.0):
            self.width[col] = width
            if not getattr(self.ws, "is_null", False):
                self.ws.set_column(col, col, width)

    def fit_range(self, first: int, last: int, width: float) -> None:
        for col in range(first, last + 1):
            self.fit(col, width)

    def fit_text(self, col: int, *texts: str, bold: bool = False) -> None:
        """Widen a column to hold labels (never clipped)."""
        self.fit(col, min(MAX_WIDTH, max((text_width(t, bold) for t in texts if t), default=0.0)))


def widths(ws) -> Widths:
    """The :class:`Widths` of a worksheet (one per sheet, kept on it)."""
    if getattr(ws, "is_null", False):
        return Widths(ws)
    w = getattr(ws, "_sheetsgd_widths", None)
    if w is None:
        w = Widths(ws)
        try:
            ws._sheetsgd_widths = w
        except AttributeError:  # pragma: no cover
            pass
    return w


# every loss a lesson shows (per step, smoothed, best so far, per epoch, validation, held back, objective)
_LOSS_KEYS = {"loss", "avg", "smooth", "best", "plot", "smooth_used", "objective", "full_loss"}
FIXED_QUANTITY_FORMATS = {"accuracy": "0.0000"}  # a share of examples right: the same 4 decimals everywhere


@functools.lru_cache(maxsize=65536)
def quantity(key: str) -> str:
    """The quantity a column key belongs to: columns of one quantity share a format across the workbook
    (grad_a and grad_b, err_m1 … err_m15, w_Age and new_w_Age; every loss: per step, smoothed, per epoch)."""
    k = key.rsplit(":", 1)[-1]  # the Titanic Solver's rows: solver:loss, sgd:w_Age …
    k = k[4:] if k.startswith("new_") and len(k) > 4 else k
    k = re.sub(r"^r\d+_", "", k)  # too-high's runs: every run's x, f(x), f′(x) alike
    base = k.split("_")[0] if "_" in k else k.rstrip("0123456789") or k
    if k in _LOSS_KEYS or base == "loss" or k.endswith("_loss"):
        return "loss"
    if base in ("correct", "accuracy") or k.endswith("_accuracy"):
        return "accuracy"
    return base


def _decimals(num_format: str) -> int | None:
    """Decimals of a fixed format ("0.000" → 3, "0" → 0); None for scientific or other formats."""
    if num_format == "0":
        return 0
    if num_format.startswith("0.") and set(num_format[2:]) == {"0"}:
        return len(num_format) - 2
    return None


def quantity_format(registry: dict | None, q: str, values, given: str = "General") -> str:
    """The number format of quantity ``q`` in one workbook: the first column of it decides (from its values),
    every later one shows the same (a value too large for it turns scientific by a conditional format,
    see :func:`sheetsgd.sheet.readable.scientific_beyond`); ``registry`` ({quantity: format},
    the workbook's) remembers the decisions."""
    if q in FIXED_QUANTITY_FORMATS and _numeric(given):
        return FIXED_QUANTITY_FORMATS[q]
    blank_zero = given.count(";") >= 2 and given.split(";")[2] == ""
    if registry is not None and _numeric(given) and q in registry:
        kept = registry[q].split(";")[0]
        return f"{kept};-{kept};;" if blank_zero else kept
    own = number_format(values, given)
    if registry is not None and _numeric(given):
        registry[q] = own.split(";")[0]
    return own


def present_block(block, extra_values: dict | None = None, registry: dict | None = None) -> None:
    """Decide each column's one number format from the engine's values (plus ``extra_values[key]``, e.g.
    a start row written above the block), shared by the columns of one :func:`quantity` (across the
    workbook with its ``registry``); once per block."""
    if getattr(block, "_presented", False):
        return
    extra = extra_values or {}
    groups: dict[tuple[str, str], list] = {}
    for c in block.columns:
        values = list(block.values.get(c.key, ())) + list(extra.get(c.key, ()))
        groups.setdefault((quantity(c.key), c.number_format), []).extend(values)
    decided = {group: quantity_format(registry, group[0], values, group[1]) for group, values in groups.items()}
    for c in block.columns:
        c.number_format = decided[(quantity(c.key), c.number_format)]
    block._presented = True


def fit_block(ws, block) -> None:
    """Widen the block's columns to their headers and rendered values."""
    w = widths(ws)
    for c in block.columns:
        w.fit(c.col, column_width(c.header, block.values.get(c.key, ()), c.number_format))


# --- student versions: cells that depend on a blank look blank until it is filled -----------------

def _letter(col: int) -> str:
    from xlsxwriter.utility import xl_col_to_name
    return xl_col_to_name(col)


def _sheet_ref(sheet: str, own: str) -> str:
    if sheet == own:
        return ""
    return "'" + sheet.replace("'", "''") + "'!"


def blank_test(plan, block, row: int, own: str | None = None) -> str | None:
    """A portable formula, true while any blank the student fills in is still empty: blanks of ``block``
    from its first row to ``row`` (0-based, relative), other blocks' blanks as whole ranges."""
    terms, ranges = [], {}
    own = block.sheet if block is not None else own
    for eb in plan.blocks:
        for key in sorted(plan.exercise.get(eb.name, ())):
            try:
                col = eb.column(key).col
            except StopIteration:
                continue
            if block is not None and eb is block:
                L = _letter(col)
                terms.append(f"COUNTBLANK(${L}${eb.first_row + 1}:${L}{row + 1})")
            else:
                lo, hi = ranges.get((eb.sheet, col), (eb.first_row, eb.last_row))
                ranges[(eb.sheet, col)] = (min(lo, eb.first_row), max(hi, eb.last_row))
    for (sheet, col), (lo, hi) in sorted(ranges.items()):
        L = _letter(col)
        terms.append(f"COUNTBLANK({_sheet_ref(sheet, own)}${L}${lo + 1}:${L}${hi + 1})")
    return "+".join(terms) + ">0" if terms else None


def hide_until_filled(ws, fmt, block, plan) -> None:
    """Conditional formatting over the cells of ``block`` that depend on blanks: no text shown (font the
    background's colour, number format ``;;;``) while a blank they read is empty. Formulas unchanged."""
    if plan is None or getattr(ws, "is_null", False):
        return
    style = fmt.hidden()
    for c in block.columns:
        if c.pattern is None or plan.is_blank(block, c.key):
            continue
        dirty = plan.dirty_from(block, c.key)
        if dirty >= block.n:
            continue
        top = block.first_row + dirty
        test = blank_test(plan, block, top)
        if test:
            ws.conditional_format(top, c.col, block.last_row, c.col,
                                  {"type": "formula", "criteria": "=" + test, "format": style})


def hide_outside_blocks(wb, fmt, plan) -> None:
    """The same rule over the cells outside blocks that read an answer (Epochs, the fitted curve, the
    Solver's SGD row, the lr finder's suggestions): nothing shown while any blank is empty."""
    if plan is None:
        return
    for sheet, col, top, bottom in plan.extra_regions:
        ws = wb.get_worksheet_by_name(sheet)
        test = blank_test(plan, None, top, own=sheet)
        if ws is not None and test:
            ws.conditional_format(top, col, bottom, col, {"type": "formula", "criteria": "=" + test,
                                                          "format": fmt.hidden()})


def sheet_format(ws, q: str, values, given: str = "General") -> str:
    """:func:`quantity_format` for cells written outside blocks (Epochs, Compare, Solver): the workbook's
    format of quantity ``q``."""
    book = getattr(ws, "sheetsgd_book", None)
    return quantity_format(getattr(book, "quantity_formats", None), q, values, given)
