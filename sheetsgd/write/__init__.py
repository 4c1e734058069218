"""Writing lesson files: student versions, rosters of per-student variants, post-processing of written
workbooks.

May import: ``lessons``, ``sheet``, ``read``, ``runtime``; never ``check``.
"""
