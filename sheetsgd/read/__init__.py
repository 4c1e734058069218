"""Reading untrusted .xlsx files: the bounded zip container, safe XML, each worksheet's cells (an array scan
of the sheet XML, or a declining regex path), defined names. Nothing is ever run or expanded.

May import: ``sheet`` (A1 references), ``runtime``.
"""
