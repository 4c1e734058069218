"""HTML feedback: one self-contained page per checked workbook (inline CSS, no scripts, nothing fetched).

Rendered from the check report as JSON data (``Report.to_dict()``) with Jinja2, autoescaping on:
every piece of student-controlled text (file and sheet names, formulas, headers) is escaped. The
page shows the verdict and score, each root cause with its cell, formula, expected and found values
and hint, the knock-ons folded under the root causes they follow from (``<details>``), and a table
of every exercise column's first wrong step.
"""
from __future__ import annotations

import os
import re

import jinja2
import markupsafe

from sheetsgd.check.report import show_pair
from sheetsgd.runtime.safetext import shown

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Feedback: {{ name }}</title>
<style>
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 62em;
       padding: 0 1em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.lesson { color: #555; margin-top: 0; }
.verdict { display: inline-block; padding: .35em .8em; border-radius: .4em; font-weight: 600; font-size: 1.1em; }
.ok { background: #d8f0cc; color: #1e5a12; } .bad { background: #ffd6d6; color: #8a1212; }
.error { background: #eee; color: #333; }
.score { margin: .6em 0; }
.bar { height: .7em; background: #eee; border-radius: .35em; overflow: hidden; max-width: 30em; }
.bar span { display: block; height: 100%; background: #5cb85c; }
.mistake { border-left: .35em solid #e05252; background: #fff4f4; padding: .6em 1em; margin: 1em 0; border-radius: .3em; }
.mistake h3 { margin: 0 0 .3em; font-size: 1.05em; }
code { font: 13px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; background: #f3f3f3; padding: .1em .3em;
       border-radius: .2em; overflow-wrap: anywhere; }
code.cell { white-space: nowrap; } /* a cell name is never broken (a formula breaks after an operator) */
dl { display: grid; grid-template-columns: 9em 1fr; gap: .2em .8em; margin: .4em 0; } dt { color: #555; }
dd { margin: 0; }
details { margin-top: .5em; } summary { cursor: pointer; color: #8a5a00; }
.knock { border-left: .35em solid #f0ad4e; background: #fff8ec; padding: .3em .8em; margin: .3em 0; }
table { border-collapse: collapse; width: 100%; margin-top: .5em; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1e7a12; } .fail { color: #b01c1c; } .follows { color: #8a5a00; }
.notes { color: #555; font-size: .92em; }
</style></head>
<body>
<h1>Feedback on <span class="file">{{ name }}</span></h1>
{% if status == "error" %}
<p class="verdict error">Cannot check this file</p>
<p>{{ message }}</p>
{% else %}
<p class="lesson">Lesson {{ lesson.name }} ({{ lesson.optimizer }}, {{ lesson.loss }}, {{ lesson.steps }} steps)</p>
<p class="verdict {{ 'ok' if status == 'correct' else 'bad' }}">
{% if status == "correct" %}All correct{% else %}{{ mistakes|length }} mistake{{ '' if mistakes|length == 1 else 's' }} to fix{% endif %}</p>
<div class="score">Grade: <strong>{{ score.formulas_right }}/{{ score.total }}</strong> exercise cells{% if grade is not none %} ({{ grade }}){% endif %}: formulas that follow from your own values (the grading policy; knock-ons not counted against you)
<br>Strict score: {{ score.correct }}/{{ score.total }}{% if share is not none %} ({{ share }}){% endif %}: cells whose value is right
<div class="bar"><span style="width: {{ width }}%"></span></div></div>

{% if mistakes %}<h2>Root causes</h2>
<p>Each is a formula that does not follow from your own values. Fix these first: the knock-ons under them come right with them.</p>
{% for m in mistakes %}<section class="mistake">
<h3>{{ m.title }}</h3>
<dl><dt>Column</dt><dd>{{ m.header }} ({{ m.column }}), sheet <span class="sheet">{{ m.sheet }}</span></dd>
<dt>First at</dt><dd>step {{ m.step }}, cell <code class="cell">{{ m.sheet }}!{{ m.cell }}</code> ({{ m.cells }} cell{{ '' if m.cells == 1 else 's' }} in all)</dd>
<dt>Your formula</dt><dd><code>{{ m.formula|breakable }}</code></dd>
<dt>Expected</dt><dd>{{ m.expected_text }}</dd><dt>Found</dt><dd>{{ m.found_text }}</dd>
<dt>Hint</dt><dd>{{ m.hint }}</dd></dl>
{% if m.knock_ons %}<details><summary>{{ m.knock_ons|length }} knock-on column{{ '' if m.knock_ons|length == 1 else 's' }} (wrong only because of this)</summary>
{% for c in m.knock_ons %}<div class="knock">{{ c.header }} ({{ c.key }}): {{ c.correct }}/{{ c.total }} as expected{% if c.first_wrong %}, differs from step {{ c.first_wrong.step }} (<code class="cell">{{ c.sheet }}!{{ c.first_wrong.cell }}</code>){% endif %}</div>
{% endfor %}</details>{% endif %}
</section>{% endfor %}{% endif %}

{% if exercise %}<h2>First wrong steps</h2>
<table><thead><tr><th>Column</th><th>Correct</th><th>First wrong step</th><th>Cell</th><th>Expected</th><th>Found</th><th>Formula</th></tr></thead>
<tbody>{% for c in exercise %}<tr><td>{{ c.header }} <span class="notes">({{ c.key }})</span></td>
{% if c.follows_from %}<td class="num follows">{{ c.correct }}/{{ c.total }}</td>
<td colspan="5" class="follows">follows from {{ c.follows_from }}: your formula is right and comes right with it{% if c.first_wrong %} (values differ from step {{ c.first_wrong.step }}, <code class="cell">{{ c.sheet }}!{{ c.first_wrong.cell }}</code>){% endif %}</td>
{% else %}<td class="num {{ 'pass' if c.correct == c.total else 'fail' }}">{{ c.correct }}/{{ c.total }}</td>
{% if c.first_wrong %}<td class="num">{{ c.first_wrong.step }}</td><td><code class="cell">{{ c.sheet }}!{{ c.first_wrong.cell }}</code></td>
<td class="num">{{ c.expected_text }}</td><td class="num">{{ c.found_text }}</td><td><code>{{ c.first_wrong.formula|breakable }}</code></td>
{% else %}<td colspan="5" class="pass">all correct</td>{% endif %}{% endif %}</tr>
{% endfor %}</tbody></table>{% endif %}
{% if notes %}<h2>Notes</h2><ul class="notes">{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% endif %}
</body></html>
"""

_BREAK_AFTER = re.compile(r"([,;+\-*/^(=<>&:])")


def _breakable(formula) -> markupsafe.Markup:
    """A formula, escaped, that may wrap after an operator, comma or bracket (``<wbr>``, a line-break
    opportunity) rather than inside a cell name."""
    if not formula:
        return markupsafe.Markup("(none)")
    pieces = (markupsafe.escape(p) + (markupsafe.Markup("<wbr>") if _BREAK_AFTER.fullmatch(p) else "")
              for p in _BREAK_AFTER.split(str(formula)) if p)
    return markupsafe.Markup("").join(pieces)


_ENV = jinja2.Environment(autoescape=True)
_ENV.filters["breakable"] = _breakable
_PAGE = _ENV.from_string(_TEMPLATE)


def render(report: dict) -> str:
    """The feedback page of one check report (``Report.to_dict()``)."""
    score = report.get("score") or {}
    correct, total = score.get("correct") or 0, score.get("total") or 0
    columns = report.get("columns") or []
    mistakes = []
    for m in report.get("mistakes") or []:
        knock = [c for c in columns if c.get("status") == "knock-on" and m.get("column") in (c.get("knock_on_of") or [])
                 and c.get("sheet") == m.get("sheet")]
        expected, found = show_pair(m.get("expected"), m.get("found"), m.get("formula"))
        mistakes.append(dict(m, expected_text=expected, found_text=found, knock_ons=knock))
    headers = {(c.get("sheet"), c.get("key")): c.get("header") or c.get("key") for c in columns}
    exercise = []
    for c in columns:
        if c.get("exercise"):
            f = c.get("first_wrong") or {}
            expected, found = show_pair(f.get("expected"), f.get("found"), f.get("formula"))
            roots = [headers.get((c.get("sheet"), k), k) for k in c.get("knock_on_of") or []]
            # a knock-on is not a mistake: it is shown under its root cause, never as a red first wrong step
            follows = ", ".join(roots) if c.get("status") == "knock-on" else ""
            exercise.append(dict(c, expected_text=expected, found_text=found,
                                 follows_from=follows or ("a wrong cell" if c.get("status") == "knock-on" else "")))
    return shown(_PAGE.render(  # autoescaped; control characters escaped visibly, as in every report
        name=os.path.basename(str(report.get("file", ""))), status=report.get("status"),
        message=report.get("message", ""), lesson=report.get("lesson") or {}, notes=report.get("notes") or [],
        score={"correct": correct, "total": total, "formulas_right": score.get("formulas_right") or 0},
        share=f"{100 * correct / total:.1f}%" if total else None,
        grade=f"{100 * (score.get('formulas_right') or 0) / total:.1f}%" if total else None,
        width=f"{100 * (score.get('formulas_right') or 0) / total:.1f}" if total else "0",
        mistakes=mistakes, exercise=exercise), keep="\n\t")


def write(report: dict, path: str, inputs=None) -> None:
    """The page at ``path``, under the output policy (sheetsgd.runtime.outputs: no links, no inputs, usual mode)."""
    from sheetsgd.runtime import outputs

    outputs.write_text(path, render(report), inputs or outputs.NO_INPUTS, "feedback page")
