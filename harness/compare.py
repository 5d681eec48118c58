"""python -m harness compare RUN_A RUN_B [--min-effect 0.10] [--alpha 0.01]  -- per-cell change.

    python -m harness compare results/20250101-120000-default results/20250102-090000-default
    python -m harness compare RUN_A RUN_B --relative-to numpy/default   # drift-proof ratios

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
cells, significantly; there, raise --min-effect or compare ratios within a run:
`--relative-to IMPL/MODE` divides every sample by the median of that reference
cell (same device, dtype and size) *in the same run*, so a slowdown of the whole
machine cancels and what is compared is each cell's speed relative to the
reference. The reference's own cells are then not compared, and a cell with no
reference at its size is not compared either (the table says why).

Exit 0: no regression; 1: at least one cell slower or broken; 2: a path is not a run folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness import stats
from harness.cli import UsageError
from harness.storage import CELL_KEY, Run, key

BROKEN = ("failed", "timeout", "diverged")


@dataclass(frozen=True)
class Change:
    key: tuple[str, ...]  # (impl, mode, device, dtype, size)
    median_a: float | None  # seconds per step
    median_b: float | None
    ratio: float | None  # median_b / median_a: > 1 is slower
    p: float | None  # Mann-Whitney U, two-sided, on the raw samples
    verdict: str  # slower | faster | same | broken | fixed | not compared
    note: str = ""

    @property
    def regression(self) -> bool:
        return self.verdict in ("slower", "broken")


def _samples(run: Run) -> dict[tuple[str, ...], list[float]]:
    out: dict[tuple[str, ...], list[float]] = {}
    for row in run.samples:
        out.setdefault(key(row), []).append(float(row["seconds_per_step"]))
    return out


def _relative(samples: dict, ref: tuple[str, str]) -> dict:
    """Every cell's samples divided by the median of the reference cell at the same
    (device, dtype, size) in the same run; cells with no such reference are dropped."""
    medians = {k[2:]: stats.median(v) for k, v in samples.items() if k[:2] == ref and v}
    return {k: [x / medians[k[2:]] for x in v] for k, v in samples.items()
            if medians.get(k[2:], 0) > 0}


def compare_runs(a: Run, b: Run, min_effect: float = 0.10, alpha: float = 0.01,
                 relative_to: tuple[str, str] | None = None) -> list[Change]:
    """One Change per cell present in either run, in A's order then B's extras.

    With `relative_to` = (impl, mode), samples are ratios to that reference (see the
    module docstring) and the medians in each Change are those ratios, not seconds.
    """
    cells_a, cells_b = {key(r): r for r in a.cells}, {key(r): r for r in b.cells}
    samples_a, samples_b = _samples(a), _samples(b)
    if relative_to is not None:
        samples_a, samples_b = _relative(samples_a, relative_to), _relative(samples_b, relative_to)
    changes = []
    for k in list(cells_a) + [k for k in cells_b if k not in cells_a]:
        ra, rb = cells_a.get(k), cells_b.get(k)
        if ra is None or rb is None:
            changes.append(Change(k, None, None, None, None, "not compared",
                                  f"only in {'B' if ra is None else 'A'}"))
            continue
        if relative_to is not None and k[:2] == relative_to:
            changes.append(Change(k, None, None, None, None, "not compared", "the reference"))
            continue
        sa, sb = ra["status"], rb["status"]
        if sa == "ok" and sb in BROKEN:
            why = f"B: {sb} {rb.get('reason', '')}".strip()
            changes.append(Change(k, None, None, None, None, "broken", why))
            continue
        xa, xb = samples_a.get(k, []), samples_b.get(k, [])
        if relative_to is not None and sa == sb == "ok" and not (xa and xb):
            changes.append(Change(k, None, None, None, None, "not compared",
                                  f"no {'/'.join(relative_to)} cell at this size in both runs"))
            continue
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


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x / 1e-9:.3g} ns"


def render(changes: list[Change], min_effect: float, alpha: float,
           relative_to: tuple[str, str] | None = None) -> str:
    if relative_to is None:
        head, fmt = (*CELL_KEY, "A median", "B median", "B/A", "p", "verdict"), _fmt_s
    else:
        ref = "/".join(relative_to)
        head = (*CELL_KEY, f"A (x {ref})", f"B (x {ref})", "B/A", "p", "verdict")
        fmt = lambda x: "-" if x is None else f"{x:.3g}x"  # noqa: E731
    rows = [(*c.key, fmt(c.median_a), fmt(c.median_b),
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
    parser.add_argument("--relative-to", metavar="IMPL/MODE",
                        help="compare each cell's time relative to this reference cell of the "
                             "same run and size (e.g. numpy/default): cancels machine drift")


def run(args) -> int:
    if not args.min_effect >= 0 or not 0 < args.alpha < 1:
        raise UsageError("--min-effect must be >= 0 and --alpha in (0, 1)")
    try:
        a, b = Run.load(Path(args.run_a)), Run.load(Path(args.run_b))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ref = None
    if args.relative_to:
        impl, sep, mode = args.relative_to.partition("/")
        if not (sep and impl and mode):
            raise UsageError(f"--relative-to {args.relative_to!r}: expected IMPL/MODE, "
                             "e.g. numpy/default")
        ref = (impl, mode)
        if not any(key(r)[:2] == ref for r in a.cells):
            raise UsageError(f"--relative-to {args.relative_to}: RUN_A has no such cells")
    changes = compare_runs(a, b, args.min_effect, args.alpha, ref)
    print(render(changes, args.min_effect, args.alpha, ref))
    return 1 if any(c.regression for c in changes) else 0
