"""The site's interactive plots, drawn by plotly.js: hover a point for its value, its interval,
its run and its commit.

    from harness.site import charts
    charts.div(charts.across_sizes(run, "step"), "plot-step")   # HTML: a div and its script

Why plotly: its Python package is well kept (monthly releases), is pure Python, and carries the
plotly.js build it was made for (`plotly/package_data/plotly.min.js`), so the site ships that
one file once, in assets/, from the installed package: no network when building or viewing, no
copy of a library in this repository, no second (binary) package. Hover labels, asymmetric
error bars for intervals, log axes and SVG drawing come with it. (Vega-Lite through altair would
be a smaller script, ~1 MB against ~4.8 MB, but altair ships no JavaScript: offline it needs
vl-convert-python, a compiled package of tens of MB, or three vendored npm bundles.)

A figure is plotly.js's own JSON ({"data": [traces], "layout": {...}}, the schema plotly.js
documents), written here as plain dicts: plotly.py's figure objects validate every property
against that schema on each update, ~0.25 s a figure, most of a site's build time. Colours and
line styles are the report's (harness/report/plots.py): one colour per implementation, one
dash per mode.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import plotly

from harness.measure.stats import fmt_seconds
from harness.report.plots import MODE_STYLE, colour
from harness.report.tables import size_order
from harness.site.html import esc

DASH = {"-": "solid", "--": "dash", ":": "dot", "-.": "dashdot"}
REGRESSION = "#cf222e"
CONFIG = {"displaylogo": False, "responsive": True}


def plotly_js() -> Path:
    """The plotly.js build that the installed plotly package carries."""
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _json(value) -> str:
    """JSON for a <script>: NaN as null, and no '</' that could end the script early."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), allow_nan=False).replace("</", "<\\/")


def div(fig: dict, div_id: str) -> str:
    """The figure as a <div> and the script that draws it (plotly.js is loaded by the page)."""
    return (f'<div class="plot"><div id="{esc(div_id)}"></div><script>Plotly.newPlot('
            f'"{esc(div_id)}", {_json(fig["data"])}, {_json(fig["layout"])}, {_json(CONFIG)});'
            "</script></div>")


def fmt_ratio(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3g}x"


def interval(value: float, low: float, high: float, fmt) -> str:
    """'1.2 ms [1.1 ms, 1.4 ms]', or the value alone, or '-'."""
    if math.isnan(value):
        return "-"
    if math.isnan(low) or math.isnan(high):
        return f"{fmt(value)} (no interval)"
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def _bars(values, lows, highs) -> dict:
    """Asymmetric error bars from an interval; none where a run has no interval."""
    def gap(a, b):
        return [None if math.isnan(x) or math.isnan(y) else max(x - y, 0.0)
                for x, y in zip(a, b, strict=True)]
    return {"type": "data", "symmetric": False, "array": gap(highs, values),
            "arrayminus": gap(values, lows), "thickness": 1.2, "width": 4}


def _trace(name: str, x: list, y: list, text: list, bars: dict, **style) -> dict:
    return {"type": "scatter", "name": name, "x": x, "y": y, "text": text,
            "hovertemplate": "%{text}<extra></extra>", "error_y": bars,
            "mode": "lines+markers", **style}


def _figure(traces: list, title: str, xtitle: str, ytitle: str, log: bool, seconds: bool,
            order: list | None = None, shapes=(), notes=()) -> dict:
    axis = {"gridcolor": "#e5e5e5", "linecolor": "#999", "zerolinecolor": "#ccc",
            "automargin": True}
    yaxis = {**axis, "title": {"text": ytitle}, "type": "log" if log else "linear"}
    ys = [y for t in traces for y in t["y"] if isinstance(y, float) and y > 0]
    if log and ys:  # 1-2-5 ticks named as the tables name them: 200 us, 1 ms; 0.05x
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(min(ys))) - 1,
                                                math.ceil(math.log10(max(ys))) + 2)
                 for m in (1, 2, 5)]
        yaxis.update(tickvals=ticks, ticktext=[(fmt_seconds if seconds else fmt_ratio)(t)
                                               for t in ticks])
    elif seconds:
        yaxis.update(tickformat="~s", ticksuffix="s")  # SI prefixes: 20µs, 35ms
    xaxis = {**axis, "title": {"text": xtitle}}
    if order is not None:
        xaxis.update(type="category", categoryorder="array", categoryarray=order)
    return {"data": traces, "layout": {
        "title": {"text": title}, "height": 440, "hovermode": "closest",
        "margin": {"l": 70, "r": 20, "t": 50, "b": 60}, "plot_bgcolor": "#fff",
        "paper_bgcolor": "#fff", "xaxis": xaxis, "yaxis": yaxis, "shapes": list(shapes),
        "annotations": list(notes), "font": {"family": "system-ui, sans-serif", "size": 12}}}


def _one() -> dict:
    """The line at a speed-up of 1."""
    return {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 1, "y1": 1,
            "line": {"color": "#888", "width": 1}}


def _wide(traces: list) -> bool:
    finite = [y for t in traces for y in t["y"] if isinstance(y, float) and y > 0]
    return bool(finite) and max(finite) / min(finite) > 10


WHAT = {  # figure -> (column, low, high, formatter, axis title)
    "step": ("step_median_s", "step_low_s", "step_high_s", fmt_seconds,
             "seconds per step (median, 95% interval)"),
    "speedup": ("speedup", "speedup_low", "speedup_high", fmt_ratio,
                "speed-up over NumPy (95% interval)"),
}


def _values(g, column: str) -> list[float]:
    return [number(v) for v in g[column]] if column in g else [math.nan] * len(g)


def across_sizes(run, what: str) -> dict | None:
    """A bench run: one line per series across sizes (in order of work), error bars = interval.
    None when the run has no such column or no cell ran."""
    column, low, high, fmt, ytitle = WHAT[what]
    cells = run.data.ok if run.data is not None and run.data.cells is not None else None
    if cells is None or cells.empty or column not in cells:
        return None
    order = [str(s) for s in size_order(cells)]
    traces = []
    for label, g in cells.groupby("label", sort=True):
        g = g.assign(size=g["size"].astype(str))
        g = g.set_index("size").reindex([s for s in order if s in set(g["size"])]).reset_index()
        ys, lows, highs = _values(g, column), _values(g, low), _values(g, high)
        if all(math.isnan(y) for y in ys):
            continue
        first = g.iloc[0]
        text = [f"<b>{esc(label)}</b> at {esc(s)}<br>{interval(y, lo, hi, fmt)}"
                f"<br>run {esc(run.name)}<br>commit {esc(run.commit_text)}"
                for s, y, lo, hi in zip(g["size"], ys, lows, highs, strict=True)]
        traces.append(_trace(
            str(label), list(g["size"]), ys, text, _bars(ys, lows, highs),
            line={"color": colour(str(first["impl"])),
                  "dash": DASH[MODE_STYLE.get(str(first["mode"]), "-")]}))
    if not traces:
        return None
    title = "Step time across sizes" if what == "step" else "Speed-up over NumPy across sizes"
    return _figure(traces, title, "problem size (ordered by work per step)", ytitle,
                   log=what == "step" or _wide(traces), seconds=what == "step", order=order,
                   shapes=[_one()] if what == "speedup" else [])


def run_label(run) -> str:
    """A run on a history's x axis (one slot per run, oldest first): its folder, its commit."""
    return f"{run.name}<br>{(run.commit or 'no commit')[:7]}{'+' if run.dirty else ''}"


def history(points: list, what: str, impl: str) -> dict | None:
    """One series across runs: one trace per machine, runs in UTC order; regressions marked (a
    red cross; a dashed line where the cell broke and has no value). The hover names the
    libraries `impl` depends on, as each run recorded them."""
    _, _, _, fmt, ytitle = WHAT[what]
    attrs = ("step", "step_low", "step_high") if what == "step" else (
        "speedup", "speedup_low", "speedup_high")
    traces, marks, by_machine = [], [], {}
    for p in points:
        if not math.isnan(getattr(p, attrs[0])):
            by_machine.setdefault(p.run.machine, []).append(p)
    for machine, ps in by_machine.items():
        ys, lows, highs = ([getattr(p, a) for p in ps] for a in attrs)
        text = [_hover(p, y, lo, hi, fmt, impl) for p, y, lo, hi in zip(ps, ys, lows, highs,
                                                                         strict=True)]
        traces.append(_trace(machine, [run_label(p.run) for p in ps], ys, text,
                             _bars(ys, lows, highs), marker={"size": 8}))
        marks += [(p, y, t) for p, y, t in zip(ps, ys, text, strict=True) if p.regression]
    if not traces:
        return None
    if marks:
        traces.append({"type": "scatter", "mode": "markers", "name": "regression (compare)",
                       "x": [run_label(p.run) for p, _, _ in marks], "y": [y for _, y, _ in marks],
                       "text": [t for _, _, t in marks], "hovertemplate": "%{text}<extra></extra>",
                       "marker": {"symbol": "x", "size": 16, "color": REGRESSION,
                                  "line": {"width": 2}}})
    shapes, notes = [_one()] if what == "speedup" else [], []
    for p in points:  # a cell that broke has no value to mark: a line at its run
        if p.regression and math.isnan(getattr(p, attrs[0])):
            x = run_label(p.run)
            shapes.append({"type": "line", "yref": "paper", "y0": 0, "y1": 1, "x0": x, "x1": x,
                           "line": {"color": REGRESSION, "dash": "dash"}})
            notes.append({"x": x, "y": 1, "yref": "paper", "showarrow": False,
                          "xanchor": "left", "text": f"{esc(p.change.verdict)}: {esc(p.run.name)}",
                          "font": {"color": REGRESSION}})
    order = [run_label(p.run) for p in sorted(points, key=lambda p: (p.run.utc is None,
                                                                     p.run.utc, p.run.name))]
    title = "Step time across runs" if what == "step" else "Speed-up over NumPy across runs"
    return _figure(traces, title, "run (oldest first), its commit", ytitle, log=_wide(traces),
                   seconds=what == "step", order=list(dict.fromkeys(order)), shapes=shapes,
                   notes=notes)


def _hover(p, y, lo, hi, fmt, impl: str) -> str:
    lines = [f"<b>{interval(y, lo, hi, fmt)}</b>", f"run {esc(p.run.name)}",
             f"commit {esc(p.run.commit_text)}", esc(p.run.libraries(impl))]
    if p.change is not None and p.change.ratio is not None:
        r = p.change.ratio
        lines.append(f"vs {esc(p.previous.name)}: B/A {r.estimate:.3f} [{r.low:.3f},"
                     f" {r.high:.3f}], {esc(p.change.verdict)}")
    elif p.change is not None:
        lines.append(f"vs {esc(p.previous.name)}: {esc(p.change.verdict)}")
    return "<br>".join(lines)


def scaling(run) -> dict | None:
    """A scaling run: speed-up t(W = 1) / t(W) against workers, one line per engine and size."""
    cells = run.cells
    if cells is None or "speedup" not in cells:
        return None
    traces = []
    ok = cells[cells["status"] == "ok"]
    for (impl, mode, launch, size), g in ok.groupby(["impl", "mode", "launch", "size"], sort=True):
        g = g.sort_values("workers")
        ys, lows, highs = _values(g, "speedup"), _values(g, "speedup_low"), _values(
            g, "speedup_high")
        name = f"{impl} {mode} ({launch}), {size}"
        text = [f"<b>{esc(name)}</b>, W = {w}<br>speed-up {interval(y, lo, hi, fmt_ratio)}"
                f"<br>step {fmt_seconds(s)}<br>run {esc(run.name)}"
                f"<br>commit {esc(run.commit_text)}"
                for w, y, lo, hi, s in zip(g["workers"], ys, lows, highs,
                                           _values(g, "step_median_s"), strict=True)]
        traces.append(_trace(name, [int(w) for w in g["workers"]], ys, text,
                             _bars(ys, lows, highs),
                             line={"color": colour(str(impl)),
                                   "dash": "solid" if size == "large" else "dot"}))
    if not traces:
        return None
    fig = _figure(traces, "Speed-up against workers", "workers (W)",
                  "t(W = 1) / t(W) (95% interval)", log=False, seconds=False,
                  shapes=[_one()])
    fig["layout"]["xaxis"]["dtick"] = 1
    return fig


def number(value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan
