"""`bench`: faulty cells are recorded and the sweep goes on, bad options exit 2, a spent wall
budget leaves jobs for --resume, Ctrl-C keeps finished cells, and a tiny end-to-end run
produces a complete run folder. No timing value is ever asserted.

The faulty cells come from tests/fixtures/faulty_impl.py, registered as an implementation
through BACKPROP_BENCH_IMPLS (the `faulty` fixture): nothing in the harness is test-only.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness import cli
from harness.bench import command as bench
from harness.bench import profiles
from harness.bench.cells import Cells
from harness.bench.plan import Plan, series_of
from harness.bench.progress import Progress
from harness.codec import from_dict, to_dict
from harness.measure.records import Final, Ready, Sample
from harness.measure.spec import Cell
from harness.store import RunFolder
from harness.store.files import read_csv
from tests.helpers import ROOT, default_sigint

pytestmark = pytest.mark.slow  # subprocesses; a few seconds each


def create(tmp_path, *argv):
    """bench.create(...) -> (folder, settings, plan) for `argv`; without a --profile, the
    quick profile's numpy cell at tiny, with no check."""
    if "--profile" not in argv:
        argv = ("--profile", "quick", "--impl", "numpy", "--size", "tiny", "--no-check", *argv)
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return bench.create(parser.parse_args([*argv, "--out", str(tmp_path)]))


def _time_one(folder, settings, cell) -> dict:
    """Run one cell's size group (start, rounds, stop) and return its row (as stored: text)."""
    run = Cells(folder, settings)
    try:
        assert run.run_size([cell], {}, Progress(2))
    finally:
        run.group.close()
    return folder.cells[-1]


def _folders_of(pid: int) -> list[Path]:
    """The temp folders of the run groups (harness/process.py) process `pid` owns (the temp
    folder is shared: other runs' folders are none of this test's business)."""
    found = []
    for folder in Path(tempfile.gettempdir()).glob("bpb-run-*"):
        try:
            if int((folder / "owner").read_text().split()[0]) == pid:
                found.append(folder)
        except (OSError, ValueError, IndexError):
            continue
    return found


def _replan(folder: RunFolder, cells: list[Cell], tta=()) -> None:
    folder.meta["plan"] = to_dict(Plan(tuple(cells), tuple(tta)))
    folder.save_meta()


@pytest.mark.parametrize("mode, status, reason", [
    ("crash", "failed", "exit code 3: injected crash"),
    ("raise", "failed", "RuntimeError: injected error"),
    ("diverge", "diverged", "non-finite loss"),
])
def test_faulty_cells_are_recorded_with_status_and_reason(tmp_path, faulty, mode, status, reason):
    folder, settings, plan = create(tmp_path)
    row = _time_one(folder, settings, dataclasses.replace(plan.cells[0], impl=faulty, mode=mode))
    assert (row["status"], row["impl"], row["size"]) == (status, "faulty", "tiny")
    assert reason in row["reason"]
    assert (row["step_median_s"] == "") == (mode != "diverge")  # diverged: timed anyway


def test_a_hung_cell_is_killed_at_its_time_limit_which_names_its_phase(tmp_path, faulty):
    folder, settings, plan = create(tmp_path, "--time-limit", "2")
    row = _time_one(folder, settings, dataclasses.replace(plan.cells[0], impl=faulty, mode="hang"))
    assert row["status"] == "timeout"
    assert row["reason"] == "killed after 2 s of start-up (import, set-up, first call, warm-up)"


def test_the_sweep_goes_on_after_a_crash(tmp_path, faulty):
    folder, _, plan = create(tmp_path)
    cell = plan.cells[0]
    _replan(folder, [dataclasses.replace(cell, impl=faulty, mode="crash"),
                     dataclasses.replace(cell, dtype="float64")], plan.tta)
    assert cli.main(["bench", "--resume", str(folder.path)]) == 0
    done = RunFolder.open(folder.path)
    assert [(c["impl"], c["status"]) for c in done.cells] == [("faulty", "failed"),
                                                              ("numpy", "ok")]


def test_unavailable_cells_need_no_subprocess_and_say_why(tmp_path):
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy", "--size", "tiny",
                     "--device", "gpu", "--no-check", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    done = RunFolder.open(path)
    assert done.cells[0]["status"] == "unavailable" and "CPU" in done.cells[0]["reason"]
    assert done.tta[0]["status"] == "unavailable"
    assert done.meta["peak"] == {}  # no GPU cell could run: no GPU peak to measure


def test_gpu_profile_on_a_cpu_only_machine_says_why_each_gpu_cell_cannot_run(tmp_path):
    folder, settings, plan = create(tmp_path, "--profile", "gpu", "--no-check")
    run = Cells(folder, settings)
    available = run.probe(series_of(plan.cells, plan.tta))  # one subprocess, no cell
    gpu = [c for c in plan.cells if c.device == "gpu"]
    if any(available[str(c.series)][0] for c in gpu):
        pytest.skip("this machine runs some GPU cells (tests/test_gpu.py covers them)")
    for size in {c.size.name for c in gpu}:  # unavailable: no worker is started
        assert run.run_size([c for c in gpu if c.size.name == size], available, Progress(1))
    run.group.close()
    rows = folder.cells
    assert rows and all(r["status"] == "unavailable" and r["reason"] for r in rows)
    assert {r["impl"] for r in rows} == {"torch", "jax", "cupy"}
    cpu = {c.series for c in plan.cells if c.device == "cpu"}
    assert {(s.impl, s.mode) for s in cpu} == {("numpy", "default"), ("sklearn", "default")}
    assert all(available[str(s)][0] for s in cpu)  # the reference rows run


@pytest.mark.parametrize("argv, words", [
    (["--profile", "nope"], "unknown profile"),
    (["--impl", "tensorflow"], "unknown implementation"),
    (["--size", "huge"], "unknown size"),
    (["--mode", "jit"], "unknown mode"),
    (["--dtype", "float16"], "unknown dtype"),
    (["--threads", "0"], "--threads"),
    (["--time-limit", "-1"], "--time-limit"),
    (["--wall-budget", "-1"], "--wall-budget"),
    (["--threads", "two"], "invalid int"),
    (["--resume", "/nonexistent/run"], "not a run folder"),
    (["--resume", "/nonexistent/run", "--threads", "1"], "drop --threads"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, argv, words):
    # The safe options first: were a bad one accepted, a tiny run would follow, not a sweep.
    safe = ["--no-check", "--profile", "quick"]
    if "--resume" not in argv:  # --resume refuses restrictions: they come from the run
        safe += ["--impl", "numpy", "--size", "tiny"]
    assert cli.main(["bench", *safe, *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and words in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing written for a bad command line


def test_quick_end_to_end_writes_a_complete_run_folder(tmp_path, capsys):
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy", "--size", "tiny",
                     "--no-check", "--report", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    assert path.name.endswith("-quick")
    done = RunFolder.open(path)
    (row,) = done.cells
    assert row["status"] == "ok" and row["reason"] == ""
    for col in ("setup_s", "first_call_s", "step_median_s", "step_iqr_s", "gflops",
                "peak_gflops", "peak_fraction", "flops_per_step", "import_s", "final_loss"):
        assert float(row[col]) >= 0, col  # present and numeric; the values are not judged
    assert int(row["flops_per_step"]) == profiles.TINY.flops
    assert row["activation"] == done.meta["settings"]["activation"] == "sigmoid"
    assert row["peak_mem_method"] and row["threads"] == str(done.meta["settings"]["threads"])
    # quick: 5 rounds of 2 samples; blocks.csv has every block, samples.csv the kept ones
    blocks = read_csv(path / "blocks.csv")
    mine = [b for b in blocks if b["impl"] == "numpy"]
    assert len(mine) == 5 and {b["round"] for b in mine} == {str(r) for r in range(5)}
    kept = [b for b in mine if b["discarded"] == "False"]
    assert len(done.samples) == int(row["repeats"]) == 2 * len(kept)
    assert {s["round"] for s in done.samples} == {b["round"] for b in kept}
    assert set(done.meta["weather"]["tiny"]) >= {"blocks", "discarded", "episodes", "rounds"}
    assert float(row["step_low_s"]) <= float(row["step_median_s"]) <= float(row["step_high_s"])
    assert float(row["speedup"]) == 1.0  # numpy against itself, round by round
    assert [(t["dataset"], t["status"]) for t in done.tta] == [("moons", "ok")]
    meta = done.meta
    for k in ("profile", "options", "plan", "thread_budget", "machine", "peak", "impl_info"):
        assert k in meta, k
    assert meta["kind"] == "cells"  # what a report reads, never guessed from the files
    assert meta["machine"]["versions"]["numpy"] and meta["machine"]["git"]["commit"]
    assert meta["thread_budget"]["env"]["OMP_NUM_THREADS"] == str(meta["settings"]["threads"])
    assert meta["peak"]["cpu"]["status"] == "ok" and meta["runs"][-1]["finished_utc"]
    peak = [b for b in blocks if b["impl"] == "peak"]  # the peak, measured every round
    assert len(peak) == 5
    assert len(meta["peak"]["cpu"]["rounds_gflops"]) == sum(b["discarded"] == "False"
                                                            for b in peak)
    assert not (path / "check.json").exists()  # --no-check
    out = capsys.readouterr().out
    assert f"report: {path / 'report.md'}\n" in out  # rendered, not "report failed: ..."
    assert "## Speed" in (path / "report.md").read_text()


def test_a_spent_wall_budget_leaves_jobs_for_resume(tmp_path, capsys):
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy", "--size", "tiny",
                     "--no-check", "--wall-budget", "1", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    done = RunFolder.open(path)
    assert done.cells == [] and done.tta == [] and done.meta["peak"] == {}
    left = done.meta["runs"][-1]["not_started"]
    assert len(left["cells"]) == 1 and len(left["tta"]) == 1
    assert "--resume" in capsys.readouterr().out
    assert cli.main(["bench", "--resume", str(path), "--wall-budget", "0"]) == 0
    done = RunFolder.open(path)
    assert [c["status"] for c in done.cells] == ["ok"] and len(done.tta) == 1


def test_ctrl_c_keeps_finished_cells_and_resume_finishes_the_run(tmp_path, faulty):
    """A real SIGINT to the whole process group (what Ctrl-C sends) while the second size's
    cell hangs: the first size stays on disk, the run exits non-zero, `--resume` finishes."""
    folder, _, plan = create(tmp_path, "--time-limit", "60")
    first = plan.cells[0]
    second = dataclasses.replace(first, size=profiles.SMALL)
    _replan(folder, [first, dataclasses.replace(second, impl=faulty, mode="hang")])
    proc = subprocess.Popen([sys.executable, "-m", "harness", "bench", "--resume",
                             str(folder.path)], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=default_sigint)
    deadline = time.time() + 60
    while time.time() < deadline and len(RunFolder.open(folder.path).cells) < 1:
        time.sleep(0.2)
    time.sleep(1.0)  # the hanging cell has started
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "interrupted" in out + err and "--resume" in out + err
    assert "Traceback" not in err
    done = RunFolder.open(folder.path)
    assert [(c["size"], c["status"]) for c in done.cells] == [("tiny", "ok")]
    assert not _folders_of(proc.pid), "caches left behind"

    _replan(done, [first, second])  # the "hang" is gone: resume runs only the missing size
    assert cli.main(["bench", "--resume", str(folder.path)]) == 0
    assert [(c["size"], c["status"]) for c in RunFolder.open(folder.path).cells] == [
        ("tiny", "ok"), ("small", "ok")]


class FakeWorker:
    """A benchmark worker that starts no process: ready at once, blocks of 1 ms a step."""

    def __init__(self, job):
        self.job = job
        peak = job.kind == "peak"
        self.ready = Ready(first_call_s=0.1, steps_per_sample=1, warmup_steps=1,
                           peak_mem_bytes=0, flops_per_step=10**9 if peak else None,
                           method="fake" if peak else None)

    @classmethod
    def start(cls, job, group, env, start_s=None):
        return cls(job)

    def block(self, samples, seconds=None):
        return tuple(Sample(1e-3) for _ in range(samples))

    def wait_quiet(self):
        return 0.0

    def stop(self, seconds=None):
        return Final("ok", 0.5, info={"matmul_precision": "highest"})

    def close(self):
        pass


class FakePending:
    """A pre-started process that starts nothing: imported at once, then a FakeWorker."""

    def __init__(self, job):
        self.job = job

    @classmethod
    def launch(cls, job, group, env, cwd=None):
        return cls(job)

    def imported(self, start_s=None):
        return {"status": "imported"}

    def ready(self, start_s=None):
        return FakeWorker(self.job)

    def result(self, seconds):
        return _fake_once(self.job, None, None, seconds)

    def close(self):
        pass


def _fake_once(job, group, env, seconds):
    if job.kind == "probe":
        return {"status": "ok", "available": {str(s): [True, ""] for s in job.series}}
    return {"status": "ok", "reached": True, "seconds": 0.1, "epochs": 10, "accuracy": 0.99}


@pytest.mark.parametrize("name", [n for n, p in profiles.PROFILES.items() if p.kind == "cells"])
def test_every_profile_plans_and_runs_end_to_end_on_fake_workers(name, tmp_path, monkeypatch):
    """The whole engine for each profile (full included): plan, folder, probe, every size's
    workers walked in its rounds, the peak, time to accuracy, rows, meta; only the workers are
    fakes (tests/test_gpu_branches.py and the cases above run real ones)."""
    from harness.bench import cells, prestart

    for module in (cells, prestart):
        monkeypatch.setattr(module, "Worker", FakeWorker)
        monkeypatch.setattr(module, "run_once", _fake_once)
    monkeypatch.setattr(prestart, "Pending", FakePending)
    assert cli.main(["bench", "--profile", name, "--no-check", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    done = RunFolder.open(path)
    planned = from_dict(Plan, done.meta["plan"])
    assert len(done.cells) == len(planned.cells) and len(done.tta) == len(planned.tta)
    assert {c["status"] for c in done.cells} == {"ok"}
    rounds = profiles.get(name).policy.rounds
    assert {int(c["rounds"]) for c in done.cells} == {rounds}
    assert done.meta["kind"] == "cells" and done.meta["runs"][-1]["finished_utc"]
    assert len(done.meta["peak"]["cpu"]["rounds_gflops"]) >= rounds
