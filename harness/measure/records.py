"""What a benchmark process measures, as frozen records: from the worker to the store to the report.

    ready = from_dict(Ready, reply)            # a worker set up and warm (harness/measure/pool.py)
    block = Block(key, round=3, position=1, samples=(Sample(2.1e-4), Sample(2.0e-4)),
                  canary=(5.1e-5, 5.0e-5))    # the canary timed beside it, in the same worker

One record type for a timed block, whatever ran it: a cell's long-lived worker (one sample per
`samples_per_block`, seconds per step only), a data-parallel launch (one sample per plain block,
with rank 0's CPU per wall-second and the phases of the profiled block beside it) or the matmul
peak. `harness.codec` turns each into JSON and back, typed; harness/store/schema.py's rows are
made from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PHASES = ("compute_s", "wait_s", "comm_s", "update_s")


@dataclass(frozen=True)
class Key:
    """Whose block: one series at one dtype, size and worker count (a cell or a configuration
    of the scaling run; Key.peak(device) for the matmul peak)."""

    impl: str
    mode: str
    device: str
    dtype: str
    size: str  # the size's name
    launch: str = ""  # data parallel: how the workers start (mpiexec, torchrun, processes, ...)
    workers: int = 1
    side: str = ""  # bench --against: "A" (the revision) or "B" (the working tree); else ""

    @classmethod
    def of(cls, cell) -> Key:
        """The key of a planned cell (harness.measure.spec.Cell)."""
        return cls(cell.impl, cell.mode, cell.device, cell.dtype, cell.size.name,
                   cell.launch, cell.workers)

    @classmethod
    def peak(cls, device: str) -> Key:
        return cls("peak", "", device, "float32", "")

    @property
    def is_peak(self) -> bool:
        return self.impl == "peak"


@dataclass(frozen=True)
class Sample:
    """One timed sample: seconds per step (and, from a data-parallel launch, rank 0's CPU
    seconds per wall second and the median phases of the profiled block beside it; None where
    not measured or not separable)."""

    seconds_per_step: float
    cpu_per_wall: float | None = None
    compute_s: float | None = None
    wait_s: float | None = None
    comm_s: float | None = None
    update_s: float | None = None


@dataclass(frozen=True)
class Timed:
    """What one block request returns: its samples, and the canary timed in the same worker
    just before and just after them (seconds per canary call; empty where no canary ran)."""

    samples: tuple[Sample, ...]
    canary: tuple[float, ...] = ()


@dataclass(frozen=True)
class Block:
    """One block of one key in one round: its samples, its place in the round's order, how
    long its threads kept a core busy afterwards (waited out before the next block), the
    canary timed beside it, and when it started (seconds since its size's rounds began)."""

    key: Key
    round: int
    position: int
    samples: tuple[Sample, ...]
    settle_s: float | None = None
    canary: tuple[float, ...] = ()  # seconds per canary call, before and after the block
    at: float | None = None  # the parent's clock at its start, from the walk's start

    @property
    def seconds(self) -> list[float]:
        return [s.seconds_per_step for s in self.samples]

    @property
    def value(self) -> float:
        """The block's value: the median of its samples (the unit every statistic rests on)."""
        import statistics

        return statistics.median(self.seconds)


@dataclass(frozen=True)
class Ready:
    """A worker's report once set up and warm, before its first timed block (a cell's; the
    peak's fills flops_per_step, method and blas)."""

    import_s: float | None = None  # importing the framework (availability check included)
    setup_s: float | None = None  # session set-up, host-to-device transfer included
    first_call_s: float | None = None  # the first step: tracing and compilation, cold caches
    warmup_steps: int | None = None
    steps_per_sample: int | None = None
    peak_mem_bytes: int | None = None
    setup_mem_bytes: int | None = None
    peak_mem_method: str | None = None
    flops_per_step: int | None = None  # the peak's step
    method: str | None = None  # how the peak was measured
    precision: str | None = None  # the peak's matmul precision: float32 or tf32 (read back)
    key: str | None = None  # the peak's name in meta.json's peak: "gpu", "gpu-tf32" (peak.peak_key)
    blas: tuple[dict, ...] = ()  # the BLAS pools the worker ran with (threadpoolctl)
    info: dict = field(default_factory=dict)  # the implementation's info() (the peak's)
    protocol: int | None = None  # the worker protocol it speaks (worker.PROTOCOL; None: older)
    canary_s: float | None = None  # the canary's seconds per call when the worker was ready


@dataclass(frozen=True)
class Final:
    """A worker's last reply: how training ended, and the implementation's info()."""

    status: str  # ok | diverged
    final_loss: float | None = None
    reason: str = ""
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """Everything one cell's worker said, or why it could not say it."""

    status: str  # ok | failed | timeout | diverged | unavailable
    reason: str = ""
    ready: Ready = Ready()
    final: Final | None = None
