"""One typed settings object from profile to child and back (harness/codec.py): what bench
stores and a cell receives is rebuilt as the same frozen dataclasses."""

from __future__ import annotations

import json

import pytest

from harness.bench import profiles
from harness.bench.plan import Plan, plan
from harness.codec import from_dict, from_row, to_dict, to_row
from harness.config import Config, preset
from harness.measure.peer import runnable
from harness.measure.records import Block, Final, Key, Ready, Sample
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


def test_measurement_records_survive_json_typed():
    block = Block(Key("jax", "jit", "cpu", "float32", "tiny", "devices", 2), 3, 1,
                  (Sample(2e-4, cpu_per_wall=0.9, comm_s=1e-5), Sample(2.1e-4)), settle_s=0.02)
    back = _round_trip(Block, block)
    assert back == block and isinstance(back.samples[0], Sample) and back.key.workers == 2
    ready = Ready(import_s=0.4, steps_per_sample=12, blas=({"num_threads": 2},),
                  info={"matmul_precision": "highest"})
    assert _round_trip(Ready, ready) == ready
    assert _round_trip(Final, Final("diverged", float("inf"), "non-finite")).status == "diverged"


def test_a_scaling_cell_carries_its_workers_and_launch():
    cell = Cell("torch", "eager", "cpu", "float32", Size("tiny", 64, 2, 8), "torchrun", 2)
    assert _round_trip(Cell, cell) == cell and str(cell).endswith("torchrun W=2")
    old = {k: v for k, v in to_dict(cell).items() if k not in ("launch", "workers")}
    assert _round_trip(Cell, from_dict(Cell, old)).workers == 1  # a plan stored before them


def test_settings_are_validated_where_they_are_built():
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        RunSettings(**{**to_dict(SETTINGS), "threads": 0, "policy": SETTINGS.policy})
    with pytest.raises(ValueError, match="time_limit_s must be a positive number"):
        from_dict(RunSettings, {**to_dict(SETTINGS), "time_limit_s": -1})
    assert SETTINGS.baseline == Series("numpy", "default", "cpu")  # the default baseline


@pytest.mark.parametrize("text, words", [("x", "rounds 'x' is not an integer"),
                                         ("1.5", "rounds '1.5' is not an integer")])
def test_a_csv_value_of_the_wrong_type_is_named(text, words):
    from harness.store import CellRow

    row = {**to_row(CellRow("numpy", "default", "cpu", "float32", "tiny", status="ok")),
           "rounds": text}
    with pytest.raises(ValueError, match=words):
        from_row(CellRow, row, "cells.csv line 3")
