"""bench --profile scaling: the plan, the rows (paired speed-ups), the rounds (interleaved,
interrupted, failed), and its report. One real run (numpy + MPI, tiny, 2 rounds); the rest
with a fake timer, so the round logic is tested without timing anything."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from harness import cli
from harness.bench import scaling
from harness.bench.scaling_rows import baseline_key, scaling_rows
from harness.errors import UsageError
from harness.report.scaling import render
from harness.store import SCALING, SCALING_SAMPLES, ScalingKey, read_csv
from impls import parallel


# ---- the plan ----------------------------------------------------------------------------------
def _keys(configs):
    return {(c["impl"], c["launch"], c["size"], c["workers"]) for c in configs}


def test_the_cpu_plan_has_every_engine_at_both_sizes_and_one_jax_baseline():
    configs = scaling.plan(scaling.PROFILE, None, None, ["cpu"], gpu_count=0, usable_cores=2)
    assert len(configs) == 14  # per size: numpy 1, 2; torch 1, 2; jax 1, 2 processes, 2 devices
    assert ("jax", "process", "tiny", "1") in _keys(configs)
    assert ("jax", "devices", "large", "2") in _keys(configs)
    assert not [c for c in configs if c["impl"] == "jax" and c["workers"] == "1"
                and c["launch"] != "process"]
    assert {c["threads_per_worker"] for c in configs} == {1}


def test_two_workers_on_one_core_are_unavailable_with_the_reason():
    configs = scaling.plan(scaling.PROFILE, ["numpy"], ["tiny"], ["cpu"], 0, usable_cores=1)
    (two,) = [c for c in configs if c["workers"] == "2"]
    assert two["status"] == "unavailable" and "2 usable cores" in two["reason"]
    assert scaling.launches(configs) == [("numpy", "default", "mpiexec", "cpu", 1)]


def test_gpus_set_the_worker_counts_and_engines_without_a_gpu_path_say_why():
    configs = scaling.plan(scaling.PROFILE, None, ["huge"], ["gpu"], gpu_count=4,
                           usable_cores=2)
    assert {c["workers"] for c in configs if c["impl"] == "torch"} == {"1", "2", "4"}
    numpy_rows = [c for c in configs if c["impl"] == "numpy"]
    assert numpy_rows and all(c["status"] == "unavailable" and "CPU only" in c["reason"]
                              for c in numpy_rows)


def test_no_gpu_means_no_gpu_rows_unless_asked_and_then_a_reason():
    assert {c["device"] for c in scaling.plan(scaling.PROFILE, None, None, None, 0, 2)} == {"cpu"}
    asked = scaling.plan(scaling.PROFILE, ["torch"], ["tiny"], ["gpu"], 0, 2)
    assert asked and all(c["reason"] == "nvidia-smi lists no GPU" for c in asked)


@pytest.mark.parametrize("impls, sizes, message", [
    (["cupy"], None, "--impl 'cupy' is not in the scaling profile"),
    (None, ["medium"], "--size 'medium' is not in the scaling profile"),
])
def test_unknown_names_are_one_line_errors(impls, sizes, message):
    with pytest.raises(UsageError, match=message):
        scaling.plan(scaling.PROFILE, impls, sizes, None, 0, 2)


# ---- the rows ----------------------------------------------------------------------------------
def _sample(impl, launch, workers, rnd, value, **phases):
    return {"impl": impl, "mode": "m", "launch": launch, "device": "cpu", "dtype": "float32",
            "size": "large", "workers": str(workers), "round": str(rnd), "block": "0",
            "seconds_per_step": value, **phases}


def _config(impl, launch, workers, **extra):
    return {**_sample(impl, launch, workers, 0, 0), **extra}


def test_speed_ups_are_paired_by_round_with_an_interval():
    # W = 1 slows down in the later rounds, W = 2 along with it: the paired ratio stays 2,
    # though the medians of the two alone would say 1.5 / 0.5 ... whatever the drift.
    w1 = {r: 1.0 * (1 + r) for r in range(6)}
    samples = [_sample("numpy", "mpiexec", 1, r, v) for r, v in w1.items()]
    samples += [_sample("numpy", "mpiexec", 2, r, v / 2, comm_s=0.1, compute_s=0.3)
                for r, v in w1.items()]
    samples.append(_sample("numpy", "mpiexec", 2, 6, 0.01))  # no W = 1 in round 6: unpaired
    rows = scaling_rows([_config("numpy", "mpiexec", 1), _config("numpy", "mpiexec", 2)],
                        samples, {})
    one, two = rows
    assert one["status"] == "ok" and "speedup" not in one
    assert two["speedup"] == pytest.approx(2.0) and two["speedup_low"] == pytest.approx(2.0)
    assert two["efficiency"] == pytest.approx(1.0)
    assert two["rounds"] == 7 and two["comm_share"] == pytest.approx(0.25)
    assert two["step_median_s"] == pytest.approx(statistics.median(
        [v / 2 for v in w1.values()] + [0.01]))


def test_jax_launches_pair_with_its_one_process_baseline():
    key = ScalingKey("jax", "jit", "devices", "cpu", "float32", "tiny", "2")
    assert baseline_key(key) == key._replace(launch="process", workers="1")


def test_failed_and_unavailable_configurations_keep_their_reason():
    rows = scaling_rows(
        [_config("torch", "torchrun", 1), _config("torch", "torchrun", 2),
         _config("jax", "devices", 2, status="unavailable", reason="no jax")],
        [_sample("torch", "torchrun", 1, 0, 1.0)],
        {ScalingKey.of(_config("torch", "torchrun", 2)): "WorkerError: rank 1 died"})
    assert [r["status"] for r in rows] == ["ok", "failed", "unavailable"]
    assert rows[1]["reason"] == "WorkerError: rank 1 died" and rows[2]["reason"] == "no jax"


# ---- the rounds, with a fake timer -------------------------------------------------------------
@pytest.fixture
def fake(monkeypatch):
    """time_many that records each launch and answers W = 1: 2 ms, W = 2: 1 ms a step."""
    monkeypatch.setattr(scaling, "PROFILE", dataclasses.replace(scaling.PROFILE, rounds=4))
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


def test_every_launch_runs_once_a_round_in_a_shuffled_order(tmp_path, fake):
    assert _bench(tmp_path, "--report") == 0
    per_round = [fake.calls[i * 7:(i + 1) * 7] for i in range(4)]
    assert len(fake.calls) == 28 and all(len(set(r)) == 7 for r in per_round)
    assert len({tuple(r) for r in per_round}) > 1  # not the same order every round
    (run,) = tmp_path.iterdir()
    rows = read_csv(run / SCALING)
    assert len(rows) == 14 and {r["status"] for r in rows} == {"ok"}
    assert {float(r["speedup"]) for r in rows if r["workers"] == "2"} == {2.0}
    report = (run / "report.md").read_text()
    assert "faster at W = 2: 2.00x of an ideal 2" in report and (run / "scaling.png").exists()


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
    monkeypatch.setattr(scaling, "PROFILE", dataclasses.replace(scaling.PROFILE, rounds=2))
    assert _bench(tmp_path, "--impl", "numpy", "--size", "tiny", "--report") == 0
    (run,) = tmp_path.iterdir()
    rows = read_csv(run / SCALING)
    assert [(r["workers"], r["status"], r["rounds"]) for r in rows] == [("1", "ok", "2"),
                                                                        ("2", "ok", "2")]
    two = rows[1]
    assert float(two["speedup"]) > 0 and float(two["comm_s"]) > 0
    assert two["cores"] == "0 1" and two["processes"] == "2"
    assert "numpy/default (mpiexec)" in (run / "report.md").read_text()
