"""Recalculating workbooks in a real spreadsheet engine: LibreOffice headless, recalculation on load forced.

LibreOffice keeps a file's cached values unless its profile says "always recalculate"; each call
uses a private, fresh profile that says so, so concurrent calls do not collide and nothing the
user set up changes the result.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from sheetsgd.errors import SheetsgdError

_RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Calculation"><prop oor:name="UseThreadedCalculationForFormulaGroups" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
"""


def libreoffice_path() -> str | None:
    """The soffice executable, or None when LibreOffice is not installed."""
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    return None


def recalc_libreoffice(paths: list[str | os.PathLike], outdir: str | os.PathLike, timeout: float = 600,
                       to: str = "xlsx:Calc MS Excel 2007 XML", memory_mb: float | None = None) -> list[Path]:
    """Open each workbook in LibreOffice, recalculate every formula, save as .xlsx into ``outdir``.

    All files go through one soffice process (start-up dominates the cost). Returns the output
    paths in input order. Input files are only read. ``to`` picks another format (e.g. "xls", "ods").
    ``memory_mb`` caps the address space of LibreOffice's processes (a student's file is untrusted).
    """
    soffice = libreoffice_path()
    if soffice is None:
        raise SheetsgdError("LibreOffice (soffice) is not installed")
    paths = [Path(p).resolve() for p in paths]
    if len({p.name for p in paths}) != len(paths):
        raise ValueError("input files must have distinct names (outputs share one folder)")
    outdir = Path(outdir).resolve()
    if any(p.parent == outdir for p in paths):
        raise ValueError("outdir must differ from the inputs' folder: inputs are never overwritten")
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sheetsgd-lo-") as profile:
        user = Path(profile, "user")
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(_RECALC_ALWAYS, encoding="utf-8")
        cmd = [soffice, f"-env:UserInstallation={Path(profile).as_uri()}", "--headless", "--norestore",
               "--nologo", "--nodefault", "--convert-to", to, "--outdir", str(outdir),
               *map(str, paths)]
        if memory_mb is not None and os.path.exists("/bin/sh"):  # the cap set before soffice starts, inherited
            cmd = ["/bin/sh", "-c", 'ulimit -v "$0" && exec "$@"', str(int(memory_mb * 1024)), *cmd]
        # its own process group: past the deadline (or on --timeout's interrupt) soffice and the office
        # process it starts are killed together
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "HOME": profile}, start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SheetsgdError(f"LibreOffice did not finish within {timeout:g} s") from None
        finally:
            try:  # whatever of the group is left (the office process outlives a killed launcher)
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    outputs = [outdir / (p.stem + "." + to.split(":")[0]) for p in paths]
    missing = [str(p) for p in outputs if not p.exists()]
    if missing:
        raise SheetsgdError(f"LibreOffice did not convert {', '.join(missing)}: {stderr.strip()[:300]}")
    return outputs
