"""Benchmark profiles and their plans (harness/bench/profiles.py, plan.py): what each profile
runs, restricted by the command line, and that the gpu profile fits `make gpu`'s minutes."""

from __future__ import annotations

import dataclasses

import pytest

from harness.bench import profiles
from harness.bench.plan import Plan, plan
from harness.bench.profile import Entry, Profile, settings
from harness.measure import peak
from harness.measure.peer import runnable
from harness.measure.records import Key
from harness.measure.spec import RunSettings, Series, Size
from harness.measure.timing import Policy
from impls.contract import ContractError


def test_cells_run_size_by_size_and_restrictions_select_or_add():
    p = plan(profiles.get("quick"), runnable(), impls=["numpy", "torch"])
    assert [(c.impl, c.size.name) for c in p.cells] == [
        ("numpy", "tiny"), ("torch", "tiny"), ("numpy", "small"), ("torch", "small")]
    assert [g.impl for g in p.tta] == ["numpy"] and p.tta[0].tta.dataset == "moons"
    added = plan(profiles.get("quick"), runnable(), impls=["torch"], modes=["compile"],
                 sizes=["tiny"])
    assert [str(c) for c in added.cells] == ["torch/compile cpu float32 tiny"]
    with pytest.raises(ContractError, match="unknown size 'huge'"):
        plan(profiles.get("quick"), runnable(), sizes=["huge"])
    with pytest.raises(ContractError, match="no cells match"):  # gpu lists numpy on the CPU only
        plan(profiles.get("gpu"), runnable(), impls=["numpy"], devices=["gpu"])


def test_every_profile_plans_cells_of_its_sizes_with_enough_rounds_for_an_interval():
    for profile in [*profiles.PROFILES.values(), profiles.SMOKE]:
        if profile.kind == "smoke":  # its series come from the registry (smoke.select)
            continue
        p = plan(profile, runnable(), gpu_count=2)
        assert p.cells and all(c.size.name in profile.all_sizes() for c in p.cells)
        # A 95% distribution-free interval for a median needs at least 6 rounds (quick: 5,
        # which says so in its interval's coverage); the reported profiles have 10 or more;
        # scaling has 6: its [min, max] over 6 paired ratios covers the median at 97%.
        least = {"quick": 5, "scaling": 6}.get(profile.name, 10)
        assert profile.policy.rounds >= least, profile.name
        s = settings(profile, threads=1, cpus=None)  # resolved and validated for every one
        assert s.policy == profile.policy and s.baseline == profile.baseline


def test_the_scaling_plan_is_the_one_plan_with_workers_and_launches():
    p = plan(profiles.get("scaling"), {}, devices=["cpu"])
    keys = {(c.impl, c.launch, c.size.name, c.workers) for c in p.cells}
    assert len(p.cells) == 14 and p.tta == ()  # per size: numpy 1 2, torch 1 2, jax 1 + 2 x 2
    assert ("jax", "process", "tiny", 1) in keys and ("jax", "devices", "large", 2) in keys
    assert not [c for c in p.cells if c.impl == "jax" and c.workers == 1 and c.launch != "process"]
    gpu = plan(profiles.get("scaling"), {}, sizes=["huge"], devices=["gpu"], gpu_count=4)
    assert {c.workers for c in gpu.cells if c.impl == "torch"} == {1, 2, 4}
    assert {c.device for c in plan(profiles.get("scaling"), {}).cells} == {"cpu"}  # no GPU


@pytest.mark.parametrize("change, words", [
    ({"devices": ("tpu",)}, "device 'tpu' is not one of cpu, gpu"),
    ({"lr": -1.0}, "lr must be a positive number"),
    ({"entries": (Entry("numpy", "default", sizes=("huge",)),)}, "size 'huge' is not one of"),
    ({"sizes": (Size("tiny", 64, 2, 8), Size("tiny", 32, 2, 8))}, "each size name once"),
    ({"kind": "scaling"}, "no block_steps for size 'tiny'"),
    ({"kind": "sometimes"}, "kind 'sometimes' is not one of cells, scaling, smoke"),
    ({"time_limit_s": float("nan")}, "time_limit_s must be a positive number"),
    ({"workers": (0,)}, "workers must be a positive integer"),
])
def test_a_profile_is_validated_when_it_is_built(change, words):
    base = dict(name="mine", sizes=(Size("tiny", 64, 2, 8),), entries=(Entry("numpy", "default"),))
    with pytest.raises(ContractError, match=words):
        Profile(**{**base, **change})


def test_settings_take_every_shared_field_from_the_profile_by_name():
    p = dataclasses.replace(profiles.get("quick"), loss="mse", activation="tanh", lr=0.3, seed=7,
                            baseline=Series("torch", "eager", "cpu"), start_limit_s=99.0,
                            policy=Policy(rounds=7))
    s = settings(p, threads=2, cpus=(0, 1), check=False)
    shared = [f.name for f in dataclasses.fields(RunSettings) if hasattr(p, f.name)
              and f.name not in ("threads", "peak_n_cpu")]  # given; defaulted to peak_n
    assert len(shared) >= 10 and all(getattr(s, n) == getattr(p, n) for n in shared)
    assert s.threads == 2 and s.peak_n_cpu == p.peak_n and s.start_limit == 99.0
    assert not s.check
    with pytest.raises(ContractError, match="threads must be a positive integer"):
        settings(p, threads=0, cpus=None)


# Seconds on the GPU machine (16 cores, cold caches), pessimistic and likely, in the worker
# design (harness/bench/cells.py): every cell is a worker started once (a fresh python
# importing torch/jax and starting CUDA: 4-6 s; CuPy compiles its kernels cold; a cold
# torch.compile 20-40 s), then each round times one block of every worker of the size and
# of each device's peak, after which the scheduler waits until the worker is quiet.
PESSIMISTIC = {"cpu": 3.0, "gpu": 6.0, "cupy": 9.0, "compiled": 35.0, "peak_gpu": 8.0,
               "peak_cpu": 3.0, "block_gpu": 0.1, "block_cpu": 0.35, "block_peak": 0.3,
               "tta_cpu": 2.0, "tta_gpu": 7.0, "check": 60.0, "start": 3.0, "report": 10.0}
LIKELY = {"cpu": 2.0, "gpu": 4.0, "cupy": 5.0, "compiled": 20.0, "peak_gpu": 5.0,
          "peak_cpu": 2.0, "block_gpu": 0.06, "block_cpu": 0.2, "block_peak": 0.2,
          "tta_cpu": 1.0, "tta_gpu": 5.0, "check": 40.0, "start": 2.0, "report": 8.0}


def _estimate(profile, p: Plan, cost: dict, check: bool = True) -> float:
    """Seconds of `make gpu` (check=False: the sweep alone, what the wall budget bounds)."""
    def start(c):
        if c.device == "cpu":
            return cost["cpu"]
        if c.mode in ("compile", "reduce-overhead"):
            return cost["compiled"]
        return cost["cupy"] if c.impl == "cupy" else cost["gpu"]

    starts = sum(start(c) for c in p.cells)
    rounds, peaks = 0.0, set()
    for size in {c.size.name for c in p.cells}:  # a size's blocks: its cells and their peaks
        group = [c for c in p.cells if c.size.name == size]
        named = peak.peak_jobs(settings(profile, threads=1, cpus=None),
                               [Key.of(c) for c in group])
        peaks |= set(named)
        rounds += sum(cost[f"block_{c.device}"] for c in group)
        rounds += cost["block_peak"] * len(named)
    starts += sum(cost[f"peak_{name.split('-')[0]}"] for name in peaks)  # one worker each, all run
    tta = sum(cost["tta_" + g.device] for g in p.tta)
    sweep = starts + profile.policy.rounds * rounds + tta
    return sweep + (cost["check"] + cost["start"] + cost["report"] if check else 0.0)


def test_gpu_profile_fits_make_gpu_in_six_minutes():
    """The counts and estimates quoted in harness/bench/profiles.py, and the hard bound."""
    profile = profiles.get("gpu")
    p = plan(profile, runnable())
    assert len(p.cells) == 22
    assert len(p.tta) == 4
    # tiny first: its compile and CUDA-graph cells exist nowhere else, so a spent budget must
    # not be what cuts them; then from the most work down
    assert list(dict.fromkeys(c.size.name for c in p.cells)) == ["tiny", "huge", "large",
                                                                   "medium"]
    assert {(c.mode, c.size.name) for c in p.cells if c.mode in ("compile", "reduce-overhead")} \
        == {("compile", "tiny"), ("reduce-overhead", "tiny")}
    assert not any(c.device == "cpu" and c.size.name == "huge" for c in p.cells)
    assert {c.size.name for c in p.cells if c.impl == "numpy"} == {"tiny", "medium", "large"}
    # the TF32 peak beside the float32 one where (and only where) TF32 cells are
    keys = [Key.of(c) for c in p.cells if c.size.name == "huge"]
    assert list(peak.peak_jobs(settings(profile, threads=1, cpus=None), keys)) == [
        "gpu", "gpu-tf32"]
    assert 210 <= _estimate(profile, p, LIKELY) <= 240  # profiles.py says ~230 s
    assert 345 <= _estimate(profile, p, PESSIMISTIC) <= 375  # ~360 s: about 6 minutes
    # The wall budget is the sweep's (it starts after the check, which has its own limit):
    # it holds the pessimistic sweep, and whatever happens `make gpu` ends in ~7 minutes.
    assert 275 <= _estimate(profile, p, PESSIMISTIC, check=False) <= profile.wall_budget_s
    worst = profile.check_timeout_s + profile.wall_budget_s + PESSIMISTIC["start"] \
        + PESSIMISTIC["report"]
    assert worst <= 7.5 * 60
    # A hang costs a row and at most a minute (a check shard two), never the run.
    assert profile.time_limit_s <= 60 and profile.check_timeout_s <= profile.wall_budget_s / 2
    huge = next(z for z in profile.sizes if z.name == "huge")
    assert 0.5e12 < huge.flops < 0.6e12  # "~0.55 TFLOP per step", as profiles.py says
    floats = 2 * huge.n_samples * (huge.n_features + 4 * huge.n_hidden)  # X, Z1, A1, dZ1, ...
    assert 4 * floats < 8 * 2**30  # float32 bytes, generously counted: far below an H200's 141 GB
