"""An author's own model: ``[model] formula = "a*EXP(-b*t)+c"``, its derivatives, and its numpy evaluation.

The formula is parsed by :mod:`sheetsgd.sheet.a1` (the one parser) and checked there: portable functions only,
names that are the lesson's input or a parameter with a start value. Each ∂ŷ/∂p is derived by sympy
(imported only here, only when a template has a formula) and rendered back to portable formula text,
which is parsed again: the sheet's columns and the engine's numbers come from the same trees, evaluated
by :mod:`sheetsgd.sheet.evaluate` (the checker's evaluator) on numpy arrays.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from sheetsgd.sheet import a1
from sheetsgd.errors import SheetsgdError
from sheetsgd.sheet.evaluate import Context, evaluate
from sheetsgd.sheet.formula import PORTABLE_FUNCTIONS
from .scalar_formula import scalar_function
from sheetsgd.sheet.values import Val

MAX_CELL_FORMULA = 1000  # characters of ŷ or of one ∂ŷ/∂p in a cell (a batch's columns repeat ŷ inside SUMPRODUCTs)
_REF_WIDTH = 12  # what a name becomes in a cell: a reference such as Data!$B$1000 is about this long
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")  # no _: it joins a parameter to its column keys (grad_a, m_a)
# column keys and placeholders of a data lesson's Steps sheet a parameter must not take
RESERVED = frozenset({"step", "epoch", "example", "x", "y", "X", "pred", "err", "loss", "dloss", "first", "last",
                      "pos", "lr", "mom", "TRUE", "FALSE"})
# the portable functions a formula model may use (each with a derivative) and their sympy names
DIFFERENTIABLE = ("ABS", "COS", "EXP", "LN", "LOG10", "PI", "POWER", "SIGN", "SIN", "SQRT")
_KINKS = ("ABS", "SIGN")  # no derivative where their argument is 0


def _sympy():
    try:
        import sympy
    except ImportError:  # pragma: no cover - depends on the installation
        raise SheetsgdError("an own formula needs sympy: pip install 'sheetsgd[formula]'", "[model] formula") from None
    return sympy


@dataclass
class FormulaModel:
    """A model given as formula text; the interface of :mod:`sheetsgd.lessons.sgd.models` plus ∂ŷ/∂p columns."""

    formula: str
    input_name: str
    params: tuple[str, ...]
    predict_formula: str  # placeholders: {X} the input, {a} a parameter's cell
    feature_formulas: dict[str, str | None]  # ∂ŷ/∂p (None: the constant 1)
    derivative_texts: dict[str, str]  # ∂ŷ/∂p in the author's names, for notes and messages
    trees: dict[str, tuple] = field(repr=False)  # "pred" and each parameter: the parsed formulas
    kinks: list[tuple[str, tuple]] = field(repr=False, default_factory=list)  # (text, argument tree) of ABS/SIGN
    where: str = "[model]"  # the template's [model] table, for a refusal while training
    name: str = "formula"
    derived_columns: bool = True  # the Steps sheet shows each ∂ŷ/∂p in a column of its own

    def __post_init__(self):
        self.__doc__ = f"ŷ = {self.formula}"
        self.param_titles = {p: p for p in self.params}
        self._compiled = {}

    def __getstate__(self):  # compiled functions are rebuilt where needed (a lesson crosses processes)
        return {**self.__dict__, "_compiled": {}}

    def _eval(self, tree, p, x):
        with np.errstate(all="ignore"):
            out = evaluate(tree, _Names({**p, self.input_name: x}))
        return out.v

    def _scalar(self, key, p, x):
        """One example in Python floats (the engine's per-example loop): the tree compiled once."""
        fn = self._compiled.get(key)
        if fn is None:
            tree = self.trees[key] if isinstance(key, str) else key
            fn = self._compiled[key] = scalar_function(tree, (self.input_name, *self.params))
        return fn(x, *(p[q] for q in self.params))

    def _is_scalar(self, p, x):
        return type(x) is float and all(type(p[q]) is float for q in self.params)

    def predict(self, p, x):
        if self._is_scalar(p, x):
            return self._scalar("pred", p, x)
        return _shaped(self._eval(self.trees["pred"], p, x), p, x)

    def features(self, x, p):
        """∂ŷ/∂p per example; a point where the model has no derivative is refused (one line)."""
        if self._is_scalar(p, x):
            out = {q: self._scalar(q, p, x) for q in self.params}
            if not (self.kinks or any(v != v or v in (math.inf, -math.inf) for v in out.values())):
                return out
        else:
            out = {q: _shaped(self._eval(self.trees[q], p, x), p, x) for q in self.params}
        if self.kinks or any(not np.all(np.isfinite(v)) for v in out.values()):
            self._refuse_kinks(out, p, x)
        return out

    def _refuse_kinks(self, derivatives, p, x):
        with np.errstate(all="ignore"):
            pred = np.asarray(self.predict(p, x), float)
            finite = np.isfinite(pred) & np.isfinite(np.asarray(x, float)) & np.all(
                [np.isfinite(np.asarray(p[q], float)) for q in self.params], axis=0)
            for text, tree in self.kinks:
                hit = finite & (np.asarray(_shaped(self._eval(tree, p, x), p, x)) == 0)
                if np.any(hit):
                    self._fail(f"{text} has no derivative where its argument is 0", np.argmax(np.ravel(hit)), p, x)
            for q, v in derivatives.items():
                bad = finite & ~np.isfinite(np.asarray(v, float))
                if np.any(bad):
                    self._fail(f"∂ŷ/∂{q} = {self.derivative_texts[q]} is not a number", np.argmax(np.ravel(bad)), p, x)

    def _fail(self, what, i, p, x):
        def at(v):
            a = np.ravel(np.asarray(v, float))
            return float(a[i] if a.size > 1 else a[0])
        point = ", ".join([f"{self.input_name} = {at(x):g}", *(f"{q} = {at(p[q]):g}" for q in self.params)])
        raise SheetsgdError(f"formula: {what} at {point}, a point this lesson visits; change the formula, "
                            "the data or the start values", self.where)


class _Names(Context):
    def __init__(self, values):
        self.values = values

    def name(self, name):
        v = np.asarray(self.values[name], float)
        return Val(v.reshape(-1, 1), np.abs(v).reshape(-1, 1))


def _shaped(v, p, x):
    """The evaluator's (n, 1) column back in the shape of the inputs (a scalar for scalars)."""
    shape = np.broadcast_shapes(np.shape(x), *(np.shape(p[q]) for q in p))
    v = np.ravel(v)
    return float(v[0]) if shape == () else np.broadcast_to(v, shape).copy() if v.size == 1 else v.reshape(shape)


def parse_formula_model(table: dict, input_name: str, where: str) -> tuple[FormulaModel, dict[str, float]]:
    """The model of ``[model] formula`` with its parameters' start values from ``[model] init``."""
    text = table.get("formula")
    if not isinstance(text, str) or not text.strip():
        raise SheetsgdError("formula must be a formula text such as \"a*EXP(-b*t)+c\"", where)
    init = table.get("init", {})
    if not isinstance(init, dict) or "random" in init:
        raise SheetsgdError("formula: give every parameter its start value, as init = { a = 1.0, b = 0.1 }", where)
    if "kind" in table:
        raise SheetsgdError("give kind or formula, not both", where)
    try:
        tree = a1.parse(text)
    except a1.FormulaError as exc:
        raise SheetsgdError(f"formula: cannot read it ({exc})", where) from None
    _check_tree(tree, text, input_name, where)
    names = a1.names(tree)
    if input_name not in names:
        raise SheetsgdError(f"formula: it does not use the input {input_name!r}", where)
    for name in sorted(names - {input_name}):
        if name not in init:
            raise SheetsgdError(f"formula: unknown name {name!r}: not the input {input_name!r} nor a parameter with a "
                                f"start value in init ({', '.join(init) or 'none given'})", where)
    params = tuple(k for k in init if k != input_name)
    unused = [p for p in params if p not in names]
    if unused:
        raise SheetsgdError(f"init gives {', '.join(unused)}, which the formula does not use", where)
    for p in (*params, input_name):
        if not _NAME.match(p) or p in RESERVED:
            raise SheetsgdError(f"formula: {p!r} cannot name a parameter or input (use letters and digits, starting "
                                f"with a letter, not {', '.join(sorted(RESERVED))})", where)
    sympy = _sympy()
    symbols = {n: sympy.Symbol(n, real=True) for n in (*params, input_name)}
    expr = _to_sympy(tree, symbols, sympy)
    trees, texts, features = {"pred": tree}, {}, {}
    for p in params:
        d = sympy.diff(expr, symbols[p])
        try:
            texts[p] = _text(d, sympy)
        except _Unwritable as exc:
            raise SheetsgdError(f"formula: ∂ŷ/∂{p} = {d} has no portable formula ({exc})", where) from None
        trees[p] = a1.parse(texts[p])
        features[p] = None if d == 1 else _placeholders(texts[p], input_name)
    for label, t in [("the formula", text), *((f"∂ŷ/∂{p}", s) for p, s in texts.items())]:
        size = _cell_size(t)
        if size > MAX_CELL_FORMULA:
            raise SheetsgdError(f"formula: {label} is about {size:,} characters in a cell; at most "
                                f"{MAX_CELL_FORMULA:,} fit this lesson's columns (write a shorter formula)", where)
    kinks = [(a1.render(node), node[2][0]) for node in a1.walk(tree) if node[0] == "call" and node[1] in _KINKS]
    model = FormulaModel(formula=text, input_name=input_name, params=params,
                         predict_formula=_placeholders(text, input_name), feature_formulas=features,
                         derivative_texts=texts, trees=trees, kinks=kinks, where=where)
    return model, {p: init[p] for p in params}


def _check_tree(tree, text, input_name, where):
    for node in a1.walk(tree):
        kind = node[0]
        if kind == "call":
            fn = node[1]
            if fn not in PORTABLE_FUNCTIONS:
                raise SheetsgdError(f"formula: unknown function {fn}() (a formula model may use "
                                    f"{', '.join(DIFFERENTIABLE)})", where)
            if fn not in DIFFERENTIABLE:
                raise SheetsgdError(f"formula: {fn}() has no derivative a lesson can use (a formula model may use "
                                    f"{', '.join(DIFFERENTIABLE)})", where)
            arity = {"PI": 0, "POWER": 2}.get(fn, 1)
            if len(node[2]) != arity:
                raise SheetsgdError(f"formula: {fn}() takes {arity} argument(s), got {len(node[2])}", where)
        elif kind == "ref":
            raise SheetsgdError(f"formula: {node[1].text()} reads as a cell reference; name parameters in lower case "
                                "(the lesson puts the cells in)", where)
        elif kind in ("str", "bool", "field", "pct"):
            raise SheetsgdError(f"formula: only numbers, names, + - * / ^ and functions may appear in {text!r}", where)
        elif kind == "bin" and node[1] not in "+-*/^":
            raise SheetsgdError(f"formula: the operator {node[1]} has no derivative; use + - * / ^", where)


def _to_sympy(tree, symbols, sympy):
    kind = tree[0]
    if kind == "num":
        x = tree[1]
        return sympy.Integer(int(x)) if x == int(x) and abs(x) < 1e15 else sympy.Float(repr(x))
    if kind == "name":
        return symbols[tree[1]]
    if kind == "neg":
        return -_to_sympy(tree[1], symbols, sympy)
    if kind == "call":
        args = [_to_sympy(a, symbols, sympy) for a in tree[2]]
        return {"ABS": lambda: sympy.Abs(args[0]), "COS": lambda: sympy.cos(args[0]),
                "EXP": lambda: sympy.exp(args[0]), "LN": lambda: sympy.log(args[0]),
                "LOG10": lambda: sympy.log(args[0]) / sympy.log(10), "PI": lambda: sympy.pi,
                "POWER": lambda: args[0] ** args[1], "SIGN": lambda: sympy.sign(args[0]),
                "SIN": lambda: sympy.sin(args[0]), "SQRT": lambda: sympy.sqrt(args[0])}[tree[1]]()
    _, op, a, b = tree
    a, b = _to_sympy(a, symbols, sympy), _to_sympy(b, symbols, sympy)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
            "^": lambda: a ** b}[op]()


class _Unwritable(ValueError):
    pass


ATOM, POW, MUL, ADD = 9, 5, 4, 3  # spreadsheet precedence of what a text is (unary minus: 6)


def _text(e, sympy) -> str:
    return _render(e, sympy)[0]


def _render(e, sympy) -> tuple[str, int]:
    """(portable formula text, its precedence). Spreadsheet rules: unary minus binds before ^ (so a negated
    power is parenthesised), ^ is left-associative (so a power's base is parenthesised unless an atom)."""
    if e.is_Integer or e.is_Float:
        value = int(e) if e.is_Integer else float(e)
        txt = str(value) if e.is_Integer else repr(value)
        return (txt, ATOM) if value >= 0 else (f"-{txt.lstrip('-')}", 6)
    if e.is_Rational:
        return _render_mul(e, sympy)
    if e is sympy.pi:
        return "PI()", ATOM
    if e.is_Symbol:
        return e.name, ATOM
    if e.is_Add:
        terms = e.as_ordered_terms()
        terms.sort(key=lambda term: term.could_extract_minus_sign())  # t-b rather than -b+t
        out = _wrap(_render(terms[0], sympy), ADD)
        for term in terms[1:]:
            if term.could_extract_minus_sign():
                out += "-" + _wrap(_render(-term, sympy), ADD + 1)
            else:
                out += "+" + _wrap(_render(term, sympy), ADD + 1)
        return out, ADD
    if e.is_Mul or (e.is_Pow and e.exp.is_number and e.exp.is_negative):
        return _render_mul(e, sympy)
    if e.is_Pow:
        if e.exp == sympy.Rational(1, 2):
            return f"SQRT({_text(e.base, sympy)})", ATOM
        base = _wrap(_render(e.base, sympy), ATOM)
        exp = _render(e.exp, sympy)
        return f"{base}^{exp[0] if exp[1] == ATOM else '(' + exp[0] + ')'}", POW
    functions = {sympy.exp: "EXP", sympy.log: "LN", sympy.sin: "SIN", sympy.cos: "COS", sympy.Abs: "ABS",
                 sympy.sign: "SIGN"}
    if e.func in functions and len(e.args) == 1:
        return f"{functions[e.func]}({_text(e.args[0], sympy)})", ATOM
    raise _Unwritable(f"{type(e).__name__} is not a spreadsheet function")


def _render_mul(e, sympy) -> tuple[str, int]:
    """A product as numerator/denominator: factors with a negative exponent go below the line."""
    if e.could_extract_minus_sign():
        inner, prec = _render(-e, sympy)
        return ("-" + inner if prec == ATOM or _leads_with_atom(inner) else f"-({inner})"), 6
    coeff, rest = e.as_coeff_Mul()
    num, den = [], []
    if coeff.is_Rational and not coeff.is_Integer:
        if coeff.p != 1:
            num.append(sympy.Integer(coeff.p))
        den.append(sympy.Integer(coeff.q))
    elif coeff != 1:
        num.append(coeff)
    for f in sympy.Mul.make_args(rest):
        if f.is_Pow and f.exp.is_number and f.exp.is_negative:
            den.append(f.base ** -f.exp)
        elif f != 1:
            num.append(f)
    top = "*".join(_wrap(_render(f, sympy), MUL) for f in num) or "1"
    if not den:
        return top, MUL if len(num) > 1 else _render(num[0], sympy)[1]
    if len(den) == 1:
        bottom = _wrap(_render(den[0], sympy), MUL + 1)
    else:
        bottom = "(" + "*".join(_wrap(_render(f, sympy), MUL) for f in den) + ")"
    return f"{top}/{bottom}", MUL


def _leads_with_atom(text: str) -> bool:
    """Whether a product's first factor is a number, name or call: then -a*b means -(a*b) (but -a^2 would not)."""
    node = a1.parse(text)
    while node[0] == "bin" and node[1] in "*/":
        node = node[2]
    return node[0] in ("num", "name", "call")


def _wrap(rendered: tuple[str, int], at_least: int) -> str:
    text, prec = rendered
    return text if prec >= at_least and prec != 6 or prec == ATOM else f"({text})"


def _placeholders(text: str, input_name: str) -> str:
    """Formula text with each name as its placeholder: the input {X}, a parameter {a} (the spec fills them in)."""
    out = []
    for kind, tok in a1.tokens(text):
        out.append(("{X}" if tok == input_name else "{" + tok + "}") if kind == "name" else tok)
    return "".join(out)


def _cell_size(text: str) -> int:
    return sum(_REF_WIDTH if kind == "name" else len(tok) for kind, tok in a1.tokens(text))
