"""Grading a class: which files (one link policy), checks in parallel workers, copied variants, the CSV, the
Gradescope autograder bundle and what runs inside it.

May import: everything below it; never ``cli`` or ``api``.
"""
