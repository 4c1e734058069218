"""Layout versions: how a workbook lays out its blocks, recorded in the manifest so a workbook checks as it was built.

Version 1 (a manifest without ``layout_version``): each step's mini-batch read through its own row ranges
(``Data!$B$6:$B$9``), collab-filter's gradients through each step's own Train rows, too-high's asked
column blank in one run only. Version 2: every exercise column is one fill-down from its first cell to its
last (its formulas are row-local: per-step aggregates find their rows by a given step or position
column, never by per-block addresses; collab-filter: SUMIFS by step and id, INDEX by a given row). A lesson carries the version it is laid out by; the checker's
rebuild sets the manifest's.
"""
from __future__ import annotations

import dataclasses

LAYOUT_VERSION = 2
MANIFEST_KEY = "layout_version"


def manifest_version(manifest: dict, error) -> int:
    """The manifest's layout version (1 when missing); ``error(message)`` makes the exception for a bad one."""
    version = manifest.get(MANIFEST_KEY, 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= LAYOUT_VERSION:
        raise error(f"manifest entry {MANIFEST_KEY!r} is {version!r:.40}, not a layout version 1–{LAYOUT_VERSION} "
                    "this sheetsgd knows: the manifest was tampered with, or a newer sheetsgd wrote it")
    return version


def version_of(lesson) -> int:
    """The layout version a lesson is laid out by: its own, its base lesson's (an lr finder's, an optimizer
    comparison's), or 1 for a kind that has only the first layout."""
    if hasattr(lesson, MANIFEST_KEY):
        return getattr(lesson, MANIFEST_KEY)
    base = getattr(lesson, "base", None)
    return version_of(base) if base is not None else 1


def at_version(lesson, version: int):
    """The lesson laid out as layout ``version`` (its base lesson too: an lr finder's, an optimizer comparison's)."""
    changes = {}
    if dataclasses.is_dataclass(lesson):
        names = {f.name for f in dataclasses.fields(lesson)}
        if MANIFEST_KEY in names:
            changes[MANIFEST_KEY] = version
        if "base" in names and dataclasses.is_dataclass(lesson.base):
            changes["base"] = at_version(lesson.base, version)
    if not changes or all(getattr(lesson, k) is v or getattr(lesson, k) == v for k, v in changes.items()):
        return lesson
    out = dataclasses.replace(lesson, **changes)
    for name, value in vars(lesson).items():  # what a lesson carries besides its fields (origin, variant …)
        if name not in vars(out):
            object.__setattr__(out, name, value)
    return out
