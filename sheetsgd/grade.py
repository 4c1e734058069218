"""Grading many submissions: checks in parallel worker processes, one CSV row per file, never stopping.

Each worker process checks one file at a time. The parent hands out files, waits for answers with a
deadline, and kills (by its own process handle) a worker that overruns the per-file time limit or
dies (a memory cap is set inside each worker), recording the file as ``timeout`` or ``crashed`` and
starting a fresh worker. A file that cannot be checked is a row with status ``error`` and its reason.
"""
from __future__ import annotations

import csv
import json
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import wait
from pathlib import Path

from .check import check
from .errors import SheetsgdError
from .xlsxread import Limits

CSV_FIELDS = ["id", "file", "status", "grade", "score", "correct", "total", "formulas_right", "mistakes", "message",
              "variant", "suspected_copy", "lesson", "exercise"]
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def collect(paths: list[str]) -> list[Path]:
    """Files to grade under the link policy of :mod:`sheetsgd.collect` (skipped entries: ``collect.collect``)."""
    from .collect import collect as collect_entries

    return collect_entries(paths).files


def safe_cell(value):
    """A CSV cell a spreadsheet will not run as a formula: text starting with = + - @ (or tab/CR) gets a
    leading apostrophe. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_DANGEROUS):
        return "'" + value
    return value


def row_for(path: Path, report: dict) -> dict:
    score = report.get("score") or {}
    mistakes = "; ".join(f"{m['column']}: {m['mistake']} (step {m['step']})" for m in report.get("mistakes", []))
    return {"id": path.stem, "file": str(path), "status": report["status"],
            # the default grading policy: formulas right (knock-ons forgiven); score is the strict figure
            "grade": "" if score.get("formulas_share") is None else round(score["formulas_share"], 6),
            "score": "" if score.get("share") is None else round(score["share"], 6),
            "correct": score.get("correct", ""), "total": score.get("total", ""),
            "formulas_right": "" if score.get("formulas_share") is None else round(score["formulas_share"], 6),
            "mistakes": mistakes, "message": report.get("message", ""),
            "variant": (report.get("lesson") or {}).get("variant") or "", "suspected_copy": "",
            "lesson": (report.get("lesson") or {}).get("name") or "",
            "exercise": " ".join(sorted(set((report.get("lesson") or {}).get("exercise") or [])))}


def _gradescope(path: Path, report: dict, text: str) -> dict:
    """One submission's Gradescope results (sheetsgd.gradescope) with its id, file and status."""
    from .gradescope import num, results

    score = report.get("score") or {}
    return {"id": path.stem, "file": str(path), "status": report["status"],
            **results(report, path.name), "max_score": num(score.get("total") or 0), "text": text}


# --- the worker pool ----------------------------------------------------------------------------------

def _serve(conn, settings: dict) -> None:
    """A worker: check files until told to stop. Memory is capped (max_memory_mb more than the worker
    starts with) so one file cannot exhaust the host."""
    try:
        import resource

        # address space the worker already has (inherited from the parent by fork), plus the allowance
        with open("/proc/self/statm") as fh:
            start = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = start + int(settings["max_memory_mb"] * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on every platform
        pass
    limits = Limits(**settings["limits"])
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        try:
            report = check(path, recalc=settings["recalc"], strict=settings["strict"], limits=limits)
            conn.send((report.to_dict(), report.to_text()))
        except MemoryError:
            conn.send(({"status": "error", "message": "ran out of memory (worker memory cap)"}, ""))
        except Exception as exc:  # a bug must cost one file, not the batch
            conn.send(({"status": "error", "message": f"internal error: {type(exc).__name__}: {exc}"[:300]}, ""))


class _Worker:
    def __init__(self, ctx, settings):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, settings), daemon=True)
        self.proc.start()
        child.close()
        self.task: int | None = None
        self.deadline = 0.0

    def give(self, index: int, path: str, timeout: float) -> None:
        self.task, self.deadline = index, time.monotonic() + timeout
        self.conn.send(path)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except (OSError, BrokenPipeError):
                self.proc.kill()
        self.proc.join(timeout=5)
        if self.proc.is_alive():  # pragma: no cover
            self.proc.kill()
            self.proc.join()
        self.conn.close()


class Progress:
    """A one-line progress bar on stderr (redrawn in place on a terminal; a few lines otherwise)."""

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.counts: dict[str, int] = {}
        self.start = time.monotonic()
        self._last_tenth = -1

    def step(self, status: str) -> None:
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        if not self.enabled:
            return
        tenth = 10 * self.done // self.total
        if self.tty or tenth != self._last_tenth or self.done == self.total:
            self._last_tenth = tenth
            width = 30
            filled = width * self.done // self.total
            bar = "#" * filled + "-" * (width - filled)
            counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
            line = f"[{bar}] {self.done}/{self.total} {counts} {time.monotonic() - self.start:.1f}s"
            self.stream.write(("\r" + line) if self.tty else line + "\n")
            if self.tty and self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


def refuse(report: dict, why: str) -> dict:
    """A checked report turned into a refusal (not the assignment's workbook): score 0, one line."""
    total = (report.get("score") or {}).get("total") or 0
    return {"file": report.get("file"), "status": "refused", "exit_code": 2, "message": why,
            "lesson": report.get("lesson") or {}, "notes": [], "mistakes": [], "columns": [],
            "score": {"correct": 0, "total": total, "share": 0.0, "formulas_right": 0, "formulas_share": 0.0}}


def grade(paths: list[Path], jobs: int = 0, timeout: float = 60, recalc: str = "auto", strict: bool = False,
          limits: Limits = Limits(), max_memory_mb: float = 2048, progress: bool = True,
          assignment=None) -> list[tuple[dict, dict, str]]:
    """(CSV row, report dict, report text) per file, in input order. With ``assignment`` (a
    :class:`sheetsgd.assignment.Assignment`), a workbook that is not its student version is refused."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    settings = {"recalc": recalc, "strict": strict, "limits": limits.__dict__, "max_memory_mb": max_memory_mb}
    workers = [_Worker(ctx, settings) for _ in range(jobs)]
    results: list[tuple[dict, str] | None] = [None] * len(paths)
    todo = list(range(len(paths)))[::-1]
    bar = Progress(len(paths), progress)

    def finish(index: int, report: dict, text: str) -> None:
        results[index] = (report, text)
        bar.step(report["status"])

    try:
        for w in workers:
            if todo:
                i = todo.pop()
                w.give(i, str(paths[i]), timeout)
        while any(w.task is not None for w in workers):
            busy = [w for w in workers if w.task is not None]
            left = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = wait([w.conn for w in busy], timeout=left)
            now = time.monotonic()
            for k, w in enumerate(workers):
                if w.task is None:
                    continue
                replaced = False
                if w.conn in ready:
                    try:
                        report, text = w.conn.recv()
                    except (EOFError, OSError):  # the worker died: memory cap, a crash in native code
                        report, text = {"status": "crashed", "message": "the checker process died on this file "
                                        f"(exit code {w.proc.exitcode}); memory or a native crash"}, ""
                        replaced = True
                    finish(w.task, report, text)
                elif now >= w.deadline:
                    finish(w.task, {"status": "timeout", "message": f"no answer within {timeout:g} s (--timeout)"}, "")
                    replaced = True
                else:
                    continue
                w.task = None
                if replaced:
                    w.stop(kill=True)
                    w = workers[k] = _Worker(ctx, settings)
                if todo:
                    i = todo.pop()
                    w.give(i, str(paths[i]), timeout)
    finally:
        for w in workers:
            w.stop(kill=w.task is not None)
    out = []
    for path, (report, text) in zip(paths, results):
        why = assignment.refusal(dict(report, file=str(path))) if assignment is not None and \
            report.get("status") in ("correct", "mistakes") else None
        if why:
            report, text = refuse(report, why), why
        out.append((row_for(path, report), report, text))
    return out


def write_csv(rows: list[dict], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: safe_cell(v) for k, v in row.items()})


def write_results_json(graded: list[tuple[dict, dict, str]], paths: list[Path], path: str,
                       ids: list[str] | None = None) -> None:
    subs = [_gradescope(p, report, text) for p, (_, report, text) in zip(paths, graded)]
    if ids is not None:  # unique ids (sheetsgd.collect.unique_ids)
        for sub, id_ in zip(subs, ids):
            sub["id"] = id_
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"generator": "sheetsgd grade", "format": "one Gradescope results object per submission",
                   "submissions": subs}, fh, indent=1, ensure_ascii=False)


def write_feedback(graded: list[tuple[dict, dict, str]], paths: list[Path], ids: list[str], annotate_dir: str | None,
                   feedback_dir: str | None, limits: Limits = Limits()) -> list[str]:
    """An annotated copy (``annotate_dir/ID.xlsx``, checked submissions only) and an HTML page
    (``feedback_dir/ID.html``) per submission; returns one line per file that could not be annotated."""
    from .annotate import annotate
    from .feedback_html import write

    problems = []
    for folder in filter(None, (annotate_dir, feedback_dir)):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise SheetsgdError(f"cannot make the folder: {exc.strerror or exc}", folder) from None
    for (_, report, _), path, id_ in zip(graded, paths, ids):
        report = dict(report, file=report.get("file", str(path)))
        try:
            if feedback_dir:
                write(report, os.path.join(feedback_dir, f"{id_}.html"))
            if annotate_dir and report.get("status") != "error":
                annotate(str(path), report, os.path.join(annotate_dir, f"{id_}.xlsx"), limits)
        except SheetsgdError as exc:
            problems.append(f"not annotated: {exc}")
        except OSError as exc:
            raise SheetsgdError(f"cannot write: {exc.strerror or exc}", exc.filename) from None
    return problems
