"""A scaling run's rounds -> typed rows of scaling.csv: medians, intervals, paired speed-ups.

    rows = scaling_rows(cells, records, failed, unavailable, used, block_steps)

`records` are the run's Block records (one sample per plain block of a launch, the profiled
phases beside it). A configuration's value in a round is the median of its plain blocks there;
its step time is the median over rounds with a distribution-free interval; its speed-up is
t(W=1) / t(W) paired by round (the two ran minutes apart at most, in the same round, under the
same load), with its interval. The phases (compute, wait, all-reduce, update) are medians over
the profiled blocks; comm_share is the all-reduce's share of their sum.
"""

from __future__ import annotations

from statistics import median

from dataparallel.engines import launch_label
from harness.bench.rounds import round_values
from harness.measure.records import PHASES, Block, Key
from harness.measure.spec import Cell
from harness.measure.stats import median_interval, paired_ratios
from harness.store import ScalingRow


def baseline_key(key: Key) -> Key:
    """The W = 1 configuration a key's speed-up is paired with (jax's W = 1 launch is one
    process for both of its W = 2 launches)."""
    return Key(key.impl, key.mode, key.device, key.dtype, key.size,
               launch_label(key.impl, 1, key.launch), 1)


def _finite(values) -> list[float]:
    return [v for v in values if v is not None and v == v]


def scaling_rows(cells: list[Cell], records: list[Block], failed: dict, unavailable: dict,
                 used: dict, block_steps: dict) -> list[ScalingRow]:
    """One row per configuration, in plan order. `failed`: {Key: reason} of launches that
    failed; `unavailable`: {Key: reason} ("" where it can run); `used`: {Key: what its launch
    used (meta.json's launches)}; `block_steps`: {size name: steps a block}."""
    values = round_values(records)
    by_key: dict[Key, list] = {}
    for rec in records:
        by_key.setdefault(rec.key, []).extend(rec.samples)
    cpu: dict[Key, list[float]] = {}  # rank 0's CPU per wall-second: each round's median
    for rec in records:
        if found := _finite(s.cpu_per_wall for s in rec.samples):
            cpu.setdefault(rec.key, []).append(median(found))
    rows = []
    for cell in cells:
        key = Key.of(cell)
        u = used.get(key) or {}
        row = dict(impl=cell.impl, mode=cell.mode, launch=cell.launch, device=cell.device,
                   dtype=cell.dtype, size=cell.size.name, workers=cell.workers,
                   n_samples=cell.size.n_samples, n_features=cell.size.n_features,
                   n_hidden=cell.size.n_hidden, block_steps=block_steps.get(cell.size.name),
                   threads_per_worker=1, processes=u.get("processes"),
                   launcher=u.get("launcher"), comm_method=u.get("comm_method"),
                   cores=" ".join(",".join(map(str, c or [])) for c in u.get("cores", [])))
        if unavailable.get(key):
            rows.append(ScalingRow(**{**row, "status": "unavailable",
                                      "reason": unavailable[key]}))
            continue
        if key in failed:
            row.update(status="failed", reason=failed[key])
        mine = values.get(key, {})
        if not mine:
            row.update(status="failed", reason=row.get("reason") or "no round finished")
            rows.append(ScalingRow(**row))
            continue
        row.setdefault("status", "ok")
        step = median_interval(list(mine.values()))
        row.update(rounds=len(mine), step_median_s=step.estimate, step_low_s=step.low,
                   step_high_s=step.high)
        ratios = paired_ratios(values.get(baseline_key(key), {}), mine)
        if ratios and key.workers != 1:
            speed = median_interval(ratios)
            row.update(speedup=speed.estimate, speedup_low=speed.low, speedup_high=speed.high,
                       efficiency=speed.estimate / key.workers)
        for p in PHASES:
            found = _finite(getattr(s, p) for s in by_key.get(key, []))
            row[p] = median(found) if found else None
        known = [row[p] for p in PHASES if row[p] is not None]
        if row["comm_s"] is not None and known:
            row["comm_share"] = row["comm_s"] / sum(known)
        if cpu.get(key):
            row["cpu_per_wall"] = median(cpu[key])
        rows.append(ScalingRow(**row))
    return rows
