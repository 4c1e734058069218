"""sheetsgd: gradient descent lessons as spreadsheets in which every step is a row of live formulas.

The Python API lives in :mod:`sheetsgd.api`; its main names are also here: ``sheetsgd.load``,
``sheetsgd.lessons``, ``sheetsgd.check_workbook`` (``api.check``: ``sheetsgd.check`` is the checker
module), ``sheetsgd.Lesson``, ``sheetsgd.Run``. They are imported on first use, so that importing
one submodule does not load them all.
"""

__version__ = "0.1.0"

_API = {"load": "load", "lessons": "lessons", "check_workbook": "check", "Lesson": "Lesson", "Run": "Run",
        "SheetsgdError": "SheetsgdError"}
__all__ = ["__version__", "api", *_API]


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, _API[name])
    if name == "api":
        import importlib

        return importlib.import_module(".api", __name__)
    raise AttributeError(f"module 'sheetsgd' has no attribute {name!r}")
