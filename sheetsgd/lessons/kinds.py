"""Lesson kinds: how each kind of template is parsed, overridden by options, trained and written.

A template names its kind in ``[lesson] kind`` (default ``sgd``: a model trained on data).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Callable

from sheetsgd.lessons.attention.engine import train_attention
from sheetsgd.lessons.attention.lesson import override_attention, parse_attention_lesson
from sheetsgd.lessons.attention.workbook import build_attention_workbook
from sheetsgd.lessons.collab.lesson import override_collab, parse_collab_lesson
from sheetsgd.lessons.collab.engine import train_collab
from sheetsgd.lessons.collab.workbook import build_collab_workbook
from sheetsgd.lessons.conv.engine import train_conv
from sheetsgd.lessons.conv.lesson import override_conv, parse_conv_lesson
from sheetsgd.lessons.conv.template import TABLES as CONV_TABLES
from sheetsgd.lessons.conv.workbook import build_conv_workbook
from .compare import build_compare_workbook, override_compare, parse_compare_lesson, train_compare
from sheetsgd.lessons.sgd.engine import train
from sheetsgd.errors import SheetsgdError
from . import schema
from .function import build_function_workbook, override_function, parse_function_lesson, train_function
from sheetsgd.lessons.lr_finder.finder import override_finder, parse_finder_lesson, train_finder
from sheetsgd.lessons.lr_finder.workbook import build_finder_workbook
from sheetsgd.lessons.tabular.engine import train as train_titanic
from sheetsgd.lessons.tabular.author_csv import inline_csv
from sheetsgd.lessons.tabular.lesson import is_titanic_template, parse_titanic_lesson
from sheetsgd.lessons.tabular.workbook import build_titanic_workbook
from sheetsgd.lessons.sgd.lesson import override, parse_lesson, read_template, template_kind
from sheetsgd.lessons.sgd.workbook import build_workbook


@dataclass(frozen=True)
class Kind:
    parse: Callable
    override: Callable
    train: Callable
    build: Callable
    plan: Callable | None = None  # the run's layout without its numbers (train(lesson, dry=True)); None: train

    def layout(self, lesson):
        """What the checker rebuilds from: a run with the real layout (rows, steps, batches, given numbers),
        trained only where that is cheap (a kind without a dry run is small)."""
        return (self.plan or self.train)(lesson)


TABULAR = Kind(parse_titanic_lesson, lambda lesson, **options: lesson.override(**options), train_titanic,
               build_titanic_workbook, plan=lambda lesson: train_titanic(lesson, dry=True))
KINDS = {
    "sgd": Kind(parse_lesson, override, train, build_workbook, plan=lambda lesson: train(lesson, dry=True)),
    "function": Kind(parse_function_lesson, override_function, train_function, build_function_workbook),
    "optimizers": Kind(parse_compare_lesson, override_compare, train_compare, build_compare_workbook),
    "lr-finder": Kind(parse_finder_lesson, override_finder, train_finder, build_finder_workbook),
    "tabular": TABULAR,  # any CSV's features and target (the Titanic and penguins lessons are of this kind)
    "collab": Kind(parse_collab_lesson, override_collab, train_collab, build_collab_workbook),
    "titanic": TABULAR,  # the tabular kind's earlier name: its templates and workbooks (manifests say it) still work
    "attention": Kind(parse_attention_lesson, override_attention, train_attention, build_attention_workbook),
    "conv": Kind(parse_conv_lesson, override_conv, train_conv, build_conv_workbook),
}
SHOWN = [k for k in KINDS if k != "titanic"]  # the kinds an error message names


def shown_kind(lesson) -> str:
    """The kind's name as users see it (a lesson object keeps "titanic", what its manifests record)."""
    kind = getattr(lesson, "kind", "sgd")
    return "tabular" if kind == "titanic" else kind


schema.KIND_TABLES["conv"] = CONV_TABLES


def kind_of(lesson) -> Kind:
    return KINDS[getattr(lesson, "kind", "sgd")]


def opens_a_file(raw) -> bool:
    """Whether building this template would open the file its ``[data] csv`` names: a workbook's manifest
    never may (sheetsgd records a CSV's text or numbers in it, never a path a checker would follow)."""
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict) or "csv" not in data:
        return False
    try:
        tabular = KINDS.get(template_kind(raw)) is TABULAR or is_titanic_template(raw)
    except Exception:  # a template no parser expects: refused as a file it might open
        return True
    return not (tabular and "csv_text" in data)


def load(name_or_path: str, **options):
    """Any bundled lesson or template file, with command-line options (None = keep) applied."""
    raw, name, source = read_template(name_or_path)
    kind = template_kind(raw)
    if not isinstance(kind, str):
        raise SheetsgdError(f"kind must be a text, got {kind!r:.40}", f"{source} [lesson]")
    if kind not in KINDS:
        raise SheetsgdError(f"unknown lesson kind {kind!r}; known: {', '.join(SHOWN)}", f"{source} [lesson]")
    if KINDS[kind] is TABULAR or is_titanic_template(raw):  # an author's CSV: its text is recorded in the template
        raw = inline_csv(raw, source)
    return from_raw(raw, name, source, options, read_files=True)


def from_raw(raw: dict, name: str, source: str, options: dict | None = None, read_files: bool = False):
    """A lesson from a parsed template and options, checked against the one template schema; it remembers
    both (the manifest records them, so the checker can rebuild the lesson's blocks from a workbook alone,
    through the same checks: a workbook is untrusted). Only a template file (``read_files``, :func:`load`)
    may name a CSV to read; a template from a workbook never opens one."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    kind = template_kind(raw)
    if not isinstance(kind, str):
        raise SheetsgdError(f"kind must be a text, got {kind!r:.40}", f"{source} [lesson]")
    if kind not in KINDS:
        raise SheetsgdError(f"unknown lesson kind {kind!r}; known: {', '.join(SHOWN)}", f"{source} [lesson]")
    if not read_files and opens_a_file(raw):  # a workbook's template (check, grade's copies): no path is followed
        raise SheetsgdError("the template names a file (csv) to read: only a template file may", f"{source} [data]")
    schema.check_template(raw, kind, source)
    data = raw.get("data")
    if (read_files and kind in ("sgd", "optimizers", "lr-finder") and isinstance(data, dict) and "csv" in data
            and not schema.tabular_data(data)):  # a data lesson's CSV (a tabular one's text is recorded on load)
        from sheetsgd.lessons.sgd.own_data import inline_csv

        raw = inline_csv(raw, source)  # the data itself is recorded, never a path (a checker opens none)
    variant = options.pop("variant", None)
    given = raw
    if variant is not None:  # a student's own start values (sheetsgd.lessons.variants): the template, changed
        from . import variants

        raw = variants.apply(raw, name, variant)
        schema.check_template(raw, kind, source)
    lesson = KINDS[kind].parse(raw, name, source)
    training = raw.get("training", {})
    check_batch_size(lesson, training.get("batch_size"), f"{source} [training]")
    if options:
        check_batch_size(lesson, options.get("batch_size"), source, "--batch-size")
        lesson = KINDS[kind].override(lesson, **options)
    if variant is not None:
        options = {**options, "variant": variant}
    # the template's file name, never a path of the author's machine (the template itself is recorded)
    object.__setattr__(lesson, "origin", {"template": given, "name": name, "source": PurePath(source).name,
                                          "options": options})
    object.__setattr__(lesson, "variant", variant)
    return lesson


def data_size(lesson) -> int | None:
    """Examples a lesson's batches are cut from (training rows of a Titanic lesson)."""
    base = getattr(lesson, "base", lesson)
    data = getattr(base, "data", None)
    if data is None:
        return None
    return getattr(data, "n_train", None) or len(data)


def check_batch_size(lesson, asked: Any, where: str, flag: str = "batch_size") -> None:
    """A batch larger than the data is an error (it used to become the full batch silently)."""
    n = data_size(lesson)
    if n is not None and isinstance(asked, int) and not isinstance(asked, bool) and asked > n:
        raise SheetsgdError(f"{flag} {asked:,} is larger than the data ({n:,} examples): "
                            f"use at most {n:,}, or \"full\"", where)
