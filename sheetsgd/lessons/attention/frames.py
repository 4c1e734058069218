"""An attention lesson's sheets as DataFrames (``sheetsgd.api``): the same numbers the workbook caches."""
from __future__ import annotations

import numpy as np

from .layout import ATTENTION, EXAMPLES, STEPS, Layout, examples_block
from .rows import grid_block, steps_blocks


def frame(columns: dict):
    import pandas as pd

    return pd.DataFrame({k: np.asarray(v) for k, v in columns.items()})


def _block_frame(block):
    return frame({c.key: block.values[c.key] for c in block.columns})


def attention_frames(lesson, trace) -> dict:
    lay = Layout(lesson)
    return {STEPS: lambda: _block_frame(steps_blocks(lay, trace)[1]),
            EXAMPLES: lambda: _block_frame(examples_block(lay, trace)),
            ATTENTION: lambda: _block_frame(grid_block(lay, trace))}
