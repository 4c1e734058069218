"""Formula text: rendering column templates into A1 formulas, and the one list of portable functions.

Every function a sheetsgd workbook may use is in ``PORTABLE_FUNCTIONS``: each computes the same in
Excel 2010+, LibreOffice 7.4+ and Google Sheets under its en-US name. ``check_portable`` rejects
anything else and every feature that does not travel (``_xlfn.`` functions, structured references,
external links, array braces, LET/LAMBDA).
"""
from __future__ import annotations

import re
from typing import Callable

from .evaluate import FUNCTIONS

# the one function registry: each portable function is there with its numpy implementation (the checker's)
PORTABLE_FUNCTIONS = frozenset(FUNCTIONS)

_PLACEHOLDER = re.compile(r"\{(?:(prev|first|all|hp|data):)?(\w+)\}")
_FUNCTION_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\s*\(")
_STRING = re.compile(r'"[^"]*"')
_FORBIDDEN = [
    (re.compile(r"_xlfn\.|_xlws\.|_xludf\.", re.I), "a function Excel stores with a _xlfn. prefix"),
    (re.compile(r"\[[^\]]*\]"), "a structured or external reference ([...])"),
    (re.compile(r"[{}]"), "an array constant or unresolved placeholder ({...})"),
    (re.compile(r"#"), "an error literal or spill reference (#)"),
    (re.compile(r"\b(LET|LAMBDA)\s*\(", re.I), "LET/LAMBDA"),
    (re.compile(r"\.(xlsx|xlsm|xls|ods)\b", re.I), "an external workbook link"),
]


class Resolver:
    """Maps template placeholders to formula text for one sheet layout.

    ``cell(key, which)`` returns the cell text for ``{key}`` (which="this"), ``{prev:key}``
    (which="prev") with ``{r}``/``{p}`` row fields, or ``{first:key}`` (which="first": the absolute
    cell of step 1, for expanding ranges such as MIN($L$12:L40)) or ``{all:key}`` (which="all": the
    absolute range of the whole column, e.g. $L$12:$L$111); ``hp`` names; ``data`` ranges.
    """

    def __init__(self, cell: Callable[[str, str], str], hp: Callable[[str], str], data: Callable[[str], str]):
        self.cell, self.hp, self.data = cell, hp, data

    def __call__(self, match: re.Match) -> str:
        prefix, name = match.group(1), match.group(2)
        if prefix == "hp":
            return self.hp(name)
        if prefix == "data":
            return self.data(name)
        return self.cell(name, prefix or "this")


def compile_template(template: str, resolver: Resolver) -> str:
    """A template → a ``str.format`` pattern with fields {r} (this row), {p} (previous row), {lo}/{hi}."""
    return _PLACEHOLDER.sub(resolver, template)


def functions_used(formula: str) -> set[str]:
    return {m.group(1).upper() for m in _FUNCTION_CALL.finditer(_STRING.sub('""', formula))}


def check_portable(formula: str) -> list[str]:
    """Reasons this formula is not portable ([] when it is)."""
    text = formula[1:] if formula.startswith("=") else formula
    problems = [f"uses {name}(), which is not in the portable set"
                for name in sorted(functions_used(text) - PORTABLE_FUNCTIONS)]
    stripped = _STRING.sub('""', text)
    problems += [f"contains {why}" for pattern, why in _FORBIDDEN if pattern.search(stripped)]
    return problems
