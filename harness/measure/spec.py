"""What a benchmark process is asked to do, typed end to end: sizes, cells, time-to-accuracy
goals, the run's settings, and the job one cell process receives.

    from harness.measure.spec import Cell, Job, RunSettings, Size
    job = Job("time", settings, cell=Cell("numpy", "default", "cpu", "float32", TINY))
    text = json.dumps(to_dict(job))          # to the child process, on stdin
    job = from_dict(Job, json.loads(text))   # in the child: the same frozen objects again

The same objects are stored in a run folder's meta.json (`settings`, `plan`) and
reloaded typed by `bench --resume` (harness/codec.py is the one to_dict/from_dict).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.config import Config
from harness.measure.timing import Policy
from impls import contract
from impls.contract import flops_per_step


@dataclass(frozen=True)
class Series:
    """One implementation and mode on one device: what `available()` answers for, and what
    the report draws as one line across sizes."""

    impl: str  # registry name, or "sklearn" for the peer row (harness/measure/peer.py)
    mode: str
    device: str  # "cpu" | "gpu"

    def __str__(self) -> str:
        return f"{self.impl}/{self.mode}/{self.device}"  # the key of meta.json's impl_info


BASELINE = Series("numpy", "default", "cpu")  # hand-written NumPy: the default baseline


@dataclass(frozen=True)
class Size:
    """A problem size of the sweep: full-batch teacher data, N x F -> H -> K."""

    name: str
    n_samples: int  # N: rows of teacher data, trained full batch
    n_features: int  # F
    n_hidden: int  # H
    n_outputs: int = 1  # K

    @property
    def flops(self) -> int:
        return flops_per_step(self.n_samples, self.n_features, self.n_hidden, self.n_outputs)


@dataclass(frozen=True)
class Cell:
    """One timed cell: a series at one dtype and size (a row of cells.csv); with `workers` > 1
    or a `launch`, one configuration of the scaling run (a row of scaling.csv)."""

    impl: str
    mode: str
    device: str
    dtype: str
    size: Size
    launch: str = ""  # data parallel: mpiexec, torchrun, process, processes, devices
    workers: int = 1  # data parallel: W worker processes (or devices)

    @property
    def series(self) -> Series:
        return Series(self.impl, self.mode, self.device)

    def __str__(self) -> str:
        text = f"{self.impl}/{self.mode} {self.device} {self.dtype} {self.size.name}"
        return text + (f" {self.launch} W={self.workers}" if self.launch else "")


@dataclass(frozen=True)
class Tta:
    """A time-to-accuracy target: train `config` (a harness.config preset: its data,
    n_hidden, loss, lr, batch size and seed) until its training accuracy reaches `target`."""

    config: Config
    target: float  # training-set accuracy to reach
    max_epochs: int  # give up (reached = False) after this many
    eval_every: int  # epochs between accuracy checks (the epochs column's resolution)

    @property
    def dataset(self) -> str:
        return self.config.dataset


@dataclass(frozen=True)
class TtaGoal:
    """One time-to-accuracy run: a series and dtype trained to a `Tta` target."""

    impl: str
    mode: str
    device: str
    dtype: str
    tta: Tta

    @property
    def series(self) -> Series:
        return Series(self.impl, self.mode, self.device)

    def __str__(self) -> str:
        return (f"time to {self.tta.target:.0%} on {self.tta.dataset}: "
                f"{self.impl}/{self.mode} {self.device}")


@dataclass(frozen=True)
class RunSettings:
    """What every process of one benchmark run shares (stored as meta.json's `settings`):
    the profile's shared fields (harness/bench/profiles.py's `settings()` copies them by name)
    and the command line's. Validated when built, so a child never meets a bad value."""

    threads: int  # thread budget of every cell
    cpus: tuple[int, ...] | None  # CPUs every cell is pinned to (None: no affinity control)
    loss: str
    lr: float
    seed: int
    activation: str  # the hidden activation of every timed cell
    policy: Policy  # how a cell's steady step is timed
    time_limit_s: float  # work: a block (or a whole data-parallel launch) longer is killed
    peak_n: int  # matrix size of the matmul-peak measurement
    peak_n_cpu: int  # ... on the CPU
    check: bool  # run the check report first
    check_timeout_s: float
    wall_budget_s: float | None  # no job starts after this many seconds (None: unbounded)
    # start-up: a worker's import, set-up, first call (compile) and warm-up; None: time_limit_s
    start_limit_s: float | None = None
    baseline: Series = BASELINE  # every speed-up is over this series (same dtype and size)

    def __post_init__(self):
        contract.check_number("threads", self.threads, "positive int")
        contract.check_loss(self.loss)
        contract.check_activation(self.activation)
        for name in ("lr", "time_limit_s", "check_timeout_s", "start_limit_s", "wall_budget_s"):
            value = getattr(self, name)
            if value is not None or name in ("lr", "time_limit_s", "check_timeout_s"):
                contract.check_number(name, value, "positive")
        for name in ("peak_n", "peak_n_cpu"):
            contract.check_number(name, getattr(self, name), "positive int")

    @property
    def start_limit(self) -> float:
        return self.start_limit_s or self.time_limit_s

    def problem(self, cell: Cell) -> Config:
        """The cell's problem as a run config: teacher data of the cell's size, this run's
        loss, learning rate, activation and seed, the cell's dtype and device."""
        z = cell.size
        return Config(dataset="teacher", n_samples=z.n_samples, n_features=z.n_features,
                      n_hidden=z.n_hidden, n_outputs=z.n_outputs, activation=self.activation,
                      loss=self.loss, lr=self.lr, batch_size=None, seed=self.seed,
                      dtype=cell.dtype, device=cell.device)

    def tta_problem(self, goal: TtaGoal) -> Config:
        """The goal's preset, in the goal's dtype and on its device."""
        return dataclasses.replace(goal.tta.config, dtype=goal.dtype, device=goal.device)


JOB_KINDS = ("probe", "tta", "grads", "time", "peak")  # one-shot (cell.py); served in blocks


@dataclass(frozen=True)
class Job:
    """One process's work (python -m harness.measure.worker): probe, tta and grads answer once
    (harness/measure/cell.py); time (a cell) and peak (a device's matmul peak) are served in
    blocks."""

    kind: str  # one of JOB_KINDS
    settings: RunSettings
    cell: Cell | None = None  # time, grads
    goal: TtaGoal | None = None  # tta
    series: tuple[Series, ...] = ()  # probe: whose availability to report
    device: str | None = None  # peak: which device's matmul peak to measure
    # Pre-started: import the framework, reply "imported" and wait for "go" before anything
    # is timed (harness/measure/worker.py), so imports overlap with the run's check.
    wait: bool = False

    def __post_init__(self):
        if self.kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {self.kind!r}; expected one of {JOB_KINDS}")
