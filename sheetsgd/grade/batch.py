"""Grading many submissions: checks in parallel worker processes, one CSV row per file, never stopping.

Each worker process checks one file at a time. The parent hands out files, waits for answers with a
deadline, and kills (by its own process handle) a worker that overruns the per-file time limit or
dies (a memory cap is set inside each worker), recording the file as ``timeout`` or ``crashed`` and
starting a fresh worker. A file that cannot be checked is a row with status ``error`` and its reason.
"""
from __future__ import annotations

import csv
import io
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import wait
from pathlib import Path

from sheetsgd.check.checker import check
from sheetsgd.errors import SheetsgdError
from sheetsgd.runtime.safetext import json_text, safe_cell, shown, shown_path
from sheetsgd.read.workbook import Limits

CSV_FIELDS = ["id", "file", "status", "grade", "score", "correct", "total", "formulas_right", "mistakes", "message",
              "variant", "suspected_copy", "lesson", "exercise"]


def collect(paths: list[str]) -> list[Path]:
    """Files to grade under the link policy of :mod:`sheetsgd.grade.collect` (skipped entries: ``collect.collect``)."""
    from .collect import collect as collect_entries

    return collect_entries(paths).files


def row_for(path: Path, report: dict) -> dict:
    score = report.get("score") or {}
    mistakes = "; ".join(f"{m['column']}: {m['mistake']} (step {m['step']})" for m in report.get("mistakes", []))
    return {"id": shown_path(path.stem), "file": shown_path(path), "status": report["status"],
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
    """One submission's Gradescope results (sheetsgd.feedback.gradescope) with its id, file and status."""
    from sheetsgd.feedback.gradescope import num, results

    score = report.get("score") or {}
    return {"id": shown_path(path.stem), "file": shown_path(path), "status": report["status"],
            **results(report, path.name), "max_score": num(score.get("total") or 0), "text": text}


# --- the worker pool ----------------------------------------------------------------------------------

def _serve(conn, settings: dict) -> None:
    """A worker: check files until told to stop. Memory is capped (max_memory_mb more than the worker
    starts with) so one file cannot exhaust the host. Ctrl-C is the parent's to handle: it keeps the
    finished results and stops the workers."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from sheetsgd.lessons.runbounds import cap_memory

    cap_memory(settings["max_memory_mb"])  # address space inherited from the parent by fork, plus the allowance
    limits = Limits(**settings["limits"])
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            conn.send(_one(task, settings, limits))
        except MemoryError:
            conn.send(({"status": "error", "message": "ran out of memory (worker memory cap)"}, "", []))
        except Exception as exc:  # a bug must cost one file, not the batch
            conn.send(({"status": "error", "message": f"internal error: {type(exc).__name__}: {exc}"[:300]}, "", []))


def _one(task: tuple, settings: dict, limits: Limits) -> tuple[dict, str, list[str]]:
    """Check one file and write its feedback page and annotated copy, inside the worker's time and memory
    limits; the copy is made from the very bytes that were checked. (report, text, problems)."""
    from sheetsgd.read.package import pinned

    path, annotated, page = task
    problems = []
    with pinned(path, limits):
        report = check(path, recalc=settings["recalc"], strict=settings["strict"], limits=limits)
        data, text = report.to_dict(), report.to_text()
        assignment = settings.get("assignment")
        why = assignment.refusal(dict(data, file=str(path))) if assignment is not None and \
            data.get("status") in ("correct", "mistakes") else None
        if why:  # not the assignment's student version: refused before any feedback is written
            data, text = refuse(data, why), why
        if page:
            from sheetsgd.feedback.html import write

            try:
                write(data, page, settings["inputs"])
            except SheetsgdError as exc:
                problems.append(f"no feedback page: {exc}")
        if annotated and data["status"] not in ("error", "refused"):
            from sheetsgd.feedback.annotate import annotate

            try:
                annotate(path, data, annotated, limits, settings["inputs"])
            except SheetsgdError as exc:
                problems.append(f"not annotated: {exc}")
            except MemoryError:  # the verdict stands; only the copy is lost
                problems.append(f"not annotated: {path}: ran out of memory (worker memory cap)")
    return data, text, problems


class _Worker:
    def __init__(self, ctx, settings):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, settings), daemon=True)
        self.proc.start()
        child.close()
        self.task: int | None = None
        self.deadline = 0.0

    def give(self, index: int, task: tuple, timeout: float) -> None:
        self.task, self.deadline = index, time.monotonic() + timeout
        self.conn.send(task)

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


class Interrupted(Exception):
    """Ctrl-C during ``grade``: ``finished`` holds (index, CSV row, report, text) of every file done."""

    def __init__(self, finished: list[tuple[int, dict, dict, str]], total: int):
        super().__init__(f"interrupted: {len(finished)} of {total} file(s) graded")
        self.finished, self.total = finished, total


def grade(paths: list[Path], jobs: int = 0, timeout: float = 60, recalc: str = "auto", strict: bool = False,
          limits: Limits = Limits(), max_memory_mb: float = 2048, progress: bool = True, *,
          annotated: list[str | None] | None = None, pages: list[str | None] | None = None,
          inputs=None, on_result=None, assignment=None) -> list[tuple[dict, dict, str]]:
    """(CSV row, report dict, report text) per file, in input order. ``annotated``/``pages``: per file, where
    its annotated copy / HTML page goes (or None), written by the worker under ``inputs``' output policy;
    ``on_result(index, row, report, text, problems)`` is called as each file finishes. Ctrl-C raises
    :class:`Interrupted` with what finished. With ``assignment`` (a :class:`sheetsgd.check.assignment.Assignment`),
    a workbook that is not its student version is refused (score 0, one line)."""
    from sheetsgd.runtime.outputs import Inputs, remove_leftovers

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    settings = {"recalc": recalc, "strict": strict, "limits": limits.__dict__, "max_memory_mb": max_memory_mb,
                "inputs": inputs or Inputs(paths), "assignment": assignment}
    tasks = [(str(p), (annotated or [None] * len(paths))[i], (pages or [None] * len(paths))[i])
             for i, p in enumerate(paths)]
    workers = [_Worker(ctx, settings) for _ in range(jobs)]
    results: list[tuple[dict, str] | None] = [None] * len(paths)
    todo = list(range(len(paths)))[::-1]
    bar = Progress(len(paths), progress)

    def finish(index: int, report: dict, text: str, problems=()) -> None:
        results[index] = (report, text)
        bar.step(report["status"])
        if on_result is not None:
            on_result(index, row_for(paths[index], report), report, text, list(problems))

    try:
        for w in workers:
            if todo:
                i = todo.pop()
                w.give(i, tasks[i], timeout)
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
                        report, text, problems = w.conn.recv()
                    except (EOFError, OSError):  # the worker died: memory cap, a crash in native code
                        report, text, problems = {"status": "crashed", "message": "the checker process died on "
                                                  f"this file (exit code {w.proc.exitcode}); memory or a native "
                                                  "crash"}, "", []
                        replaced = True
                    finish(w.task, report, text, problems)
                elif now >= w.deadline:
                    finish(w.task, {"status": "timeout", "message": f"no answer within {timeout:g} s (--timeout)"}, "")
                    replaced = True
                else:
                    continue
                index, w.task = w.task, None
                if replaced:
                    _, *targets = tasks[index]
                    w.stop(kill=True)
                    for target in filter(None, targets):  # what the killed worker was writing
                        remove_leftovers(target)
                    w = workers[k] = _Worker(ctx, settings)
                if todo:
                    i = todo.pop()
                    w.give(i, tasks[i], timeout)
    except KeyboardInterrupt:
        done = [(i, row_for(paths[i], r[0]), r[0], r[1]) for i, r in enumerate(results) if r is not None]
        raise Interrupted(done, len(paths)) from None
    finally:
        for w in workers:
            w.stop(kill=w.task is not None)
            if w.task is not None:  # stopped mid-file (Ctrl-C): its half-written outputs go
                for target in filter(None, tasks[w.task][1:]):
                    remove_leftovers(target)
    out = []
    for path, (report, text) in zip(paths, results):
        out.append((row_for(path, report), report, text))
    return out


def write_csv(rows: list[dict], path: str, inputs=None) -> None:
    """The grades CSV, under the output policy (sheetsgd.runtime.outputs)."""
    from sheetsgd.runtime import outputs

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(shown(v) if isinstance(v, str) else v) for k, v in row.items()})
    outputs.write_text(path, text.getvalue(), inputs or outputs.NO_INPUTS, "grades CSV", newline="")


class CsvStream:
    """Rows written as files finish (flushed) to a temporary file beside the CSV: a run stopped by any
    means leaves the finished rows there; :meth:`close` puts the final rows in place."""

    def __init__(self, path: str, inputs):
        from sheetsgd.runtime import outputs

        self.path, self.inputs = path, inputs
        self.stage = outputs.Staged(path, inputs, "grades CSV", suffix=".csv")
        self.fh = open(self.stage.tmp, "w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.fh, fieldnames=CSV_FIELDS)
        self.writer.writeheader()
        self.fh.flush()

    def add(self, row: dict) -> None:
        self.writer.writerow({k: safe_cell(shown(v) if isinstance(v, str) else v) for k, v in row.items()})
        self.fh.flush()

    def close(self, rows: list[dict]) -> None:
        """Replace the streamed rows by ``rows`` (input order, every column) and move the CSV into place."""
        self.fh.close()
        self.stage.discard()
        write_csv(rows, self.path, self.inputs)


def keep_finished(stop: Interrupted, files: list[Path], ids: list[str], stream: CsvStream, results_json: str | None,
                  inputs) -> str:
    """After Ctrl-C: the finished rows (input order) into the CSV, their results into results.json; the
    one line to print. A second Ctrl-C meanwhile is ignored (it would lose them)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    done = sorted(stop.finished, key=lambda f: f[0])
    for i, row, _, _ in done:
        row["id"] = ids[i]
    stream.close([row for _, row, _, _ in done])
    if results_json:
        write_results_json([(row, report, text) for _, row, report, text in done], [files[i] for i, *_ in done],
                           results_json, [ids[i] for i, *_ in done], inputs)
    return (f"Interrupted: {len(done)} of {stop.total} file(s) graded; wrote {stream.path}"
            + (f" and {results_json}" if results_json else "") + " with those")


def write_results_json(graded: list[tuple[dict, dict, str]], paths: list[Path], path: str,
                       ids: list[str] | None = None, inputs=None) -> None:
    subs = [_gradescope(p, report, text) for p, (_, report, text) in zip(paths, graded)]
    if ids is not None:  # unique ids (sheetsgd.grade.collect.unique_ids)
        for sub, id_ in zip(subs, ids):
            sub["id"] = id_
    from sheetsgd.runtime import outputs

    outputs.write_text(path, json_text({"generator": "sheetsgd grade", "format": "one Gradescope results object "
                                        "per submission", "submissions": subs}, indent=1),
                       inputs or outputs.NO_INPUTS, "results JSON")
