"""The Titanic workbook's layout: its sheets' names, the fixed rows on them, the notes of the named
hyperparameters and the number format of each column group."""
from __future__ import annotations

from xlsxwriter.utility import xl_col_to_name

from sheetsgd.lessons.schedules import NOTES as SCHEDULE_NOTES

INTRO, STEPS, EXAMPLES, EPOCHS, VALIDATION, DATA, SOLVER, MANIFEST = (
    "Introduction", "Steps", "Examples", "Epochs", "Validation", "Data", "Solver", "_sheetsgd")
HYPER_FIRST_ROW = 3  # 0-based row of the first named hyperparameter on Steps
DATA_FIRST_ROW = 2  # 0-based row of the first passenger on Data (row 1 headers, row 2 column maxima)
SOLVER_ROWS = {"solver": 4, "sgd": 5, "best": 6}  # 0-based rows of the three parameter rows
SOLVER_BLOCK_HEADER = 9

HYPER_NOTES = {
    "lr": "learning rate: the step size of every update",
    "momentum": "momentum μ", "dampening": "dampening", "alpha": "α: decay of the mean of squared gradients",
    "beta1": "β1: decay of the mean of gradients (m)", "beta2": "β2: decay of the mean of squared gradients (v)",
    "eps": "ε: keeps the division by √v finite", "weight_decay": "weight decay: pulls each weight towards 0",
    "clip_eps": "ε of the loss: ŷ is clipped to [ε, 1−ε] so LN never sees 0",
    "dropout": "p: the share of hidden units dropped; the given mask was drawn with it, kept units are scaled "
               "by 1/(1 − p)",
    **SCHEDULE_NOTES,
}
FORMATS = {"int": "0", "general": "General", "param": "0.000000", "forward": "0.0000", "loss": "0.000000",
           "gradient": "0.000000", "state": "0.000000E+00", "update": "0.000000"}


def col(i: int) -> str:
    return xl_col_to_name(i)
