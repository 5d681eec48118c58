"""The site's interactive plots, drawn by plotly.js: hover a point for its value, its interval,
its run and its commit.

    from harness.site import charts
    charts.div(charts.across_sizes(run, "step"), "speed")    # HTML: a div and its script

Why plotly: its Python package is well kept (monthly releases), is pure Python, and carries the
plotly.js build it was made for (`plotly/package_data/plotly.min.js`), so the site ships that
one file once, in assets/, from the installed package: no network when building or viewing, no
copy of a library in this repository, no second (binary) package. Hover labels, asymmetric
error bars for intervals, log axes and SVG drawing come with it. (Vega-Lite through altair would
be a smaller script, ~1 MB against ~4.8 MB, but altair ships no JavaScript: offline it needs
vl-convert-python, a compiled package of tens of MB, or three vendored npm bundles.)
Colours and line styles are the report's (harness/report/plots.py): one colour per
implementation, one dash per mode.
"""

from __future__ import annotations

import math
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.io as pio

from harness.measure.stats import fmt_seconds
from harness.report.plots import MODE_STYLE, colour
from harness.report.tables import size_order
from harness.site.html import esc

DASH = {"-": "solid", "--": "dash", ":": "dot", "-.": "dashdot"}
REGRESSION = "#cf222e"


def plotly_js() -> Path:
    """The plotly.js build that the installed plotly package carries."""
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def div(fig: go.Figure, div_id: str) -> str:
    """The figure as a <div> and the script that draws it (plotly.js is loaded by the page)."""
    return '<div class="plot">' + pio.to_html(
        fig, include_plotlyjs=False, full_html=False, div_id=div_id,
        config={"displaylogo": False, "responsive": True}) + "</div>"


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
        return [None if math.isnan(x) or math.isnan(y) else max(x - y, 0.0) for x, y in zip(a, b,
                                                                                        strict=True)]
    return {"type": "data", "symmetric": False, "array": gap(highs, values),
            "arrayminus": gap(values, lows), "thickness": 1.2, "width": 4}


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str, log: bool,
            seconds: bool = False) -> go.Figure:
    fig.update_layout(template="plotly_white", title=title, height=440,
                      margin={"l": 70, "r": 20, "t": 50, "b": 60}, hovermode="closest",
                      legend={"title": {"text": ""}})
    fig.update_xaxes(title_text=xtitle)
    fig.update_yaxes(title_text=ytitle, type="log" if log else "linear")
    if seconds:  # SI prefixes: 20µs, 35ms
        fig.update_yaxes(tickformat="~s", ticksuffix="s")
    return fig


def _span_is_wide(values: list[float]) -> bool:
    finite = [v for v in values if not math.isnan(v) and v > 0]
    return bool(finite) and max(finite) / min(finite) > 10


WHAT = {  # figure -> (column, low, high, formatter, axis title)
    "step": ("step_median_s", "step_low_s", "step_high_s", fmt_seconds,
             "seconds per step (median over rounds, 95% interval)"),
    "speedup": ("speedup", "speedup_low", "speedup_high", fmt_ratio,
                "speed-up over NumPy on the run's CPU (paired by round, 95% interval)"),
}


def across_sizes(run, what: str) -> go.Figure | None:
    """A bench run: one line per series across sizes (in order of work), error bars = interval.
    None when the run has no such column or no cell ran."""
    column, low, high, fmt, ytitle = WHAT[what]
    cells = run.data.ok if run.data is not None and run.data.cells is not None else None
    if cells is None or cells.empty or column not in cells:
        return None
    order = [str(s) for s in size_order(cells)]
    fig = go.Figure()
    for label, g in cells.groupby("label", sort=True):
        g = g.assign(size=g["size"].astype(str))
        g = g.set_index("size").reindex([s for s in order if s in set(g["size"])]).reset_index()
        ys = [number(v) for v in g[column]]
        if all(math.isnan(y) for y in ys):
            continue
        lows = [number(v) for v in g[low]] if low in g else [math.nan] * len(g)
        highs = [number(v) for v in g[high]] if high in g else [math.nan] * len(g)
        first = g.iloc[0]
        text = [f"<b>{esc(label)}</b> at {esc(s)}<br>{interval(y, lo, hi, fmt)}"
                f"<br>run {esc(run.name)}<br>commit {esc(run.commit_text)}"
                for s, y, lo, hi in zip(g["size"], ys, lows, highs, strict=True)]
        fig.add_trace(go.Scatter(
            x=list(g["size"]), y=ys, name=str(label), mode="lines+markers", text=text,
            hovertemplate="%{text}<extra></extra>", error_y=_bars(ys, lows, highs),
            line={"color": colour(str(first["impl"])),
                  "dash": DASH[MODE_STYLE.get(str(first["mode"]), "-")]}))
    if not fig.data:
        return None
    if what == "speedup":
        fig.add_hline(y=1, line={"color": "#888", "width": 1})
    title = "Step time across sizes" if what == "step" else "Speed-up over NumPy across sizes"
    fig = _layout(fig, title, "problem size (ordered by work per step)", ytitle,
                  log=what == "step" or _span_is_wide([y for t in fig.data for y in t.y]),
                  seconds=what == "step")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    return fig


def history(points: list, what: str, impl: str) -> go.Figure | None:
    """One series across runs: one trace per machine, by UTC time; regressions marked. The
    hover names the libraries `impl` depends on, as each run recorded them."""
    _, _, _, fmt, ytitle = WHAT[what]
    attrs = ("step", "step_low", "step_high") if what == "step" else (
        "speedup", "speedup_low", "speedup_high")
    fig, marks = go.Figure(), []
    by_machine: dict[str, list] = {}
    for p in points:
        if p.run.utc is not None and not math.isnan(getattr(p, attrs[0])):
            by_machine.setdefault(p.run.machine, []).append(p)
    for machine, ps in by_machine.items():
        ys, lows, highs = ([getattr(p, a) for p in ps] for a in attrs)
        text = [_hover(p, y, lo, hi, fmt, impl) for p, y, lo, hi in zip(ps, ys, lows, highs,
                                                                         strict=True)]
        fig.add_trace(go.Scatter(
            x=[p.run.utc.isoformat() for p in ps], y=ys, name=machine, mode="lines+markers",
            text=text, hovertemplate="%{text}<extra></extra>", error_y=_bars(ys, lows, highs),
            marker={"size": 8}))
        marks += [(p, y, t) for p, y, t in zip(ps, ys, text, strict=True) if p.regression]
    if not fig.data:
        return None
    for p in points:  # a cell that broke has no value to mark: a line at its run's time
        if p.regression and p.run.utc is not None and math.isnan(getattr(p, attrs[0])):
            fig.add_vline(x=p.run.utc.isoformat(), line={"color": REGRESSION, "dash": "dash"},
                          annotation_text=f"{p.change.verdict}: {p.run.name}",
                          annotation_font_color=REGRESSION)
    if marks:
        fig.add_trace(go.Scatter(
            x=[p.run.utc.isoformat() for p, _, _ in marks], y=[y for _, y, _ in marks],
            name="regression (compare)", mode="markers", text=[t for _, _, t in marks],
            hovertemplate="%{text}<extra></extra>",
            marker={"symbol": "x", "size": 16, "color": REGRESSION, "line": {"width": 2}}))
    if what == "speedup":
        fig.add_hline(y=1, line={"color": "#888", "width": 1})
    title = "Step time across runs" if what == "step" else "Speed-up over NumPy across runs"
    return _layout(fig, title, "run started (UTC)", ytitle,
                   log=_span_is_wide([y for t in fig.data for y in t.y]), seconds=what == "step")


def _hover(p, y, lo, hi, fmt, impl: str) -> str:
    lines = [f"<b>{interval(y, lo, hi, fmt)}</b>", f"run {esc(p.run.name)}",
             f"commit {esc(p.run.commit_text)}", esc(p.run.libraries(impl))]
    if p.change is not None and p.change.ratio is not None:
        r = p.change.ratio
        lines.append(f"vs {esc(p.previous.name)}: {r.estimate:.3f} [{r.low:.3f}, {r.high:.3f}],"
                     f" {esc(p.change.verdict)}")
    elif p.change is not None:
        lines.append(f"vs {esc(p.previous.name)}: {esc(p.change.verdict)}")
    return "<br>".join(lines)


def scaling(run) -> go.Figure | None:
    """A scaling run: speed-up t(W = 1) / t(W) against workers, one line per engine and size."""
    cells = run.cells
    if cells is None or "speedup" not in cells:
        return None
    fig = go.Figure()
    ok = cells[cells["status"] == "ok"]
    for (impl, mode, launch, size), g in ok.groupby(["impl", "mode", "launch", "size"], sort=True):
        g = g.sort_values("workers")
        ys = [number(v) for v in g["speedup"]]
        lows = [number(v) for v in g.get("speedup_low", [math.nan] * len(g))]
        highs = [number(v) for v in g.get("speedup_high", [math.nan] * len(g))]
        name = f"{impl} {mode} ({launch}), {size}"
        text = [f"<b>{esc(name)}</b>, W = {w}<br>speed-up {interval(y, lo, hi, fmt_ratio)}"
                f"<br>step {fmt_seconds(number(s))}<br>run {esc(run.name)}"
                f"<br>commit {esc(run.commit_text)}"
                for w, y, lo, hi, s in zip(g["workers"], ys, lows, highs, g["step_median_s"],
                                           strict=True)]
        fig.add_trace(go.Scatter(
            x=[int(w) for w in g["workers"]], y=ys, name=name, mode="lines+markers", text=text,
            hovertemplate="%{text}<extra></extra>", error_y=_bars(ys, lows, highs),
            line={"color": colour(str(impl)), "dash": "solid" if size == "large" else "dot"}))
    if not fig.data:
        return None
    fig.add_hline(y=1, line={"color": "#888", "width": 1})
    fig = _layout(fig, "Speed-up against workers", "workers (W)",
                  "t(W = 1) / t(W), paired by round (95% interval)", log=False)
    fig.update_xaxes(dtick=1)
    return fig


def number(value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan
