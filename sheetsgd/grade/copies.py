"""Which submissions of a batch follow another student's variant instead of their own (``grade``).

Every workbook built with ``--variant ID`` names its ID in the manifest. For the submissions of one
lesson (the same template and options, the variant aside), each claimed ID's lesson is rebuilt (the
engine's values of every block cell). A submission is compared with each other variant of the batch on
the cells where the two variants' engine values differ (start values, data, everything that follows
from them; the cells where they agree say nothing): if the submission's values match the other
variant's at more of those cells than its own, and at least half of them, it follows that variant: a
copy of that student's file (or of its values) under another ID. Two submissions that claim the same
ID are flagged too (one of them carries a file that is not its own). Values are the file's cached
ones (IronCalc recalculates a file that stores none). A file that cannot be read is never flagged.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sheetsgd.lessons import kinds
from sheetsgd.errors import SheetsgdError
from sheetsgd.read.workbook import Limits, Workbook

REL_TOL = 1e-7
ABS_TOL = 1e-12


def _base(origin: dict) -> str:
    options = {k: v for k, v in (origin.get("options") or {}).items() if k != "variant"}
    return json.dumps([origin.get("template"), origin.get("name"), options], sort_keys=True, default=str)


def _claim(path: Path, limits: Limits):
    """(manifest, variant ID, base key), or None for a file without a variant (the workbook is not kept:
    a batch's files are read one at a time)."""
    from sheetsgd.check.submission import read_manifest

    book = Workbook(str(path), limits)
    manifest, _ = read_manifest(book)
    origin = manifest.get("origin")
    if not isinstance(origin, dict) or not isinstance(origin.get("options"), dict):
        return None
    variant = origin["options"].get("variant")
    if not isinstance(variant, str):
        return None
    return manifest, variant, _base(origin)


def _engine_blocks(origin: dict, variant: str) -> list:
    """The blocks (layout and engine values) of this lesson's variant, rebuilt without writing anything."""
    options = {**(origin.get("options") or {}), "variant": variant}
    lesson = kinds.from_raw(origin["template"], str(origin.get("name", "lesson"))[:100], "variant", options)
    with np.errstate(all="ignore"):
        return kinds.kind_of(lesson).build(lesson, None).blocks


def _values(blocks) -> dict:
    """{(block, column key): the engine's values} of numeric columns."""
    return {(b.name, c.key): np.asarray(b.values[c.key], dtype=float) for b in blocks for c in b.columns
            if c.key in b.values and np.asarray(b.values[c.key]).dtype.kind in "fiub"}


def sheet_values(path: Path, book: Workbook, blocks) -> dict:
    """{(block, column key): the submission's values at that column's step rows} (its claimed variant's layout)."""
    from sheetsgd.check.checker import _stores
    from sheetsgd.check.recalc.child import ironcalc_sources
    from sheetsgd.check.placement import find_blocks

    entries = [dict(b.manifest(), steps_are_rows=list(b.values.get("step", [])) == list(range(1, b.n + 1)))
               for b in blocks]
    shifts = find_blocks(book, entries)
    stores = _stores(book, shifts)
    if any(s.missing_cache for s in stores.values()):
        stores = _stores(book, shifts, ironcalc_sources(str(path), book, list(stores)).__getitem__)
    out = {}
    for b in blocks:
        shift = shifts[b.sheet]
        store = stores[shift.sheet]
        rows = shift.to_student(np.arange(b.first_row + 1, b.first_row + 1 + b.n))
        for c in b.columns:
            if c.key in b.values:
                out[(b.name, c.key)] = store.gather(rows, np.full(len(rows), shift.col(c.col)))
    return out


def _matches(mine: dict, own: dict, other: dict) -> tuple[int, int, int]:
    """(cells where the two variants differ, of them matching own, matching other)."""
    differ = own_hits = other_hits = 0
    for key, found in mine.items():
        a, b = own.get(key), other.get(key)
        if a is None or b is None or len(a) != len(found) or len(b) != len(found):
            continue
        ok = np.isfinite(a) & np.isfinite(b) & ~np.isclose(a, b, rtol=REL_TOL, atol=ABS_TOL)
        differ += int(ok.sum())
        own_hits += int((ok & np.isclose(found, a, rtol=REL_TOL, atol=ABS_TOL)).sum())
        other_hits += int((ok & np.isclose(found, b, rtol=REL_TOL, atol=ABS_TOL)).sum())
    return differ, own_hits, other_hits


def suspected_copies(paths: list[Path], statuses: list[str], limits: Limits = Limits()) -> dict[int, str]:
    """{index of a submission: why it is suspected (naming the other file)} for a graded batch; only files
    that were checked (status correct or mistakes) take part."""
    claims = {}
    for i, (path, status) in enumerate(zip(paths, statuses)):
        if status not in ("correct", "mistakes"):
            continue
        try:
            claim = _claim(path, limits)
        except (SheetsgdError, OSError, ValueError, MemoryError):
            continue
        if claim is not None:
            claims[i] = claim
    groups: dict[str, list[int]] = {}
    for i, claim in claims.items():
        groups.setdefault(claim[2], []).append(i)
    out: dict[int, list[str]] = {}
    for members in groups.values():
        by_id: dict[str, list[int]] = {}
        for i in members:
            by_id.setdefault(claims[i][1], []).append(i)
        for id_, same in by_id.items():
            for i in same:
                for j in same:
                    if i != j:
                        out.setdefault(i, []).append(f"{paths[j]} (claims the same variant {id_!r})")
        if len(by_id) < 2:
            continue
        origin = claims[members[0]][0]["origin"]
        try:
            built = {id_: _engine_blocks(origin, id_) for id_ in by_id}
            engine = {id_: _values(blocks) for id_, blocks in built.items()}
        except (SheetsgdError, ValueError):
            continue
        for i in members:
            own_id = claims[i][1]
            try:
                mine = sheet_values(paths[i], Workbook(str(paths[i]), limits), built[own_id])
            except (SheetsgdError, OSError, ValueError, KeyError, IndexError, MemoryError):
                continue
            best = None
            for other_id in by_id:
                if other_id == own_id:
                    continue
                differ, own_hits, other_hits = _matches(mine, engine[own_id], engine[other_id])
                if differ and other_hits > own_hits and 2 * other_hits >= differ:
                    if best is None or other_hits > best[1]:
                        best = (other_id, other_hits, differ)
            if best is not None:
                other_id, hits, differ = best
                files = ", ".join(str(paths[j]) for j in by_id[other_id])
                out.setdefault(i, []).insert(0, f"{files} (its values follow variant {other_id!r}, not its own "
                                                f"{own_id!r}: {hits}/{differ} distinguishing cells)")
    return {i: "; ".join(reasons) for i, reasons in out.items()}
