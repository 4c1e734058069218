"""Filling a student version the way a student does, in real LibreOffice: each blank column's first cell
holds the formula typed there, and LibreOffice fills it down to the column's last cell with
``XCellSeries.fillAuto`` (what dragging the fill handle does), then recalculates and saves as .xlsx.

One LibreOffice process runs a Basic macro over a job list (open / fill / save lines), so many files
cost one start-up. The first cells are written into the file's XML beforehand (as a typed formula is
stored), with a stale value the recalculation replaces.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from sheetsgd.check.demo import fill_xml_sheets
from sheetsgd.check.recalc.libreoffice import libreoffice_path

_MODULE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">
<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1" script:language="StarBasic">
Sub Edit(jobs As String, done As String)
  Dim f As Integer, txt As String, parts, doc, sh
  Dim args(0) As New com.sun.star.beans.PropertyValue
  Dim fargs(0) As New com.sun.star.beans.PropertyValue
  args(0).Name = &quot;Hidden&quot; : args(0).Value = True
  fargs(0).Name = &quot;FilterName&quot; : fargs(0).Value = &quot;Calc MS Excel 2007 XML&quot;
  On Error Resume Next
  f = FreeFile
  Open jobs For Input As #f
  Do While Not EOF(f)
    Line Input #f, txt
    parts = Split(txt, Chr(9))
    If parts(0) = &quot;open&quot; Then
      doc = StarDesktop.loadComponentFromURL(ConvertToURL(parts(1)), &quot;_blank&quot;, 0, args())
    ElseIf parts(0) = &quot;fill&quot; Then
      sh = doc.getSheets().getByName(parts(1))
      sh.unprotect(&quot;&quot;)
      sh.getCellRangeByName(parts(2)).fillAuto(com.sun.star.sheet.FillDirection.TO_BOTTOM, 1)
    ElseIf parts(0) = &quot;save&quot; Then
      doc.calculateAll()
      doc.storeToURL(ConvertToURL(parts(1)), fargs())
      doc.close(True)
    End If
  Loop
  Close #f
  f = FreeFile
  Open done For Output As #f
  Print #f, &quot;done&quot;
  Close #f
End Sub
</script:module>
"""


def first_cells(blocks, exercise) -> list[tuple[str, str, str]]:
    """(sheet, first cell, first:last range) of every blank column."""
    from sheetsgd.read.workbook import column_letters

    out = []
    for b in blocks:
        for key in sorted(exercise.get(b.name, ())):
            col = column_letters(b.column(key).col + 1)
            out.append((b.sheet, f"{col}{b.first_row + 1}", f"{col}{b.first_row + 1}:{col}{b.last_row + 1}"))
    return out


def type_first_cells(student: Path, out: Path, filled: dict[str, dict[str, object]], columns) -> None:
    """The student version with only each blank column's first cell filled (from ``filled``: every cell)."""
    typed: dict[str, dict[str, object]] = {}
    for sheet, first, _ in columns:
        typed.setdefault(sheet, {})[first] = filled[sheet][first]
    fill_xml_sheets(str(student), str(out), typed)


def fill_down(jobs: list[tuple[Path, Path, list[tuple[str, str, str]]]], timeout: float = 600) -> None:
    """For each (typed file, output, columns): open it in LibreOffice, fill every column down from its first
    cell (``fillAuto``), recalculate, save as .xlsx. One LibreOffice process for all."""
    with tempfile.TemporaryDirectory(prefix="sheetsgd-lo-fill-") as profile:
        lines = []
        for typed, out, columns in jobs:
            lines.append(f"open\t{Path(typed).resolve()}")
            lines += [f"fill\t{sheet}\t{rng}" for sheet, _, rng in columns]
            lines.append(f"save\t{Path(out).resolve()}")
        job_file, done = Path(profile, "jobs.txt"), Path(profile, "done.txt")
        job_file.write_text("\n".join(lines) + "\n")
        base = [libreoffice_path(), f"-env:UserInstallation={Path(profile).as_uri()}", "--headless", "--norestore",
                "--nologo"]
        env = {**os.environ, "HOME": profile}
        subprocess.run(base + ["--terminate_after_init"], capture_output=True, timeout=timeout, env=env)
        Path(profile, "user", "basic", "Standard", "Module1.xba").write_text(_MODULE)
        subprocess.run(base + [f'macro:///Standard.Module1.Edit("{job_file}","{done}")'], capture_output=True,
                       timeout=timeout, env=env)
        if not done.exists():
            raise RuntimeError("LibreOffice did not run the fill-down macro to its end")
