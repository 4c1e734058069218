"""The Titanic workbook's Epochs sheet (loss and accuracy per epoch, charts), Data sheet (raw columns as
values, every feature a formula) and Solver sheet (one row of weights, Excel Solver set up on it, beside
SGD's final weights and the engine's best fit)."""
from __future__ import annotations

import numpy as np

from sheetsgd.sheet import presentation, readable
from sheetsgd.runtime import progress
from sheetsgd.sheet.blocks import Block, BlockColumn, write_block
from sheetsgd.sheet.chart_data import series_range
from sheetsgd.lessons.sgd.data import sheet_float
from .engine import best_fit
from .layout import (DATA, DATA_FIRST_ROW, EPOCHS, EXAMPLES, FORMATS, SOLVER, SOLVER_BLOCK_HEADER, SOLVER_ROWS, STEPS, VALIDATION, col)
from .nets import evaluate
from .plans import Plan, _data_key


class EpochsDataSolverMixin:
    """TitanicWorkbook's Epochs, Data and Solver sheets."""

    def _write_epochs(self, ws):
        fmt, lesson, ep = self.fmt, self.lesson, self.trace.epochs
        has_valid = bool(self.validation_plan)
        runs = getattr(self.net, "runs", ("",))  # a dropout lesson: its net, then the twin without dropout
        columns = []  # (column, source key, epochs key, header) in sheet order
        for run in runs:
            which = (" · no dropout" if run else " · dropout") if len(runs) > 1 else ""
            at = 3 + len(columns)
            columns += [(at, "loss" + run, "train_loss" + run,  # two nets: short headers (four lines fit)
                         f"training loss{which}" if which else f"training loss (mean over the epoch's {self.data.noun}s)"),
                        (at + 1, "correct" + run, "train_accuracy" + run, "training accuracy" + which)]
            if has_valid:
                columns += [(at + 2, "loss" + run, "valid_loss" + run, "validation loss (after the epoch)" + which),
                            (at + 3, "correct" + run, "valid_accuracy" + run, "validation accuracy" + which)]
        presentation.widths(ws).fit_range(0, 2, 10)
        presentation.widths(ws).fit_range(3, 2 + len(columns), 16)
        readable.write_header_row(ws, 0, 0, ["epoch", "first step", "last step"] + [h for *_, h in columns], fmt.header)
        if self.per_example:
            src_sheet, letters = STEPS, self.steps_plan.letters
        else:
            src_sheet, letters = EXAMPLES, self.examples_plan.letters
        step_ranges = self._epoch_last_steps()
        steps_per_epoch = [int(np.sum(self.trace.steps["epoch"] == e)) for e in range(1, lesson.epochs + 1)]
        loss_format = fmt.number(presentation.sheet_format(ws, "loss", [v for k, vs in self.trace.epochs.items()
                                                                         if "loss" in k for v in vs]))
        number = loss_format
        accuracy = fmt.number(presentation.FIXED_QUANTITY_FORMATS["accuracy"])
        step_no = 0
        for e in range(1, lesson.epochs + 1):
            first_step_row, last_step_row = step_ranges[e - 1]
            if self.per_example:
                lo, hi = first_step_row, last_step_row
            else:
                lo = self.example_ranges[step_no][0]
                hi = self.example_ranges[step_no + steps_per_epoch[e - 1] - 1][1]
            ws.write_number(e, 0, e)
            ws.write_number(e, 1, step_no + 1)
            ws.write_number(e, 2, step_no + steps_per_epoch[e - 1])
            step_no += steps_per_epoch[e - 1]
            for j, key, name, _ in columns:
                if name.startswith("train"):
                    ref = f"{src_sheet}!${letters[key]}${lo}:${letters[key]}${hi}"
                else:
                    vlo, vhi = self.validation_ranges[e - 1]
                    v = self.validation_plan.letters
                    ref = f"{VALIDATION}!${v[key]}${vlo}:${v[key]}${vhi}"
                ws.write_formula(e, j, f"=AVERAGE({ref})", accuracy if key.startswith("correct") else number,
                                 float(ep[name][e - 1]))
        self.counts["formula"] += len(columns) * lesson.epochs
        self.counts["value"] += 3 * lesson.epochs
        ws.freeze_panes(1, 0)

        E = lesson.epochs
        beside = E <= 40 and len(columns) <= 4  # beside a short, narrow table, below a long or wide one
        top, chart_col = (1, 8) if beside else (E + 3, 8 if len(columns) <= 4 else 0)
        if not beside and chart_col == 0:
            ws.set_h_pagebreaks([top])  # printed, the charts start a page of their own
        for title, kind, at in (("Loss per epoch", "loss", top), ("Accuracy per epoch", "accuracy", top + 17)):
            chart = self.wb.add_chart({"type": "line"})
            for column, _, name, header in columns:
                if name.split("_")[1].startswith(kind[:3]):
                    label = ("training" if name.startswith("train") else "validation") + (
                        header[header.index(" · "):].replace(" · ", ", ") if " · " in header else "")
                    chart.add_series({"name": label, "categories": [EPOCHS, 1, 0, E, 0],
                                      "values": series_range(ws, [EPOCHS, 1, column, E, column]),
                                      "marker": {"type": "circle"}})
            chart.set_title({"name": title})
            chart.set_x_axis({"name": "epoch"})
            axis = {"name": title.split()[0].lower()}
            if len(runs) > 1:  # two nets' lines close together: the axis from near their lowest, the legend below
                shown = [v for _, _, name, _ in columns if name.split("_")[1].startswith(kind[:3]) for v in ep[name]]
                axis["min"] = float(np.floor(10 * min(shown)) / 10)
                chart.set_legend({"position": "bottom"})
            chart.set_y_axis(axis)
            chart.set_size({"width": 600 if beside else 440, "height": 300 if beside else 320})
            ws.insert_chart(at, chart_col, chart)
        by_step = self.wb.add_chart({"type": "line"})
        for run in runs:
            loss_col = self._steps_col["loss" + run]
            by_step.add_series({"name": "no dropout" if run else ("dropout" if len(runs) > 1 else "loss"),
                                "categories": [STEPS, self.steps_first_row - 1, 0, self.steps_last_row - 1, 0],
                                "values": series_range(ws, [STEPS, self.steps_first_row - 1, loss_col,
                                                            self.steps_last_row - 1, loss_col]),
                                "line": {"width": 1}})
        by_step.set_title({"name": "Training loss by step"})
        by_step.set_x_axis({"name": "step"})
        by_step.set_y_axis({"name": "loss"})
        if len(runs) == 1:
            by_step.set_legend({"none": True})
        by_step.set_size({"width": 600, "height": 300})
        ws.insert_chart(top + 34, chart_col, by_step)

    def _write_data(self, ws):
        fmt, data = self.fmt, self.data
        plans = self.data_plan.columns
        self._header(ws, 0, plans)
        ws.write(1, len(data.raw_columns), "column max →" if data.scale_by_max else "", fmt.note)
        n = len(data.y)
        last_row = DATA_FIRST_ROW + n  # 1-based
        if data.scale_by_max:
            for i, c in enumerate(p for p in plans if p.key.startswith("raw_")):
                ws.write_formula(1, c.col, f"=MAX({col(c.col)}${DATA_FIRST_ROW + 1}:{col(c.col)}${last_row})",
                                 fmt.number("0.0000"), float(data.column_max[i]))
            self.counts["formula"] += len(data.features)
        pas = data.passengers
        given = {name: pas[name].tolist() if hasattr(pas[name], "tolist") else list(pas[name])
                 for name in data.raw_columns}
        given["set"] = ["train"] * data.n_train + ["valid"] * data.n_valid
        derived = np.column_stack([data.unscaled, data.y]) if data.targets else np.asarray(data.unscaled)
        cached = (np.hstack([derived, data.X]) if data.scale_by_max else derived).T.tolist()
        features = iter(cached)  # the engine's derived (and scaled) features, in the formula columns' order
        values = {_data_key(c): next(features) if c.pattern else given[c.key] for c in plans}
        block = Block(DATA, DATA, 0, DATA_FIRST_ROW,
                      [BlockColumn(_data_key(c), c.header, c.col, c.pattern, FORMATS[c.group], c.note,
                                   "" if c.pattern else "input") for c in plans], n,
                      values=values, step=np.zeros(n, dtype=np.int64))
        write_block(ws, fmt, self.counts, block, self.book.student)
        ws.freeze_panes(DATA_FIRST_ROW, 2)

    def _write_solver(self, ws):
        fmt, lesson, net, loss = self.fmt, self.lesson, self.net, self.loss
        data = self.data
        # a rebuild for the checker needs the blocks, not the best fit (a long full-batch run)
        if not self.book.null:
            progress.stage("Solver: best fit")
        best, how = (lesson.init, "not computed") if self.book.null else best_fit(lesson)
        best = np.array([sheet_float(v) for v in best])  # as the sheet stores them
        X, y = data.X[:data.n_train], data.y[:data.n_train]
        param_rows = {"solver": lesson.init, "sgd": self.trace.final, "best": best}
        ws.write(0, 0, "Solver beside SGD: the same training loss from one row of weights", fmt.title)
        ws.write(1, 0, "Excel: Data ▸ Solver is set up to minimise the yellow loss by changing the yellow weights "
                       "(GRG Nonlinear, unconstrained). Google Sheets and LibreOffice have no Excel Solver: "
                       "the Steps sheet is how they train.", fmt.note)
        ws.write(2, 0, f"Best fit: {how}. Training rows: {data.n_train}.", fmt.note)
        readable.write_header_row(ws, 3, 0, ["weights", "training loss", "accuracy"] + list(self.params), fmt.header)
        labels = {"solver": "Solver (starts at the initial weights)", "sgd": "SGD after the last step",
                  "best": "best fit (engine)"}
        presentation.widths(ws).fit_text(0, *labels.values(), bold=True)
        blocks = self.solver_plans
        first_data_row = SOLVER_BLOCK_HEADER + 2  # 1-based first passenger row
        last_data_row = first_data_row + data.n_train - 1
        evaluated = {k: evaluate(net, loss, param_rows[k], X, y, lesson.clip_eps, with_backward=False)
                     for k in SOLVER_ROWS}
        for which, row in SOLVER_ROWS.items():
            L = blocks[which].letters
            ws.write(row, 0, labels[which], fmt.bold)
            q = evaluated[which]
            # a student version: SGD's weights follow from the answers, and so does their row's loss, which
            # is written before the weights it reads (its block comes later): it caches nothing
            hide = self.book.student is not None and which == "sgd"
            loss_format = presentation.sheet_format(ws, "loss", [float(np.mean(q["loss"]))])
            ws.write_formula(row, 1, f"=AVERAGE({L['loss']}{first_data_row}:{L['loss']}{last_data_row})",
                             fmt.input(loss_format) if which == "solver" else fmt.number(loss_format),
                             "" if hide else float(np.mean(q["loss"])))
            ws.write_formula(row, 2, f"=AVERAGE({L['correct']}{first_data_row}:{L['correct']}{last_data_row})",
                             fmt.number(presentation.FIXED_QUANTITY_FORMATS["accuracy"]),
                             "" if hide else float(np.mean(q["correct"])))
            for i, p in enumerate(self.params):
                value = float(param_rows[which][i])
                weight = presentation.sheet_format(ws, presentation.quantity(p), [value])
                # a best fit's weights may be large (an overfitting net's): the column holds them whole
                presentation.widths(ws).fit(3 + i, presentation.values_width([value], weight))
                if which == "sgd":
                    ref = f"={STEPS}!${col(self._steps_col['new_' + p])}${self.steps_last_row}"
                    ws.write_formula(row, 3 + i, ref, fmt.number(weight), value)
                else:
                    ws.write_number(row, 3 + i, value, fmt.input(weight) if which == "solver" else fmt.number(weight))
        self.counts["formula"] += 6 + len(self.params)
        self.counts["value"] += 2 * len(self.params)
        last_param = col(3 + len(self.params) - 1)
        solver_row = SOLVER_ROWS["solver"] + 1
        names = {"solver_opt": f"{SOLVER}!$B${solver_row}", "solver_adj": f"{SOLVER}!$D${solver_row}:${last_param}${solver_row}",
                 "solver_typ": "2", "solver_eng": "1", "solver_neg": "2", "solver_num": "0", "solver_ver": "3"}
        for name, ref in names.items():
            self.wb.define_name(f"{SOLVER}!{name}", f"={ref}")
        self.solver_names = names

        # the three evaluation blocks, side by side: one row per training passenger
        for which in SOLVER_ROWS:
            plans = blocks[which].columns
            first = min(p.col for p in plans if p.pattern)
            ws.write(SOLVER_BLOCK_HEADER - 1, first, f"{labels[which]}: each {data.noun}", fmt.bold)
        merged, values = [], {}
        for which in SOLVER_ROWS:  # one sheet's rows go out in order (constant_memory): all blocks row by row
            for c in blocks[which].columns:
                merged.append(Plan(c.col, f"{which}:{c.key}", c.header, c.pattern, c.group))
                values[f"{which}:{c.key}"] = (data.ids[:data.n_train].tolist()
                                              if c.key == "passenger" else evaluated[which][c.key].tolist())
        self._header(ws, SOLVER_BLOCK_HEADER, merged)
        fields = [{"r": first_data_row + i, "dr": self._data_row(i)} for i in range(data.n_train)]
        self._rows(ws, merged, first_data_row - 1, fields, values, header_row=SOLVER_BLOCK_HEADER,
                   step=[self.trace.n_steps] * len(fields))
        ws.freeze_panes(SOLVER_BLOCK_HEADER, 1)
