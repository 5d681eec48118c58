"""python -m harness stability [--profile default] [bench options]  -- is this machine quiet enough?

    python -m harness stability --profile default --no-check

Runs the same benchmark twice, back to back (an A/A test: nothing changed between
the runs), stores both as ordinary run folders, and prints for every cell how far its
step time and its speed-up over the run's baseline (hand-written NumPy unless the profile names
another series) moved from A to B, then what
`compare` says of the pair. On a machine quiet enough to trust, speed-ups (ratios
measured inside one run, paired by round) hold within a few percent and compare
flags nothing; step times drift more, since they also carry the whole machine's
drift between the runs. Exit 0 when compare flags no cell, 1 when it flags any: a
benchmark on this machine, now, would cry wolf.
"""

from __future__ import annotations

import math

from harness import options
from harness.bench import command as bench
from harness.errors import UsageError
from harness.report.compare import compare_runs
from harness.report.tables import BASELINE, baseline, baseline_name
from harness.store import CellKey, RunFolder

TARGETS = ("targets (the project's, for `default` on its 2-core machine): speed-ups within"
           " +-10% for 90% of cells, worst within 25%; step times within +-10% for 80%;"
           " compare flags nothing")


def add_arguments(parser) -> None:
    bench.add_arguments(parser)
    parser.add_argument("--min-effect", type=float, default=0.10,
                        help="compare's minimum effect for the A/A verdicts (default 0.10)")


def _drift(a: str, b: str) -> float | None:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return None
    return y / x - 1 if x > 0 and math.isfinite(y / x) else None


def _share(drifts: list[float], within: float) -> str:
    if not drifts:
        return "no cells"
    inside = sum(abs(d) <= within for d in drifts)
    worst = max(abs(d) for d in drifts)
    return f"{inside} of {len(drifts)} within +-{within:.0%} ({inside / len(drifts):.0%}), worst {worst:.1%}"


def main(args) -> int:
    for flag, given in (("--resume", args.resume), ("--commits", getattr(args, "commits", None))):
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
    steps, speedups = [], []
    print(f"{'cell':<44} {'step A->B':>10} {'speed-up A->B':>15}")
    for row in a.cells:
        other = rows_b.get(CellKey.of(row))
        if row["status"] != "ok" or other is None or other["status"] != "ok":
            continue
        step = _drift(row["step_median_s"], other["step_median_s"])
        speedup = _drift(row.get("speedup"), other.get("speedup"))
        if step is not None:
            steps.append(step)
        own = (row["impl"], row["mode"], row["device"]) == base  # its speed-up is 1 by definition
        if speedup is not None and not own:
            speedups.append(speedup)
        label = " ".join(CellKey.of(row))
        print(f"{label:<44} {'-' if step is None else f'{step:+.1%}':>10}"
              f" {'-' if speedup is None or own else f'{speedup:+.1%}':>15}")
    changes = compare_runs(a, b, args.min_effect)
    flagged = [c for c in changes if c.verdict in ("slower", "faster", "broken", "lost")]
    over = "NumPy" if base == BASELINE else baseline_name(a.meta)
    print(f"\nspeed-up over {over}: {_share(speedups, 0.10)}")
    print(f"step time:           {_share(steps, 0.10)}")
    print(f"compare A B: {sum(c.verdict == 'slower' for c in changes)} slower,"
          f" {sum(c.verdict == 'faster' for c in changes)} faster,"
          f" {sum(c.verdict in ('broken', 'lost') for c in changes)} broken or lost"
          f" (minimum effect {args.min_effect:.0%})")
    for c in flagged:
        print(f"  flagged: {' '.join(c.key)}: {c.verdict} {c.note}".rstrip())
    print(TARGETS)
    return 1 if flagged else 0
