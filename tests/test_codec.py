"""One typed settings object from profile to child and back (harness/codec.py): what bench
stores and a cell receives is rebuilt as the same frozen dataclasses."""

from __future__ import annotations

import json

import pytest

from harness.bench import profiles
from harness.bench.plan import Plan, plan
from harness.codec import from_dict, to_dict
from harness.config import Config, preset
from harness.measure.peer import runnable
from harness.measure.spec import Cell, Job, RunSettings, Series, Size
from harness.measure.timing import Policy

SETTINGS = RunSettings(threads=2, cpus=(0, 1), loss="bce", lr=0.01, seed=0,
                       activation="tanh", policy=Policy(rounds=3), time_limit_s=60.0,
                       peak_n=512, peak_n_cpu=512, check=True, check_timeout_s=600.0,
                       wall_budget_s=None)


def _round_trip(cls, obj):
    return from_dict(cls, json.loads(json.dumps(to_dict(obj))))


def test_a_job_survives_json_typed():
    job = Job("time", SETTINGS, cell=Cell("torch", "eager", "cpu", "float32",
                                          Size("tiny", 64, 2, 8)))
    back = _round_trip(Job, job)
    assert back == job
    assert isinstance(back.settings.policy, Policy) and back.settings.cpus == (0, 1)
    assert back.cell.size.flops == job.cell.size.flops
    probe = Job("probe", SETTINGS, series=(Series("jax", "jit", "cpu"),))
    assert _round_trip(Job, probe).series == (Series("jax", "jit", "cpu"),)


def test_a_whole_plan_survives_json_typed_with_its_presets():
    p = plan(profiles.get("default"), runnable())
    back = _round_trip(Plan, p)
    assert back == p
    assert isinstance(back.tta[0].tta.config, Config)
    assert back.tta[0].tta.config == preset(back.tta[0].tta.dataset)


def test_the_activation_is_a_setting_carried_to_the_cell_problem():
    cell = Cell("numpy", "default", "cpu", "float32", Size("tiny", 64, 2, 8))
    cfg = SETTINGS.problem(cell)
    assert (cfg.activation, cfg.loss, cfg.dtype, cfg.n_hidden) == ("tanh", "bce", "float32", 8)


def test_unknown_fields_and_kinds_are_errors():
    data = to_dict(SETTINGS)
    with pytest.raises(ValueError, match="unknown field 'threadz'"):
        from_dict(RunSettings, {**data, "threadz": 1})
    with pytest.raises(ValueError, match="expected an object"):
        from_dict(RunSettings, [1, 2])
    with pytest.raises(ValueError, match="unknown job kind"):
        Job("sing", SETTINGS)
