"""One series (impl, mode, device, dtype, size) across runs: its points, grouped by machine, and
`compare`'s verdict between consecutive runs of one machine.

    from harness.site.history import collect
    for key, points in collect(runs).items():     # key: store.CellKey
        p.step, p.step_low, p.step_high           # seconds per step and its 95% interval
        p.change                                  # compare's Change against p.previous, or None

A point's figures are its run's own (cells.csv): the step time with its interval and the
speed-up over NumPy on that run's CPU, paired by round. No figure of one run is divided by a
figure of another, except by compare itself (harness/report/compare.py, on the rounds of both
runs of one machine, with its interval and its rule for "slower"). Consecutive means the
previous run of the same machine, by UTC time, that has this cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.report.compare import Change, compare_runs, differences
from harness.site.runs import Run
from harness.store import CellKey

MIN_EFFECT, CONFIDENCE = 0.10, 0.99  # compare's defaults


def _float(value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


@dataclass
class Point:
    """A series in one run."""

    run: Run
    status: str
    reason: str
    step: float  # NaN where the cell did not run or the column is missing
    step_low: float
    step_high: float
    speedup: float
    speedup_low: float
    speedup_high: float
    previous: Run | None = None  # the run of the same machine before this one, with this cell
    change: Change | None = None  # compare's verdict of this run against `previous`
    not_compared: str = ""  # why there is no verdict, when there is a previous run
    warnings: list[str] = field(default_factory=list)  # what differs between the two runs

    @property
    def regression(self) -> bool:
        return self.change is not None and self.change.regression


def _point(run: Run, row) -> Point:
    get = row.get
    return Point(run, str(get("status", "?")), "" if _isnan(get("reason")) else str(get("reason")),
                 *(_float(get(c)) for c in ("step_median_s", "step_low_s", "step_high_s",
                                            "speedup", "speedup_low", "speedup_high")))


def _isnan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def collect(runs: list[Run]) -> dict[CellKey, list[Point]]:
    """Every series of every bench run: its points, by machine then UTC time; verdicts set."""
    series: dict[CellKey, list[Point]] = {}
    for run in runs:
        if run.kind != "bench" or run.cells is None:
            continue
        for row in run.cells.to_dict("records"):
            try:
                key = CellKey.of(row)
            except KeyError:
                continue
            series.setdefault(key, []).append(_point(run, row))
    pairs: dict[tuple[str, str], tuple[dict, list[str]] | str] = {}
    for key, points in series.items():
        points.sort(key=lambda p: (p.run.machine, _when(p.run), p.run.name))
        for before, point in zip(points, points[1:], strict=False):
            if before.run.machine == point.run.machine:
                _judge(key, before, point, pairs)
    return dict(sorted(series.items()))


def _judge(key: CellKey, before: Point, point: Point, pairs: dict) -> None:
    """compare's Change for `key` between two runs; each pair of runs compared once."""
    point.previous = before.run
    a, b = before.run, point.run
    pair = (a.name, b.name)
    if pair not in pairs:
        if a.folder is None or b.folder is None:
            broken = a if a.folder is None else b
            pairs[pair] = f"{broken.name} cannot be compared: " + (
                broken.problems[0] if broken.problems else "unreadable")
        else:
            try:
                pairs[pair] = ({c.key: c for c in compare_runs(a.folder, b.folder, MIN_EFFECT,
                                                              CONFIDENCE)},
                               differences(a.folder, b.folder))
            except Exception as exc:  # noqa: BLE001  a pair that compare rejects is said so
                pairs[pair] = f"compare failed: {type(exc).__name__}: {exc}"
    found = pairs[pair]
    if isinstance(found, str):
        point.not_compared = found
        return
    changes, point.warnings = found
    if a.profile != b.profile:  # compare reads rounds alone; the profiles' policies differ
        point.warnings = [f"profile: {a.profile!r} in A, {b.profile!r} in B", *point.warnings]
    point.change = changes.get(key)
    if point.change is None:
        point.not_compared = "not in both runs' cells.csv"


def latest(points: list[Point]) -> Point:
    """The most recent point of a series (any machine)."""
    return max(points, key=lambda p: (-_when(p.run) if math.isinf(_when(p.run)) else _when(p.run),
                                      p.run.name))


def _when(run: Run) -> float:
    """Seconds since the epoch; infinity for a run of unknown time (sorted last)."""
    return run.utc.timestamp() if run.utc else math.inf
