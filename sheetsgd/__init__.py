"""sheetsgd: gradient descent lessons as spreadsheets in which every step is a row of live formulas.

The Python API is :mod:`sheetsgd.api` (``from sheetsgd import api``). The package itself imports
nothing, so that importing one submodule does not load them all (and no module imports in a circle).
"""

__version__ = "0.1.0"
