"""The Steps block (one SGD step per row: lookups, forward pass, backward pass, new parameters) and the
Loss block (one row per epoch). Row patterns in the one placeholder language (:mod:`sheetsgd.sheet.blocks`)."""
from __future__ import annotations

import numpy as np

from sheetsgd.sheet.blocks import Block, BlockColumn
from .layout import F0, F4, F6, IMAGES, LOSS, LOSS_HEADER, STEPS, HEADER, Layout, _flat, _header


def _patterns(lay: Layout) -> dict[str, tuple[str, str]]:
    """{key: (row pattern, note)} of every formula column of Steps."""
    n, m, K = lay.n, lay.m, lay.K
    at, span, x, f = lay.at, lay.span, lay.x, lay.f
    first, last = lay.image_row(0), lay.image_row(lay.N - 1)
    out = {}
    on_images = {"y": 1, **{x(i, j): 2 + i * n + j for i in range(n) for j in range(n)}}  # Images columns
    for key, col in on_images.items():
        c = lay.L_images(col)
        out[key] = (f"INDEX({IMAGES}!${c}${first}:${c}${last},$B{{r}},1)",
                    "looked up on the Images sheet in this step's image's row")
    for key in lay.param_keys:
        out[key] = (f"{at('new_' + key)}{{p}}", "the parameter this step starts from: the row above's new value")
    for k in range(K):
        for i in range(m):
            for j in range(m):
                terms = [f"SUMPRODUCT({span(x(i + u, j), x(i + u, j + 2))},{span(f(k, u, 0), f(k, u, 2))})"
                         for u in range(3)]
                z = f"z{k + 1}_{i + 1}_{j + 1}"
                out[z] = ("+".join(terms) + f"+{at(f'c{k + 1}')}{{r}}",
                          f"filter {k + 1} on the 3×3 window at ({i + 1},{j + 1}): one SUMPRODUCT per filter row, "
                          "plus the filter's bias (cross-correlation, as conv2d)")
                out[f"a{k + 1}_{i + 1}_{j + 1}"] = (f"MAX(0,{at(z)}{{r}})", "ReLU: max(0, z)")
    w, a, dz = lay.cells("w"), lay.cells("a"), lay.cells("dz")
    dense = lay.cells("pool") if lay.pool else a  # what the dense layer reads
    if lay.pool:
        q = lay.q
        for k in range(K):
            for i in range(q):
                for j in range(q):
                    cell = lambda di, dj: a[k * m * m + (2 * i + di) * m + 2 * j + dj]  # noqa: E731
                    out[dense[k * q * q + i * q + j]] = (
                        f"MAX({span(cell(0, 0), cell(0, 1))},{span(cell(1, 0), cell(1, 1))})",
                        "2×2 max-pooling: the largest a of the window")
    out["s"] = (f"SUMPRODUCT({span(w[0], w[-1])},{span(dense[0], dense[-1])})+{at('b')}{{r}}",
                "the score: every " + ("pooled" if lay.pool else "feature-map") + " cell times its dense weight, plus b")
    out["p"] = (f"1/(1+EXP(-{at('s')}{{r}}))", "σ(s): the probability of class 1 (vertical)")
    y, p = at("y"), at("p")
    out["loss"] = (f"-({y}{{r}}*LN({p}{{r}})+(1-{y}{{r}})*LN(1-{p}{{r}}))", "binary cross-entropy")
    out["correct"] = (f"IF({p}{{r}}>0.5,{y}{{r}},1-{y}{{r}})", "1 when p > 0.5 says the image's class")
    out["ds"] = (f"{p}{{r}}-{y}{{r}}", "∂L/∂s = p − y (cross-entropy of a sigmoid)")
    ds = at("ds")
    for wk, ak in zip(w, dense):
        out["grad_" + wk] = (f"{ds}{{r}}*{at(ak)}{{r}}", "∂L/∂w = ∂L/∂s · " + ("max" if lay.pool else "a"))
    out["grad_b"] = (f"{ds}{{r}}", "∂L/∂b = ∂L/∂s")
    for idx, (zk, dk) in enumerate(zip(lay.cells("z"), dz)):
        if lay.pool:  # the window's maximum gets the gradient of its pooled cell; the other three nothing
            k, i, j = idx // (m * m), idx // m % m, idx % m
            cell = k * lay.q * lay.q + i // 2 * lay.q + j // 2
            out[dk] = (f"IF({at(zk)}{{r}}>0,IF({at(a[idx])}{{r}}={at(dense[cell])}{{r}},{ds}{{r}}*{at(w[cell])}{{r}},0),0)",
                       "∂L/∂z = ∂L/∂s · w of its pooled cell where z > 0 and a is its window's maximum, 0 elsewhere")
        else:
            out[dk] = (f"IF({at(zk)}{{r}}>0,{ds}{{r}}*{at(w[idx])}{{r}},0)",
                       "∂L/∂z = ∂L/∂s · w where z > 0 (ReLU passes it), 0 elsewhere")
    for k in range(K):
        rows = [dz[k * m * m + i * m: k * m * m + (i + 1) * m] for i in range(m)]
        for u in range(3):
            for v in range(3):
                terms = [f"SUMPRODUCT({span(row[0], row[-1])},{span(x(i + u, v), x(i + u, v + m - 1))})"
                         for i, row in enumerate(rows)]
                out["grad_" + f(k, u, v)] = ("+".join(terms),
                                             f"Σ ∂L/∂z{k + 1}[i,j] · x[i+{u},j+{v}]: ∂L/∂z against the input window "
                                             f"shifted by ({u},{v}), one SUMPRODUCT per feature-map row")
        out[f"grad_c{k + 1}"] = (f"SUM({span(rows[0][0], rows[-1][-1])})", f"Σ ∂L/∂z{k + 1}")
    for key in lay.param_keys:
        out["new_" + key] = (f"{at(key)}{{r}}-lr*{at('grad_' + key)}{{r}}", "p − lr·∂L/∂p")
    return out


GIVEN = {"step": "the step number", "image": "the training image of this step (a seeded order in each epoch)"}


def steps_block(lay: Layout, trace) -> Block:
    patterns = _patterns(lay)
    cols = []
    for key, col in lay.col.items():
        pattern, note = patterns.get(key, (None, GIVEN.get(key, "")))
        fmt = F0 if key in ("step", "image", "y", "correct") else F4 if key in lay.param_keys else F6
        if key.startswith("x_"):
            fmt = "0.00"
        cols.append(BlockColumn(key, _header(lay, key), col, pattern, fmt, note=note))
    S = lay.S
    steps = np.arange(1, S + 1)
    first = lay.step_row(1)
    values = {c.key: [0.0] * S for c in cols}
    values["step"] = steps.tolist()
    order = lay.lesson.order
    values["image"] = (order + 1).tolist()
    if trace is not None:
        data = lay.lesson.data
        values["y"] = data.y[order].tolist()
        for i in range(lay.n):
            for j in range(lay.n):
                values[lay.x(i, j)] = data.x[order, i, j].tolist()
        for name, src in (("", trace.params), ("grad_", trace.grads), ("new_", trace.new)):
            flats = [_flat(lay, p) for p in src]
            for key in lay.param_keys:
                values[name + key] = [fl[key] for fl in flats]
        for name, arr in (("z", trace.z), ("a", trace.a), ("dz", trace.dz)) + ((("pool", trace.pooled),) if lay.pool else ()):
            flat = arr.reshape(S, -1)
            for idx, key in enumerate(lay.cells(name)):
                values[key] = flat[:, idx].tolist()
        for key in ("s", "p", "loss", "correct"):
            values[key] = getattr(trace, key).tolist()
        values["ds"] = (trace.p - lay.lesson.data.y[order]).tolist()
    return Block(STEPS, STEPS, HEADER, first - 1, cols, S, values=values, step=steps)


def loss_block(lay: Layout, trace) -> Block:
    N, E = lay.N, lay.E
    lo = np.array([lay.step_row(e * N + 1) for e in range(E)])
    cols = [BlockColumn("epoch", "epoch", 0, None, F0),
            BlockColumn("mean_loss", "mean loss", 1, f"AVERAGE({STEPS}!${lay.at('loss')}${{lo}}:${lay.at('loss')}${{hi}})",
                        F6, note="the mean loss of the epoch's steps (each before its own update)"),
            BlockColumn("accuracy", "accuracy", 2,
                        f"AVERAGE({STEPS}!${lay.at('correct')}${{lo}}:${lay.at('correct')}${{hi}})", "0.00",
                        note="the fraction of the epoch's images classified right (before each step's update)")]
    values = {"epoch": list(range(1, E + 1))}
    if trace is not None:
        loss, acc = trace.epoch_means(N)
        values.update(mean_loss=loss.tolist(), accuracy=acc.tolist())
    else:
        values.update(mean_loss=[0.0] * E, accuracy=[0.0] * E)
    return Block(LOSS, LOSS, LOSS_HEADER, LOSS_HEADER + 1, cols, E, fields={"lo": lo, "hi": lo + N - 1},
                 values=values, step=np.arange(1, E + 1) * N)
