"""The one formula parser: A1 formula text (or a row pattern with ``{field}`` rows) → a tree.

Every formula sheetsgd writes is a *row pattern*: A1 text whose row numbers may be fields filled in
per row, e.g. ``H{p}-lr*K{r}`` or ``SUMPRODUCT(Examples!$F${lo}:$F${hi},Data!$C${dlo}:$C${dhi})/{n}``.
This module parses such text once into a tree that the checker evaluates with numpy
(:mod:`sheetsgd.sheet.evaluate`), the student version reads dependencies from (:mod:`sheetsgd.sheet.blocks`), the
mistake catalogue edits (:mod:`sheetsgd.check.mistakes.catalogue`) and :func:`render` turns back into text.

Nodes are tuples: ``("num", x)``, ``("str", s)``, ``("bool", b)``, ``("name", n)``, ``("ref", Ref)``,
``("neg", t)``, ``("pct", t)``, ``("bin", op, a, b)``, ``("call", NAME, [args])``.
Spreadsheet precedence: comparison < & < + − < * / < ^ < unary minus < %.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name


class FormulaError(ValueError):
    pass


@dataclass(frozen=True)
class Row:
    """A row number: a constant (1-based) or a pattern field (``{r}``) plus an offset."""

    field: str | None
    value: int  # the constant, or the offset added to the field
    absolute: bool = False

    def text(self) -> str:
        core = str(self.value) if self.field is None else "{" + self.field + "}"
        if self.field is not None and self.value:
            raise FormulaError("a field row with an offset has no text form")
        return ("$" if self.absolute else "") + core


@dataclass(frozen=True)
class Ref:
    """A cell or a rectangular range, on ``sheet`` (None: the formula's own sheet). Columns 0-based."""

    sheet: str | None
    col1: int
    row1: Row
    col2: int
    row2: Row
    col1_abs: bool = False
    col2_abs: bool = False
    is_range: bool = False

    def text(self) -> str:
        first = ("$" if self.col1_abs else "") + xl_col_to_name(self.col1) + self.row1.text()
        out = first
        if self.is_range:
            out += ":" + ("$" if self.col2_abs else "") + xl_col_to_name(self.col2) + self.row2.text()
        if self.sheet is not None:
            quoted = self.sheet if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", self.sheet) else \
                "'" + self.sheet.replace("'", "''") + "'"
            out = quoted + "!" + out
        return out

    @property
    def width(self) -> int:
        return self.col2 - self.col1 + 1


_CELL = r"(\$?)([A-Z]{1,3})(\$?)([0-9]{1,7}|\{\w+\})"
_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<str>\"(?:[^\"]|\"\")*\")"
    r"|(?P<ref>(?:(?:'(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_.]*)!)?" + _CELL + r"(?::" + _CELL + r")?)(?![A-Za-z0-9_(])"
    r"|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<func>[A-Za-z_][A-Za-z0-9_.]*)\s*(?=\()"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<op><=|>=|<>|[-+*/^&=<>(),%:])"
    r"|(?P<field>\{\w+\}))")
_REF_PARTS = re.compile(r"^(?:('(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_.]*)!)?" + _CELL + r"(?::" + _CELL + r")?$")
_BINARY = {"=": 1, "<": 1, ">": 1, "<=": 1, ">=": 1, "<>": 1, "&": 2, "+": 3, "-": 3, "*": 4, "/": 4, "^": 5}
MAX_DEPTH = 200  # formulas nest at most 64 function levels in Excel; deeper text is refused, not recursed into


def _row(absolute: str, digits: str) -> Row:
    if digits.startswith("{"):
        return Row(digits[1:-1], 0, bool(absolute))
    return Row(None, int(digits), bool(absolute))


def _ref(text: str) -> Ref:
    m = _REF_PARTS.match(text)
    sheet, c1a, c1, r1a, r1, c2a, c2, r2a, r2 = m.groups()
    if sheet and sheet.startswith("'"):
        sheet = sheet[1:-1].replace("''", "'")
    col1 = xl_cell_to_rowcol(c1 + "1")[1]
    row1 = _row(r1a, r1)
    if c2 is None:
        return Ref(sheet, col1, row1, col1, row1, bool(c1a), bool(c1a), False)
    col2 = xl_cell_to_rowcol(c2 + "1")[1]
    return Ref(sheet, col1, row1, col2, _row(r2a, r2), bool(c1a), bool(c2a), True)


def tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text[1:] if text.startswith("=") else text
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise FormulaError(f"cannot read {text[pos:pos + 20]!r}")
        out.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return out


def parse(text: str):
    """Formula or row-pattern text (with or without '=') → tree. Raises FormulaError."""
    toks = tokens(text)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else ("end", "")

    def take(expected=None):
        nonlocal pos
        tok = peek()
        if expected is not None and tok[1] != expected:
            raise FormulaError(f"expected {expected!r} in {text[:60]!r}")
        pos += 1
        return tok

    def primary(depth):
        if depth > MAX_DEPTH:
            raise FormulaError("formula nested too deeply")
        kind, val = take()
        if kind == "num":
            return ("num", float(val))
        if kind == "str":
            return ("str", val[1:-1].replace('""', '"'))
        if kind == "ref":
            return ("ref", _ref(val))
        if kind == "name":
            up = val.upper()
            return ("bool", up == "TRUE") if up in ("TRUE", "FALSE") else ("name", val)
        if kind == "field":
            return ("field", val[1:-1])
        if kind == "func":
            take("(")
            args = []
            if peek()[1] != ")":
                args.append(expr(0, depth + 1))
                while peek()[1] == ",":
                    take()
                    args.append(expr(0, depth + 1))
            take(")")
            return ("call", val.upper(), args)
        if val == "(":
            inner = expr(0, depth + 1)
            take(")")
            return inner
        if val in ("-", "+"):  # unary minus binds tighter than ^ in spreadsheets: -2^2 = 4
            operand = postfix(primary(depth + 1))
            return ("neg", operand) if val == "-" else operand
        raise FormulaError(f"unexpected {val or 'end'!r} in {text[:60]!r}")

    def postfix(node):
        while peek() == ("op", "%"):
            take()
            node = ("pct", node)
        return node

    def expr(min_prec, depth=0):
        left = postfix(primary(depth))
        while True:
            kind, op = peek()
            prec = _BINARY.get(op) if kind == "op" else None
            if prec is None or prec < min_prec:
                return left
            take()
            right = expr(prec + 1, depth + 1)  # left-associative, ^ too (spreadsheets: 2^3^2 = 64)
            left = ("bin", op, left, right)

    tree = expr(0)
    if pos != len(toks):
        raise FormulaError(f"trailing text in {text[:60]!r}")
    return tree


def walk(tree):
    """Every node of a tree, depth first."""
    yield tree
    kind = tree[0]
    if kind in ("neg", "pct"):
        yield from walk(tree[1])
    elif kind == "bin":
        yield from walk(tree[2])
        yield from walk(tree[3])
    elif kind == "call":
        for arg in tree[2]:
            yield from walk(arg)


def refs(tree) -> list[Ref]:
    return [node[1] for node in walk(tree) if node[0] == "ref"]


def names(tree) -> set[str]:
    return {node[1] for node in walk(tree) if node[0] == "name"}


def functions(tree) -> set[str]:
    return {node[1] for node in walk(tree) if node[0] == "call"}


def transform(tree, fn):
    """A copy of the tree with ``fn(node)`` applied bottom-up (fn returns the node or a replacement)."""
    kind = tree[0]
    if kind in ("neg", "pct"):
        tree = (kind, transform(tree[1], fn))
    elif kind == "bin":
        tree = ("bin", tree[1], transform(tree[2], fn), transform(tree[3], fn))
    elif kind == "call":
        tree = ("call", tree[1], [transform(a, fn) for a in tree[2]])
    return fn(tree)


_PREC = {"bin": None, "neg": 6, "pct": 7}


def _prec(node) -> int:
    if node[0] == "bin":
        return _BINARY[node[1]]
    return _PREC.get(node[0], 9)


def render(tree, fields: dict[str, int] | None = None) -> str:
    """Tree → formula text (no '='); ``fields`` fill row fields with numbers, else they stay ``{field}``."""
    kind = tree[0]
    if kind == "num":
        x = tree[1]
        return str(int(x)) if x == int(x) and abs(x) < 1e15 else repr(x)
    if kind == "str":
        return '"' + tree[1].replace('"', '""') + '"'
    if kind == "bool":
        return "TRUE" if tree[1] else "FALSE"
    if kind == "name":
        return tree[1]
    if kind == "field":
        return str(fields[tree[1]]) if fields else "{" + tree[1] + "}"
    if kind == "ref":
        ref = tree[1]
        if fields:
            ref = fill(ref, fields)
        return ref.text()
    if kind == "neg":
        inner = render(tree[1], fields)
        return "-" + (f"({inner})" if _prec(tree[1]) < 6 else inner)
    if kind == "pct":
        return render(tree[1], fields) + "%"
    if kind == "call":
        return tree[1] + "(" + ",".join(render(a, fields) for a in tree[2]) + ")"
    _, op, a, b = tree
    p = _BINARY[op]
    left, right = render(a, fields), render(b, fields)
    if _prec(a) < p:
        left = f"({left})"
    if _prec(b) <= p:  # left-associative: a-(b-c) keeps its parentheses
        right = f"({right})"
    return left + op + right


def fill(ref: Ref, fields: dict[str, int]) -> Ref:
    """The reference with field rows replaced by the numbers of one row."""
    def one(row: Row) -> Row:
        if row.field is None:
            return row
        return Row(None, fields[row.field] + row.value, row.absolute)
    return replace(ref, row1=one(ref.row1), row2=one(ref.row2))
