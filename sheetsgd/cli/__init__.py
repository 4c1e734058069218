"""The ``sheetsgd`` command line: thin click commands over the library (``sheetsgd.api`` and the stages);
``commands`` holds them (the entry point ``sheetsgd.cli.commands:main``), ``options`` their shared option types.
"""
