"""This very sheetsgd as a wheel, written from the files of the package that is running: no build
backend, no source tree needed, no network (the autograder bundle installs it).

The wheel holds every regular file of the package folder (compiled ``__pycache__`` files and hidden
files left out) and, when running from a checkout, the bundled templates as ``sheetsgd/templates`` (as
the build backend places them). Its metadata is the project's: from ``pyproject.toml`` in a checkout,
else the installed distribution's own ``METADATA`` and ``entry_points.txt``. Members are written in a
fixed order with a fixed date, so the same files always give the same wheel.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import stat
import sys
import zipfile
from pathlib import Path

from sheetsgd import __version__
from sheetsgd.errors import SheetsgdError

NAME = "sheetsgd"
PACKAGE = Path(__file__).resolve().parents[1]  # sheetsgd/
DATE = (2020, 1, 1, 0, 0, 0)
SKIPPED_FOLDERS = {"__pycache__"}
SKIPPED_SUFFIXES = (".pyc", ".pyo")


def project_root() -> Path | None:
    """The checkout this sheetsgd runs from (its ``pyproject.toml`` names sheetsgd), or None when installed."""
    root = PACKAGE.parent
    try:
        return root if _pyproject(root).get("name") == NAME else None
    except (OSError, ValueError):
        return None


def _pyproject(root: Path) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    with open(root / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh).get("project") or {}


def package_files() -> dict[str, Path]:
    """{name in the wheel: file} of the running package (and a checkout's templates)."""
    out: dict[str, Path] = {}

    def add(folder: Path, prefix: str) -> None:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_FOLDERS and not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath, name)
                if name.startswith(".") or name.endswith(SKIPPED_SUFFIXES) or not stat.S_ISREG(path.lstat().st_mode):
                    continue
                out[prefix + path.relative_to(folder).as_posix()] = path

    add(PACKAGE, f"{NAME}/")
    if not (PACKAGE / "templates").is_dir():
        from sheetsgd.lessons.sgd.lesson import templates_dir

        add(templates_dir(), f"{NAME}/templates/")
    return out


def _metadata_from_pyproject(project: dict) -> tuple[str, str]:
    """(METADATA, entry_points.txt) of the ``[project]`` table."""
    lines = ["Metadata-Version: 2.1", f"Name: {NAME}", f"Version: {__version__}"]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if isinstance(project.get("license"), dict) and project["license"].get("text"):
        lines.append(f"License: {project['license']['text']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    for extra, deps in sorted((project.get("optional-dependencies") or {}).items()):
        lines.append(f"Provides-Extra: {extra}")
        for dep in deps:
            requirement, _, marker = dep.partition(";")
            marker = f"({marker.strip()}) and extra == '{extra}'" if marker.strip() else f"extra == '{extra}'"
            lines.append(f"Requires-Dist: {requirement.strip()}; {marker}")
    scripts = project.get("scripts") or {}
    entry_points = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(scripts.items())) if scripts else ""
    return "\n".join(lines) + "\n", entry_points


def _metadata() -> tuple[str, str]:
    root = project_root()
    if root is not None:
        return _metadata_from_pyproject(_pyproject(root))
    try:
        dist = importlib.metadata.distribution(NAME)
        text = dist.read_text("METADATA")
    except (importlib.metadata.PackageNotFoundError, OSError):
        text, dist = None, None
    if not text or dist.version != __version__:
        raise SheetsgdError(f"the installed sheetsgd {__version__} has no metadata to bundle: give the wheel with --wheel")
    return text, dist.read_text("entry_points.txt") or ""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(folder: Path) -> Path:
    """``folder/sheetsgd-<version>-py3-none-any.whl`` made of the running package's files."""
    metadata, entry_points = _metadata()
    info = f"{NAME}-{__version__}.dist-info"
    members: list[tuple[str, bytes]] = []
    try:
        for name, path in sorted(package_files().items()):
            members.append((name, path.read_bytes()))
    except OSError as exc:
        raise SheetsgdError(f"cannot read the installed package: {exc.strerror or exc}", exc.filename) from None
    wheel_info = (f"Wheel-Version: 1.0\nGenerator: sheetsgd {__version__}\nRoot-Is-Purelib: true\n"
                  "Tag: py3-none-any\n")
    members += [(f"{info}/METADATA", metadata.encode()), (f"{info}/WHEEL", wheel_info.encode())]
    if entry_points:
        members.append((f"{info}/entry_points.txt", entry_points.encode()))
    record = "".join(_record_line(n, d) + "\n" for n, d in members) + f"{info}/RECORD,,\n"
    members.append((f"{info}/RECORD", record.encode()))
    target = Path(folder) / f"{NAME}-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            entry = zipfile.ZipInfo(name, date_time=DATE)
            entry.external_attr = 0o100644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    return target
