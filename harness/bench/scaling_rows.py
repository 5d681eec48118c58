"""A scaling run's rounds -> rows of scaling.csv: medians, intervals, paired speed-ups.

    rows = scaling_rows(configs, samples, failed)

`samples` are rows of scaling_samples.csv (one per plain block of every launch). A
configuration's value in a round is the median of its plain blocks there; its step time is
the median over rounds with a distribution-free 95% interval; its speed-up is t(W=1) / t(W)
paired by round (the two ran minutes apart at most, in the same round, under the same load),
with its interval. The phases (compute, wait, all-reduce, update) are medians over the
profiled blocks; comm_share is the all-reduce's share of their sum.
"""

from __future__ import annotations

from statistics import median

from harness.measure.stats import median_interval, paired_ratios
from harness.store import ScalingKey

PHASES = ("compute_s", "wait_s", "comm_s", "update_s")


def per_round(samples: list[dict], column: str = "seconds_per_step") -> dict[ScalingKey, dict]:
    """{key: {round: the median of that round's blocks}} over finite values of `column`."""
    out: dict[ScalingKey, dict[int, list[float]]] = {}
    for s in samples:
        value = _float(s.get(column))
        if value is not None:
            out.setdefault(ScalingKey.of(s), {}).setdefault(int(s["round"]), []).append(value)
    return {k: {r: median(v) for r, v in rounds.items()} for k, rounds in out.items()}


def baseline_key(key: ScalingKey) -> ScalingKey:
    """The W = 1 configuration a key's speed-up is paired with (jax's W = 1 launch is one
    process for both of its W = 2 launches)."""
    return key._replace(workers="1", launch=launch_label(key.impl, 1, key.launch))


def launch_label(impl: str, workers: int, launch: str = "") -> str:
    """How a configuration's workers start: mpiexec, torchrun; jax: processes or devices at
    W > 1, one process at W = 1."""
    if impl == "jax":
        return launch if workers > 1 else "process"
    return {"numpy": "mpiexec", "torch": "torchrun"}.get(impl, launch or "?")


def scaling_rows(configs: list[dict], samples: list[dict], failed: dict) -> list[dict]:
    """One row per configuration, in plan order. `configs`: the plan's rows (key fields, size
    facts, status/reason when unavailable); `failed`: {key: reason} of launches that failed."""
    values = per_round(samples)
    cpu = per_round(samples, "cpu_per_wall")
    phases = {p: _medians(samples, p) for p in PHASES}
    rows = []
    for config in configs:
        key = ScalingKey.of(config)
        row = dict(config)
        if row.get("status") == "unavailable":
            rows.append(row)
            continue
        if key in failed:
            row.update(status="failed", reason=failed[key])
        mine = values.get(key, {})
        if not mine:
            row.setdefault("status", "failed")
            row["reason"] = row.get("reason") or "no round finished"
            rows.append(row)
            continue
        row.setdefault("status", "ok")
        step = median_interval(list(mine.values()))
        row.update(rounds=len(mine), step_median_s=step.estimate, step_low_s=step.low,
                   step_high_s=step.high)
        ratios = paired_ratios(values.get(baseline_key(key), {}), mine)
        if ratios and key.workers != "1":
            speed = median_interval(ratios)
            row.update(speedup=speed.estimate, speedup_low=speed.low, speedup_high=speed.high,
                       efficiency=speed.estimate / int(key.workers))
        for p in PHASES:
            row[p] = phases[p].get(key)
        known = [row[p] for p in PHASES if row[p] is not None]
        if row["comm_s"] is not None and known:
            row["comm_share"] = row["comm_s"] / sum(known)
        if cpu.get(key):
            row["cpu_per_wall"] = median(cpu[key].values())
        rows.append(row)
    return rows


def _medians(samples: list[dict], column: str) -> dict[ScalingKey, float]:
    by_key: dict[ScalingKey, list[float]] = {}
    for s in samples:
        value = _float(s.get(column))
        if value is not None:
            by_key.setdefault(ScalingKey.of(s), []).append(value)
    return {k: median(v) for k, v in by_key.items()}


def _float(value) -> float | None:
    """A stored number ('' and None and NaN are missing)."""
    if value is None or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if x == x else None
