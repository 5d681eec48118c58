"""The site's front page: every run folder found (with its problems), then every series.

    from harness.site.index import render
    html = render(runs, series, root="results", built="built ... at ...")
"""

from __future__ import annotations

import math

from harness.measure.stats import fmt_seconds
from harness.site import paths
from harness.site.history import Point, latest
from harness.site.html import Cell, badge, esc, link, page, prose, table
from harness.site.runs import Run
from harness.store import CellKey


def render(runs: list[Run], series: dict[CellKey, list[Point]], root: str, built: str) -> str:
    damaged = sum(bool(r.problems) for r in runs)
    regressions = sum(any(p.regression for p in ps) for ps in series.values())
    intro = (f"<p>{len(runs)} folders under <code>{esc(root)}</code>"
             f" ({damaged} with problems, listed with them), {len(series)} series"
             f" (implementation, mode, device, dtype, size) across them"
             + (f", {regressions} with a regression marked" if regressions else "") + ".</p>"
             "<p class=\"note\">Each run's figures are its own: step times are medians over"
             " rounds with a 95% interval, speed-ups are over NumPy on that run's CPU, paired by"
             " round. A regression is <code>compare</code>'s verdict between consecutive runs of"
             " one machine (its whole 99% interval beyond a 10% effect, or a cell that broke)."
             " Click a column's header to sort.</p>")
    return page("Benchmark runs", intro + _runs(runs) + _series(series), depth=0, built=built)


def _runs(runs: list[Run]) -> str:
    rows, classes = [], []
    for r in runs:
        ran, total = r.counts()
        problems = "; ".join(prose(p) for p in r.problems)
        rows.append([
            Cell(link(paths.run_href(r.slug, 0), r.name), r.name),
            r.kind, r.profile, r.machine,
            Cell(esc(r.utc_text), r.utc.timestamp() if r.utc else ""),
            Cell(f"<code>{esc(r.commit_text)}</code>", r.commit or ""),
            r.libraries(),
            Cell(f"{ran} of {total}", ran, "num"),
            Cell((badge("problem", "warn") + " " + problems) if problems else "",
                 len(r.problems)),
        ])
        classes.append("problem" if r.problems else "")
    head = ["run", "kind", "profile", "machine", "UTC", "commit", "libraries", "cells that ran",
            "problems"]
    return ('<h2 id="runs">Runs</h2>' + (table(head, rows, classes, table_id="runs-table") if rows else
                                          "<p>No run folders found.</p>"))


def _series(series: dict[CellKey, list[Point]]) -> str:
    if not series:
        return '<h2 id="series">Series</h2><p>No bench run with readable cells.</p>'
    rows, classes = [], []
    for key, points in series.items():
        last = latest(points)
        regressed = [p for p in points if p.regression]
        machines = sorted({p.run.machine for p in points})
        verdict = ""
        if regressed:
            verdict = badge(f"regression ({len(regressed)})", "bad") + " " + esc(
                ", ".join(p.run.name for p in regressed))
        rows.append([
            Cell(link(paths.series_href(key, 0), paths.series_title(key)), paths.series_title(key)),
            key.impl, key.mode, key.device, key.dtype, key.size,
            Cell(str(len(points)), len(points), "num"),
            "; ".join(machines),
            Cell(esc(fmt_seconds(last.step)) if last.status == "ok" else esc(last.status),
                 "" if math.isnan(last.step) else last.step, "num"),
            Cell(esc(last.run.name), last.run.name),
            Cell(verdict, len(regressed)),
        ])
        classes.append("regression" if regressed else "")
    head = ["series", "impl", "mode", "device", "dtype", "size", "runs", "machines",
            "latest step time", "latest run", "regressions"]
    return '<h2 id="series">Series</h2>' + table(head, rows, classes, table_id="series-table")
