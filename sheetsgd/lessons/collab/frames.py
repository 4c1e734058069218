"""A collab-filter lesson's sheets as DataFrames (``sheetsgd.api``): the same numbers the workbook caches."""
from __future__ import annotations

import numpy as np

from .layout import HELD, LOSS, MOVIES, PRED, TRAIN, USERS, Layout, factor_blocks, prediction_block
from .rows import held_block, train_block


def frame(columns: dict):
    import pandas as pd

    return pd.DataFrame({k: np.asarray(v, dtype=np.int64 if k == "step" else None) for k, v in columns.items()})


def _block_frame(block):
    """A block's engine values (its value and formula columns; inputs and blanks left out)."""
    return frame({c.key: block.values[c.key] for c in block.columns
                  if c.role != "input" and not c.key.startswith("obs_")})


def collab_frames(lesson, trace) -> dict:
    lay = Layout(lesson)
    return {LOSS: lambda: frame(trace.steps),
            PRED: lambda: _block_frame(prediction_block(lay, trace)),
            TRAIN: lambda: _block_frame(train_block(lay, trace)),
            USERS: lambda: _block_frame(factor_blocks(lay, trace, "users")[1]),
            MOVIES: lambda: _block_frame(factor_blocks(lay, trace, "movies")[1]),
            HELD: lambda: _block_frame(held_block(lay, trace))}
