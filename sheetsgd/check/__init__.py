"""Checking a student's workbook: manifest → rebuild (the lesson's blocks, written nowhere) → locate (columns
by header) → verify (every formula's saved value from its own formula; recalculation in child processes) →
judge (every cell locally) → diagnose (the mistake catalogue) → report.

May import: ``lessons``, ``sheet``, ``read``, ``runtime``; never ``write``.
"""
