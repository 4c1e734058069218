"""The ``sheetsgd`` command line: one function per command, shared options, clean one-line errors."""
from __future__ import annotations

import csv
import functools
import json
import sys

import click

from . import __version__
from .errors import SheetsgdError
from .lesson import bundled_lessons, load_lesson, override
from .optimizers import OPTIMIZERS

EXIT_USAGE = 2


def fail(message: str) -> None:
    """Print a one-line error and exit 2 (bad input), never a traceback."""
    click.echo(f"Error: {message}", err=True)
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


class BatchSize(click.ParamType):
    name = "N|full"

    def convert(self, value, param, ctx):
        if value == "full" or isinstance(value, int):
            return value
        try:
            size = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a whole number or 'full'", param, ctx)
        if size < 1:
            self.fail(f"must be ≥ 1, got {size}", param, ctx)
        return size


def lesson_options(func):
    """The options that override a template's values, shared by build and trace."""
    options = [
        click.argument("lesson", metavar="LESSON|FILE.toml"),
        click.option("--optimizer", type=click.Choice(sorted(OPTIMIZERS)), help="Optimizer (default: the template's)."),
        click.option("--lr", type=float, help="Learning rate (> 0)."),
        click.option("--epochs", type=click.IntRange(min=1), help="Number of epochs (≥ 1)."),
        click.option("--batch-size", type=BatchSize(), help="Examples per step: a number, or 'full'."),
        click.option("--loss", type=click.Choice(["mse", "mae"]), help="Loss (default: the template's)."),
        click.option("--shuffle/--no-shuffle", default=None, help="Shuffle the examples each epoch."),
        click.option("--seed", type=int, help="Seed of the per-epoch shuffle."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _lesson(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed):
    if lr is not None and not lr > 0:
        raise SheetsgdError(f"--lr must be > 0, got {lr:g}")
    return override(load_lesson(lesson), optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size,
                    seed=seed, shuffle=shuffle, loss=loss)


class OneLineErrors(click.Group):
    """Usage errors as one line ("Error: …", exit 2) instead of click's usage block."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
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
        lesson = load_lesson(str(path))
        rows.append({"name": name, "title": lesson.title, "model": lesson.model, "loss": lesson.loss,
                     "optimizer": lesson.optimizer, "batch_size": lesson.batch_size, "epochs": lesson.epochs})
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['title']}")


@cli.command()
@lesson_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=False),
              help="Where to write the .xlsx workbook.")
@click.option("--json", "as_json", is_flag=True, help="Report what was written as JSON.")
@click.option("--exercise", is_flag=False, flag_value="", default=None, metavar="[COLUMNS]",
              help="Student version: leave these Steps columns blank (comma-separated keys; "
                   "alone: the template's exercise columns).")
@clean_errors
def build(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed, output, as_json, exercise):
    """Build the workbook of LESSON (a bundled name or a template file)."""
    from .student import resolve_exercise
    from .writer import build_workbook

    the_lesson = _lesson(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed)
    if not output.lower().endswith(".xlsx"):
        raise SheetsgdError("output must end in .xlsx", output)
    blanks = resolve_exercise(the_lesson, exercise) if exercise is not None else frozenset()
    report = build_workbook(the_lesson, output, exercise=blanks)
    summary = {"path": report.path, "lesson": the_lesson.name, "optimizer": the_lesson.optimizer,
               "steps": report.steps, "formula_cells": report.formula_cells, "cells": report.cells,
               "bytes": report.bytes, "exercise": sorted(blanks)}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"wrote {report.path}: {the_lesson.name}, {the_lesson.optimizer}, {report.steps} steps, "
                   f"{report.formula_cells:,} formulas in {report.cells:,} cells, {report.bytes / 1024:,.0f} KiB")


@cli.command()
@lesson_options
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="Output format.")
@clean_errors
def trace(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed, fmt):
    """Print the engine's numbers for every step of LESSON, without a workbook."""
    from .engine import train

    the_lesson = _lesson(lesson, optimizer, lr, epochs, batch_size, loss, shuffle, seed)
    result = train(the_lesson)
    rows = result.table()
    if fmt == "json":
        click.echo(json.dumps({"lesson": the_lesson.name, "optimizer": the_lesson.optimizer,
                               "hyperparameters": the_lesson.hyper, "steps": rows,
                               "epochs": [dict(zip(result.epochs, map(float, vals)))
                                          for vals in zip(*result.epochs.values())]}))
        return
    out = click.get_text_stream("stdout")
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})


def main():  # pragma: no cover - console-script entry point
    cli()
