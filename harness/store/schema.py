"""What a run folder holds: file names, keys, and each table's row as a typed record whose fields
are its columns (docs/architecture.md lists them).

    from harness.store.schema import CellKey, CellRow, CELL_COLUMNS, ScalingKey
    row = CellRow(impl="numpy", mode="default", ..., status="ok")   # a cells.csv row, typed
    CELL_COLUMNS == tuple(f.name for f in fields(CellRow))          # the columns, in order

harness/codec.py's to_row / from_row write and read them; a value that does not parse as its
column's type is an error where it enters (harness/store/__init__.py drops that row, saying why).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CellRow:
    """One row of cells.csv: docs/architecture.md's columns, then additions at the end."""

    impl: str
    mode: str
    device: str
    dtype: str
    size: str
    n_samples: int | None = None
    n_features: int | None = None
    n_hidden: int | None = None
    n_outputs: int | None = None
    batch_size: int | None = None
    loss: str | None = None
    activation: str | None = None
    status: str = "failed"  # one of STATUSES
    reason: str = ""
    setup_s: float | None = None
    first_call_s: float | None = None
    step_median_s: float | None = None
    step_iqr_s: float | None = None
    repeats: int | None = None
    steps_per_sample: int | None = None
    noisy: bool | None = None
    flops_per_step: int | None = None
    gflops: float | None = None
    peak_gflops: float | None = None
    peak_fraction: float | None = None
    peak_mem_bytes: int | None = None
    threads: int | None = None
    matmul_precision: str | None = None
    final_loss: float | None = None
    # additions: framework import time, warm-up steps run, memory held after setup, how
    # peak memory was measured; the rounds and the 95% interval of the step time; the
    # speed-up over the baseline (hand-written NumPy unless the profile says otherwise;
    # paired by round) and its interval; how long the cell's threads kept a core busy after
    # a block (the scheduler waits that out).
    import_s: float | None = None
    warmup_steps: int | None = None
    setup_mem_bytes: int | None = None
    peak_mem_method: str | None = None
    rounds: int | None = None
    step_low_s: float | None = None
    step_high_s: float | None = None
    speedup: float | None = None
    speedup_low: float | None = None
    speedup_high: float | None = None
    settle_s: float | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")


def columns(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(record))


CELL_COLUMNS = columns(CellRow)
# One row per sample: its round, its block's place in that round's random order.
SAMPLE_COLUMNS = CellKey._fields + ("round", "position", "sample", "seconds_per_step")
@dataclass(frozen=True)
class TtaRow:
    """One row of tta.csv: a time-to-accuracy run."""

    impl: str
    mode: str
    device: str
    dtype: str
    dataset: str
    target: float | None = None
    reached: bool | None = None
    seconds: float | None = None
    epochs: int | None = None
    status: str = "failed"  # one of STATUSES
    reason: str = ""
    # additions: how often accuracy was checked, the epoch cap, the last accuracy seen.
    eval_every: int | None = None
    max_epochs: int | None = None
    accuracy: float | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")


TTA_COLUMNS = columns(TtaRow)
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
    workers: int

    @classmethod
    def of(cls, row) -> ScalingKey:
        """The key of a stored row (a mapping: workers as text is read as a number) or of a
        planned configuration (harness.measure.spec.Cell, harness.measure.records.Key)."""
        get = row.get if isinstance(row, Mapping) else lambda name: getattr(row, name)
        size = get("size")
        return cls(*(str(get(f)) for f in cls._fields[:5]), str(getattr(size, "name", size)),
                   int(get("workers")))


@dataclass(frozen=True)
class ScalingRow:
    """One row of scaling.csv: a configuration (an engine at W workers) over the rounds."""

    impl: str
    mode: str
    launch: str
    device: str
    dtype: str
    size: str
    workers: int
    n_samples: int | None = None
    n_features: int | None = None
    n_hidden: int | None = None
    status: str = "failed"  # one of STATUSES
    reason: str = ""
    rounds: int | None = None
    block_steps: int | None = None
    step_median_s: float | None = None
    step_low_s: float | None = None
    step_high_s: float | None = None
    speedup: float | None = None  # t(W = 1) / t(W), paired by round
    speedup_low: float | None = None
    speedup_high: float | None = None
    efficiency: float | None = None  # speedup / W
    compute_s: float | None = None
    wait_s: float | None = None
    comm_s: float | None = None
    update_s: float | None = None
    comm_share: float | None = None
    cpu_per_wall: float | None = None
    processes: int | None = None
    threads_per_worker: int | None = None
    cores: str | None = None  # each worker's cores: "0 1" (one each), "0,1" (one with two)
    launcher: str | None = None
    comm_method: str | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")


SCALING_COLUMNS = columns(ScalingRow)
# One row per plain block of every launch; the phases from that launch's profiled blocks.
SCALING_SAMPLE_COLUMNS = ScalingKey._fields + (
    "round", "position", "block", "seconds_per_step", "cpu_per_wall", "compute_s", "wait_s",
    "comm_s", "update_s",
)
