"""“Your task” on a student version's Introduction, for every lesson kind, derived from the blocks themselves.

For each blank column: where it starts and ends (its first cell is the one to write, the rest is one
fill-down of it), what it holds, and what its formula reads — this row's cells, the row above, named
inputs, ranges on other sheets — described from the references of the column's own row pattern (their
column letters and headers), never the formula itself. Then the conventions a correct formula depends
on (a batch mean, the momentum rule, Adam's bias correction, the BCE's clipping, …), recognised from the
patterns of the block, so the text holds for every kind and layout.
"""
from __future__ import annotations

from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from . import a1

ADVICE = [  # what every student version's task ends with
    "Refer to the named inputs (lr, …) by name or with $-anchored references, so they do not drift when filled down.",
    "Each step starts from the previous row's new parameters; never type numbers where a formula belongs.",
    "Check your file: sheetsgd check FILE.xlsx (it names the first wrong step and the likely mistake).",
]


def _names(tree) -> list[str]:
    return [n[1] for n in a1.walk(tree) if n[0] == "name"]


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _Where:
    """Which block column a sheet column is (its header), for describing references."""

    def __init__(self, blocks):
        self.at: dict[tuple[str, int], object] = {}
        for b in blocks:
            for c in b.columns:
                self.at.setdefault((b.sheet, c.col), (b, c))

    def header(self, sheet: str, col: int) -> str | None:
        found = self.at.get((sheet, col))
        return _short(found[1].header) if found else None


def _describe(ref: a1.Ref, block, where: _Where) -> str:
    sheet = ref.sheet or block.sheet
    own = sheet == block.sheet
    l1, l2 = xl_col_to_name(ref.col1), xl_col_to_name(ref.col2)
    h1, h2 = where.header(sheet, ref.col1), where.header(sheet, ref.col2)
    cols = l1 if ref.col1 == ref.col2 else f"{l1}:{l2}"
    what = (h1 if ref.col1 == ref.col2 else f"{h1} … {h2}") if h1 and h2 else None
    on = "" if own else f" on {sheet}"
    field = ref.row1.field
    if field == "r" and ref.row2.field == "r":
        return f"this row's {what or 'cells'} ({cols}{on})"
    if field == "p":
        return f"the row above's {what or 'cells'} ({cols}{on}; for the first step, the start row)"
    if field is None and ref.row2.field is None:
        if ref.row1.value == ref.row2.value:
            return f"{what or 'the cell'} in {l1}{ref.row1.value}{on}"
        return f"{what or 'the cells'}{on} ({l1}{ref.row1.value}:{l2}{ref.row2.value}, every row)"
    if field is None and ref.row2.field == "r":  # $L$12:L40: everything so far
        return f"{what or 'the cells'} from the first step down to this row ({l1})"
    return f"{what or 'the cells'}{on} ({cols}, the rows this one belongs to)"


def column_reads(block, key: str, where: _Where) -> list[str]:
    """What a column's formula reads, in words (each reference once, in the order the formula reads them)."""
    out, names = [], []
    tree = block.tree(key)
    for ref in a1.refs(tree):
        text = _describe(ref, block, where)
        if text not in out:
            out.append(text)
    for name in _names(tree):
        if name not in names:
            names.append(name)
    if names:
        out.append("the named input" + ("s " if len(names) > 1 else " ") + ", ".join(names))
    return out


def conventions(block, keys: set[str]) -> list[str]:
    """The conventions the blank columns of one block depend on, recognised from the block's patterns."""
    trees = {c.key: block.tree(c.key) for c in block.columns if c.is_formula}
    mine = [trees[k] for k in keys if k in trees]
    text = " ".join(a1.render(t, block.row_fields(0)) for t in mine)
    names = {n.lower() for t in mine for n in _names(t)}
    by_key = {c.key: c for c in block.columns}
    out = []
    if any("last" == k for k in by_key) and any(_reads_key(block, t, "last") for t in mine):
        out.append("A batch quantity (the loss, each ∂L/∂p) is the mean over this step's examples: those whose "
                   "position (the examples' # column) lies between this row's “from #” and “to #”; divide their "
                   "sum by the batch size, to # − from # + 1.")
    elif any(f in text for f in ("/COUNT(", "AVERAGE(")) or any(n[0] == "field" and n[1] == "n" for t in mine
                                                               for n in a1.walk(t)):
        out.append("A batch quantity is a mean over the batch: divide the sum by the number of examples in it.")
    if any(n.endswith("clip_eps") for n in names) or any("clip_eps" in _names_of(trees, k) for k in keys):
        out.append("ŷ is clipped to [ε, 1 − ε] (clip_eps) in the cross-entropy, so ∂loss/∂ŷ is 0 where ŷ is "
                   "below ε or above 1 − ε.")
    updates = [k for k in keys if k.startswith(("new_", "buf_", "m_", "v_", "mhat_", "vhat_"))]
    if updates:
        out += _optimizer_conventions(block, trees)
    if any(n.endswith("weight_decay") for n in names):
        decoupled = "(1-" in text and "weight_decay" in text
        out.append("Weight decay here is " + ("decoupled (torch.optim.AdamW): the parameter itself shrinks by "
                                              "lr·wd of itself in the update." if decoupled else
                                              "L2 (torch.optim.Adam(weight_decay)): wd·p joins the gradient "
                                              "before m and v."))
    if any(k.endswith("_lr") or k in ("lr", "beta1", "mom") for k in keys) and "(A" in text:
        out.append("Step t sits at position (t − 1)/N of the schedule: step 1 uses the schedule's start value.")
    if "recorded" in by_key and any(_reads_key(block, t, "recorded") for t in mine):
        out.append("Once the finder has stopped (recorded? = 0), a row keeps its parameters unchanged.")
    if "IF(" in text and ">0,1,0)" in text:
        out.append("ReLU's derivative is 1 where its input is above 0 and 0 elsewhere.")
    if "dropout" in names:
        out.append("Inverted dropout: a kept unit (mask 1) is divided by 1 − p in training, a dropped one is 0; "
                   "validation uses no mask.")
    if any(k.startswith("e") and k[1:].isdigit() for k in keys) and "m" in by_key:
        out.append("The softmax is the stable one: subtract the row's largest score m before EXP.")
    if "y_low" in names or "y_low" in " ".join(_names_of(trees, k) for k in keys):
        out.append("Predictions are squashed into y_range (y_low, y_high) by a sigmoid; an unrated cell's error is 0 "
                   "(it is not in the loss), and gradients are means over the training ratings plus wd·p.")
    if any(k.endswith("_acc") for k in by_key) and any(k.endswith("_new") for k in keys):
        out.append("A run that accumulates its gradients (“accumulated f′”) steps by the accumulated f′, "
                   "the others by this step's f′.")
    return out


def _names_of(trees, key) -> str:
    return " ".join(_names(trees[key])) if key in trees else ""


def _reads_key(block, tree, key: str) -> bool:
    col = next((c.col for c in block.columns if c.key == key), None)
    return col is not None and any(r.col1 <= col <= r.col2 and (r.sheet in (None, block.sheet)) for r in a1.refs(tree))


def _optimizer_conventions(block, trees) -> list[str]:
    out = []
    keys = set(trees)
    buf = next((k for k in keys if k.startswith("buf_")), None)
    if buf:
        tree = trees[buf]
        classic = "(1-" in a1.render(tree, block.row_fields(0))
        out.append("Momentum is " + ("fast.ai's moving average: β of the previous value plus (1 − β) of this "
                                     "step's gradient." if classic else
                                     "torch.optim.SGD's: μ times the previous buffer plus this step's gradient "
                                     "(less dampening); the update steps by lr times the buffer."))
    if any(k.startswith("mhat_") for k in keys):
        out.append("Adam as torch.optim.Adam: m and v are moving averages of the gradient and its square; m̂ and v̂ "
                   "divide them by 1 − β^t (t: this row's step); the update divides lr·m̂ by √v̂ + ε (ε outside "
                   "the square root).")
    elif any(k.startswith("m_") for k in keys) and any(k.startswith("v_") for k in keys):
        out.append("Adam as in fast.ai's sheet: no bias correction and no ε; the update divides lr·m by √v.")
    elif any(k.startswith("v_") for k in keys):
        rendered = " ".join(a1.render(t, block.row_fields(0)) for k, t in trees.items() if k.startswith("new_"))
        out.append("RMSProp: v is a moving average of the squared gradient; the update divides lr·∂L/∂p by "
                   + ("√v + ε (ε outside the square root)." if "eps" in rendered else
                      "the square root of the previous row's v, without ε (fast.ai's sheet)."))
    return out


def fills_down(block, key: str) -> bool:
    """Whether a column's formulas are one fill-down of its first: every row field it uses moves with the row."""
    fields = {r.field for ref in a1.refs(block.tree(key)) for r in (ref.row1, ref.row2) if r.field}
    rows = block.fields["r"]
    return all(len(set((block.fields[f] - rows).tolist())) <= 1 for f in fields if f in block.fields)


def block_task_lines(blocks, exercise: dict[str, set[str]]) -> list[str]:
    """“Your task” for any lesson kind: each blank column's first cell, what it holds and reads; conventions."""
    by_name = {b.name: b for b in blocks}
    where = _Where(blocks)
    sheets = sorted({by_name[name].sheet for name in exercise if name in by_name})
    listed = " and ".join(sheets) if len(sheets) < 3 else ", ".join(sheets[:-1]) + " and " + sheets[-1]
    filled = all(fills_down(by_name[name], k) for name, keys in exercise.items() if name in by_name
                 for k in keys if any(c.key == k and c.is_formula for c in by_name[name].columns))
    lines = [f"Fill in the orange columns of the {listed} sheet{'s' if len(sheets) > 1 else ''}: in "
             + ("each, write the formula of its first cell only, then fill it down (drag the fill handle) to its last "
                "row. Every row's formula is the first one's, moved down: it reads its own row." if filled else
                "each, write the first row's formula and fill it down; where a row reads the rows of its own step "
                "elsewhere (see what each column reads), correct those references after filling.")]
    rules: list[str] = []
    for name, keys in exercise.items():
        block = by_name.get(name)
        if block is None:
            continue
        for c in block.columns:
            if c.key in keys and c.is_formula:
                first = xl_rowcol_to_cell(block.first_row, c.col)
                last = xl_rowcol_to_cell(block.last_row, c.col)
                tree = block.tree(c.key)  # a bare reference's "reads" would be its formula: its note says enough
                reads = [] if tree[0] in ("ref", "name") else column_reads(block, c.key, where)
                lines.append(f"“{c.header}” ({block.sheet}!{first}, down to {last}): {c.note or c.key}."
                             + (f" It reads {'; '.join(reads)}." if reads else ""))
        rules += [r for r in conventions(block, keys) if r not in rules]
    lines += [f"Convention: {r}" for r in rules]  # what a correct formula depends on, in words
    return lines + ADVICE
