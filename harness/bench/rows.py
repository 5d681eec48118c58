"""From a size's blocks to typed rows of the run folder: cells.csv, samples.csv, meta.json's peak.

    flags = disturbed(records, limit)              # harness/measure/weather.py: the canary
    kept = [r for r in records if not flags[id(r)]]
    values = round_values(kept)                    # {Key: {round: seconds per step}}
    ratios = speedups(group, records, baseline, flags)   # {Key: Interval of t_base / t_cell}
    row = cell_row(cell, settings, outcome, values[key], None, ratios[key], mine,
                   peaks={"gpu": {round: gflops}, "gpu-tf32": {...}})

A cell's step time is the median of its round values (blocks the canary marked disturbed
left out), with a distribution-free interval; its speed-up over the run's baseline (a
setting: hand-written NumPy unless the profile names another series) is the median of the
ratios t_base / t_cell of its pairs: each of its blocks with the baseline's blocks right
next to it in the same round (harness/bench/pairs.py), so both halves of a ratio share the
same few milliseconds of the machine; its share of the peak is taken against the peak
measured in the same round, of its own matmul precision (a TF32 cell against a TF32 peak,
never the float32 one).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from harness.bench.pairs import pairs, speedup_interval
from harness.measure import peak, stats
from harness.measure.records import Block, Key, Outcome, Ready
from harness.measure.spec import Cell, RunSettings, Series
from harness.store import CellRow

READY_FIELDS = ("setup_s", "first_call_s", "steps_per_sample", "import_s", "warmup_steps",
                "peak_mem_bytes", "setup_mem_bytes", "peak_mem_method")


def baseline_key(cell: Cell, baseline: Series) -> Key:
    """The baseline's cell beside `cell`: the same dtype and size."""
    return Key(baseline.impl, baseline.mode, baseline.device, cell.dtype, cell.size.name)


def base_of(baseline: Series):
    """key -> the key of its baseline's cell (same dtype and size); None for the peak."""
    def base(key: Key) -> Key | None:
        if key.is_peak:
            return None
        return Key(baseline.impl, baseline.mode, baseline.device, key.dtype, key.size)
    return base


def speedups(group: list[Cell], records: list[Block], baseline: Series,
             flags: dict[int, bool] | None = None) -> dict:
    """{key: Interval of t_base / t_cell over its pairs} for every cell of one size that has
    the baseline's cell (same dtype) beside it in the rounds (the baseline's own: 1)."""
    found = pairs(records, base_of(baseline), flags)
    wanted = {Key.of(c) for c in group}
    out = {k: speedup_interval(v) for k, v in found.items() if k in wanted}
    for cell in group:
        key = Key.of(cell)
        if key == baseline_key(cell, baseline) and any(r.key == key for r in records):
            out[key] = stats.Interval(1.0, 1.0, 1.0, 0, 1.0)
    return out


def cell_row(cell: Cell, settings: RunSettings, outcome: Outcome, values: dict | None = None,
             peak_gflops: dict | None = None, speedup: stats.Interval | None = None,
             records: list[Block] = (), peaks: dict | None = None) -> CellRow:
    """One row of cells.csv. `outcome`: what the worker said (or why it could not);
    `values`: {round: seconds per step}; `peaks`: {peak name: {round: GFLOP/s}}, the peaks
    measured beside it ("gpu", "gpu-tf32"), of which the cell is held against the one of its
    read-back precision (peak.held_against: a TF32 cell without a TF32 peak gets no share of
    peak); `peak_gflops`: {round: the device's float32 peak}, where `peaks` is not given."""
    size, values = cell.size, values or {}
    ready = outcome.ready or Ready()
    precision = (outcome.final.info if outcome.final else {}).get("matmul_precision")
    if peaks is None:
        peaks = {peak.peak_key(cell.device): peak_gflops} if peak_gflops else {}
    held = peak.held_against(cell.device, peak.is_tf32(precision), peaks)
    peak_gflops = (peaks.get(held) or {}) if held else {}
    row = dict(impl=cell.impl, mode=cell.mode, device=cell.device, dtype=cell.dtype,
               size=size.name, n_samples=size.n_samples, n_features=size.n_features,
               n_hidden=size.n_hidden, n_outputs=size.n_outputs, batch_size=size.n_samples,
               loss=settings.loss, activation=settings.activation, status=outcome.status,
               reason=outcome.reason, flops_per_step=size.flops, threads=settings.threads,
               matmul_precision=precision,
               final_loss=outcome.final.final_loss if outcome.final else None,
               **{k: getattr(ready, k) for k in READY_FIELDS})
    if values and outcome.status in ("ok", "diverged"):
        step = stats.median_interval(list(values.values()))
        summary = stats.summarize(list(values.values()))
        shares = [size.flops / values[r] / 1e9 / peak_gflops[r] for r in values
                  if r in peak_gflops]
        row.update(step_median_s=step.estimate, step_low_s=step.low, step_high_s=step.high,
                   step_iqr_s=summary.iqr, noisy=summary.noisy, rounds=len(values),
                   repeats=sum(len(r.samples) for r in records),
                   gflops=size.flops / step.estimate / 1e9,
                   settle_s=float(np.median([r.settle_s for r in records])) if records else None)
        if shares:
            row.update(peak_fraction=float(np.median(shares)),
                       peak_gflops=float(np.median([peak_gflops[r] for r in values
                                                    if r in peak_gflops])))
        if speedup is not None:
            row.update(speedup=speedup.estimate, speedup_low=speedup.low,
                       speedup_high=speedup.high)
    return CellRow(**row)


def peak_summary(ready: Ready, records: list[Block]) -> dict:
    """meta.json's peak of one device: the best round, and the spread over rounds."""
    per_round = [ready.flops_per_step / min(r.seconds) / 1e9 for r in records]
    if not per_round:
        return {**{k: v for k, v in dataclasses.asdict(ready).items() if v not in (None, (), {})},
                "status": "failed", "reason": "no round measured the peak"}
    best, median = max(per_round), float(np.median(per_round))
    return {"status": "ok", "gflops": best, "median_gflops": median,
            "min_gflops": min(per_round), "spread": (best - min(per_round)) / median,
            "rounds_gflops": per_round, "method": f"{ready.method}, best of "
            f"{len(per_round)} rounds", "blas": list(ready.blas) or None, "info": ready.info}
