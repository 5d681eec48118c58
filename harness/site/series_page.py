"""One series' page: (impl, mode, device, dtype, size) across every run that has it.

    from harness.site.series_page import render
    html = render(key, points)

Two plots (step time, speed-up over NumPy) with one trace per machine over UTC time, each point's
95% interval as error bars and its run, commit and library versions on hover; regressions
(compare's verdict against the previous run of the same machine) are red crosses. The table
below lists every point: machine, run, commit, libraries, the figures with their intervals,
and the verdict with compare's B/A ratio and its 99% interval.
"""

from __future__ import annotations

import math

from harness.measure.stats import fmt_seconds
from harness.site import charts, paths
from harness.site.history import CONFIDENCE, MIN_EFFECT, Point
from harness.site.html import Cell, badge, esc, link, page, table
from harness.store import CellKey

DEPTH = 1  # series/<name>.html

VERDICT_BADGE = {"slower": "bad", "broken": "bad", "lost": "bad", "faster": "good",
                 "fixed": "good", "same": "", "not compared": ""}


def render(key: CellKey, points: list[Point], built: str = "") -> str:
    intro = (f"<p><b>{esc(key.impl)}</b> in mode <b>{esc(key.mode)}</b> on <b>{esc(key.device)}"
             f"</b>, {esc(key.dtype)}, size <b>{esc(key.size)}</b>: {len(points)} runs on"
             f" {len({p.run.machine for p in points})} machine(s).</p>"
             f"<p class=\"note\">Each point is one run's own figure: the median step time over"
             " its rounds with a 95% interval, and its speed-up over NumPy on the same run's"
             " CPU (paired by round). The verdict compares a run with the previous run of the"
             f" same machine that has this cell, as <code>python -m harness compare</code> does:"
             f" B/A from the rounds of both, with its {CONFIDENCE:.0%} interval; slower or"
             f" faster only when the whole interval lies beyond a {MIN_EFFECT:.0%} effect;"
             " a cell that ran before and failed now is broken. Regressions are marked.</p>")
    plots = [charts.history(points, "step", key.impl),
             charts.history(points, "speedup", key.impl)]
    drawn = [charts.div(fig, f"plot-{i}") for i, fig in enumerate(plots) if fig is not None]
    body = intro + "".join(drawn)
    if not drawn:
        body += "<p>No run of this series has a step time to plot.</p>"
    body += _table(points, key)
    return page(paths.series_title(key), body, DEPTH, plots=bool(drawn), built=built)


def _table(points: list[Point], key: CellKey) -> str:
    rows, classes = [], []
    for p in points:
        step = charts.interval(p.step, p.step_low, p.step_high, fmt_seconds)
        speed = charts.interval(p.speedup, p.speedup_low, p.speedup_high, charts.fmt_ratio)
        rows.append([
            p.run.machine,
            Cell(link(paths.run_href(p.run.slug, DEPTH), p.run.name), p.run.name),
            Cell(esc(p.run.utc_text), p.run.utc.timestamp() if p.run.utc else ""),
            Cell(f"<code>{esc(p.run.commit_text)}</code>", p.run.commit or ""),
            p.run.libraries(key.impl),
            Cell(badge(p.status, "good" if p.status == "ok" else "warn")
                 + (f" {esc(p.reason)}" if p.reason else ""), p.status),
            Cell(esc(step), "" if math.isnan(p.step) else p.step, "num"),
            Cell(esc(speed), "" if math.isnan(p.speedup) else p.speedup, "num"),
            _verdict(p),
        ])
        classes.append("regression" if p.regression else "" if p.status == "ok" else "problem")
    head = ["machine", "run", "UTC", "commit", "libraries", "status",
            "step time [95% interval]", "speed-up over NumPy [95% interval]",
            "vs the previous run of this machine (compare)"]
    return "<h2>Every run</h2>" + table(head, rows, classes)


def _verdict(p: Point) -> Cell:
    if p.previous is None:
        return Cell('<span class="note">first run of this machine</span>', "")
    before = f" vs {esc(p.previous.name)}"
    if p.change is None:
        return Cell(f'<span class="note">not compared{before}: {esc(p.not_compared)}</span>', "")
    c = p.change
    kind = VERDICT_BADGE.get(c.verdict, "")
    label = ("regression: " if c.regression else "") + c.verdict
    text = badge(label, kind) if kind else esc(label)
    if c.ratio is not None:
        text += (f" B/A {c.ratio.estimate:.3f} [{c.ratio.low:.3f}, {c.ratio.high:.3f}]")
    if c.note:
        text += f" ({esc(c.note)})"
    text += before
    if p.warnings:
        text += ('<br><span class="note">the runs differ: ' + esc("; ".join(p.warnings))
                 + "</span>")
    return Cell(text, c.verdict)
