"""python -m harness stability [--profile default] [bench options]  -- is this machine quiet enough?

    python -m harness stability --profile default --no-check

Runs the same benchmark twice, back to back (an A/A test: nothing changed between
the runs), stores both as ordinary run folders, and prints for every cell how far its
step time and its speed-up over the run's baseline (hand-written NumPy unless the profile names
another series) moved from A to B, then the project's targets for a pair (issue 18), each
with its figure: speed-ups within +-10% for 90% of cells, the worst within 25%; interval
half-widths at most 10% of the speed-up for 80% of cells in each run; no contradiction (a
cell clearly faster than the baseline in one run and clearly slower in the other); `compare`
of the pair flags nothing. Step times are shown too: they carry the whole machine's drift
between the runs, which the paired speed-ups do not. Exit 0 when compare flags no cell, 1
when it flags any: a benchmark on this machine, now, would cry wolf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness import options
from harness.bench import command as bench
from harness.errors import UsageError
from harness.report.compare import compare_runs
from harness.report.tables import BASELINE, baseline, baseline_name
from harness.report.weather import machine_moved
from harness.store import CellKey, RunFolder

WITHIN, WORST, WITHIN_SHARE = 0.10, 0.25, 0.90  # speed-ups between the two runs
WIDTH, WIDTH_SHARE = 0.10, 0.80  # half-width of a speed-up's interval, in each run


def add_arguments(parser) -> None:
    bench.add_arguments(parser)
    parser.add_argument("--min-effect", type=float, default=0.10,
                        help="compare's minimum effect for the A/A verdicts (default 0.10)")


def _float(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _drift(a, b) -> float | None:
    x, y = _float(a), _float(b)
    return y / x - 1 if x and y is not None and x > 0 else None


def half_width(row) -> float | None:
    """Half the speed-up interval's width, relative to the speed-up."""
    s, lo, hi = (_float(row.get(k)) for k in ("speedup", "speedup_low", "speedup_high"))
    return (hi - lo) / 2 / s if s and lo is not None and hi is not None and s > 0 else None


def side(row) -> int:
    """+1 clearly faster than the baseline, -1 clearly slower, 0 its interval holds 1."""
    lo, hi = _float(row.get("speedup_low")), _float(row.get("speedup_high"))
    return 1 if lo is not None and lo > 1 else -1 if hi is not None and hi < 1 else 0


@dataclass
class Figures:
    cells: list[str]  # the compared cells (both ok, not the baseline's own)
    speedups: list[float]  # drift of each speed-up, B/A - 1
    steps: list[float]  # drift of each step time (every ok cell, the baseline's too)
    widths: tuple[list[float], list[float]]  # half-widths in A, in B
    contradictions: list[str]
    flags: list[str]  # compare's flagged cells, with the verdict

    def within(self) -> int:
        return sum(abs(d) <= WITHIN for d in self.speedups)

    def worst(self) -> float:
        return max((abs(d) for d in self.speedups), default=0.0)

    def narrow(self, run: int) -> int:
        return sum(w <= WIDTH for w in self.widths[run])

    def targets(self) -> list[tuple[str, str, bool]]:
        """(target, figure, met) for each of issue 18's targets."""
        n = len(self.speedups)
        out = [(f"speed-ups within +-{WITHIN:.0%} for {WITHIN_SHARE:.0%} of cells",
                f"{self.within()} of {n}", n > 0 and self.within() >= WITHIN_SHARE * n),
               (f"worst speed-up within {WORST:.0%}", f"{self.worst():.1%}",
                n > 0 and self.worst() <= WORST)]
        for i, name in enumerate("AB"):
            m = len(self.widths[i])
            out.append((f"{name}: half-width <= {WIDTH:.0%} of the speed-up for"
                        f" {WIDTH_SHARE:.0%} of cells", f"{self.narrow(i)} of {m}",
                        m > 0 and self.narrow(i) >= WIDTH_SHARE * m))
        out.append(("no contradiction", str(len(self.contradictions)) +
                    (f" ({', '.join(self.contradictions)})" if self.contradictions else ""),
                    not self.contradictions))
        out.append(("compare flags nothing", str(len(self.flags)), not self.flags))
        return out


def figures(a: RunFolder, b: RunFolder, min_effect: float = 0.10) -> Figures:
    rows_b = {CellKey.of(r): r for r in b.cells}
    base = baseline(a.meta)
    f = Figures([], [], [], ([], []), [], [])
    for row in a.cells:
        other = rows_b.get(CellKey.of(row))
        if row["status"] != "ok" or other is None or other["status"] != "ok":
            continue
        if (step := _drift(row["step_median_s"], other["step_median_s"])) is not None:
            f.steps.append(step)
        if (row["impl"], row["mode"], row["device"]) == base:
            continue  # its speed-up is 1 by definition
        speedup = _drift(row.get("speedup"), other.get("speedup"))
        if speedup is None:
            continue
        name = " ".join(CellKey.of(row))
        f.cells.append(name)
        f.speedups.append(speedup)
        for i, r in enumerate((row, other)):
            if (w := half_width(r)) is not None:
                f.widths[i].append(w)
        if side(row) * side(other) < 0:
            f.contradictions.append(name)
    f.flags = [f"{' '.join(c.key)}: {c.verdict}" for c in compare_runs(a, b, min_effect)
               if c.verdict in ("slower", "faster", "broken", "lost")]
    return f


def _share(drifts: list[float], within: float) -> str:
    if not drifts:
        return "no cells"
    inside = sum(abs(d) <= within for d in drifts)
    worst = max(abs(d) for d in drifts)
    return (f"{inside} of {len(drifts)} within +-{within:.0%} ({inside / len(drifts):.0%}),"
            f" worst {worst:.1%}")


def main(args) -> int:
    for flag, given in (("--resume", args.resume), ("--commits", getattr(args, "commits", None)),
                        ("--against", getattr(args, "against", None))):
        if given:
            raise UsageError(f"stability runs two new benchmarks; {flag} does not apply")
    options.non_negative("--min-effect", args.min_effect)
    bench._validate(args)  # every option before run A starts
    folders = []
    for name in ("A", "B"):
        print(f"---- run {name} ----")
        folders.append(bench.run(args))
    a, b = (RunFolder.open(f.path) for f in folders)
    print(f"\nA/A stability: A = {a.path}\n               B = {b.path}")
    rows_b = {CellKey.of(r): r for r in b.cells}
    base = baseline(a.meta)
    print(f"{'cell':<44} {'step A->B':>10} {'speed-up A->B':>15} {'+-A':>7} {'+-B':>7}")
    for row in a.cells:
        other = rows_b.get(CellKey.of(row))
        if row["status"] != "ok" or other is None or other["status"] != "ok":
            continue
        step = _drift(row["step_median_s"], other["step_median_s"])
        own = (row["impl"], row["mode"], row["device"]) == base
        speedup = None if own else _drift(row.get("speedup"), other.get("speedup"))
        widths = ["-" if own or (w := half_width(r)) is None else f"{w:.1%}"
                  for r in (row, other)]
        print(f"{' '.join(CellKey.of(row)):<44} {'-' if step is None else f'{step:+.1%}':>10}"
              f" {'-' if speedup is None else f'{speedup:+.1%}':>15} {widths[0]:>7}"
              f" {widths[1]:>7}")
    f = figures(a, b, args.min_effect)
    over = "NumPy" if base == BASELINE else baseline_name(a.meta)
    print(f"\nspeed-up over {over}: {_share(f.speedups, WITHIN)}")
    print(f"step time:           {_share(f.steps, WITHIN)} (the machine's drift between the"
          " runs included)")
    for line in machine_moved(a.meta, b.meta):
        print(f"note: {line}")
    for flag in f.flags:
        print(f"  compare flagged {flag}")
    print("\ntargets (issue 18: `default` on the project's 2-core machine):")
    for target, figure, met in f.targets():
        print(f"  {'met    ' if met else 'NOT MET'}  {target}: {figure}")
    return 1 if f.flags else 0
