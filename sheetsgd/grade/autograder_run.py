"""What ``run_autograder`` runs inside the Gradescope container: check the submission, write results.json.

``python -m sheetsgd.grade.autograder_run [ROOT]`` (ROOT: ``$SHEETSGD_AUTOGRADER_ROOT`` or ``/autograder``)
reads ``ROOT/source/sheetsgd-autograder.json``, finds the workbook in ``ROOT/submission/`` and writes
``ROOT/results/results.json``. It never fails without writing a results file.

Which file is graded: the one ``.xlsx`` file anywhere under the submission folder (hidden files,
``__MACOSX/`` and Excel's ``~$…`` lock files are ignored; other files are ignored with a note). No
``.xlsx`` (nothing submitted, or only other files), or more than one: score 0 and a one-line reason
naming what was found, so the student resubmits exactly one workbook. The workbook must be the
assignment's lesson with the same options (a variant of it when the bundle allows variants) and
the same exercise columns, and its student version (not the full workbook, which any student can build);
otherwise score 0 and why (:mod:`sheetsgd.check.assignment`). With ``variant_key`` (``autograder --variant-key
email``), the workbook's variant ID must be that field of one of the submitters in Gradescope's
``ROOT/submission_metadata.json`` (``users``): a classmate's variant scores 0. It is checked in a worker process with the
bundle's time and memory limits and the checker's size limits (a zip bomb, an XXE or a huge file is
refused with the checker's one-line reason: score 0).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from sheetsgd import __version__
from sheetsgd.feedback import gradescope
from sheetsgd.runtime.safetext import json_text, shown

LOCK_PREFIX = "~$"


def find_submission(folder: Path) -> tuple[Path | None, str, list[str]]:
    """(the workbook to grade or None, why none, notes about ignored files)."""
    if not folder.is_dir():
        return None, "No file was submitted: upload your .xlsx workbook.", []
    found, others = [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if name.startswith(".") or name.startswith(LOCK_PREFIX) or path.is_symlink():
                continue
            (found if name.lower().endswith(".xlsx") else others).append(path)
    rel = [str(p.relative_to(folder)) for p in others]
    if not found:
        if not others:
            return None, "No file was submitted: upload your .xlsx workbook.", []
        shown = ", ".join(rel[:5]) + (f" and {len(rel) - 5} more" if len(rel) > 5 else "")
        return None, (f"No .xlsx workbook was submitted (found {shown}): save the workbook as Excel .xlsx "
                      "and upload that file."), []
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(folder)) for p in found[:5])
        return None, (f"{len(found)} .xlsx workbooks were submitted ({names}): upload exactly one, the workbook "
                      "to grade."), []
    notes = [f"ignored {r} (not an .xlsx workbook)" for r in rel[:5]]
    return found[0], "", notes


def _owners(config: dict, notes: list[str]) -> set[str] | None:
    """The variant IDs of the submitters: ``variant_key`` (e.g. email, sid) of each user in Gradescope's
    ``ROOT/submission_metadata.json``; None when not asked for, or (with a note) when it cannot be read."""
    key = config.get("variant_key")
    if not key:
        return None
    meta = Path(config["_root"]) / "submission_metadata.json"
    try:
        users = json.loads(meta.read_text(encoding="utf-8")).get("users")
        if not isinstance(users, list):
            raise ValueError("no users")
    except (OSError, ValueError, AttributeError):
        notes.append(f"the variant's owner was not verified ({meta.name} cannot be read)")
        return None
    return {str(u[key]) for u in users if isinstance(u, dict) and u.get(key) not in (None, "")}


def final_loss(path: Path, limits) -> float | None:
    """The last step's loss in the submission's own sheet (the first block with a ``loss`` column), or None."""
    import numpy as np

    from .copies import sheet_values
    from sheetsgd.check.rebuild import rebuild
    from sheetsgd.check.submission import read_manifest
    from sheetsgd.read.workbook import Workbook

    book = Workbook(str(path), limits)
    manifest, sheet = read_manifest(book)
    _, blocks, _ = rebuild(str(path), book, manifest, sheet, limits)
    values = sheet_values(path, book, blocks)
    for b in blocks:
        v = values.get((b.name, "loss"))
        if v is not None and len(v):
            return float(v[-1]) if np.isfinite(v[-1]) else None
    return None


def grade_one(config: dict, path: Path, notes: list[str]) -> dict:
    """results.json for one submitted workbook."""
    from .batch import grade
    from sheetsgd.read.workbook import Limits

    style = dict(visibility=config.get("visibility", "visible"),
                 stdout_visibility=config.get("stdout_visibility", "hidden"))
    board = bool(config.get("leaderboard"))
    limits = Limits(**config.get("limits", {}))
    [(_, report, text)] = grade([path], jobs=1, timeout=float(config.get("timeout", 120)),
                                recalc=config.get("recalc") or "auto", strict=bool(config.get("strict")),
                                limits=limits, max_memory_mb=float(config.get("max_memory_mb", 2048)), progress=False)
    print(shown(text or report.get("message", ""), keep="\n"))
    if report.get("status") not in ("correct", "mistakes"):
        return gradescope.refusal(f"Cannot check {path.name}: {report.get('message') or report.get('status')}",
                                  with_leaderboard=board, **style)
    from sheetsgd.check.assignment import Assignment

    lesson = report.get("lesson") or {}
    why = Assignment.from_config(config).refusal(dict(report, file=path.name))
    if why:  # another lesson, other options or exercise columns, or the full workbook: score 0
        return gradescope.refusal(why, with_leaderboard=board, **style)
    if lesson.get("variant") and not config.get("variants"):
        notes.append(f"the workbook is variant {lesson['variant']!r}; this assignment has no variants")
    owners = _owners(config, notes)
    if owners is not None and lesson.get("variant") not in owners:
        print(f"variant {lesson.get('variant')!r} is not a submitter's {config['variant_key']} {sorted(owners)}")
        return gradescope.refusal(  # the other student's ID is not shown to this one (staff see it on stdout)
            f"{path.name} is not your own variant of the workbook (it was built for "
            + ("another ID" if lesson.get("variant") else "no student") + "): download your own workbook, fill it in "
            "and submit that.", with_leaderboard=board, **style)
    out = gradescope.results(report, path.name, points=config.get("points"), with_leaderboard=board, **style)
    if board:
        try:
            loss = final_loss(path, limits)
        except Exception:  # the leaderboard is a nicety: never a reason to fail the grading
            loss = None
        if loss is not None:
            out["leaderboard"].append({"name": "Final loss", "value": gradescope.num(loss), "order": "asc"})
    if notes:
        out["output"] += "\n\n" + "\n".join(f"- {gradescope._md(n)}" for n in notes)
    return out


def run(root: Path) -> dict:
    """Grade the submission under ``root`` and write ``root/results/results.json``; returns what was written."""
    start = time.monotonic()
    results = None
    try:
        config = json.loads((root / "source" / "sheetsgd-autograder.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        config = None
        results = gradescope.refusal(f"The autograder is broken (its configuration cannot be read: {exc}): tell the "
                                     "course staff.")
    if results is None:
        try:
            config["_root"] = str(root)
            path, why, notes = find_submission(root / "submission")
            if path is None:
                results = gradescope.refusal(why, config.get("visibility", "visible"),
                                             config.get("stdout_visibility", "hidden"), bool(config.get("leaderboard")))
            else:
                results = grade_one(config, path, notes)
        except Exception as exc:  # never end without a results file
            results = gradescope.refusal(f"The autograder failed on this submission ({type(exc).__name__}: "
                                         f"{str(exc)[:200]}): tell the course staff.")
    results["execution_time"] = gradescope.num(time.monotonic() - start)
    results["extra_data"] = {"sheetsgd_version": __version__, "lesson": (config or {}).get("lesson")}
    out_dir = root / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "results.json.tmp"
    tmp.write_text(json_text(results, indent=1, allow_nan=False), encoding="utf-8")
    os.replace(tmp, out_dir / "results.json")
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else os.environ.get("SHEETSGD_AUTOGRADER_ROOT", "/autograder"))
    results = run(root)
    print(f"score {results['score']}; wrote {root / 'results' / 'results.json'}")
    return 0


if __name__ == "__main__":  # pragma: no cover - run_autograder
    sys.exit(main())
