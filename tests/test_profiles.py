"""Benchmark profiles and their plans (harness/bench/profiles.py, plan.py): what each profile
runs, restricted by the command line, and that the gpu profile fits `make gpu`'s minutes."""

from __future__ import annotations

import pytest

from harness.bench import profiles
from harness.bench.plan import Plan, plan
from harness.measure.peer import runnable
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
    for profile in profiles.PROFILES.values():
        p = plan(profile, runnable())
        names = {z.name for z in profile.sizes}
        assert p.cells and all(c.size.name in names for c in p.cells)
        # A 95% distribution-free interval for a median needs at least 6 rounds (quick: 5,
        # which says so in its interval's coverage); the reported profiles have 10 or more.
        assert profile.policy.rounds >= (5 if profile.name == "quick" else 10)


# Seconds per process on the GPU machine (16 cores, cold caches), pessimistic: a fresh
# python importing torch/jax and starting CUDA 4-6 s, a cold torch.compile 20-40 s.
PESSIMISTIC = {"cpu": 3.0, "gpu": 6.0, "compiled": 35.0, "memory": 6.0, "tta_cpu": 2.0,
               "tta_gpu": 7.0, "peaks": 13.0, "check": 120.0, "start": 3.0, "report": 10.0}
LIKELY = {"cpu": 2.0, "gpu": 4.0, "compiled": 20.0, "memory": 4.0, "tta_cpu": 1.0,
          "tta_gpu": 5.0, "peaks": 10.0, "check": 75.0, "start": 2.0, "report": 8.0}


def _estimate(p: Plan, cost: dict) -> float:
    cells = sum(cost["cpu"] if c.device == "cpu" else
                cost["compiled"] if c.mode in ("compile", "reduce-overhead") else cost["gpu"]
                for c in p.cells)
    tta = sum(cost["tta_" + g.device] for g in p.tta)
    return cells + tta + cost["peaks"] + cost["check"] + cost["start"] + cost["report"]


def test_gpu_profile_fits_make_gpu_in_six_minutes():
    """The counts and estimates quoted in harness/bench/profiles.py, and the hard bound."""
    profile = profiles.get("gpu")
    p = plan(profile, runnable())
    assert len(p.cells) == 25
    assert len(p.tta) == 4
    assert p.cells[0].size.name == "huge"  # largest first
    assert not any(c.device == "cpu" and c.size.name == "huge" for c in p.cells)
    assert _estimate(p, LIKELY) <= 260
    assert _estimate(p, PESSIMISTIC) <= 380  # over 6 minutes: the wall budget cuts it
    # Whatever happens: bench stops at its wall budget (a running job is killed there),
    # and start-up plus the report fit in what is left of 6 minutes.
    assert profile.wall_budget_s + PESSIMISTIC["start"] + PESSIMISTIC["report"] <= 345
    assert profile.time_limit_s <= 90 and profile.check_timeout_s < profile.wall_budget_s
    huge = next(z for z in profile.sizes if z.name == "huge")
    floats = 2 * huge.n_samples * (huge.n_features + 4 * huge.n_hidden)  # X, Z1, A1, dZ1, ...
    assert 4 * floats < 8 * 2**30  # float32 bytes, generously counted: far below 80 GB
