"""The ``sheetsgd`` command line: one function per command, shared options, clean one-line errors."""
from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path

import click

from sheetsgd import __version__
from sheetsgd.errors import SheetsgdError
from sheetsgd.runtime.safetext import json_text, shown
from sheetsgd.lessons import kinds, runbounds
from sheetsgd.runtime import outputs
from sheetsgd.lessons.sgd.lesson import bundled_lessons
from sheetsgd.lessons.optimizers import OPTIMIZERS
from .options import EXIT_INTERRUPTED, QUIET, RECALC, VISIBILITY, BatchSize, FiniteFloat, _limits, limit_options

EXIT_USAGE = 2


def fail(message: str) -> None:
    """Print a one-line error and exit 2 (bad input), never a traceback."""
    click.echo(f"Error: {shown(message)}", err=True)
    sys.exit(EXIT_USAGE)


def clean_errors(func):
    """Turn library errors into one-line CLI errors with exit code 2."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SheetsgdError as exc:
            fail(str(exc))
    return wrapper


def lesson_options(func, argument: bool = True):
    """The options that override a template's values, shared by build and trace (and grade --assignment,
    without the LESSON argument)."""
    options = [
        click.argument("lesson", metavar="LESSON|FILE.toml"),
        click.option("--optimizer", type=click.Choice(sorted(OPTIMIZERS)), help="Optimizer (default: the template's)."),
        click.option("--lr", type=float, help="Learning rate (> 0)."),
        click.option("--epochs", type=click.IntRange(min=1), help="Number of epochs (≥ 1)."),
        click.option("--batch-size", type=BatchSize(), help="Examples per step: a number, or 'full'."),
        click.option("--loss", type=click.Choice(["mse", "mae", "bce", "ce"]),
                     help="Loss (default: the template's; bce: Titanic lessons and data lessons with an own formula, 0/1 targets; ce: the softmax model's only loss)."),
        click.option("--shuffle/--no-shuffle", default=None, help="Shuffle the examples each epoch."),
        click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Seed of the per-epoch shuffle (≥ 0)."),
    ]
    for option in reversed(options if argument else options[1:]):
        func = option(func)
    return func


def _lesson(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed, variant=None):
    from sheetsgd import api

    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise SheetsgdError(f"--lr must be > 0 and finite, got {lr:g}")
    return api.load(lesson, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, loss=loss,
                    shuffle=shuffle, seed=seed, variant=variant)


class OneLineErrors(click.Group):
    """Usage errors as one line ("Error: …", exit 2) instead of click's usage block."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {shown(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sheetsgd")
def cli():
    """Gradient descent lessons as spreadsheets: every SGD step is a row of live formulas."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@clean_errors
def lessons(as_json):
    """List the bundled lessons, one line each."""
    rows = []
    for name, path in bundled_lessons().items():
        lesson = kinds.load(str(path))
        row = {"name": name, "kind": kinds.shown_kind(lesson), "title": lesson.title}
        row.update({k: getattr(lesson, k) for k in ("model", "loss", "optimizer", "batch_size", "epochs")
                    if hasattr(lesson, k)})
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['title']}")


@cli.command()
@lesson_options
@click.option("-o", "--output", required=True, type=click.Path(writable=False),
              help="Where to write the .xlsx workbook (with --variants: a folder).")
@click.option("--json", "as_json", is_flag=True, help="Report what was written as JSON.")
@click.option("--exercise", is_flag=False, flag_value="", default=None, metavar="[COLUMNS]",
              help="Student version: leave these Steps columns blank (comma-separated keys; "
                   "alone: the template's exercise columns).")
@click.option("--variant", metavar="ID", help="One student's variant: start values derived from ID.")
@click.option("--variants", "roster", type=click.Path(dir_okay=False), metavar="ROSTER.csv",
              help="One workbook per student of a roster (an 'id' column) into the folder -o.")
@QUIET
@clean_errors
def build(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed, output, as_json, exercise, variant, roster,
          quiet):
    """Build the workbook of LESSON (a bundled name or a template file)."""
    if roster is not None:
        if variant is not None:
            raise SheetsgdError("give --variant or --variants, not both")
        from sheetsgd.write.roster import build_roster

        def load(id_):
            return _lesson(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed, id_)
        written, collided = build_roster(load, roster, output, exercise, quiet)
        for a, b in collided:
            click.echo(f"warning: IDs {a!r} and {b!r} get the same start values", err=True)
        if as_json:
            click.echo(json.dumps({"folder": output, "files": written}))
        else:
            click.echo(f"wrote {len(written)} workbook(s) to {output} (index: {Path(output, 'variants.csv')})")
        return
    if Path(output).is_dir():
        raise SheetsgdError("is a directory (a folder is the output of --variants only)", output)
    the_lesson = _lesson(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed, variant)
    from sheetsgd.api import exercise_columns

    runbounds.guard(the_lesson.spec, "build")  # every kind: refuse what will not fit before training
    report = the_lesson.build(output, exercise, progress=False if quiet else None,
                              inputs=outputs.Inputs([the_lesson.source]))
    blanks = exercise_columns(report)
    optimizer_name = getattr(the_lesson.spec, "optimizer", None)
    summary = {"path": report.path, "lesson": the_lesson.name, "optimizer": optimizer_name,
               "steps": report.steps, "formula_cells": report.formula_cells, "cells": report.cells,
               "bytes": report.bytes, "exercise": blanks, "variant": variant}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        what = ", ".join(filter(None, [the_lesson.name, optimizer_name, variant and f"variant {variant}"]))
        click.echo(f"wrote {report.path}: {what}, {report.steps} steps, "
                   f"{report.formula_cells:,} formulas in {report.cells:,} cells, {report.bytes / 1024:,.0f} KiB")


@cli.command()
@lesson_options
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="Output format.")
@QUIET
@clean_errors
def trace(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed, fmt, quiet):
    """Print the engine's numbers for every step of LESSON, without a workbook."""
    the_lesson = _lesson(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed)
    runbounds.guard(the_lesson.spec, "trace")  # the same bound as build, before training
    run = the_lesson.train(progress=False if quiet else None)
    if fmt == "json":  # overflowed values: null, valid JSON
        click.echo(json.dumps(run.document(), allow_nan=False))
    else:
        run.write_csv(click.get_text_stream("stdout"))


@cli.command("check")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (same as --format json).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default=None,
              help="Report format on standard output: text (default), json, or a self-contained HTML page.")
@click.option("--annotate", "annotate_to", type=click.Path(dir_okay=False),
              help="Also write a marked-up copy of the workbook here (red root causes with notes, amber "
                   "knock-ons, green correct cells, a first Feedback sheet); never the input file.")
@click.option("--strict", is_flag=True, help="Also recalculate with other inputs (lr, initial parameters): "
                                             "catches typed numbers and pasted values.")
@click.option("--recalc", type=RECALC, default=None,
              help="Recalculate with this engine instead of trusting the file's cached values "
                   "(default: cached values; IronCalc when the file stores none).")
@click.option("--timeout", type=FiniteFloat(0, min_open=True), default=60, show_default=True,
              help="Seconds the check (and --annotate) may take; past them the file cannot be checked (exit 2).")
@click.option("--max-memory-mb", type=click.FloatRange(min=64), default=2048, show_default=True,
              help="Memory the check may use beyond what the command starts with (as grade's).")
@limit_options
@QUIET
@clean_errors
def check_command(file, as_json, fmt, annotate_to, strict, recalc, timeout, max_memory_mb, max_file_mb, max_part_mb,
                  max_cells, max_members, quiet):
    """Check a filled-in sheetsgd workbook: exit 0 all correct, 1 mistakes found, 2 cannot check."""
    from sheetsgd.feedback.annotate import annotate
    from sheetsgd.check.checker import Report, check
    from sheetsgd.runtime.deadline import OutOfTime, time_limit
    from sheetsgd.runtime.progress import reporting
    from sheetsgd.read.package import pinned

    fmt = fmt or ("json" if as_json else "text")
    limits = _limits(max_file_mb, max_part_mb, max_cells, max_members)
    if annotate_to:
        outputs.check_target(annotate_to, outputs.Inputs([file]), "annotated copy")
    late = f"no answer within {timeout:g} s (--timeout)"
    try:  # one deadline and one memory cap for the check and the annotated copy, made from the same bytes
        as_object = json_text(Report(str(file), "error", message=late).to_dict()) if fmt == "json" else None
        with runbounds.memory_cap(max_memory_mb), \
                time_limit(timeout, f"{shown(str(file))}: cannot check: {late}", stdout_text=as_object), \
                pinned(file, limits), \
                reporting(False if quiet else None, label=f"sheetsgd check {shown(Path(file).name[:40])}") as status:
            status.stage("checking")
            report = check(file, recalc=recalc or "auto", strict=strict, limits=limits)
            if annotate_to and report.status != "error":
                annotate(file, report.to_dict(), annotate_to, limits)
    except OutOfTime:
        report = Report(str(file), "error", message=late)
    except MemoryError:
        report = Report(str(file), "error", message=f"ran out of memory (--max-memory-mb {max_memory_mb:g})")
    if fmt == "json":
        click.echo(json_text(report.to_dict(), allow_nan=False))
    elif fmt == "html":
        from sheetsgd.feedback.html import render

        click.echo(render(report.to_dict()), nl=False)
        if report.status == "error":
            click.echo(f"Error: {shown(report.to_text())}", err=True)
    elif report.status == "error":
        click.echo(f"Error: {shown(report.to_text())}", err=True)
    else:
        click.echo(report.to_text())
    sys.exit(report.exit_code)


@cli.command("grade")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The grades CSV to write.")
@click.option("--results-json", type=click.Path(dir_okay=False), help="Also write Gradescope-style results.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, help="Parallel checks (default: all cores).")
@click.option("--timeout", type=FiniteFloat(0.1), default=60, show_default=True,
              help="Seconds one file may take before it is recorded as a timeout.")
@click.option("--max-memory-mb", type=click.FloatRange(min=64), default=2048, show_default=True,
              help="Memory a checking process may use beyond what it starts with.")
@click.option("--strict", is_flag=True, help="Check every file with --strict.")
@click.option("--recalc", type=RECALC, default=None, help="Recalculate every file with this engine.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--annotate-dir", type=click.Path(file_okay=False),
              help="Also write a marked-up copy of every checked submission here (ID.xlsx, as check --annotate).")
@click.option("--feedback-dir", type=click.Path(file_okay=False),
              help="Also write one self-contained HTML feedback page per submission here (ID.html).")
@click.option("--assignment", metavar="LESSON|FILE.toml",
              help="The assignment graded (with the lesson options below): any other workbook, the lesson's full "
                   "workbook included, is refused with score 0.")
@click.option("--exercise", is_flag=False, flag_value="", default=None, metavar="[COLUMNS]",
              help="With --assignment: its exercise columns (as build --exercise; default: the template's).")
@lambda f: lesson_options(f, argument=False)
@limit_options
@clean_errors
def grade_command(paths, output, results_json, jobs, timeout, max_memory_mb, strict, recalc, quiet,
                  annotate_dir, feedback_dir, assignment, exercise, optimizer, lr, epochs, batch_size, loss, shuffle,
                  seed, max_file_mb, max_part_mb, max_cells, max_members):
    """Check many submissions (files or folders) in parallel: one CSV row per file."""
    from sheetsgd.grade.collect import collect, unique_ids
    from sheetsgd.grade.batch import CsvStream, Interrupted, grade, keep_finished, write_results_json
    from sheetsgd.runtime.progress import is_terminal, reporting

    overrides = dict(optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, loss=loss, shuffle=shuffle,
                     seed=seed)
    the_assignment = None
    if assignment is not None:
        from sheetsgd.check.assignment import assignment_of

        the_assignment = assignment_of(_lesson(assignment, **overrides), exercise)
    elif exercise is not None or any(v is not None for v in overrides.values()):
        raise SheetsgdError("--exercise and the lesson options go with --assignment LESSON|FILE.toml")

    found = collect(list(paths))
    files = found.files
    inputs = outputs.Inputs(files)  # the output policy (sheetsgd.runtime.outputs), checked before grading
    outputs.distinct({"-o": output, "--results-json": results_json})
    stream = CsvStream(output, inputs)  # refused or unwritable: one line, before grading
    if results_json:
        outputs.Staged(results_json, inputs, "results JSON").discard()
    for folder, option in ((annotate_dir, "--annotate-dir"), (feedback_dir, "--feedback-dir")):
        if folder:
            outputs.make_folder(folder, inputs, f"{option} folder")
    for entry, why in found.skipped:
        click.echo(shown(f"skipped {entry}: {why}"), err=True)
    ids = unique_ids(files)
    limits = _limits(max_file_mb, max_part_mb, max_cells, max_members)
    show_progress = not quiet and is_terminal(sys.stderr)

    def on_result(index, row, report, text, problems):
        stream.add(dict(row, id=ids[index]))
        for problem in problems:
            click.echo(shown(problem), err=True)
    graded = []
    try:
        graded = grade(files, jobs=jobs, timeout=timeout, recalc=recalc or "auto", strict=strict, limits=limits,
                       max_memory_mb=max_memory_mb, progress=show_progress, inputs=inputs, on_result=on_result,
                       annotated=[annotate_dir and str(Path(annotate_dir, f"{i}.xlsx")) for i in ids],
                       pages=[feedback_dir and str(Path(feedback_dir, f"{i}.html")) for i in ids],
                       assignment=the_assignment)
        for (row, _, _), id_ in zip(graded, ids):
            row["id"] = id_
        from sheetsgd.grade.copies import suspected_copies

        with reporting(show_progress, label="sheetsgd grade") as after:
            after.stage("looking for copied variants")
            copies = suspected_copies(files, [row["status"] for row, _, _ in graded], limits)
            for i, why in copies.items():
                graded[i][0]["suspected_copy"] = why
            after.stage("writing")
            stream.close([row for row, _, _ in graded])
            if results_json:
                write_results_json(graded, files, results_json, ids, inputs)
    except Interrupted as stop:  # Ctrl-C: every finished result kept, in input order; no traceback
        click.echo(keep_finished(stop, files, ids, stream, results_json, inputs), err=True)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:  # after every file was graded: all of them kept (no copies flagged)
        stop = Interrupted([(i, *g) for i, g in enumerate(graded)], len(files))
        click.echo(keep_finished(stop, files, ids, stream, results_json, inputs), err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        stream.stage.discard()  # the streamed rows, once the CSV is in place (or on a refusal)
    counts: dict[str, int] = {}
    for row, _, _ in graded:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    click.echo(f"graded {len(graded)} file(s): " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
               + (f"; skipped {len(found.skipped)} entr{'y' if len(found.skipped) == 1 else 'ies'}" if found.skipped else "")
               + (f"; {len(copies)} suspected cop{'y' if len(copies) == 1 else 'ies'} (suspected_copy)" if copies else "")
               + f"; wrote {output}" + (f" and {results_json}" if results_json else ""))


@cli.command("autograder")
@lesson_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The autograder .zip to write.")
@click.option("--exercise", is_flag=False, flag_value="", default=None, metavar="[COLUMNS]",
              help="The exercise columns to grade (as build --exercise; default: the template's).")
@click.option("--visibility", type=VISIBILITY, default="visible", show_default=True,
              help="When students see the results (every test and the whole).")
@click.option("--stdout-visibility", type=VISIBILITY, default="hidden", show_default=True,
              help="When students see the autograder's printed output (the text report).")
@click.option("--leaderboard", is_flag=True, help="Add a leaderboard: cells right (%), formulas right (%) and the final loss.")
@click.option("--points", type=FiniteFloat(0, min_open=True), default=None,
              help="Scale the score to this many points (default: one point per exercise cell).")
@click.option("--strict", is_flag=True, help="Check every submission with --strict.")
@click.option("--recalc", type=RECALC, default=None, help="Recalculate every submission with this engine.")
@click.option("--timeout", type=FiniteFloat(0.1), default=120, show_default=True,
              help="Seconds one submission may take to check.")
@click.option("--max-memory-mb", type=click.FloatRange(min=64), default=2048, show_default=True,
              help="Memory the checking process may use beyond what it starts with.")
@click.option("--libreoffice", is_flag=True, help="setup.sh also installs LibreOffice (apt: libreoffice-calc-nogui).")
@click.option("--allow-variants", is_flag=True, help="Accept every student variant (build --variant) of the lesson.")
@click.option("--variant-key", metavar="FIELD",
              help="Accept only the submitter's own variant: its ID is this field (email, sid, …) of a user in "
                   "Gradescope's submission_metadata.json (implies --allow-variants).")
@click.option("--wheel", type=click.Path(dir_okay=False, exists=True),
              help="Bundle this sheetsgd wheel instead of one written from the running package.")
@limit_options
@QUIET
@clean_errors
def autograder_command(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed, output, exercise, visibility,
                       stdout_visibility, leaderboard, points, strict, recalc, timeout, max_memory_mb, libreoffice,
                       allow_variants, variant_key, wheel, max_file_mb, max_part_mb, max_cells, max_members, quiet):
    """Write a Gradescope autograder (.zip) that checks submissions of LESSON's student version."""
    from sheetsgd.grade.autograder import build_bundle

    the_lesson = _lesson(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed)
    runbounds.guard(the_lesson.spec, "build")
    from sheetsgd.runtime.progress import reporting

    with reporting(False if quiet else None, label=f"sheetsgd autograder {Path(output).name[:40]}"):
        config = build_bundle(the_lesson, output, exercise, visibility=visibility, stdout_visibility=stdout_visibility,
                              leaderboard=leaderboard, points=points, strict=strict, recalc=recalc, timeout=timeout,
                              max_memory_mb=max_memory_mb, limits=_limits(max_file_mb, max_part_mb, max_cells,
                                                                          max_members),
                              libreoffice=libreoffice, wheel=wheel, variants=allow_variants, variant_key=variant_key)
    click.echo(f"wrote {output}: lesson {config['lesson']}, {len(config['exercise'])} exercise column(s) "
               f"({', '.join(config['exercise'])}); upload it as the assignment's autograder")


def main():  # pragma: no cover - console-script entry point
    cli()
