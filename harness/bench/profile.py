"""The one profile type: what a run sweeps and how, validated when it is built.

    from harness.bench.profile import Entry, Profile, settings
    p = Profile("mine", sizes=(TINY,), entries=(Entry("numpy", "default"),))
    s = settings(p, threads=2, cpus=(0, 1))     # the run's RunSettings: shared fields by name

Every kind of run is a profile (harness/bench/profiles.py has the presets): `cells` (a cell per
implementation, mode, device, dtype and size, each a long-lived worker timed in rounds: quick,
default, full, gpu), `scaling` (each data-parallel engine at W workers, a launch per round) and
`smoke` (every GPU code path once). The kind is written in the run's meta.json; a report reads
it from there. A bad value is a ContractError naming the field, before anything runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.measure.spec import BASELINE, RunSettings, Series, Size, Tta
from harness.measure.timing import Policy
from impls import contract
from impls.contract import DEVICES, DTYPES, ContractError

RUN_KINDS = ("cells", "scaling", "smoke")


@dataclass(frozen=True)
class Entry:
    impl: str  # registry name, or "sklearn" for the peer row (harness/measure/peer.py)
    mode: str
    sizes: tuple[str, ...] | None = None  # None = every size; a subset where a cell is costly
    devices: tuple[str, ...] | None = None  # None = the profile's devices
    launch: str = ""  # data parallel (scaling): how W workers start, where an engine has two


@dataclass(frozen=True)
class Profile:
    name: str
    sizes: tuple[Size, ...]
    entries: tuple[Entry, ...]
    kind: str = "cells"  # one of RUN_KINDS
    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float32",)  # float32 is the contract's timing dtype
    loss: str = "bce"  # bce: the loss scikit-learn's MLPClassifier (the peer row) minimises
    activation: str = "sigmoid"  # the hidden activation of every cell (the peer runs sigmoid only)
    # lr 0.01: at 0.1 the large sizes overshoot (loss 0.7 -> 9) into saturated sigmoids,
    # where float32 exp underflows to subnormals that some kernels run far slower on;
    # a benchmark should time ordinary training, not that regime.
    lr: float = 0.01
    seed: int = 0
    policy: Policy = Policy()
    time_limit_s: float = 120.0  # work: one block (scaling: one launch) longer is a "timeout"
    start_limit_s: float | None = None  # start-up: import, set-up, compile, warm-up (None: as work)
    peak_n: int = 2048  # matrix size of the float32 GEMM that measures the machine's peak
    peak_n_cpu: int | None = None  # ... on the CPU, where it differs (None: peak_n)
    check_timeout_s: float = 600.0  # the check subprocess is killed after this
    # Wall-clock budget of one `bench` invocation, counted from the end of its check (which
    # has its own limit, check_timeout_s) (None: unbounded). No job starts once it is spent,
    # a running one is killed when it runs out (a "timeout" row), and cells never started
    # stay missing, for --resume to finish.
    wall_budget_s: float | None = None
    # Sweep the largest size first: where a wall budget may cut a run short, what is cut
    # is then the small sizes (and time to accuracy), not the ones the machine is for.
    largest_first: bool = False
    tta: tuple[Tta, ...] = ()
    tta_entries: tuple[Entry, ...] = ()
    baseline: Series = BASELINE  # every speed-up is over this series, same dtype and size
    gpu_sizes: tuple[Size, ...] | None = None  # sizes on GPUs, where they differ (None: sizes)
    workers: tuple[int, ...] = (1,)  # W on the CPU (scaling); on GPUs 1, 2, 4, ... up to their count
    threads: int | None = None  # threads per cell or worker (None: every usable CPU)

    def __post_init__(self):
        validate(self)

    def sizes_on(self, device: str) -> tuple[Size, ...]:
        return self.gpu_sizes if device == "gpu" and self.gpu_sizes else self.sizes

    def all_sizes(self) -> dict[str, Size]:
        return {z.name: z for z in (*self.sizes, *(self.gpu_sizes or ()))}


def _names(what: str, given, allowed) -> None:
    bad = [g for g in given if g not in allowed]
    if bad:
        raise ContractError(f"{what} {bad[0]!r} is not one of {', '.join(map(str, allowed))}")


def validate(p: Profile) -> None:
    """ContractError naming the first bad field of profile `p`."""
    where = f"profile {p.name!r}:"
    if not (isinstance(p.name, str) and p.name.strip()):
        raise ContractError(f"a profile needs a name, got {p.name!r}")
    _names(f"{where} kind", [p.kind], RUN_KINDS)
    for sizes in (p.sizes, p.gpu_sizes or ()):
        if len({z.name for z in sizes}) != len(sizes):
            raise ContractError(f"{where} each size name once, got {[z.name for z in sizes]}")
    if not p.sizes or len(p.all_sizes()) != len({*p.sizes, *(p.gpu_sizes or ())}):
        raise ContractError(f"{where} sizes must be given; one name, one shape")
    if not p.entries and p.kind != "smoke":  # the smoke's series come from the registry
        raise ContractError(f"{where} no entries")
    _names(f"{where} device", p.devices, DEVICES)
    _names(f"{where} dtype", p.dtypes, DTYPES)
    try:
        contract.check_loss(p.loss)
        contract.check_activation(p.activation)
        contract.check_number("lr", p.lr, "positive")
        contract.check_number("seed", p.seed, "non-negative int")
        for name in ("time_limit_s", "check_timeout_s", "start_limit_s", "wall_budget_s"):
            if getattr(p, name) is not None:
                contract.check_number(name, getattr(p, name), "positive")
        for name in ("peak_n", "peak_n_cpu", "threads"):
            if getattr(p, name) is not None:
                contract.check_number(name, getattr(p, name), "positive int")
        for w in p.workers:
            contract.check_number("workers", w, "positive int")
    except ContractError as exc:
        raise ContractError(f"{where} {exc}") from None
    for e in (*p.entries, *p.tta_entries):
        _names(f"{where} {e.impl}/{e.mode} size", e.sizes or (), tuple(p.all_sizes()))
        _names(f"{where} {e.impl}/{e.mode} device", e.devices or (), DEVICES)
    if p.kind == "scaling":
        steps = dict(p.policy.block_steps)
        if missing := [z for z in p.all_sizes() if z not in steps]:
            raise ContractError(f"{where} no block_steps for size {missing[0]!r} (a launch times "
                                "a fixed number of steps per block)")


def settings(profile: Profile, *, threads: int, cpus: tuple[int, ...] | None,
             **given) -> RunSettings:
    """The run's RunSettings: every field the profile shares with them taken from it by name
    (nothing copied by hand), then `threads`, `cpus` and the command line's `given` values;
    validated by RunSettings itself."""
    shared = {f.name: getattr(profile, f.name) for f in dataclasses.fields(RunSettings)
              if hasattr(profile, f.name)}
    shared["peak_n_cpu"] = profile.peak_n_cpu or profile.peak_n
    shared.setdefault("check", True)
    return RunSettings(**{**shared, "threads": threads, "cpus": cpus, **given})
