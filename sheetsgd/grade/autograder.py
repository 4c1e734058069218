"""A Gradescope autograder bundle for one lesson: ``sheetsgd autograder LESSON … -o autograder.zip``.

The zip's root holds what Gradescope runs (its autograder specification): ``setup.sh``, run once as
root to build the image, and ``run_autograder``, run per submission. Beside them: the sheetsgd wheel
(``wheels/``, this very version, written from the running package's own files by
:mod:`sheetsgd.grade.wheelfile`: no build backend, no network), ``sheetsgd-autograder.json`` (the lesson,
its options and exercise columns, and how to grade: :mod:`sheetsgd.grade.autograder_run` reads it) and
``assignment.xlsx``, the student version to hand out.

``setup.sh`` installs Python (apt), makes a virtual environment and installs the wheel with its
dependencies from PyPI. LibreOffice is optional (``--libreoffice``): checks read the values a
spreadsheet app saved, and IronCalc (a pip dependency) recalculates files saved without them, so
LibreOffice is needed only for the few formulas IronCalc computes differently (see
:mod:`sheetsgd.check.recalc.engines`), which are otherwise reported as "cannot judge". Environment variables, for
tests and other hosts: ``SHEETSGD_AUTOGRADER_ROOT`` (default ``/autograder``),
``SHEETSGD_AUTOGRADER_VENV`` (default ``$ROOT/sheetsgd-venv``), ``SHEETSGD_AUTOGRADER_PYTHON``
(default ``python3``) and ``SHEETSGD_AUTOGRADER_OFFLINE=1``: no apt, a venv that finds the dependencies
installed for ``$SHEETSGD_AUTOGRADER_PYTHON`` (the site-packages folders that interpreter sees, a
virtual environment's own among them, listed in a ``.pth`` file) and ``pip install --no-index
--no-deps`` of the wheel (no network).
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

from sheetsgd import __version__
from sheetsgd.runtime import outputs, progress
from sheetsgd.errors import SheetsgdError
from sheetsgd.feedback.gradescope import VISIBILITIES
from .wheelfile import write_wheel

CONFIG = "sheetsgd-autograder.json"

SETUP = r"""#!/usr/bin/env bash
# sheetsgd {version} autograder: Gradescope runs this once, as root, to build the image.
set -euo pipefail
SOURCE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
ROOT="${{SHEETSGD_AUTOGRADER_ROOT:-/autograder}}"
VENV="${{SHEETSGD_AUTOGRADER_VENV:-$ROOT/sheetsgd-venv}}"
PYTHON="${{SHEETSGD_AUTOGRADER_PYTHON:-python3}}"
if [ "${{SHEETSGD_AUTOGRADER_OFFLINE:-0}}" = 1 ]; then
  # no network (tests): the dependencies are already installed for $PYTHON. --system-site-packages
  # would see only the base interpreter's packages when $PYTHON is itself a virtual environment's,
  # so the venv gets a .pth file naming the site-packages folders $PYTHON sees.
  unset PYTHONPATH
  "$PYTHON" -m venv "$VENV"
  SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  "$PYTHON" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))' \
    > "$SITE/sheetsgd-offline-dependencies.pth"
  "$VENV/bin/python" -m pip install --quiet --no-index --no-deps --ignore-installed "$SOURCE"/wheels/*.whl
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends python3 python3-venv python3-pip{libreoffice}
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --ignore-installed "$SOURCE"/wheels/*.whl
fi
"$VENV/bin/python" -c "import sheetsgd, sys; sys.exit(sheetsgd.__version__ != '{version}')"
echo "sheetsgd {version} installed in $VENV"
"""

RUN = r"""#!/bin/sh
# sheetsgd {version} autograder: Gradescope runs this once per submission.
ROOT="${{SHEETSGD_AUTOGRADER_ROOT:-/autograder}}"
VENV="${{SHEETSGD_AUTOGRADER_VENV:-$ROOT/sheetsgd-venv}}"
unset PYTHONPATH
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$ROOT/results"
  printf '%s\n' '{{"score": 0, "output": "The autograder is not installed (setup.sh did not run): tell the course staff.", "tests": []}}' > "$ROOT/results/results.json"
  exit 0
fi
cd "$ROOT" || exit 0
exec "$VENV/bin/python" -m sheetsgd.grade.autograder_run "$ROOT"
"""


def _checked_wheel(path: str) -> Path:
    wheel = Path(path)
    if not wheel.is_file() or not wheel.name.startswith(f"sheetsgd-{__version__}-") or wheel.suffix != ".whl":
        raise SheetsgdError(f"--wheel must be this version's wheel (sheetsgd-{__version__}-….whl)", path)
    return wheel


def build_bundle(lesson, output: str, exercise=None, *, visibility: str = "visible",
                 stdout_visibility: str = "hidden", leaderboard: bool = False, points: float | None = None,
                 strict: bool = False, recalc: str | None = None, timeout: float = 120,
                 max_memory_mb: float = 2048, limits=None, libreoffice: bool = False, wheel: str | None = None,
                 variants: bool = False, variant_key: str | None = None) -> dict:
    """Write the autograder zip for ``lesson`` (an :class:`sheetsgd.api.Lesson`); returns its configuration."""
    from sheetsgd.read.workbook import Limits

    if not str(output).lower().endswith(".zip"):
        raise SheetsgdError("output must end in .zip", output)
    for name, value in (("visibility", visibility), ("stdout_visibility", stdout_visibility)):
        if value not in VISIBILITIES:
            raise SheetsgdError(f"{name} must be one of {', '.join(VISIBILITIES)}, got {value!r}")
    outputs.check_target(output, outputs.Inputs([lesson.source, wheel]), "autograder")  # before any work
    origin = getattr(lesson.spec, "origin", None)
    if not isinstance(origin, dict):
        raise SheetsgdError("this lesson cannot be recorded in an autograder (no template origin)")
    with tempfile.TemporaryDirectory(prefix="sheetsgd-autograder-") as tmp:
        tmp = Path(tmp)
        assignment = tmp / "assignment.xlsx"
        progress.stage("building the student version")
        report = lesson.build(assignment, "" if exercise is None else exercise, progress=False)
        columns = sorted(k for keys in (report.exercise or {}).values() for k in keys)
        if not columns:
            raise SheetsgdError("the student version has no exercise columns to grade")
        (tmp / "wheels").mkdir()
        progress.stage("making the wheel")
        the_wheel = _checked_wheel(wheel) if wheel else write_wheel(tmp / "wheels")
        config = {"generator": f"sheetsgd {__version__}", "sheetsgd_version": __version__,
                  "lesson": lesson.name, "kind": lesson.kind, "options": lesson.options,
                  "origin": origin, "exercise": columns, "variants": bool(variants or variant_key),
                  "variant_key": variant_key or None,
                  "visibility": visibility, "stdout_visibility": stdout_visibility, "leaderboard": bool(leaderboard),
                  "points": points, "strict": bool(strict), "recalc": recalc, "timeout": float(timeout),
                  "max_memory_mb": float(max_memory_mb), "limits": (limits or Limits()).__dict__,
                  "libreoffice": bool(libreoffice)}
        try:
            json.dumps(config, allow_nan=False)
        except (TypeError, ValueError):
            raise SheetsgdError("this lesson's template holds values JSON cannot record") from None
        scripts = {"setup.sh": SETUP.format(version=__version__,
                                            libreoffice=" libreoffice-calc-nogui" if libreoffice else ""),
                   "run_autograder": RUN.format(version=__version__)}
        try:
            progress.stage("writing")
            os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
            with outputs.staged(output, outputs.Inputs([lesson.source, wheel]), "autograder", ".zip") as tmp_zip, \
                    zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as z:
                for name, text in scripts.items():
                    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                    info.external_attr = (0o100755 << 16)  # executable, as Gradescope needs run_autograder
                    info.compress_type = zipfile.ZIP_DEFLATED
                    z.writestr(info, text)
                z.writestr(CONFIG, json.dumps(config, indent=1, ensure_ascii=False))
                z.write(the_wheel, f"wheels/{the_wheel.name}")
                z.write(assignment, "assignment.xlsx")
        except OSError as exc:
            raise SheetsgdError(f"cannot write: {exc.strerror or exc}", output) from None
    return config
