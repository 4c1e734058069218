"""Lessons: templates and their schema, the ``Kind`` registry, the engine (numpy, the reference) and the
sheets each kind lays out — a module or subpackage per kind: ``sgd`` (data lessons), ``function``,
``compare`` (optimizers), ``lr_finder``, ``tabular``, ``collab`` — with optimizers, schedules, variants and
the size guard every kind shares.

May import: ``sheet``, ``read``, ``runtime``.
"""
