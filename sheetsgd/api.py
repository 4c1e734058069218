"""The Python API, for notebooks and scripts: what the command line does, as objects.

    from sheetsgd import api

    lesson = api.load("linear", optimizer="adam", epochs=2)   # a bundled name or a template file
    run = lesson.train()                                     # the numpy engine, no workbook
    run.frames()["Steps"]                                    # every sheet's numbers as DataFrames
    lesson.build("linear.xlsx", exercise=True)               # the workbook (here a student version)
    report = api.check("linear.xlsx")                        # a check.Report: status, score, mistakes

Every kind of lesson works the same way (data lessons, function lessons, optimizer comparisons, lr
finders, Titanic). Problems with the input raise :class:`sheetsgd.errors.SheetsgdError`, as on the
command line (where they become one-line errors). ``sheetsgd trace`` prints :meth:`Run.table` and
:meth:`Run.document`.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

from sheetsgd.lessons import kinds
from sheetsgd.runtime import outputs, progress
from sheetsgd.runtime.jsonsafe import finite_or_null as finite  # noqa: F401 (api.finite: the one JSON-safe conversion)
from sheetsgd.errors import SheetsgdError

__all__ = ["Lesson", "Run", "SheetsgdError", "annotate", "check", "feedback_page", "lessons", "load"]

OPTIONS = ("optimizer", "lr", "epochs", "batch_size", "loss", "shuffle", "seed", "variant")


def lessons() -> list[str]:
    """The names of the bundled lessons (what ``sheetsgd lessons`` lists)."""
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    return list(bundled_lessons())


def load(name_or_path: str | os.PathLike, *, optimizer: str | None = None, lr: float | None = None,
         epochs: int | None = None, batch_size: int | str | None = None, loss: str | None = None,
         shuffle: bool | None = None, seed: int | None = None, variant: str | None = None) -> "Lesson":
    """A bundled lesson by name, or a template (.toml) by path, with the command line's options applied.

    An option left at None keeps the template's value. ``batch_size`` is a number or ``"full"``.
    ``variant``: a student's ID; that student's start values (:mod:`sheetsgd.lessons.variants`).
    """
    options = dict(optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, loss=loss,
                   shuffle=shuffle, seed=seed, variant=variant)
    return Lesson(_load_spec(os.fspath(name_or_path), options), str(name_or_path),
                  {k: v for k, v in options.items() if v is not None})


def _load_spec(name_or_path: str, options: dict):
    lr, epochs, batch_size = options["lr"], options["epochs"], options["batch_size"]
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0):
        raise SheetsgdError(f"--lr must be > 0, got {lr:g}" if isinstance(lr, (int, float)) else
                            f"--lr must be a number > 0, got {lr!r}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise SheetsgdError(f"--epochs must be an integer ≥ 1, got {epochs!r}")
    if batch_size is not None and batch_size != "full" and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise SheetsgdError(f"--batch-size must be an integer ≥ 1 or 'full', got {batch_size!r}")
    return kinds.load(name_or_path, **options)


@dataclass(frozen=True)
class Lesson:
    """A lesson ready to train or build; ``spec`` is the kind's own lesson object (e.g. ``hyper``, ``data``)."""

    spec: object
    source: str = ""
    options: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return kinds.shown_kind(self.spec)

    @property
    def title(self) -> str:
        return self.spec.title

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"<sheetsgd lesson {self.name!r} ({self.kind}){opts}>"

    def with_options(self, **options) -> "Lesson":
        """The same template with other options (on top of this lesson's own)."""
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise SheetsgdError(f"unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(OPTIONS)}")
        return load(self.source, **{**self.options, **options})

    def train(self, *, progress: bool | progress.Quiet | None = None) -> "Run":
        """Train with the engine: every number a formula cell of the workbook would show.

        ``progress`` as for :meth:`build` (training a bundled lesson takes well under the half second
        after which anything is shown)."""
        with _reporting(progress, self.name) as reporter:
            reporter.stage("training")
            trace = kinds.kind_of(self.spec).train(self.spec)
        return Run(self, trace)

    def build(self, path: str | os.PathLike, exercise: bool | str | list[str] | None = None, *,
              progress: bool | progress.Quiet | None = None, inputs: "outputs.Inputs | None" = None):
        """Write the workbook to ``path`` (.xlsx); returns the writer's report (path, steps, cells, bytes).

        ``exercise``: None for the full workbook; True for the student version with the template's
        exercise columns blank; a comma-separated string or a list of column keys to blank those.
        ``progress``: None shows it on stderr when stderr is a terminal; True always; False never;
        or a :class:`sheetsgd.runtime.progress.Reporter`. ``inputs``: files the workbook may never replace
        (default: the template file).
        """
        from sheetsgd.write.lesson_file import write_lesson

        with _reporting(progress, os.path.basename(os.fspath(path))) as reporter:
            return write_lesson(kinds.kind_of(self.spec), self.spec, path, exercise, reporter,
                                inputs or outputs.Inputs([self.source]))


def exercise_columns(report) -> list[str]:
    """The blank columns of a built student version, as ``key`` (or ``Block:key`` where several blocks have them)."""
    exercise = getattr(report, "exercise", None) or {}
    return sorted(f"{name}:{k}" if len(exercise) > 1 else k for name, keys in exercise.items() for k in keys)


def _reporting(show, label):
    return progress.reporting(show, label=f"sheetsgd {label}")


@dataclass
class Run:
    """A trained lesson: the engine's trace and every sheet's quantities as DataFrames."""

    lesson: Lesson
    trace: object  # the kind's trace: engine.Trace, FunctionTrace, CompareTrace, FinderTrace, TitanicTrace
    _frames: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"<sheetsgd run of {self.lesson.name!r}: {self.n_steps} steps; sheets {', '.join(self.sheets)}>"

    @property
    def n_steps(self) -> int:
        return self.trace.n_steps

    @property
    def sheets(self) -> list[str]:
        """The sheets with numbers, in the workbook's tab order: the keys of :meth:`frames`."""
        return list(self._builders())

    def _builders(self) -> dict:
        from sheetsgd.lessons.frames import sheet_frames

        return sheet_frames(self.lesson.spec, self.trace)

    def frame(self, sheet: str):
        """One sheet's quantities as a pandas DataFrame (columns named by the sheet's column keys)."""
        if sheet not in self._frames:
            builders = self._builders()
            if sheet not in builders:
                raise SheetsgdError(f"no sheet {sheet!r} in a {self.lesson.kind!r} lesson; it has {', '.join(builders)}")
            self._frames[sheet] = builders[sheet]()
        return self._frames[sheet]

    def frames(self, *sheets: str) -> dict:
        """{sheet: DataFrame} for these sheets, or every sheet with numbers (e.g. Steps, Epochs, Data)."""
        return {name: self.frame(name) for name in (sheets or self.sheets)}

    def table(self) -> list[dict]:
        """One dict per step, as ``sheetsgd trace`` prints it (the kind's ``trace.table()``)."""
        return self.trace.table()

    def summary(self) -> dict:
        """What ``sheetsgd trace --format json`` shows beside the steps (optimizer, epochs, suggestions, …)."""
        return self.trace.summary(self.lesson.spec)

    def document(self) -> dict:
        """``sheetsgd trace --format json``: lesson, kind, summary and steps; non-finite numbers are None."""
        return finite({"lesson": self.lesson.name, "kind": kinds.shown_kind(self.lesson.spec), **self.summary(),
                       "steps": self.table()})

    def write_csv(self, stream) -> None:
        """``sheetsgd trace``'s CSV: one row per step, floats written so that they read back exactly."""
        rows = self.table()
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})


def check(path: str | os.PathLike, *, strict: bool = False, recalc: str | None = None, limits=None):
    """Check a filled-in workbook; returns a :class:`sheetsgd.check.checker.Report` (never raises for a bad file).

    ``report.status`` is "correct", "mistakes" or "error" (``report.message`` says why);
    ``report.score`` is (cells right, exercise cells); ``report.mistakes`` the root causes;
    ``report.to_dict()`` the JSON of ``sheetsgd check --json``. ``recalc``: None trusts the cached
    values (IronCalc when the file stores none), or "ironcalc" / "libreoffice". ``limits``: a
    :class:`sheetsgd.read.workbook.Limits`.
    """
    from sheetsgd.check.checker import check as check_file
    from sheetsgd.read.workbook import Limits

    if recalc not in (None, "auto", "ironcalc", "libreoffice"):
        raise SheetsgdError(f"recalc must be None, 'ironcalc' or 'libreoffice', got {recalc!r}")
    return check_file(os.fspath(path), recalc=recalc or "auto", strict=strict, limits=limits or Limits())


def _report_dict(report) -> dict:
    return report.to_dict() if hasattr(report, "to_dict") else report


def annotate(path: str | os.PathLike, report, out: str | os.PathLike) -> dict:
    """``check --annotate``: the marked-up copy of the checked workbook ``path`` written to ``out`` (never over
    ``path``, never through a link) from its report (:func:`check`'s, or its ``to_dict()``); returns {sheet:
    marked cells}."""
    from sheetsgd.feedback.annotate import annotate as annotate_copy

    return annotate_copy(os.fspath(path), _report_dict(report), os.fspath(out))


def feedback_page(report) -> str:
    """``check --format html``: the self-contained feedback page of a report, as text."""
    from sheetsgd.feedback.html import render

    return render(_report_dict(report))

