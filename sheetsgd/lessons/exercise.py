"""Student versions of any lesson kind: which block columns to blank, then the build with them blank.

The exercise columns are found in the lesson's own blocks (a build that writes nothing lists them):
``key`` picks the largest blocks with a formula column of that key (Examples rather than Steps, where
both have one; every optimizer's sheet alike), ``Block:key`` one block by name; a key ending in ``*``
stands for every formula column whose key starts with what comes before it (``grad_*``, ``Users:new_*``).
"""
from __future__ import annotations

from sheetsgd.errors import SheetsgdError


def formula_columns(blocks) -> list[str]:
    seen = []
    for b in blocks:
        for c in b.columns:
            if c.is_formula and c.key not in seen:
                seen.append(c.key)
    return seen


def resolve(blocks, chosen: str | None, defaults: list[str], source: str | None = None) -> dict[str, set[str]]:
    """{block name: keys} from a comma-separated choice ('' or None: the template's exercise columns)."""
    keys = [k.strip() for k in (chosen or "").split(",") if k.strip()] if chosen else list(defaults)
    if not keys:
        raise SheetsgdError("the template names no exercise columns; give them: --exercise "
                            + ",".join(formula_columns(blocks)[-2:]), source)
    keys = _expand(blocks, keys)
    out: dict[str, set[str]] = {}
    unknown = []
    for key in keys:
        name, _, bare = key.rpartition(":")
        candidates = [b for b in blocks if (not name or b.name == name)
                      and any(c.key == bare and c.is_formula for c in b.columns)]
        if not candidates:
            unknown.append(key)
            continue
        most = max(b.n for b in candidates)
        for block in candidates if name else [b for b in candidates if b.n == most]:
            out.setdefault(block.name, set()).add(bare)
    if unknown:
        if not chosen:  # the template's defaults may name columns another layout has: keep the ones there
            if out:
                return out
        raise SheetsgdError(f"--exercise: no formula column {', '.join(unknown)}; this lesson's formula columns are "
                            f"{', '.join(formula_columns(blocks))}", source)
    return out


def _expand(blocks, keys: list[str]) -> list[str]:
    """Keys with a trailing * replaced by every matching formula column key (in block order)."""
    out = []
    for key in keys:
        name, _, bare = key.rpartition(":")
        if not bare.endswith("*"):
            out.append(key)
            continue
        found = formula_columns([b for b in blocks if not name or b.name == name])
        matched = [k for k in found if k.startswith(bare[:-1])]
        out += [f"{name}:{k}" if name else k for k in matched] or [key]
    return out


class Exercise(dict):
    """{block name: keys}, with the lesson's blocks (from a build that wrote nothing) to plan the blanks."""

    def __init__(self, keys: dict[str, set[str]], blocks):
        super().__init__(keys)
        self.blocks = blocks
