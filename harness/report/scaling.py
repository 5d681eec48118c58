"""The report of a scaling run (bench --profile scaling): speed-up against workers.

    from harness.report.scaling import render
    render(Path("results/20261127-040000-scaling"))   # report.md + scaling.png in the folder

`python -m harness report RUN_DIR` comes here when the folder's meta.json says its kind is
"scaling". It reads
meta.json and scaling.csv only (harness/store.py), never re-runs anything, and a missing or
broken file shortens the report with a sentence instead of stopping it. A row that is not
whole and typed is left out and named, a run that did not finish says what it lacks in the
first lines (harness/report/state.py), each interval is labelled with what its rounds cover
(harness/report/coverage.py), and an efficiency above 100% is flagged with what the run's
phases say about it (harness/report/superlinear.py).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.measure.stats import fmt_seconds
from harness.report import coverage, plots, state
from harness.report.load import RunData
from harness.report.meta import clean
from harness.report.setup import setup_facts
from harness.report.superlinear import flagged
from harness.report.tables import dig, md_table, with_interval
from harness.store import META, REPORT, SCALING, ScalingRow, atomic_write, read_json

HOW_TO_READ = (
    "_How to read this report: each **configuration** is one data-parallel engine at W workers"
    " (one thread each, each worker pinned to a core of its own), timed on full-batch training"
    " steps. Every round launches every configuration once, in a random order; a"
    " configuration's step time is the median over rounds with a distribution-free interval"
    " (what it covers depends on the rounds it rests on: `covers`), and its"
    " **speed-up** is t(W = 1) / t(W), paired by round (both ran in the same round), with its"
    " interval; no verdict is drawn from an interval covering under 90%. **Efficiency** is the"
    " speed-up divided by W (1 = ideal). The all-reduce is timed"
    " apart in profiled blocks (how, per engine, below); its **share** is of the profiled"
    " step. Raw numbers: `scaling.csv`, `scaling_samples.csv` (one row per timed block)._")


def render(run_dir: Path, out: Path | None = None) -> Path:
    run_dir = Path(run_dir)
    state.refuse_if_written(run_dir)
    out = Path(out) if out is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    notes, dropped = [], []
    try:
        meta, said = clean(read_json(run_dir, META))
        notes += said
    except (OSError, ValueError) as exc:
        meta, _ = {}, notes.append(f"`{META}` could not be read ({type(exc).__name__}).")
    try:
        good, dropped, columns = state.readable(run_dir, SCALING, ScalingRow)
        rows = state.frame(good, columns)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        good, rows = [], None
        notes.append(f"`{SCALING}` could not be read ({type(exc).__name__}: {exc}).")
    lacks = state.lacking(meta, "scaling", good)
    parts = [f"# Scaling report: `{run_dir.name}`", "", *state.preamble(lacks, dropped),
             HOW_TO_READ, ""]
    if notes:
        parts += ["> **What this report cannot show.**", *[f"> - {n}" for n in notes], ""]
    for title, section in (("Setup", _setup), ("Speed-up against workers", _speedup),
                           ("Where the step time goes", _phases),
                           ("Configurations that did not run", _not_run)):
        parts += [f"## {title}", ""]
        try:
            parts += [section(meta, rows, out) if section is not _not_run
                      else _not_run(meta, rows, out, lacks), ""]
        except Exception as exc:  # noqa: BLE001  one bad section must not lose the others
            parts += [f"_This section could not be rendered from this run: "
                      f"{type(exc).__name__}: {exc}_", ""]
    plots.plt.close("all")
    path = out / REPORT
    atomic_write(path, "\n".join(parts).rstrip() + "\n")
    return path


def _ok(rows) -> pd.DataFrame:
    if rows is None or rows.empty or "step_median_s" not in rows:
        raise ValueError("no configuration finished a round")
    ok = rows[(rows["status"] == "ok") & rows["step_median_s"].notna()].copy()
    if ok.empty:
        raise ValueError("no configuration finished a round")
    ok["engine"] = ok["impl"] + "/" + ok["mode"] + " (" + ok["launch"] + ")"
    return ok


def _first(meta: dict, *paths: str):
    """The first of `paths` that meta.json has (a run's settings were written two ways: before
    the one profile type, and after; each report renders from what its run wrote)."""
    for path in paths:
        if (v := dig(meta, path)) is not None:
            return ", ".join(map(str, v)) if isinstance(v, list) else v
    return "?"


def _setup(meta: dict, rows, out: Path) -> str:
    facts = setup_facts(RunData(Path("."), meta, None, None, None))
    lines = [md_table(facts) if len(facts) else
             "_No metadata: `meta.json` is missing, unreadable or not an object._"]
    lines.append(
        f"Each launch: {_first(meta, 'profile.warmup_steps', 'settings.policy.warmup_steps')}"
        " warm-up steps, then"
        f" {_first(meta, 'profile.blocks', 'settings.policy.samples_per_block')} plain blocks"
        " and as many profiled ones per size;"
        f" {_first(meta, 'settings.rounds', 'settings.policy.rounds')} rounds, launches"
        f" shuffled in each (seed {_first(meta, 'settings.order_seed', 'settings.seed')});"
        f" {_first(meta, 'settings.dtype', 'profile.dtypes')}, loss"
        f" {_first(meta, 'settings.loss')}, learning rate {_first(meta, 'settings.lr')};"
        f" {_first(meta, 'settings.threads_per_worker', 'settings.threads')} thread per worker,"
        " each worker pinned to one core.")
    launches = meta.get("launches") or {}
    if launches:
        table = pd.DataFrame([{"launch": name, "launcher": u.get("launcher"),
                               "processes": u.get("processes"),
                               "cores per worker": " | ".join(
                                   ",".join(map(str, c or [])) for c in u.get("cores") or []),
                               "threads seen per worker": " | ".join(
                                   str(t) for t in u.get("worker_threads") or [])}
                              for name, u in sorted(launches.items())])
        lines += ["What each launch used, as its workers reported it:", md_table(table)]
    return "\n\n".join(lines)


def _speedup(meta: dict, rows, out: Path) -> str:
    ok = _ok(rows)
    figure = _figure(ok, out)
    parts = []
    for size, g in ok.groupby("size", sort=False):
        table = pd.DataFrame({
            "engine": g["engine"], "W": g["workers"],
            "step time [interval]": [with_interval(r.step_median_s, r.step_low_s, r.step_high_s,
                                               fmt_seconds) for r in g.itertuples()],
            "speed-up [interval]": [with_interval(r.speedup, r.speedup_low, r.speedup_high,
                                              _ratio)
                                    if pd.notna(r.speedup) else "(baseline)"
                                    for r in g.itertuples()],
            "efficiency": [f"{x:.0%}" + (" (!)" if x > 1 else "") if pd.notna(x) else "-"
                           for x in g["efficiency"]],
            "rounds": g["rounds"],
            "covers": [coverage.label(n) for n in g["rounds"]]})
        first = g.iloc[0]
        parts += [f"**{size}** ({int(first['n_samples'])} x {int(first['n_features'])} ->"
                  f" {int(first['n_hidden'])} -> 1, full batch; {int(first['block_steps'])}"
                  " steps a block)", md_table(table), _verdicts(g)]
    if over := flagged(ok):
        parts.append(over)
    parts.append(f"![speed-up against workers]({figure})")
    return "\n\n".join(parts)


def _verdicts(g: pd.DataFrame) -> str:
    """One sentence per W > 1 configuration: faster, slower, or no clear difference; none from
    an interval of too few rounds (those are named together)."""
    said, unjudged = [], []
    for r in g[g["speedup"].notna()].itertuples():
        v = coverage.judge(r.speedup_low, r.speedup_high, r.rounds)
        if v == coverage.TOO_FEW:
            unjudged.append(r)
            continue
        if v == "faster":
            v += f" at W = {r.workers}: {_ratio(r.speedup)} of an ideal {r.workers}"
        elif v == "slower":
            v += f" at W = {r.workers}: {_ratio(r.speedup)}, more workers cost time"
        else:
            v += f" at W = {r.workers} (the interval holds 1)"
        said.append(f"{r.engine} is {v}.")
    if unjudged:
        rounds = sorted({int(r.rounds) for r in unjudged if pd.notna(r.rounds)})
        covers = coverage.said(rounds)[3:].replace("interval", "intervals", 1)
        said.append(f"Not judged, from too few rounds ({covers}; a verdict needs"
                    f" {coverage.fewest()} rounds, 90%): "
                    + ", ".join(f"{r.engine} at W = {r.workers}" for r in unjudged) + ".")
    return " ".join(said)


def _phases(meta: dict, rows, out: Path) -> str:
    ok = _ok(rows)
    table = pd.DataFrame({
        "size": ok["size"], "engine": ok["engine"], "W": ok["workers"],
        "compute": ok["compute_s"].map(fmt_seconds), "wait": ok["wait_s"].map(fmt_seconds),
        "all-reduce": ok["comm_s"].map(fmt_seconds), "update": ok["update_s"].map(fmt_seconds),
        "all-reduce share": ok["comm_share"].map(lambda x: f"{x:.0%}" if pd.notna(x) else "-"),
        "CPU per wall-second": ok["cpu_per_wall"].map(lambda x: f"{x:.2f}" if pd.notna(x) else "-")})
    methods = ok.groupby("impl")["comm_method"].first()
    how = "\n".join(f"- **{impl}**: {m}" for impl, m in methods.items() if isinstance(m, str))
    return "\n\n".join([
        "Medians over the profiled blocks (rank 0's clocks). *Wait* is the barrier before the"
        " all-reduce: the imbalance between workers, not communication. A dash: the engine does"
        " not separate that phase. CPU per wall-second is rank 0's (1.0: its one thread was busy"
        " the whole step).", md_table(table), "How each engine's phases were timed:", how])


def _not_run(meta: dict, rows, out: Path, lacks: list[str] = ()) -> str:
    if rows is None or "status" not in rows:
        return "_Not shown: no readable `scaling.csv`._"
    bad = rows[rows["status"] != "ok"]
    missing = [line for line in lacks if "have no row" in line]
    if bad.empty:
        return " ".join(missing) or "Every planned configuration ran."
    return " ".join(missing) + ("\n\n" if missing else "") + md_table(pd.DataFrame({
        "engine": bad["impl"] + "/" + bad["mode"] + " (" + bad["launch"] + ")",
        "device": bad["device"], "size": bad["size"], "W": bad["workers"],
        "status": bad["status"], "why": bad["reason"].fillna("")}))


def _figure(ok: pd.DataFrame, out: Path) -> str:
    sizes = list(pd.unique(ok["size"]))
    fig, axes = plots.plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4.2), squeeze=False)
    top = max(int(ok["workers"].max()), 2)
    for ax, size in zip(axes[0], sizes, strict=True):
        g = ok[ok["size"] == size]
        ax.plot([1, top], [1, top], color="black", linewidth=0.8, linestyle=":", label="ideal")
        # one line per W > 1 launch, from its implementation's W = 1 baseline (jax's one
        # process is the baseline of both its launches, so it is no line of its own)
        for engine, e in g[g["workers"] > 1].groupby("engine", sort=True):
            base = g[(g["impl"] == e["impl"].iloc[0]) & (g["workers"] == 1)]
            e = pd.concat([base.assign(speedup=1.0, speedup_low=1.0, speedup_high=1.0),
                           e]).sort_values("workers")
            yerr = [e["speedup"] - e["speedup_low"], e["speedup_high"] - e["speedup"]]
            st = plots.style(e["impl"].iloc[0], e["mode"].iloc[0], e["device"].iloc[0])
            if e["launch"].iloc[-1] == "devices":
                st["linestyle"] = "-."
            ax.errorbar(e["workers"], e["speedup"], yerr=yerr, capsize=3, label=engine, **st)
        ax.set_xticks(sorted(pd.unique(ok["workers"])))
        ax.set_xlabel("workers (one thread each)")
        ax.set_ylabel("speed-up over W = 1 (x)")
        ax.set_title(f"{size}")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle("Data-parallel speed-up against workers (error bars: the interval over"
                 f" rounds, {coverage.said(ok['rounds'])[len('an interval '):]})")
    return plots.save(fig, out, "scaling.png")


def _ratio(x) -> str:
    """1.75x, 0.12x; two significant digits below 0.1 (0.0028x, not 0.00x)."""
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.2g}x"
