"""The Titanic workbook's row blocks: the Steps sheet (named hyperparameters, the start row, one row per
step), Examples (one row per passenger of each step's batch) and Validation (per epoch, the validation
passengers with the epoch's weights), with the header and block writers the other sheets share."""
from __future__ import annotations

import numpy as np

from sheetsgd.sheet.blocks import Block, BlockColumn, write_block
from sheetsgd.sheet import presentation
from .layout import DATA_FIRST_ROW, FORMATS, HYPER_FIRST_ROW, HYPER_NOTES, STEPS
from .lookups import ROW_KEY, feature_key
from .plans import Plan


class StepRowsMixin:
    """TitanicWorkbook's Steps, Examples and Validation sheets."""

    def _header(self, ws, row: int, plans: list[Plan]):
        ws.set_row(row, 45)
        for c in plans:
            ws.write(row, c.col, c.header, self.fmt.header)
            presentation.widths(ws).fit(c.col, presentation.header_width(c.header))

    def _state_format(self, c, plans) -> str:
        """The format the Steps block gives a state column (shared by its quantity's columns), for its start cell."""
        same = [p.key for p in plans if presentation.quantity(p.key) == presentation.quantity(c.key)
                and p.group == c.group and p.key in self.trace.steps]
        return presentation.quantity_format(self.book.quantity_formats, presentation.quantity(c.key),
                                            [v for k in same for v in self.trace.steps[k].tolist()], FORMATS[c.group])

    def _rows(self, ws, plans, first_row: int, fields: list[dict], values: dict[str, list], header_row: int = 0,
              step=None, name: str | None = None):
        """Write len(fields) rows from first_row as one block: each plan's pattern filled with that row's fields."""
        extra = {k: [f[k] for f in fields] for k in (fields[0] if fields else {}) if k not in ("r", "p")}
        block = Block(ws.get_name(), name or ws.get_name(), header_row, first_row,
                      [BlockColumn(c.key, c.header, c.col, c.pattern, FORMATS[c.group], c.note) for c in plans],
                      len(fields), fields=extra, values=values, step=step)
        write_block(ws, self.fmt, self.counts, block, self.book.student)

    def _data_row(self, index: int) -> int:
        """1-based Data-sheet row of the passenger at sheet-order index ``index``."""
        return DATA_FIRST_ROW + 1 + index

    def _write_steps(self, ws):
        lesson, trace, fmt = self.lesson, self.trace, self.fmt
        ws.write(0, 0, lesson.title, fmt.title)
        ws.write(1, 0, f"{self.net.title} · {self.loss.title} · {self.opt.title} · batch size "
                       f"{'full' if lesson.full_batch else lesson.batch_size} · {lesson.epochs} epoch(s). "
                       "Yellow cells are inputs: change one and every row recomputes.", fmt.note)
        values = self.hyper_values
        self.hyper_cells = {}
        for i, name in enumerate(self.hyper_names):
            row = HYPER_FIRST_ROW + i
            ws.write(row, 0, name, fmt.bold)
            ws.write_number(row, 1, values[name], fmt.hyper)
            ws.write(row, 2, HYPER_NOTES.get(name, ""), fmt.note)
            self.hyper_cells[name] = f"{STEPS}!$B${row + 1}"
            self.wb.define_name(name, f"={self.hyper_cells[name]}")
        self.counts["value"] += len(self.hyper_names)
        if self.hyper_names:  # the inputs' names in column A (a schedule's: pct_start, total_steps, …) fit it
            presentation.widths(ws).fit(0, max(presentation.header_width(n, lines=1) for n in self.hyper_names))
        header_row = HYPER_FIRST_ROW + len(self.hyper_names) + 1
        self.steps_header_row, self.steps_start_row = header_row, header_row + 1
        plans = self.steps_plan.columns
        self._header(ws, header_row, plans)
        start = self.steps_start_row
        ws.write_number(start, self._steps_col["step"], 0, fmt.number("0", True))
        ws.write(start, self._steps_col["epoch"], "start", fmt.number("General", True))
        init = dict(zip(self.params, lesson.init.tolist()))
        start_state = self.opt.start_state(lesson.hyper)  # zeros, or classic RMSProp's v0 (an input then)
        for c in plans:
            if c.key.startswith("new_"):
                ws.write_number(start, c.col, init[c.key[4:]], fmt.hyper)
            elif c.group == "state":
                if c.key.split("_")[0] in self.opt.state:
                    value = start_state[c.key.split("_")[0]]
                    ws.write_number(start, c.col, value, fmt.hyper if lesson.hyper.get("classic") and value
                                    else fmt.number(self._state_format(c, plans), True))
        self.counts["value"] += 2 + len(self.params) + len(self.params) * len(self.opt.state)

        values = {k: v.tolist() for k, v in trace.steps.items()}
        first_row0 = start + 1
        self.steps_first_row = first_row0 + 1  # 1-based row of step 1
        fields = []
        if self.per_example:
            for s, batch in enumerate(trace.batches):
                r = first_row0 + s + 1
                fields.append({"r": r, "p": r - 1, "dr": self._data_row(int(batch[0]))})
        else:
            self.example_ranges = []
            lo = 2  # 1-based first Examples row
            for s, batch in enumerate(trace.batches):
                r = first_row0 + s + 1
                hi = lo + len(batch) - 1
                fields.append({"r": r, "p": r - 1, "lo": lo, "hi": hi, "n": len(batch),
                               "dlo": self._data_row(int(batch[0])), "dhi": self._data_row(int(batch[-1]))})
                self.example_ranges.append((lo, hi))
                lo = hi + 1
            values["first"] = [lo for lo, _ in self.example_ranges]
            values["last"] = [hi for _, hi in self.example_ranges]
            values["n"] = [hi - lo + 1 for lo, hi in self.example_ranges]
        if self.row_local and self.per_example:
            first = [int(b[0]) for b in trace.batches]
            values.update(self._lookup_values(first))
        self._rows(ws, plans, first_row0, fields, values, header_row=header_row)
        self.steps_last_row = first_row0 + len(fields)  # 1-based row of the last step
        ws.freeze_panes(start, 3)

    def _write_examples(self, ws):
        plans = self.examples_plan.columns
        self._header(ws, 0, plans)
        trace = self.trace
        passengers = self.data.ids
        fields, step_values, passenger_values, x_copies = [], [], [], []
        for s, batch in enumerate(trace.batches):
            sr = self.steps_first_row + s
            for i in batch:
                r = len(fields) + 2
                fields.append({"r": r, "sr": sr, "dr": self._data_row(int(i))})
                step_values.append(s + 1)
                passenger_values.append(float(passengers[i]))
                x_copies.append(int(i))
        values = {k: v.tolist() for k, v in trace.examples.items()}
        values.update(step=step_values, passenger=passenger_values)
        if self.row_local:
            values.update(self._lookup_values(x_copies, {p: trace.steps[p][np.asarray(step_values) - 1]
                                                         for p in self.params}))
        elif self.shuffled_batches:
            X = self.data.X[x_copies]
            values.update({f"x_{f}": X[:, i].tolist() for i, f in enumerate(self.net.features)})
        self._rows(ws, plans, 1, fields, values, step=step_values)
        ws.freeze_panes(1, 2)

    def _epoch_last_steps(self) -> list[tuple[int, int]]:
        """(first, last) 1-based Steps rows of each epoch."""
        epochs = self.trace.steps["epoch"].astype(int)
        out = []
        for e in range(1, self.lesson.epochs + 1):
            idx = np.flatnonzero(epochs == e)
            out.append((self.steps_first_row + int(idx[0]), self.steps_first_row + int(idx[-1])))
        return out

    def _write_validation(self, ws):
        plans = self.validation_plan.columns
        self._header(ws, 0, plans)
        n_train, n_valid = self.data.n_train, self.data.n_valid
        passengers = self.data.ids[n_train:]
        fields, values, steps = [], {k: [] for k in [c.key for c in plans]}, []
        self.validation_ranges = []
        for e, ((_, last_row), q) in enumerate(zip(self._epoch_last_steps(), self.trace.validation), start=1):
            lo = len(fields) + 2
            for j in range(n_valid):
                fields.append({"r": len(fields) + 2, "sr": last_row, "dr": self._data_row(n_train + j)})
                steps.append(last_row - self.steps_first_row + 1)
            self.validation_ranges.append((lo, lo + n_valid - 1))
            values["epoch"] += [e] * n_valid
            values["passenger"] += passengers.tolist()
            for k in q:
                if k in values:
                    values[k] += q[k].tolist()
        if self.row_local:
            at = np.asarray(steps) - 1
            values["step"] = (at + 1).tolist()
            values.update(self._lookup_values(list(range(n_train, n_train + n_valid)) * self.lesson.epochs,
                                              {p: self.trace.steps["new_" + p][at] for p in self.params}))
        self._rows(ws, plans, 1, fields, values, step=steps)
        ws.freeze_panes(1, 2)

    def _lookup_values(self, examples: list[int], weights: dict | None = None) -> dict[str, list]:
        """The engine's values of the row-local lookups: Data rows, the step's weights, the features."""
        X = self.data.X[examples]
        out = {ROW_KEY: [self._data_row(i) for i in examples]}
        out.update({feature_key(f): X[:, i].tolist() for i, f in enumerate(self.net.features)})
        out.update({p: np.asarray(v).tolist() for p, v in (weights or {}).items()})
        return out
