"""The catalogue of common mistakes, each with a hint, and how to recognise them.

Most mistakes are recognised by value: each is a small edit of a column's parsed row pattern (the
same pattern the writer rendered, for every lesson kind), evaluated on the student's own values; when
the student's cells equal the edited pattern's values, that mistake is named, however the student
spelled the formula (``K9*D9`` or ``2*I9*D9``). A few are recognised from the formula text instead
(typed constants, drifting references, references to the wrong row): see :mod:`sheetsgd.check.checker`.
The edits are in :mod:`sheetsgd.check.mistakes.edits`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    name: str
    title: str
    hint: str


CATALOGUE = {m.name: m for m in [
    Mistake("update_sign_flipped", "sign of the update flipped",
            "Gradient descent steps against the gradient: new p = p − lr·∂L/∂p, not p + lr·∂L/∂p."),
    Mistake("weight_decay_missing", "weight decay left out",
            "L2 adds wd·p to the gradient (g + wd·p); AdamW shrinks the parameter first: p·(1 − lr·wd) − lr·m̂/(√v̂ + ε)."),
    Mistake("lr_missing", "learning rate missing from the update",
            "The step is the gradient times the learning rate: new p = p − lr·∂L/∂p."),
    Mistake("lr_relative", "learning rate referenced relatively: it drifts when filled down",
            "Refer to the learning rate by its name (lr) or anchor it ($B$4); a plain B4 becomes B5, B6, … "
            "in the rows below."),
    Mistake("mse_factor_2_missing", "factor 2 missing in the MSE gradient",
            "d(e²)/de = 2e: the gradient of the squared error carries a factor 2 (use the ∂loss/∂ŷ column)."),
    Mistake("feature_missing", "input missing from the gradient (∂ŷ/∂p left out)",
            "Chain rule: ∂L/∂p = ∂loss/∂ŷ · ∂ŷ/∂p, and ∂ŷ/∂a is the input x (x² for the t² term)."),
    Mistake("wrong_feature", "wrong factor ∂ŷ/∂p in the gradient",
            "∂ŷ/∂p is what multiplies p in ŷ: x for the slope, 1 for the intercept (t², t, 1 for a parabola)."),
    Mistake("error_reversed", "error written as target − prediction",
            "The sheet's error is prediction − target (ŷ − y); y − ŷ flips the sign of every gradient."),
    Mistake("gradient_negated", "gradient with the wrong sign",
            "∂L/∂p is positive when increasing p increases the loss: check the order of ŷ − y."),
    Mistake("sum_instead_of_mean", "sum instead of mean over the batch",
            "The loss and its gradient are means over the batch: divide the SUMPRODUCT by COUNT(…)."),
    Mistake("stale_parameter", "parameters of the previous step used",
            "This step's parameters are on this row (the previous row's new values); the row above holds "
            "the step before."),
    Mistake("own_row_update", "the row's own updated parameters used instead of the previous row's",
            "A step computes its gradient at its starting parameters (this row's a, b: the previous row's new "
            "values), never at the new values it is computing (a circular reference)."),
    Mistake("bias_correction_omitted", "Adam's bias correction omitted",
            "Adam divides m and v by 1 − β^t (m̂, v̂) before the update; without it the first steps are far too small."),
    Mistake("beta_swapped", "β and 1 − β swapped",
            "The running average keeps β of the old value and adds (1 − β) of the new: m = β·m_prev + (1 − β)·g."),
    Mistake("not_squared", "gradient not squared in the running mean of squares",
            "v averages squared gradients: v = β·v_prev + (1 − β)·g²."),
    Mistake("sqrt_missing", "square root missing in the denominator",
            "The update divides by √v + ε, not by v + ε."),
    Mistake("wrong_row", "a reference points at the wrong row",
            "Each formula reads this row's cells, and the previous row only for the state it carries over."),
    Mistake("constant_typed", "a number typed where a formula belongs",
            "Write a formula that computes the value from other cells; a typed or pasted number does not follow "
            "when the inputs change."),
    Mistake("hard_coded", "right only for these inputs (found by --strict)",
            "With another lr or other initial values this cell did not follow: a number typed inside the formula "
            "(e.g. 0.0001 instead of lr) or a pasted value only works for the inputs it was made with."),
    Mistake("value_not_from_formula", "the saved value does not follow from the cell's own formula",
            "Each cell is judged by its formula: its saved value must be what that formula computes from the file's "
            "values. Values edited outside a spreadsheet app, or formulas replaced while the values were kept, "
            "do not count; recalculate and save the file in your spreadsheet app."),
    Mistake("formula_not_checked", "a formula the checker cannot evaluate or recalculate",
            "Such a cell never counts as right: keep to the functions the lesson uses (see the Introduction), "
            "nest formulas less deeply, and save the file in a spreadsheet app."),
    Mistake("blank", "cells left empty", "Fill the formula down to the last step."),
    Mistake("given_changed", "a given cell was changed",
            "Only the exercise columns and the yellow inputs are meant to be edited: rebuild the given cells."),
    Mistake("error_value", "the cell shows an error value",
            "An error (#VALUE!, #REF!, #NAME?, …) usually means a reference to text, a deleted cell or a typo."),
    Mistake("schedule_phase_off_by_one", "schedule's position off by one step (t instead of t − 1)",
            "Step t trains at position (t − 1)/N of the schedule (fastai and torch count the steps done before it): "
            "step 1 uses the schedule's start value."),
    Mistake("schedule_phases_swapped", "one-cycle's warm-up and annealing swapped",
            "While (t − 1)/N < pct_start the lr warms up from lr/div to lr; after it, it anneals from lr to lr/div_final."),
    Mistake("sigmoid_derivative_incomplete", "sigmoid's derivative written as σ instead of σ(1 − σ)",
            "dσ/dz = σ(z)·(1 − σ(z)): both factors, the probability and one minus it."),
    Mistake("relu_derivative_wrong_side", "ReLU's derivative taken on the wrong side",
            "ReLU passes its gradient where its input is positive (1 there, 0 where the input is negative)."),
    Mistake("batch_size_fixed", "batch mean divided by a fixed batch size",
            "Divide by this batch's own number of rows (the last batch of an epoch may be shorter): COUNT(…) or n."),
    Mistake("log_base_swapped", "LN and LOG10 (or LOG, base 10) swapped",
            "LN is the natural log, LOG10 and LOG the base-10 one: the cross-entropy loss is −LN(p), and each "
            "Titanic preset's fare feature uses its own logarithm."),
    Mistake("softmax_not_normalised", "softmax not normalised",
            "The softmax divides each EXP by their sum over the classes, p = e / SUM(e1:e3), so the "
            "probabilities add up to 1."),
    Mistake("one_hot_wrong_class", "one-hot target of the wrong class",
            "Each one-hot column is 1 for its own class only: the y Adelie column tests \"Adelie\"."),
    Mistake("bias_gradient_summed_over_classes", "a bias gradient summed over the classes",
            "Class k's bias only moves class k's score: ∂L/∂bₖ is the batch mean of ∂loss/∂zₖ alone "
            "(summed over the classes it is always 0)."),
    Mistake("dropout_scale_missing", "a kept unit not scaled by 1/(1 − p)",
            "Inverted dropout divides every kept activation by 1 − p (r = a·m/(1 − p)), and so its gradient "
            "(∂loss/∂z = ∂loss/∂o · v · m/(1 − p) · [z > 0]): the expected r is then a, as in validation."),
    Mistake("dropout_mask_missing_backward", "the mask left out of the backward pass",
            "A dropped unit (m = 0) passed nothing forward, so it gets no gradient: ∂loss/∂z carries the "
            "same factor m/(1 − p) as r."),
    Mistake("dropout_in_validation", "dropout applied in validation",
            "Dropout is for training only: validation reads the hidden activations unmasked and unscaled, "
            "o = v·a + c (the 1/(1 − p) of training already keeps the two on one scale)."),
    Mistake("lr_additive", "the learning rate grows additively instead of geometrically",
            "The lr finder multiplies the lr by the same factor every row: start·(end/start)^((step−1)/(num_it−1))."),
    Mistake("relu_after_sum", "the two ReLU units summed before the ReLU",
            "Each unit goes through its own ReLU, then the two are added: MAX(0, z1) + MAX(0, z2)."),
    Mistake("another_users_gradient", "the update uses another user's (or movie's) gradient",
            "Each user's (each movie's) factors move by their own gradient, on their own row: f − lr·∂/∂f of "
            "this row, not of the row above or below."),
    Mistake("bias_missing", "a bias left out of the prediction",
            "ŷ = user factors · movie factors + user bias + movie bias: both biases belong in the sum."),
    Mistake("unrated_included", "unrated cells counted in the loss",
            "A cell nobody rated has no error: it must be 0 (left out of the loss), not ŷ − 0."),
    Mistake("y_range_derivative_missing", "the y_range squashing's derivative left out",
            "With ŷ = low + (high − low)·σ(z), ∂loss/∂z = err · dŷ/dz, and dŷ/dz = (ŷ − low)(high − ŷ)/(high − low)."),
    Mistake("softmax_wrong_axis", "softmax taken over the wrong axis",
            "Each query's attention is a softmax over its own row of scores, a_ij = e_ij / Σ_l e_il, so every row "
            "of A sums to 1; dividing by the column's sum Σ_l e_lj mixes the queries."),
    Mistake("attention_scale_missing", "scores not scaled by 1/√d",
            "Scaled dot-product attention divides every score q_i·k_j by √d (d: the size of q and k), which keeps "
            "the softmax from saturating as d grows."),
    Mistake("softmax_jacobian_diagonal", "the softmax's Jacobian replaced by a(1 − a)",
            "Every a_il of a row depends on every score s_ij of it: ∂L/∂s_ij = a_ij(∂L/∂a_ij − Σ_l a_il·∂L/∂a_il). "
            "a_ij(1 − a_ij)·∂L/∂a_ij keeps only the diagonal (the sigmoid's derivative)."),
    Mistake("circular_reference", "a circular reference",
            "The formula reads its own cell (directly or through others): read the previous row's values instead."),
    Mistake("input_name_changed", "a defined name (an input) was changed",
            "The lesson's inputs are named cells (lr, …): each name refers to its one cell. Change the value in "
            "the cell, never where the name points (Name Manager); the cells that read it cannot be judged "
            "until it refers to one cell holding a number."),
    Mistake("not_judged", "cells the checker cannot judge",
            "These cells count as not right: the checker could not evaluate the column's formula on your "
            "values (the reason is given); restore the sheet's layout around them."),
    Mistake("clipping_ignored", "not 0 where ŷ is clipped to [ε, 1 − ε]",
            "The loss reads ŷ clipped to [ε, 1 − ε] (ε is the input clip_eps, so LN never sees 0). Where ŷ is "
            "outside that range the clipped value does not move with ŷ, so ∂loss/∂ŷ is 0 there, and with it "
            "∂loss/∂z: write ∂loss/∂ŷ as IF(OR(ŷ<clip_eps, ŷ>1−clip_eps), 0, …) and ∂loss/∂z as ∂loss/∂ŷ·ŷ(1 − ŷ)."),
    Mistake("derivative_negated", "∂ŷ/∂p with the wrong sign",
            "Differentiate the formula term by term and keep every minus: ∂/∂b of a·EXP(−b·t) is −a·t·EXP(−b·t)."),
    Mistake("chain_rule_factor_missing", "the inner derivative left out (chain rule)",
            "∂/∂p of f(g) is f′(g)·∂g/∂p: multiply by the derivative of the inside (for EXP(−b·t) in b, the factor −t)."),
    Mistake("wrong_parameter_derivative", "another parameter's ∂ŷ/∂ written",
            "Each ∂ŷ/∂p column differentiates the prediction in its own parameter, holding the others fixed."),
    Mistake("filter_flipped", "filter flipped: a convolution where the network cross-correlates",
            "A CNN's convolution layer (PyTorch's conv2d) slides the filter as it is: z[i,j] = Σ x[i+u, j+v]·F[u, v] "
            "plus the bias. The textbook convolution turns the filter by 180° (F[2−u, 2−v]); here it must not be."),
    Mistake("window_off_by_one", "the input window off by one pixel",
            "The window of output cell (i, j) starts at pixel (i, j) (both 1-based here): its rows are x[i..i+2] "
            "and its columns x[..., j..j+2]. For ∂L/∂F[u, v] the input is shifted by (u − 1, v − 1) from there."),
    Mistake("pooling_gradient_spread", "the pooling gradient spread over the whole window",
            "Max-pooling passes on one value per 2×2 window, its maximum: only that cell gets the pooled cell's "
            "gradient (∂L/∂s·w where z > 0); the other three cells of the window get 0."),
    Mistake("unrecognised", "wrong value",
            "Compare your formula with the column's description on the Introduction sheet."),
]}


