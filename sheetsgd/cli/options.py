"""Option types and shared option groups of the command line (``sheetsgd.cli``'s commands use them)."""
from __future__ import annotations

import math

import click


QUIET = click.option("--quiet", "-q", is_flag=True,
                     help="No progress on stderr (shown only when stderr is a terminal).")
RECALC = click.Choice(["ironcalc", "libreoffice"])
VISIBILITY = click.Choice(["hidden", "after_due_date", "after_published", "visible"])
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


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


class FiniteFloat(click.ParamType):
    """A finite number ≥ min (inf and nan are refused: a limit of inf or nan is no limit)."""
    name = "float"

    def __init__(self, min: float = 0.0, min_open: bool = False):
        self.min, self.min_open = min, min_open

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"must be a finite number, got {value}", param, ctx)
        if number < self.min or (self.min_open and number == self.min):
            self.fail(f"must be {'>' if self.min_open else '≥'} {self.min:g}, got {number:g}", param, ctx)
        return number


def limit_options(func):
    """Bounds on what an untrusted file may make the checker do (see sheetsgd.read.workbook.Limits)."""
    from sheetsgd.read.workbook import Limits

    d = Limits()
    options = [
        click.option("--max-file-mb", type=FiniteFloat(0), default=d.max_file_mb, show_default=True,
                     help="Largest .xlsx file accepted."),
        click.option("--max-part-mb", type=FiniteFloat(0), default=d.max_part_mb, show_default=True,
                     help="Largest inflated XML part (zip bombs are refused before inflating)."),
        click.option("--max-cells", type=click.IntRange(min=1), default=d.max_cells, show_default=True,
                     help="Most cells in one sheet."),
        click.option("--max-members", type=click.IntRange(min=1), default=d.max_members, show_default=True,
                     help="Most members in the zip archive."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _limits(max_file_mb, max_part_mb, max_cells, max_members):
    from sheetsgd.read.workbook import Limits

    return Limits(max_file_mb=max_file_mb, max_part_mb=max_part_mb, max_cells=max_cells, max_members=max_members,
                  max_total_mb=max(Limits().max_total_mb, 4 * max_part_mb))
