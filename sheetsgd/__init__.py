"""sheetsgd: gradient descent lessons as spreadsheets in which every step is a row of live formulas."""

__version__ = "0.1.0"
