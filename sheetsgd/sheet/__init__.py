"""The sheet spec: the one formula parser (``a1``), the evaluator and its function registry, the portable
function list, blocks of rows, layouts, presentation and readability, and the Book a lesson lays its blocks
into (xlsxwriter underneath, or nothing at all: the checker's rebuild).

May import: ``runtime``.
"""
