"""bench --profile scaling: the plan, the rows (paired speed-ups), the rounds (interleaved,
interrupted, failed), and its report. One real run (numpy + MPI, tiny, 2 rounds); the rest
with a fake timer, so the round logic is tested without timing anything."""

from __future__ import annotations

import dataclasses
import json
import statistics

import pytest

import dataparallel as parallel
from harness import cli
from harness.bench import profiles, scaling
from harness.bench.plan import plan
from harness.bench.scaling_rows import baseline_key, scaling_rows
from harness.errors import UsageError
from harness.measure.records import Block, Key, Sample
from harness.measure.spec import Cell, Size
from harness.report import command as report_command
from harness.report.scaling import render
from harness.store import SCALING, SCALING_SAMPLES, read_csv

LARGE = Size("large", 2048, 256, 2048)


# ---- the plan (tests/test_profiles.py has the rest) ---------------------------------------------
def test_two_workers_on_one_core_are_unavailable_with_the_reason():
    two = _cell("numpy", "mpiexec", 2)
    assert "2 usable cores" in scaling.unavailable(two, gpu_count=0, usable_cores=1)
    assert scaling.unavailable(dataclasses.replace(two, device="gpu"), 0, 2) == \
        "nvidia-smi lists no GPU"


@pytest.mark.parametrize("impls, sizes, message", [
    (["cupy"], None, "--impl 'cupy' is not in the scaling profile"),
    (None, ["medium"], "--size 'medium' is not in the scaling profile"),
])
def test_unknown_names_are_one_line_errors(impls, sizes, message):
    with pytest.raises(UsageError, match=message):
        plan(profiles.get("scaling"), {}, impls, None, None, None, sizes)


# ---- the rows ----------------------------------------------------------------------------------
def _cell(impl, launch, workers):
    return Cell(impl, "m", "cpu", "float32", LARGE, launch, workers)


def _block(cell, rnd, value, **phases) -> Block:
    return Block(Key.of(cell), rnd, 0, (Sample(value, **phases),))


def _rows(cells, records, failed=None, unavailable=None):
    return scaling_rows(cells, records, failed or {}, unavailable or {}, {}, {"large": 3})


def test_speed_ups_are_paired_by_round_with_an_interval():
    # W = 1 slows down in the later rounds, W = 2 along with it: the paired ratio stays 2,
    # though the medians of the two alone would say 1.5 / 0.5 ... whatever the drift.
    one, two = _cell("numpy", "mpiexec", 1), _cell("numpy", "mpiexec", 2)
    w1 = {r: 1.0 * (1 + r) for r in range(6)}
    records = [_block(one, r, v) for r, v in w1.items()]
    records += [_block(two, r, v / 2, comm_s=0.1, compute_s=0.3) for r, v in w1.items()]
    records.append(_block(two, 6, 0.01))  # no W = 1 in round 6: unpaired
    a, b = _rows([one, two], records)
    assert a.status == "ok" and a.speedup is None and a.workers == 1
    assert b.speedup == pytest.approx(2.0) and b.speedup_low == pytest.approx(2.0)
    assert b.efficiency == pytest.approx(1.0) and b.block_steps == 3
    assert b.rounds == 7 and b.comm_share == pytest.approx(0.25)
    assert b.step_median_s == pytest.approx(statistics.median(
        [v / 2 for v in w1.values()] + [0.01]))


def test_jax_launches_pair_with_its_one_process_baseline():
    key = Key("jax", "jit", "cpu", "float32", "tiny", "devices", 2)
    assert baseline_key(key) == dataclasses.replace(key, launch="process", workers=1)


def test_failed_and_unavailable_configurations_keep_their_reason():
    cells = [_cell("torch", "torchrun", 1), _cell("torch", "torchrun", 2),
             _cell("jax", "devices", 2)]
    rows = _rows(cells, [_block(cells[0], 0, 1.0)],
                 {Key.of(cells[1]): "WorkerError: rank 1 died"}, {Key.of(cells[2]): "no jax"})
    assert [r.status for r in rows] == ["ok", "failed", "unavailable"]
    assert rows[1].reason == "WorkerError: rank 1 died" and rows[2].reason == "no jax"


# ---- the rounds, with a fake timer -------------------------------------------------------------
def _rounds(monkeypatch, rounds: int) -> None:
    profile = profiles.get("scaling")
    monkeypatch.setitem(profiles.PROFILES, "scaling", dataclasses.replace(
        profile, policy=dataclasses.replace(profile.policy, rounds=rounds)))


@pytest.fixture
def fake(monkeypatch):
    """time_many that records each launch and answers W = 1: 2 ms, W = 2: 1 ms a step."""
    _rounds(monkeypatch, 4)
    calls = []

    def time_many(impl, mode, device, workers, problems, **kw):
        calls.append((impl, kw.get("jax_launch"), workers))
        if fake.fail == (impl, workers):
            raise parallel.WorkerError("rank 1: RuntimeError: boom")
        if fake.interrupt_at and len(calls) == fake.interrupt_at:
            raise KeyboardInterrupt
        step = 2e-3 / workers
        return [{"step_s": [step] * 3, "cpu_per_wall": [1.0] * 3, "compute_s": [step] * 3,
                 "wait_s": [0.0] * 3, "comm_s": [1e-4] * 3, "update_s": [1e-5] * 3,
                 "comm_method": "fake", "used": {"launcher": f"fake {impl}", "processes": workers,
                                                 "worker_info": [{"cores": [r], "threads": 1}
                                                                 for r in range(workers)]}}
                for _ in problems]

    monkeypatch.setattr(scaling, "time_many", time_many)
    fake.calls, fake.fail, fake.interrupt_at = calls, None, 0
    return fake


def _bench(tmp_path, *extra):
    return cli.main(["bench", "--profile", "scaling", "--device", "cpu", "--out",
                     str(tmp_path), *extra])


def test_every_launch_runs_once_a_round_next_to_its_engines_w1(tmp_path, fake):
    assert _bench(tmp_path, "--report") == 0
    per_round = [fake.calls[i * 7:(i + 1) * 7] for i in range(4)]
    assert len(fake.calls) == 28 and all(len(set(r)) == 7 for r in per_round)
    assert len({tuple(r) for r in per_round}) > 1  # not the same order every round
    for r, calls in enumerate(per_round):  # an engine's launches adjacent, A B then B A
        for impl in ("numpy", "torch", "jax"):
            at = [i for i, c in enumerate(calls) if c[0] == impl]
            assert at == list(range(at[0], at[0] + len(at)))
            w = [calls[i][2] for i in at]
            assert w == (sorted(w) if r % 2 == 0 else sorted(w, reverse=True))
    (run,) = tmp_path.iterdir()
    rows = read_csv(run / SCALING)
    assert len(rows) == 14 and {r["status"] for r in rows} == {"ok"}
    assert {float(r["speedup"]) for r in rows if r["workers"] == "2"} == {2.0}
    meta = json.loads((run / "meta.json").read_text())
    assert meta["kind"] == "scaling" and meta["profile"]["kind"] == "scaling"
    report = (run / "report.md").read_text()
    # 4 rounds give an interval covering 87.5%: the report shows 2.00x and draws no verdict
    assert "| 2.00x [2.00x, 2.00x] | 100% | 4 | 87.5% |" in report and "Not judged" in report
    assert "faster at W = 2" not in report and (run / "scaling.png").exists()


def test_a_failing_launch_is_failed_with_its_error_and_not_retried(tmp_path, fake):
    fake.fail = ("torch", 2)
    assert _bench(tmp_path, "--impl", "torch,numpy", "--size", "tiny") == 0
    assert fake.calls.count(("torch", None, 2)) == 1
    (run,) = tmp_path.iterdir()
    bad = [r for r in read_csv(run / SCALING) if r["status"] != "ok"]
    assert [(r["impl"], r["workers"]) for r in bad] == [("torch", "2")]
    assert "rank 1: RuntimeError: boom" in bad[0]["reason"]
    assert "rank 1: RuntimeError: boom" in render(run).read_text()


def test_an_interrupted_run_keeps_the_rounds_it_finished(tmp_path, fake):
    fake.interrupt_at = 2 * 2 + 1  # numpy at tiny: 2 launches a round; stop in round 3
    assert _bench(tmp_path, "--impl", "numpy", "--size", "tiny") == 130  # as Ctrl-C exits
    (run,) = tmp_path.iterdir()
    rows = read_csv(run / SCALING)
    assert [r["rounds"] for r in rows] == ["2", "2"]
    assert {r["round"] for r in read_csv(run / SCALING_SAMPLES)} == {"0", "1"}


@pytest.mark.parametrize("argv, message", [
    (["--threads", "1"], "--threads is not used by the scaling profile"),
    (["--impl", "sklearn"], "--impl 'sklearn' is not in the scaling profile"),
])
def test_options_the_scaling_profile_does_not_take_exit_2(tmp_path, capsys, argv, message):
    assert _bench(tmp_path, *argv) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_scaling_run_cannot_be_resumed_or_mixed_into_a_multi_run_report(tmp_path, fake,
                                                                            capsys):
    assert _bench(tmp_path, "--impl", "numpy", "--size", "tiny") == 0
    (run,) = tmp_path.iterdir()
    assert cli.main(["bench", "--resume", str(run)]) == 2
    assert cli.main(["report", str(run), str(run), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "cannot be resumed" in err and "has a report of its own" in err


def test_the_kind_comes_from_meta_json_not_from_the_files(tmp_path, fake):
    """A scaling folder whose scaling.csv is gone still gets the scaling report (saying what
    it cannot show), never the bench's report of a folder that has no cells.csv."""
    assert _bench(tmp_path, "--impl", "numpy", "--size", "tiny") == 0
    (run,) = tmp_path.iterdir()
    (run / SCALING).unlink()
    text = report_command.render(run).read_text()
    assert text.startswith("# Scaling report") and "could not be read" in text


def test_a_broken_scaling_table_shortens_the_report_without_stopping_it(tmp_path, fake):
    assert _bench(tmp_path, "--impl", "numpy", "--size", "tiny") == 0
    (run,) = tmp_path.iterdir()
    (run / SCALING).write_text("impl,mode\n\"unterminated")
    text = render(run).read_text()
    assert "## Setup" in text and "could not be rendered" in text


# ---- one real run ------------------------------------------------------------------------------
def test_a_real_numpy_mpi_scaling_run_writes_rows_and_a_report(tmp_path, monkeypatch):
    ok, why = parallel.available("numpy", "cpu", "default", 2)
    if not ok:
        pytest.skip(f"numpy + MPI unavailable here: {why}")
    _rounds(monkeypatch, 2)
    assert _bench(tmp_path, "--impl", "numpy", "--size", "tiny", "--report") == 0
    (run,) = tmp_path.iterdir()
    rows = read_csv(run / SCALING)
    assert [(r["workers"], r["status"], r["rounds"]) for r in rows] == [("1", "ok", "2"),
                                                                        ("2", "ok", "2")]
    two = rows[1]
    assert float(two["speedup"]) > 0 and float(two["comm_s"]) > 0
    assert two["cores"] == "0 1" and two["processes"] == "2"
    assert "numpy/default (mpiexec)" in (run / "report.md").read_text()
