"""What a student reads after a check: the annotated copy of the workbook, the HTML page, Gradescope's results.

May import: ``check``, ``read``, ``sheet``, ``runtime``.
"""
