"""python -m harness compare RUN_A RUN_B [--min-effect 0.10] [--confidence 0.99]  -- per-cell change.

    python -m harness compare results/20250101-120000-default results/20250102-090000-default
    python -m harness compare A B --format markdown   # a table for a pull request (docs/ci.md)

For every cell in both runs: B/A, the ratio of step times, estimated from the
rounds (each round's value is the median of that round's samples; the steps inside
one block are autocorrelated and never count as evidence). The estimate is the
Hodges-Lehmann ratio with the Moses distribution-free interval that goes with the
Mann-Whitney test (harness/measure/stats.py: shift_interval). A cell is "slower"
only when the WHOLE interval lies above 1 + min_effect, and "faster" only when it
lies wholly below 1 / (1 + min_effect): a change must be both clear and large enough.
Rounds of one run share that run's machine state, so their interval cannot see
run-to-run drift; `python -m harness stability` measures that drift on a machine,
and --min-effect should sit above it (the README gives this machine's figures).

A cell that ran in A but failed, hung, diverged, went missing or has no samples in B
is a regression too. Before anything else, compare says when the two runs come from
different machines, thread budgets or library versions, and when they started far apart in
time (FAR_APART_S: the machine itself may have moved in between).
Exit 0: no regression; 1: a cell slower, broken or lost; 2: a bad option, or a path that is
not a readable run folder of cells (a scaling run, one a bench is still writing, one that
holds a value no bench wrote).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness import options
from harness.errors import UsageError
from harness.measure import stats
from harness.report import state
from harness.report.tables import dig
from harness.report.weather import machine_moved
from harness.store import CellKey, RunFolder, read_json

FAR_APART_S = 3600.0  # runs started further apart than this: said (the machine may have moved)

BROKEN = ("failed", "timeout", "diverged")


@dataclass(frozen=True)
class Change:
    key: CellKey
    median_a: float | None  # seconds per step: the median of A's round values
    median_b: float | None
    ratio: stats.Interval | None  # B/A with its interval: > 1 is slower
    verdict: str  # slower | faster | same | broken | lost | fixed | not compared
    note: str = ""

    @property
    def regression(self) -> bool:
        return self.verdict in ("slower", "broken", "lost")


def round_values(folder: RunFolder) -> dict[CellKey, list[float]]:
    """{cell: [its value in each round]}, each the median of the round's samples."""
    by: dict = {}
    for row in folder.samples:
        by.setdefault(CellKey.of(row), {}).setdefault(row["round"], []).append(
            float(row["seconds_per_step"]))
    return {k: [stats.median(v) for v in rounds.values()] for k, rounds in by.items()}


def compare_runs(a: RunFolder, b: RunFolder, min_effect: float = 0.10,
                 confidence: float = 0.99) -> list[Change]:
    """One Change per cell present in either run, in A's order then B's extras."""
    cells_a = {CellKey.of(r): r for r in a.cells}
    cells_b = {CellKey.of(r): r for r in b.cells}
    rounds_a, rounds_b = round_values(a), round_values(b)
    changes = []
    for k in list(cells_a) + [k for k in cells_b if k not in cells_a]:
        ra, rb = cells_a.get(k), cells_b.get(k)
        sa, sb = (ra or {}).get("status"), (rb or {}).get("status")
        if rb is None:
            verdict = "lost" if sa == "ok" else "not compared"
            changes.append(Change(k, None, None, None, verdict, "only in A"))
            continue
        if ra is None:
            changes.append(Change(k, None, None, None, "not compared", "only in B"))
            continue
        if sa == "ok" and sb != "ok":
            why = f"B: {sb} {rb.get('reason', '')}".strip()
            changes.append(Change(k, None, None, None, "broken" if sb in BROKEN else "lost",
                                  why))
            continue
        xa, xb = rounds_a.get(k, []), rounds_b.get(k, [])
        if sa == "ok" and not xb:
            changes.append(Change(k, None, None, None, "lost", "B has no samples of it"))
            continue
        if sa != "ok" or not xa:
            verdict = "fixed" if sa in BROKEN and sb == "ok" else "not compared"
            changes.append(Change(k, None, None, None, verdict, f"A: {sa}, B: {sb}"))
            continue
        ratio = stats.shift_interval(xa, xb, confidence)
        if ratio.confidence < confidence:
            verdict, note = "same", f"too few rounds for a {confidence:.0%} interval"
        elif ratio.low > 1 + min_effect:
            verdict, note = "slower", ""
        elif ratio.high < 1 / (1 + min_effect):
            verdict, note = "faster", ""
        else:
            verdict = "same"
            note = "" if ratio.contains(1) else "a clear change, but under the minimum"
        changes.append(Change(k, stats.median(xa), stats.median(xb), ratio, verdict, note))
    return changes


def differences(a: RunFolder, b: RunFolder) -> list[str]:
    """What differs between the two runs' machines, thread budgets and library versions."""
    said = []
    for what, path in (("CPU", "machine.cpu_model"), ("host", "machine.host"),
                       ("GPUs", "machine.gpus"), ("Python", "machine.python"),
                       ("usable CPUs", "machine.cpus.usable"), ("threads", "thread_budget.threads"),
                       ("pinned CPUs", "thread_budget.cpus"),
                       ("OPENBLAS_CORETYPE", "machine.OPENBLAS_CORETYPE")):
        va, vb = dig(a.meta, path), dig(b.meta, path)
        if va != vb:
            said.append(f"{what}: {va!r} in A, {vb!r} in B")
    libs_a, libs_b = dig(a.meta, "machine.versions", default={}), dig(b.meta, "machine.versions",
                                                                      default={})
    for lib in sorted(set(libs_a) | set(libs_b)):
        if libs_a.get(lib) != libs_b.get(lib):
            said.append(f"{lib}: {libs_a.get(lib)} in A, {libs_b.get(lib)} in B")
    return said


def _started(meta: dict) -> datetime | None:
    """When the run started (UTC), as its meta.json says; None when it does not say."""
    runs = meta.get("runs") if isinstance(meta.get("runs"), list) else []
    for text in (dig(meta, "machine.utc"), runs[0].get("started_utc") if runs and isinstance(
            runs[0], dict) else None):
        try:
            return datetime.fromisoformat(str(text))
        except (TypeError, ValueError):
            continue
    return None


def _span(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def apart(a: RunFolder, b: RunFolder) -> list[str]:
    """What else sets the two runs apart: their profiles, and a line when they started more
    than FAR_APART_S apart (none when a run does not say when it started)."""
    said = []
    pa, pb = dig(a.meta, "profile.name"), dig(b.meta, "profile.name")
    if pa != pb:
        said.append(f"profile: {pa!r} in A, {pb!r} in B (cells only one of them planned are"
                    " lost or not compared)")
    said += machine_moved(a.meta, b.meta)
    ta, tb = _started(a.meta), _started(b.meta)
    if ta is None or tb is None or ta.tzinfo is None or tb.tzinfo is None:
        return said
    gap = abs((tb - ta).total_seconds())
    if gap <= FAR_APART_S:
        return said
    return said + [f"started {_span(gap)} apart ({ta.isoformat()} and {tb.isoformat()}): the machine"
            " itself (its load, its software, its clocks) may have moved in between, and that"
            " moves every cell alike"]


def render(changes: list[Change], min_effect: float, confidence: float) -> str:
    head = (*CellKey._fields, "A median", "B median", "B/A", "interval", "verdict")
    rows = [(*c.key, stats.fmt_seconds(c.median_a), stats.fmt_seconds(c.median_b),
             "-" if c.ratio is None else f"{c.ratio.estimate:.3f}",
             "-" if c.ratio is None else f"[{c.ratio.low:.3f}, {c.ratio.high:.3f}]",
             c.verdict + (f" ({c.note})" if c.note else "")) for c in changes]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip()
             for r in (head, *rows)]
    counts = {v: sum(c.verdict == v for c in changes) for v in ("slower", "faster", "broken",
                                                                  "lost")}
    lines.append(f"\n{counts['slower']} slower, {counts['faster']} faster, {counts['broken']}"
                 f" broken, {counts['lost']} lost; a change needs its whole {confidence:.0%}"
                 f" interval beyond a {min_effect:.0%} effect")
    return "\n".join(lines)


def render_markdown(changes: list[Change], min_effect: float, confidence: float,
                    names: tuple[str, str], warnings: list[str]) -> str:
    """The comparison as GitHub markdown for a review comment: the verdict first, then the
    cells that changed or broke, the rest folded away."""
    def cell(v) -> str:
        return str(v).replace("|", "\\|")

    def row(c: Change) -> str:
        ratio = "-" if c.ratio is None else (f"{c.ratio.estimate:.3f} [{c.ratio.low:.3f},"
                                             f" {c.ratio.high:.3f}]")
        verdict = f"**{c.verdict}**" if c.regression or c.verdict in ("faster", "fixed") \
            else c.verdict
        return (f"| {cell(' '.join(c.key))} | {stats.fmt_seconds(c.median_a)} |"
                f" {stats.fmt_seconds(c.median_b)} | {ratio} | {verdict}"
                f"{f' ({cell(c.note)})' if c.note else ''} |")

    head = ["| cell | A median | B median | B/A [interval] | verdict |",
            "| --- | ---: | ---: | ---: | --- |"]
    bad = [c for c in changes if c.regression]
    moved = [c for c in changes if c.verdict in ("faster", "fixed")]
    rest = [c for c in changes if c not in bad and c not in moved]
    out = [f"### Benchmark comparison: `{names[0]}` (A) → `{names[1]}` (B)", ""]
    if bad:
        out.append(f"**{len(bad)} regression{'s' if len(bad) > 1 else ''}**"
                   f" ({sum(c.verdict == 'slower' for c in bad)} slower,"
                   f" {sum(c.verdict == 'broken' for c in bad)} broken,"
                   f" {sum(c.verdict == 'lost' for c in bad)} lost), {len(moved)} faster or fixed,"
                   f" {len(rest)} unchanged or not compared.")
    else:
        out.append(f"**No regression** in {len(changes)} cell{'s' if len(changes) != 1 else ''}"
                   f" ({len(moved)} faster or fixed).")
    out += ["", f"B/A is the ratio of step times (> 1: B is slower), from each run's rounds, with"
                f" its {confidence:.0%} interval; a change needs its whole interval beyond a"
                f" {min_effect:.0%} effect.", ""]
    if warnings:
        out += ["> **The runs differ**, so part of any change may be the machine's:"]
        out += [f"> - {cell(w)}" for w in warnings] + [""]
    if bad or moved:
        out += head + [row(c) for c in bad + moved] + [""]
    if rest:
        out += [f"<details><summary>{len(rest)} cell{'s' if len(rest) > 1 else ''} with no clear"
                " change, or not compared</summary>", "", *head, *[row(c) for c in rest], "",
                "</details>"]
    return "\n".join(out).rstrip() + "\n"


def add_arguments(parser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="the baseline run folder")
    parser.add_argument("run_b", metavar="RUN_B", help="the run to judge against it")
    parser.add_argument("--min-effect", type=float, default=0.10,
                        help="smallest relative change worth flagging (default 0.10 = 10%%)")
    parser.add_argument("--confidence", type=float, default=0.99,
                        help="confidence of the interval of B/A (default 0.99)")
    parser.add_argument("--format", choices=("text", "markdown"), default="text",
                        help="text (default) or markdown: a table for a pull request's comment")


def _what(path) -> str:
    """'a scaling run', 'a cells run (profile default)': what a run folder holds."""
    try:
        meta = read_json(Path(path), "meta.json")
    except (OSError, ValueError):
        meta = {}
    profile = dig(meta, "profile.name") if isinstance(meta, dict) else None
    return f"a {state.kind(path)} run" + (f" (profile {profile})" if profile else "")


def check_kinds(path_a, path_b) -> None:
    """Both must be cells runs: otherwise one line saying what each is (exit 2)."""
    kinds = [state.kind(p) if Path(p).is_dir() else None for p in (path_a, path_b)]
    if "scaling" in kinds:
        raise UsageError(f"{path_a} is {_what(path_a)} and {path_b} is {_what(path_b)}: compare"
                         " judges two runs of cells (profiles quick, default, full, gpu) cell by"
                         " cell; a scaling run has a report of its own (python -m harness"
                         " report RUN)")


def main(args) -> int:
    options.non_negative("--min-effect", args.min_effect)
    options.probability("--confidence", args.confidence)
    check_kinds(args.run_a, args.run_b)
    for path in (args.run_a, args.run_b):
        if Path(path).is_dir():
            state.refuse_if_written(path)
    try:
        a, b = RunFolder.open(Path(args.run_a)), RunFolder.open(Path(args.run_b))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    markdown = getattr(args, "format", "text") == "markdown"
    said = differences(a, b) + apart(a, b)
    for line in [] if markdown else said:
        print(f"warning: the runs differ: {line}")
    if not b.cells:
        print(f"{args.run_b}: no cells at all (an empty or header-only cells.csv): nothing"
              " can be compared")
        return 1
    changes = compare_runs(a, b, args.min_effect, args.confidence)
    if markdown:
        print(render_markdown(changes, args.min_effect, args.confidence,
                              (args.run_a, args.run_b), said), end="")
    else:
        print(render(changes, args.min_effect, args.confidence))
    return 1 if any(c.regression for c in changes) else 0
