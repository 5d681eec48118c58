"""One run's page: its facts, interactive plots, its cells as a sortable table, its report.md in
HTML with its figures, and copies of its data files.

    from harness.site.run_page import render
    html, files = render(run, series_keys)   # files: {name in the page's folder: source path}

The report is the one `python -m harness report RUN` wrote (report.md and its PNGs, copied
beside the page); a run without one says how to write it (the site never renders
matplotlib figures itself: that takes seconds per run).
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath

from harness.measure.stats import fmt_seconds
from harness.site import charts, paths
from harness.site.html import Cell, badge, esc, link, markdown, page, prose, table
from harness.site.runs import Run
from harness.store import CELLS, CHECK, META, SAMPLES, SCALING, SCALING_SAMPLES, TTA, CellKey

DATA_FILES = (META, CELLS, SAMPLES, TTA, CHECK, SCALING, SCALING_SAMPLES)
MAX_COPY = 5 * 2**20  # a data file larger than this is named, not copied
DEPTH = 2  # runs/<slug>/index.html


def render(run: Run, series_keys: set, built: str = "") -> tuple[str, dict[str, Path]]:
    files: dict[str, Path] = {}
    body = []
    if run.problems:
        body.append('<div class="problems"><b>Problems with this folder</b><ul>'
                    + "".join(f"<li>{prose(p)}</li>" for p in run.problems) + "</ul></div>")
    body.append(_facts(run))
    plots = []
    if run.kind == "bench":
        plots = [(charts.across_sizes(run, "step"), "step"),
                 (charts.across_sizes(run, "speedup"), "speedup")]
    elif run.kind == "scaling":
        plots = [(charts.scaling(run), "scaling")]
    drawn = [charts.div(fig, f"plot-{name}") for fig, name in plots if fig is not None]
    if drawn:
        body.append("<h2>Plots</h2>" + "".join(drawn))
    body.append(_cells(run, series_keys))
    body.append(_report(run, files))
    body.append(_files(run, files))
    return page(f"Run {run.name}", "\n".join(body), DEPTH, plots=bool(drawn), built=built), files


def _facts(run: Run) -> str:
    ran, total = run.counts()
    rows = [("kind", run.kind), ("profile", run.profile), ("machine", run.machine),
            ("started (UTC)", run.utc_text), ("commit", run.commit_text),
            ("Python", str(run.meta.get("machine", {}).get("python", "unknown"))
             if isinstance(run.meta.get("machine"), dict) else "unknown"),
            ("libraries", ", ".join(f"{k} {v}" for k, v in run.versions.items()) or "unknown"),
            ("cells that ran", f"{ran} of {total}"), ("folder", str(run.path))]
    return table(["", "value"], rows, sortable=False)


def _fmt(value: float, low: float, high: float, fmt) -> tuple[str, float | str]:
    return charts.interval(value, low, high, fmt), ("" if math.isnan(value) else value)


def _cells(run: Run, series_keys: set) -> str:
    cells = run.cells
    if cells is None or cells.empty:
        return "<h2>Cells</h2><p>No readable cells.</p>"
    num = charts.number
    rows, classes = [], []
    for row in cells.to_dict("records"):
        status = str(row.get("status", "?"))
        step = _fmt(num(row.get("step_median_s")), num(row.get("step_low_s")),
                    num(row.get("step_high_s")), fmt_seconds)
        speed = _fmt(num(row.get("speedup")), num(row.get("speedup_low")),
                     num(row.get("speedup_high")), charts.fmt_ratio)
        reason = row.get("reason")
        reason = "" if reason is None or (isinstance(reason, float) and math.isnan(reason)) else reason
        if run.kind == "scaling":
            first = [str(row.get(c, "")) for c in ("impl", "mode", "launch", "device", "dtype",
                                                    "size", "workers")]
        else:
            try:
                key = CellKey.of(row)
            except KeyError:
                continue
            name = paths.series_title(key)
            first = [Cell(link(paths.series_href(key, DEPTH), name) if key in series_keys
                          else esc(name), name), *key]
        rows.append([*first, Cell(badge(status, "good" if status == "ok" else "warn"), status),
                     Cell(esc(step[0]), step[1], "num"), Cell(esc(speed[0]), speed[1], "num"),
                     str(reason)])
        classes.append("" if status == "ok" else "problem")
    head = (["impl", "mode", "launch", "device", "dtype", "size", "workers"]
            if run.kind == "scaling" else ["series", *CellKey._fields])
    speed_head = "speed-up over W = 1" if run.kind == "scaling" else "speed-up over NumPy"
    return ("<h2>Cells</h2>" + table([*head, "status", "step time [95% interval]",
                                       f"{speed_head} [95% interval]", "reason"], rows, classes))


def _report(run: Run, files: dict[str, Path]) -> str:
    if run.report is None:
        return ("<h2>Report</h2><p>This run folder has no <code>report.md</code>; write it with"
                f" <code>python -m harness report {esc(run.path)}</code> and build the site"
                " again.</p>")
    try:
        text = run.report.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"<h2>Report</h2><p>report.md could not be read: {esc(exc)}</p>"

    def target(href: str) -> str | None:
        p = PurePosixPath(href)
        if ":" in href or "#" in href or "?" in href or p.is_absolute() or ".." in p.parts \
                or not href:
            return None  # nothing outside the run folder, nothing from a network, no anchors
        source = run.path / p
        if source.is_file() and source.stat().st_size <= MAX_COPY:
            files[str(p)] = source
            return str(p)
        return None

    return '<h2>Report</h2><div class="report">' + markdown(text, target) + "</div>"


def _files(run: Run, files: dict[str, Path]) -> str:
    items = []
    for name in DATA_FILES:
        source = run.path / name
        if not source.is_file():
            continue
        size = source.stat().st_size
        if size <= MAX_COPY:
            files[name] = source
            items.append(f"<li>{link(name, name)} ({size / 1024:,.1f} KiB)</li>")
        else:
            items.append(f"<li><code>{esc(name)}</code> ({size / 2**20:,.1f} MiB: not copied"
                         " into the site; it is in the run folder)</li>")
    if not items:
        return ""
    return "<h2>Files</h2><p>Copies of the run folder's files:</p><ul>" + "".join(items) + "</ul>"
