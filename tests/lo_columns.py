"""Column edits made by real LibreOffice (a Basic macro run headless): a helper column inserted inside a
table (LibreOffice moves every reference past it, defined names too) or a column deleted; then the
workbook is recalculated (twice: a first pass over stale values can leave a cell that read another's
stale value) and saved as .xlsx. One LibreOffice process runs a job list for many files."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from sheetsgd.check.recalc.libreoffice import libreoffice_path

_MODULE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">
<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1" script:language="StarBasic">
Sub Edit(jobs As String, done As String)
  Dim f As Integer, txt As String, parts, doc, sh, r As Long, c As Long, errors As String
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
      If IsNull(doc) Or IsEmpty(doc) Then errors = errors &amp; &quot;cannot open &quot; &amp; parts(1) &amp; &quot;; &quot;
    ElseIf parts(0) = &quot;insert&quot; Then
      sh = doc.getSheets().getByName(parts(1))
      sh.unprotect(&quot;&quot;)
      c = CLng(parts(2))
      sh.getColumns().insertByIndex(c, 1)
      sh.getCellByPosition(c, CLng(parts(3))).setString(&quot;my helper&quot;)
      For r = CLng(parts(3)) + 1 To CLng(parts(4))
        sh.getCellByPosition(c, r).setFormula(&quot;=2*ROW()&quot;)
      Next r
    ElseIf parts(0) = &quot;delete&quot; Then
      sh = doc.getSheets().getByName(parts(1))
      sh.unprotect(&quot;&quot;)
      sh.getColumns().removeByIndex(CLng(parts(2)), 1)
    ElseIf parts(0) = &quot;save&quot; Then
      doc.calculateAll()
      doc.calculateAll()
      doc.storeToURL(ConvertToURL(parts(1)), fargs())
      If Not FileExists(parts(1)) Then errors = errors &amp; &quot;not saved &quot; &amp; ConvertToURL(parts(1)) &amp; &quot;; &quot;
      doc.close(True)
    End If
    If Err &lt;&gt; 0 Then
      errors = errors &amp; parts(0) &amp; &quot;: &quot; &amp; Error$ &amp; &quot; (line &quot; &amp; Erl &amp; &quot;); &quot;
      Err = 0
    End If
  Loop
  Close #f
  f = FreeFile
  Open done For Output As #f
  Print #f, &quot;done &quot; &amp; errors
  Close #f
End Sub
</script:module>
"""


def edit_columns(jobs: list[tuple[Path, Path, list[tuple]]], timeout: float = 900) -> None:
    """For each (input, output, edits): open the input in LibreOffice, make each edit — ("insert", sheet,
    column, header row, last row): a helper column (header "my helper", a formula per row) inserted before
    the 0-based column; ("delete", sheet, column): that column deleted — recalculate, save as .xlsx."""
    with tempfile.TemporaryDirectory(prefix="sheetsgd-lo-columns-") as profile:
        lines = []
        for inpath, outpath, edits in jobs:
            lines.append(f"open\t{Path(inpath).resolve()}")
            lines += ["\t".join(str(x) for x in edit) for edit in edits]
            lines.append(f"save\t{Path(outpath).resolve()}")
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
            raise RuntimeError("LibreOffice did not run the column-edit macro to its end")
        if done.read_text().strip() != "done":
            raise RuntimeError(f"the column-edit macro failed: {done.read_text().strip()}")
