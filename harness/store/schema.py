"""What a run folder holds: file names, keys and columns (docs/architecture.md lists them).

    from harness.store.schema import CellKey, CELL_COLUMNS, ScalingKey
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

# 2: samples carry their round and place in it; cells their rounds, intervals and speed-up.
SCHEMA_VERSION = 2
META, CELLS, SAMPLES, TTA, CHECK, REPORT = (
    "meta.json", "cells.csv", "samples.csv", "tta.csv", "check.json", "report.md")


class CellKey(NamedTuple):
    """What identifies a cell: one row of cells.csv, and its rows of samples.csv."""

    impl: str
    mode: str
    device: str
    dtype: str
    size: str  # the size's name

    @classmethod
    def of(cls, cell) -> CellKey:
        """The key of a stored row (a mapping) or of a planned cell (harness.measure.spec.Cell)."""
        get = cell.get if isinstance(cell, Mapping) else lambda name: getattr(cell, name)
        size = get("size")
        return cls(*(str(get(f)) for f in cls._fields[:-1]), str(getattr(size, "name", size)))


class TtaKey(NamedTuple):
    """What identifies a time-to-accuracy run: one row of tta.csv."""

    impl: str
    mode: str
    device: str
    dtype: str
    dataset: str

    @classmethod
    def of(cls, row: Mapping) -> TtaKey:
        return cls(*(str(row[f]) for f in cls._fields))


# docs/architecture.md's columns, then additions at the end.
CELL_COLUMNS = CellKey._fields + (
    "n_samples", "n_features", "n_hidden", "n_outputs", "batch_size", "loss", "activation",
    "status", "reason", "setup_s", "first_call_s", "step_median_s", "step_iqr_s", "repeats",
    "steps_per_sample", "noisy", "flops_per_step", "gflops", "peak_gflops", "peak_fraction",
    "peak_mem_bytes", "threads", "matmul_precision", "final_loss",
    # additions: framework import time, warm-up steps run, memory held after setup, how
    # peak memory was measured; the rounds and the 95% interval of the step time; the
    # speed-up over hand-written NumPy (paired by round) and its interval; how long the
    # cell's threads kept a core busy after a block (the scheduler waits that out).
    "import_s", "warmup_steps", "setup_mem_bytes", "peak_mem_method", "rounds", "step_low_s",
    "step_high_s", "speedup", "speedup_low", "speedup_high", "settle_s",
)
# One row per sample: its round, its block's place in that round's random order.
SAMPLE_COLUMNS = CellKey._fields + ("round", "position", "sample", "seconds_per_step")
TTA_COLUMNS = TtaKey._fields + (
    "target", "reached", "seconds", "epochs", "status", "reason",
    # additions: how often accuracy was checked, the epoch cap, the last accuracy seen.
    "eval_every", "max_epochs", "accuracy",
)
STATUSES = ("ok", "failed", "timeout", "diverged", "unavailable")


# A scaling run (bench --profile scaling, harness/bench/scaling.py): step time at W workers.
SCALING, SCALING_SAMPLES = "scaling.csv", "scaling_samples.csv"


class ScalingKey(NamedTuple):
    """What identifies one configuration of a scaling run: one row of scaling.csv."""

    impl: str
    mode: str
    launch: str  # how its workers were started: mpiexec, torchrun, processes, devices
    device: str
    dtype: str
    size: str
    workers: str  # as stored (CSV): "1", "2", ...

    @classmethod
    def of(cls, row: Mapping) -> ScalingKey:
        return cls(*(str(row[f]) for f in cls._fields))


SCALING_COLUMNS = ScalingKey._fields + (
    "n_samples", "n_features", "n_hidden", "status", "reason", "rounds", "block_steps",
    "step_median_s", "step_low_s", "step_high_s", "speedup", "speedup_low", "speedup_high",
    "efficiency", "compute_s", "wait_s", "comm_s", "update_s", "comm_share", "cpu_per_wall",
    "processes", "threads_per_worker", "cores", "launcher", "comm_method",
)
# One row per plain block of every launch; the phases from that launch's profiled blocks.
SCALING_SAMPLE_COLUMNS = ScalingKey._fields + (
    "round", "position", "block", "seconds_per_step", "cpu_per_wall", "compute_s", "wait_s",
    "comm_s", "update_s",
)
