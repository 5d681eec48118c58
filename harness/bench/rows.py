"""From a size's rounds to rows of the run folder: cells.csv, samples.csv and meta.json's peak.

    values = round_values(records)          # {key: {round: seconds per step}}
    ratios = speedups(group, values)        # {key: Interval of t_numpy / t_cell, paired}
    row = cell_row(cell, settings, ready, values[key], peak_gflops, ratios[key], records)

Every per-cell statistic rests on rounds: a cell's step time is the median of its
round values, with a distribution-free interval; its speed-up over hand-written NumPy
is the median of the per-round ratios t_numpy / t_cell (the same round, so the same
moment of the machine), with its interval; its share of the peak is taken against the
peak measured in the same round.
"""

from __future__ import annotations

import numpy as np

from harness.bench.rounds import Record
from harness.measure import stats
from harness.measure.spec import Cell, RunSettings
from harness.store import CellKey

RESULT_FIELDS = ("setup_s", "first_call_s", "steps_per_sample", "final_loss", "import_s",
                 "warmup_steps", "peak_mem_bytes", "setup_mem_bytes", "peak_mem_method")


def speedups(group: list[Cell], values: dict) -> dict:
    """{key: Interval of t_numpy / t_cell over the rounds both ran} for every cell of one size
    that has a hand-written NumPy cell (CPU, same dtype) beside it in the rounds."""
    out = {}
    for cell in group:
        base = CellKey("numpy", "default", "cpu", cell.dtype, cell.size.name)
        key = CellKey.of(cell)
        ratios = stats.paired_ratios(values.get(base, {}), values.get(key, {}))
        if ratios:
            out[key] = stats.median_interval(ratios)
    return out


def cell_row(cell: Cell, settings: RunSettings, result: dict, values: dict | None = None,
             peak_gflops: dict | None = None, speedup: stats.Interval | None = None,
             records: list[Record] = ()) -> dict:
    """One row of cells.csv. `result`: the worker's ready and stop replies (or a failure);
    `values`: {round: seconds per step}; `peak_gflops`: {round: the device's peak}."""
    size, values, peak_gflops = cell.size, values or {}, peak_gflops or {}
    row = {**CellKey.of(cell)._asdict(), "n_samples": size.n_samples,
           "n_features": size.n_features, "n_hidden": size.n_hidden,
           "n_outputs": size.n_outputs, "batch_size": size.n_samples, "loss": settings.loss,
           "activation": settings.activation, "status": result.get("status", "failed"),
           "reason": result.get("reason", ""), "flops_per_step": size.flops,
           "threads": settings.threads,
           "matmul_precision": (result.get("info") or {}).get("matmul_precision"),
           **{k: result.get(k) for k in RESULT_FIELDS}}
    if row["status"] == "ready":
        row["status"] = "ok"
    if not values or row["status"] not in ("ok", "diverged"):
        return row
    step = stats.median_interval(list(values.values()))
    summary = stats.summarize(list(values.values()))
    gflops = size.flops / step.estimate / 1e9
    shares = [size.flops / values[r] / 1e9 / peak_gflops[r] for r in values if r in peak_gflops]
    row.update(step_median_s=step.estimate, step_low_s=step.low, step_high_s=step.high,
               step_iqr_s=summary.iqr, noisy=summary.noisy, rounds=len(values),
               repeats=sum(len(r.samples) for r in records), gflops=gflops,
               settle_s=float(np.median([r.settle_s for r in records])) if records else None)
    if shares:
        row.update(peak_fraction=float(np.median(shares)),
                   peak_gflops=float(np.median([peak_gflops[r] for r in values
                                                if r in peak_gflops])))
    if speedup is not None:
        row.update(speedup=speedup.estimate, speedup_low=speedup.low, speedup_high=speedup.high)
    return row


def sample_rows(key: CellKey, records: list[Record]) -> list[dict]:
    """Rows of samples.csv for one cell: every sample, with its round and place in the round."""
    return [{"round": r.round, "position": r.position, "sample": i, "seconds_per_step": s}
            for r in records if r.key == key for i, s in enumerate(r.samples)]


def peak_summary(ready: dict, records: list[Record]) -> dict:
    """meta.json's peak of one device: the best round, and the spread over rounds."""
    flops = ready.get("flops_per_step")
    per_round = [flops / min(r.samples) / 1e9 for r in records]
    if not per_round:
        return {**ready, "status": "failed", "reason": "no round measured the peak"}
    best, median = max(per_round), float(np.median(per_round))
    return {"status": "ok", "gflops": best, "median_gflops": median,
            "min_gflops": min(per_round), "spread": (best - min(per_round)) / median,
            "rounds_gflops": per_round, "method": f"{ready.get('method')}, best of "
            f"{len(per_round)} rounds", "blas": ready.get("blas"), "info": ready.get("info", {})}
