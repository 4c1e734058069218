"""Structural edits made by real LibreOffice (a Basic macro run headless): insert rows and columns,
rename and reorder sheets. Spreadsheet apps rewrite formulas and defined names on such edits; the
checker must follow them, so the edits must come from a real app, not from rewriting XML by hand."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from sheetsgd.check.recalc.libreoffice import libreoffice_path

_MODULE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">
<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1" script:language="StarBasic">
Sub Edit(inpath As String, outpath As String)
  Dim args(0) As New com.sun.star.beans.PropertyValue
  args(0).Name = &quot;Hidden&quot; : args(0).Value = True
  doc = StarDesktop.loadComponentFromURL(ConvertToURL(inpath), &quot;_blank&quot;, 0, args())
  sheets = doc.getSheets()
  steps = sheets.getByName(&quot;Steps&quot;)
  steps.unprotect(&quot;&quot;)
  steps.getRows().insertByIndex(0, 3)
  steps.getColumns().insertByIndex(0, 1)
  steps.setName(&quot;My SGD&quot;)
  data = sheets.getByName(&quot;Data&quot;)
  data.unprotect(&quot;&quot;)
  data.getRows().insertByIndex(0, 2)
  data.setName(&quot;Examples&quot;)
  sheets.moveByName(&quot;Examples&quot;, 0)
  Dim fargs(0) As New com.sun.star.beans.PropertyValue
  fargs(0).Name = &quot;FilterName&quot; : fargs(0).Value = &quot;Calc MS Excel 2007 XML&quot;
  doc.storeToURL(ConvertToURL(outpath), fargs())
  doc.close(True)
End Sub
</script:module>
"""


def run_macro(module: str, inpath: Path, outpath: Path, *extra, timeout: float = 120) -> Path:
    """Run the Basic module's ``Edit(inpath, outpath, *extra)`` in a fresh LibreOffice profile (its "My
    Macros" Standard library: trusted, no prompt); the macro saves ``outpath``."""
    with tempfile.TemporaryDirectory(prefix="sheetsgd-lo-macro-") as profile:
        base = [libreoffice_path(), f"-env:UserInstallation={Path(profile).as_uri()}", "--headless", "--norestore",
                "--nologo"]
        env = {**os.environ, "HOME": profile}
        subprocess.run(base + ["--terminate_after_init"], capture_output=True, timeout=timeout, env=env)
        Path(profile, "user", "basic", "Standard", "Module1.xba").write_text(module)
        args = ",".join([f'"{Path(inpath).resolve()}"', f'"{Path(outpath).resolve()}"'] + [str(x) for x in extra])
        subprocess.run(base + [f"macro:///Standard.Module1.Edit({args})"], capture_output=True, timeout=timeout,
                       env=env)
    if not Path(outpath).exists():
        raise RuntimeError("LibreOffice did not run the edit macro")
    return Path(outpath)


def insert_rows_and_rename(inpath: Path, outpath: Path, timeout: float = 120) -> Path:
    """3 rows and 1 column inserted above/left of everything on Steps, which is renamed "My SGD"; 2 rows
    inserted above the Data sheet's table, which is renamed "Examples" and moved to the front."""
    return run_macro(_MODULE, inpath, outpath, timeout=timeout)
