"""``python -m sheetsgd …``: the same command line as ``sheetsgd …``."""
from .cli import cli

cli(prog_name="sheetsgd")
