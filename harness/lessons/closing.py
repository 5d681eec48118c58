"""The notebook's closing section: facts computed from a run's files and the code's own source,
then said in words (English here, Chinese in harness/lessons/closing_zh.py, from the same facts).

    from harness.lessons.closing import facts, closing
    f = facts(table, tta, costs, cell_lines)     # table: notebook.speedup_table(cells.csv)
    print(closing(f))                            # markdown

One rule for "faster" and "slower", the report's (harness/report/tables.py `verdict`): only
where the 95% interval of the paired speed-up lies wholly above or below 1. Per-step speed is
steady state (compilation excluded); time to accuracy is wall clock from the first step,
compilation included, one run each (no interval: so it names who took least, never "faster").
Each sentence is built from these facts only, so no two sentences can disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness.report.tables import verdict, words

FRAMEWORKS = ("torch", "jax", "cupy")  # autograd; numpy is by hand, sklearn the peer row


@dataclass(frozen=True)
class Versus:
    """One framework series at one size against hand-written NumPy."""

    label: str
    size: str
    speedup: float  # NumPy's step time over the series' (paired by round; median)
    low: float  # its 95% interval
    high: float
    verdict: str  # faster / slower / no clear difference (the report's rule)

    def shown(self) -> str:
        if self.verdict == "slower":  # said as NumPy's advantage, with the inverted interval
            return f"NumPy {1 / self.speedup:.3g}x as fast [{1 / self.high:.3g}, {1 / self.low:.3g}]"
        return f"{self.speedup:.3g}x [{self.low:.3g}, {self.high:.3g}]"


@dataclass(frozen=True)
class Repay:
    """A series' first call (compilation) against its per-step gain, at the smallest size
    where it is clearly faster per step."""

    label: str
    size: str
    first_call_s: float
    numpy_first_call_s: float
    step_s: float
    numpy_step_s: float

    @property
    def steps(self) -> float:
        """Steps after which the series' total time drops below NumPy's (step medians)."""
        extra = self.first_call_s - self.numpy_first_call_s
        return max(extra, 0.0) / (self.numpy_step_s - self.step_s)


@dataclass(frozen=True)
class Reached:
    """Time to accuracy on one data set: (label, seconds) of the series that reached it,
    least first; numpy and the frameworks only."""

    dataset: str
    target: float
    epochs: str  # "10" when all needed the same number, else ""
    times: tuple[tuple[str, float], ...]
    missed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    sizes: tuple[str, ...] = ()  # the run's sizes, least work first
    size_words: dict = field(default_factory=dict)  # size -> "tiny (N=64, F=2, H=8, K=1)"
    versus: tuple[Versus, ...] = ()  # every framework series at every size it ran
    numpy_fastest_at: tuple[str, ...] = ()  # sizes where NumPy is clearly faster than all
    faster_from: dict = field(default_factory=dict)  # label -> first size of a clear run to the end
    repay: tuple[Repay, ...] = ()
    reached: tuple[Reached, ...] = ()
    costs: dict = field(default_factory=dict)  # file -> (lines added, derivatives among them)
    longer: dict = field(default_factory=dict)  # impl -> {"math": n, "plumbing": n}
    cell_lines: dict = field(default_factory=dict)  # "by hand"/"torch"/"jax" -> lines in a cell

    @property
    def by_hand_first(self) -> bool:
        """Hand-written NumPy took least time to accuracy on every data set of the run."""
        return bool(self.reached) and all(r.times[0][0].startswith("numpy") for r in self.reached)

    @property
    def hand_derivatives(self) -> int:
        """Derivatives written by hand that the activation option added."""
        return sum(d for k, (_, d) in self.costs.items() if "handwritten" in k)


def _size_words(rows: pd.DataFrame) -> str:
    r = rows.iloc[0]
    return f"{r['size']} (N={r['n_samples']}, F={r['n_features']}, H={r['n_hidden']}, K={r['n_outputs']})"


def speed_facts(table: pd.DataFrame | None) -> dict:
    """The per-step facts from notebook.speedup_table's table (None: no run)."""
    if table is None or table.empty:
        return {}
    frame = table[table["impl"].isin(FRAMEWORKS)]
    sizes = tuple(table.sort_values("size_rank")["size"].drop_duplicates())
    versus = tuple(Versus(r["label"], r["size"], r["speedup"], r["speedup_low"], r["speedup_high"],
                          verdict(r["speedup_low"], r["speedup_high"]))
                   for _, r in frame.sort_values(["label", "size_rank"]).iterrows())
    fastest = tuple(s for s in sizes if (g := [v for v in versus if v.size == s])
                    and all(v.verdict == "slower" for v in g))
    faster_from, repay = {}, []
    for label in dict.fromkeys(v.label for v in versus):
        mine = [v for v in versus if v.label == label]
        if mine[-1].size == sizes[-1]:  # ran at the largest size: a run of clear wins to it?
            run = [v.verdict == "faster" for v in mine]
            first = next((i for i in range(len(run)) if all(run[i:])), None)
            if first is not None:
                faster_from[label] = mine[first].size
        if win := next((v for v in mine if v.verdict == "faster"), None):
            at = table[table["size"] == win.size]
            me, base = at[at["label"] == label].iloc[0], at[at["impl"] == "numpy"]
            if not base.empty and "first_call_s" in at and pd.notna(me["first_call_s"]):
                b = base.iloc[0]
                if me["first_call_s"] <= b["first_call_s"]:
                    continue  # a first call no dearer than NumPy's: nothing to repay
                repay.append(Repay(label, win.size, me["first_call_s"], b["first_call_s"],
                                   me["step_median_s"], b["step_median_s"]))
    return {"sizes": sizes, "versus": versus, "numpy_fastest_at": fastest,
            "faster_from": faster_from, "repay": tuple(repay),
            "size_words": {s: _size_words(table[table["size"] == s]) for s in sizes}}


def reached_facts(tta: pd.DataFrame | None) -> tuple[Reached, ...]:
    """Time to accuracy from tta.csv: hand-written NumPy and the frameworks, compile included."""
    if tta is None or tta.empty or not {"impl", "mode", "dataset", "seconds"} <= set(tta):
        return ()
    t = tta[tta["impl"].isin(("numpy",) + FRAMEWORKS)]
    ok = t["reached"].astype(str).str.lower().isin(["true", "1"])
    if "status" in t:
        ok &= t["status"] == "ok"
    out = []
    for dataset, g in t.groupby("dataset", sort=True):
        done = g[ok[g.index]].sort_values("seconds")
        if done.empty:
            continue
        labels = done["impl"] + " " + done["mode"]
        same = "epochs" in done and done["epochs"].nunique() == 1
        out.append(Reached(dataset, float(g["target"].iloc[0]),
                           f"{done['epochs'].iloc[0]:.0f}" if same else "",
                           tuple(zip(labels, done["seconds"].astype(float), strict=True)),
                           tuple(g[~ok[g.index]]["impl"] + " " + g[~ok[g.index]]["mode"])))
    return tuple(out)


def facts(table, tta, costs: dict, longer: dict, cell_lines: dict) -> Facts:
    """costs: {file: harness.lessons.cost.Cost}; longer: cost.why_longer(); cell_lines:
    {"by hand": n, "torch": n, "jax": n} (the notebook's own cells, counted)."""
    return Facts(**speed_facts(table), reached=reached_facts(tta),
                 costs={f: (len(c.added), len(c.added_derivative)) for f, c in costs.items()},
                 longer=longer, cell_lines=cell_lines)


# ---- in words ------------------------------------------------------------------------------
NAME = "hand-written NumPy"


def _per_series(f: Facts) -> list[str]:
    out = []
    for label in dict.fromkeys(v.label for v in f.versus):
        parts = []
        for kind, said in (("faster", "faster"), ("slower", "slower"),
                           ("no clear difference", "no clear difference")):
            vs = [v for v in f.versus if v.label == label and v.verdict == kind]
            if vs:
                parts.append(f"{said} at " + words(f"{v.size} ({v.shown()})" for v in vs))
        out.append(f"{label}: " + "; ".join(parts))
    return out


def speed_text(f: Facts) -> str:
    if not f.versus:
        return "No run with framework series was loaded, so this section makes no claim about speed."
    rule = (f"**Per step** (steady state, compilation excluded), against {NAME}; a series is"
            " faster or slower only where the 95% interval of its paired speed-up lies wholly"
            " above or below 1, the report's rule. " + ". ".join(_per_series(f)) + ".")
    said = []
    if f.numpy_fastest_at:
        said.append(f"{NAME} is clearly faster than every framework mode measured at "
                    + words(f.size_words[s] for s in f.numpy_fastest_at))
    for label, size in f.faster_from.items():
        said.append(f"{label} is clearly faster from size {size} up to the largest size measured")
    if not said:
        said.append(f"at no size is {NAME} clearly faster than every framework mode, and no"
                    " framework mode is clearly faster at every size from some size up to the"
                    " largest: per step, the answer depends on the size and the mode, not on"
                    " writing backprop by hand or by autograd")
    said = "In short, " + "; ".join(said) + "."
    repay = [f"{r.label} is faster per step at {r.size}, but its first call (compilation"
             f" included) took {r.first_call_s:.3g} s against NumPy's {r.numpy_first_call_s:.3g} s;"
             f" at step medians of {r.step_s * 1e6:.3g} us against {r.numpy_step_s * 1e6:.3g} us"
             f" that is repaid after about {about(r.steps)} steps" for r in f.repay]
    return " ".join([rule, said] + ([". ".join(repay) + "."] if repay else []))


def about(steps: float) -> str:
    """Two significant digits, with thousands separators: 28206 -> '28,000'."""
    return f"{float(f'{steps:.2g}'):,.0f}"


def _who(label: str) -> str:
    return NAME if label.startswith("numpy") else label


def reached_text(f: Facts) -> str:
    if not f.reached:
        return "The run has no time-to-accuracy file, so nothing is said about it."
    out = []
    for r in f.reached:
        (first, t0), rest = r.times[0], r.times[1:]
        line = (f"on {r.dataset} (target accuracy {r.target:g}"
                + (f", {r.epochs} epochs for each" if r.epochs else "") + f"), {_who(first)}"
                f" took least, {t0:.3g} s" + ("".join(f"; {_who(lab)} {t:.3g} s ({t / t0:.3g}x as"
                                                       " long)" for lab, t in rest)))
        if r.missed:
            line += f"; {words(r.missed)} did not reach it"
        out.append(line)
    return ("**Time to accuracy** (wall clock from the first step, compilation included: what a"
            " user waits for; one run each, so no interval): " + "; ".join(out) + ".")


def cost_text(f: Facts) -> str:
    hand = {k: v for k, v in f.costs.items() if "handwritten" in k}
    auto = {k: v for k, v in f.costs.items() if "handwritten" not in k}
    said = [f"{n} lines to {k}, {d} of them derivatives written by hand" for k, (n, d) in hand.items()]
    said += [f"{n} lines to {k}, " + (f"{d} of them derivatives" if d else "no derivative")
             for k, (n, d) in auto.items()]
    text = ("**The cost of change.** Adding tanh and relu to a network that had sigmoid (sigmoid's"
            " own branches, there before the option, are not counted) added " + "; ".join(said) + ".")
    if f.longer:
        text += (" The framework files are longer for another reason, plumbing: "
                 + "; ".join(f"{_who(k) if k == 'numpy' else k} has {v['math']} lines of"
                             f" mathematics and {v['plumbing']} of plumbing"
                             for k, v in f.longer.items())
                 + " (harness/lessons/cost.py's rule: mathematics is the forward pass, the loss,"
                   " the gradients and the update; plumbing is availability, devices, compile"
                   " modes, a training session, threads and run information).")
    if f.cell_lines:
        text += (" In this notebook's cells the network with its gradients takes "
                 + words(f"{n} lines {k}" for k, n in f.cell_lines.items()) + ".")
    return text


def verdicts(f: Facts, diagnosis: str = "") -> str:
    """For and against writing backprop by hand, each reason one of the facts above."""
    for_hand, against = [], []
    if f.numpy_fastest_at:
        for_hand.append("small networks trained step by step on a CPU (sizes "
                        + words(f.numpy_fastest_at) + ")")
    if f.by_hand_first:
        for_hand.append("short training runs here: counting compilation, it reached the target"
                        " first on " + words(r.dataset for r in f.reached))
    if diagnosis:
        for_hand.append("learning what autograd does: you derive each line, and a gradient"
                        f" checker tells you what you got wrong (here: \"{diagnosis}\")")
    against += [f"long runs from size {s} on, where {label} is clearly faster per step"
                for label, s in f.faster_from.items()]
    if f.hand_derivatives:
        against.append(f"anything you will change: each new activation is a derivative to derive,"
                       f" write and keep right ({f.hand_derivatives} such lines here), where autograd"
                       " derives it")
    parts = []
    if for_hand:
        parts.append(f"**Hand-written backprop is the right tool for** {'; '.join(for_hand)}.")
    if against:
        parts.append(f"**It is not the right tool for** {'; '.join(against)}.")
    return "\n\n".join(parts)


def closing(f: Facts, diagnosis: str = "") -> str:
    return "\n\n".join([speed_text(f), reached_text(f), cost_text(f), verdicts(f, diagnosis)])
