"""The tables a ``conv`` template may hold besides [lesson], each key with its type and range (the one
template schema, :mod:`sheetsgd.lessons.schema`, checks them before the parser runs)."""
from __future__ import annotations

from sheetsgd.lessons.schema import BOOL, MAX_STEPS, NONNEGATIVE, POSITIVE, SEED, integer, table

TABLES = {"images": table(size=integer(4, 12), train_images=integer(2, 2_000), test_images=integer(0, 10_000),
                          noise=NONNEGATIVE, bar_min=integer(1, 12), seed=SEED),
          "model": table(filters=integer(1, 4), init_std=NONNEGATIVE, seed=SEED, pool=BOOL),
          "training": table(lr=POSITIVE, epochs=integer(1, MAX_STEPS), seed=SEED)}
