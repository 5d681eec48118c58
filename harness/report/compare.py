"""python -m harness compare RUN_A RUN_B [--min-effect 0.10] [--alpha 0.01]  -- per-cell change.

    python -m harness compare results/20250101-120000-default results/20250102-090000-default

For every cell in both runs: the ratio of median step times B/A, and a
two-sided Mann-Whitney U test on the raw samples (samples.csv). A cell is
flagged only when the change is both statistically clear (p < alpha) and
larger than a minimum effect: a bare percentage threshold cries wolf on a
shared, noisy machine, and a bare p-value flags 1% changes nobody cares about.
With 5 samples a side the smallest possible p is 0.008, so cells with fewer
samples can never be flagged (the table says so). A cell that ran in A but
failed, hung or diverged in B is a regression too.

The limit: samples within one run share that run's machine state, so the test
cannot see run-to-run drift (a neighbour's load, a warmer CPU). Two runs of the
same code minutes apart on a shared 2-core VM differed by up to 40% in a few
cells, significantly; there, raise --min-effect. (Judging each cell relative to a
reference cell of the same run was tried and dropped: cells run one after another,
so it trades whole-run drift for the reference cell's own noise, and on two quick
runs here it raised 3 false alarms where absolute times raised none.)

Exit 0: no regression; 1: at least one cell slower or broken; 2: a path is not a run folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.measure import stats
from harness.store import CellKey, RunFolder

BROKEN = ("failed", "timeout", "diverged")


@dataclass(frozen=True)
class Change:
    key: CellKey
    median_a: float | None  # seconds per step
    median_b: float | None
    ratio: float | None  # median_b / median_a: > 1 is slower
    p: float | None  # Mann-Whitney U, two-sided, on the raw samples
    verdict: str  # slower | faster | same | broken | fixed | not compared
    note: str = ""

    @property
    def regression(self) -> bool:
        return self.verdict in ("slower", "broken")


def _samples(folder: RunFolder) -> dict[CellKey, list[float]]:
    out: dict[CellKey, list[float]] = {}
    for row in folder.samples:
        out.setdefault(CellKey.of(row), []).append(float(row["seconds_per_step"]))
    return out


def compare_runs(a: RunFolder, b: RunFolder, min_effect: float = 0.10,
                 alpha: float = 0.01) -> list[Change]:
    """One Change per cell present in either run, in A's order then B's extras."""
    cells_a = {CellKey.of(r): r for r in a.cells}
    cells_b = {CellKey.of(r): r for r in b.cells}
    samples_a, samples_b = _samples(a), _samples(b)
    changes = []
    for k in list(cells_a) + [k for k in cells_b if k not in cells_a]:
        ra, rb = cells_a.get(k), cells_b.get(k)
        if ra is None or rb is None:
            changes.append(Change(k, None, None, None, None, "not compared",
                                  f"only in {'B' if ra is None else 'A'}"))
            continue
        sa, sb = ra["status"], rb["status"]
        if sa == "ok" and sb in BROKEN:
            why = f"B: {sb} {rb.get('reason', '')}".strip()
            changes.append(Change(k, None, None, None, None, "broken", why))
            continue
        xa, xb = samples_a.get(k, []), samples_b.get(k, [])
        if sa != "ok" or sb != "ok" or not xa or not xb:
            verdict = "fixed" if sa in BROKEN and sb == "ok" else "not compared"
            changes.append(Change(k, None, None, None, None, verdict, f"A: {sa}, B: {sb}"))
            continue
        ma, mb = stats.median(xa), stats.median(xb)
        ratio = mb / ma if ma > 0 else math.inf
        p = stats.mann_whitney_p(xa, xb)
        note = ""
        if p < alpha and ratio > 1 + min_effect:
            verdict = "slower"
        elif p < alpha and ratio < 1 - min_effect:
            verdict = "faster"
        else:
            verdict = "same"
            if abs(ratio - 1) > min_effect:
                note = (f"too few samples to test ({len(xa)} vs {len(xb)})"
                        if min(len(xa), len(xb)) < 5 else f"not significant (p={p:.2g})")
        changes.append(Change(k, ma, mb, ratio, p, verdict, note))
    return changes


def render(changes: list[Change], min_effect: float, alpha: float) -> str:
    head = (*CellKey._fields, "A median", "B median", "B/A", "p", "verdict")
    rows = [(*c.key, stats.fmt_seconds(c.median_a), stats.fmt_seconds(c.median_b),
             "-" if c.ratio is None else f"{c.ratio:.3f}", "-" if c.p is None else f"{c.p:.2g}",
             c.verdict + (f" ({c.note})" if c.note else "")) for c in changes]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip()
             for r in (head, *rows)]
    n_reg = sum(c.regression for c in changes)
    lines.append(f"\n{n_reg} regression(s); a change needs p < {alpha:g} (Mann-Whitney U) and "
                 f"an effect above {min_effect:.0%}")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="the baseline run folder")
    parser.add_argument("run_b", metavar="RUN_B", help="the run to judge against it")
    parser.add_argument("--min-effect", type=float, default=0.10,
                        help="smallest relative change worth flagging (default 0.10 = 10%%)")
    parser.add_argument("--alpha", type=float, default=0.01,
                        help="significance level of the Mann-Whitney U test (default 0.01)")


def main(args) -> int:
    if not args.min_effect >= 0 or not 0 < args.alpha < 1:
        raise UsageError("--min-effect must be >= 0 and --alpha in (0, 1)")
    try:
        a, b = RunFolder.open(Path(args.run_a)), RunFolder.open(Path(args.run_b))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    changes = compare_runs(a, b, args.min_effect, args.alpha)
    print(render(changes, args.min_effect, args.alpha))
    return 1 if any(c.regression for c in changes) else 0
