"""``python -m sheetsgd …``: the same command line as ``sheetsgd …``."""
from sheetsgd.cli.commands import cli

if __name__ == "__main__":
    cli(prog_name="sheetsgd")
