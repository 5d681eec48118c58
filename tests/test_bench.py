"""`bench`: faulty cells are recorded and the sweep goes on, bad options exit 2, and a tiny
end-to-end run produces a complete run folder. No timing value is ever asserted."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from harness import bench, cell, cli, profiles
from harness.storage import Run

pytestmark = pytest.mark.slow  # subprocesses; a few seconds each


def _run(tmp_path, *extra) -> Run:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--profile", "quick", "--impl", "numpy", "--size", "tiny",
                              "--no-check", "--out", str(tmp_path), *extra])
    return bench.new_run(args)


@pytest.fixture
def faults(monkeypatch):
    monkeypatch.setenv(cell.FAULTS_ENV, "1")  # test-only: lets a cell spec inject a fault


@pytest.mark.parametrize("fault, status, reason", [
    ("crash", "failed", "exit code 3: injected crash"),
    ("raise", "failed", "RuntimeError: injected error"),
    ("diverge", "diverged", "non-finite loss"),
])
def test_faulty_cells_are_recorded_with_status_and_reason(tmp_path, faults, fault, status, reason):
    run = _run(tmp_path)
    cell_spec = {**run.meta["plan"]["cells"][0], "fault": fault}
    row = bench.run_cell(run, cell_spec, available={})
    assert (row["status"], row["impl"], row["size"]) == (status, "numpy", "tiny")
    assert reason in row["reason"]
    assert row["peak_mem_bytes"] is None  # no memory pass for a cell that did not run


def test_a_hung_cell_is_killed_at_its_time_limit(tmp_path, faults):
    run = _run(tmp_path, "--time-limit", "2")
    row = bench.run_cell(run, {**run.meta["plan"]["cells"][0], "fault": "hang"}, available={})
    assert row["status"] == "timeout" and "killed after 2 s" in row["reason"]


def test_the_sweep_goes_on_after_a_crash(tmp_path, faults):
    run = _run(tmp_path)
    plan = run.meta["plan"]
    plan["cells"] = [{**plan["cells"][0], "fault": "crash", "mode": "default"},
                     {**plan["cells"][0], "dtype": "float64"}]
    run.save_meta()
    assert cli.main(["bench", "--resume", str(run.path)]) == 0
    done = Run.load(run.path)
    assert [(c["dtype"], c["status"]) for c in done.cells] == [("float32", "failed"),
                                                               ("float64", "ok")]


def test_unavailable_cells_need_no_subprocess_and_say_why(tmp_path):
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy", "--size", "tiny",
                     "--device", "gpu", "--no-check", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    done = Run.load(path)
    assert done.cells[0]["status"] == "unavailable" and "CPU" in done.cells[0]["reason"]
    assert done.tta[0]["status"] == "unavailable"
    assert done.meta["peak"] == {}  # no GPU cell could run: no GPU peak to measure


@pytest.mark.parametrize("argv, words", [
    (["--profile", "nope"], "unknown profile"),
    (["--impl", "tensorflow"], "unknown implementation"),
    (["--size", "huge"], "unknown size"),
    (["--mode", "jit"], "unknown mode"),
    (["--dtype", "float16"], "unknown dtype"),
    (["--threads", "0"], "--threads"),
    (["--time-limit", "-1"], "--time-limit"),
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


def test_check_output_is_stored_even_when_it_exits_1(tmp_path):
    run = _run(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "print('{\"ok\": false, \"rows\": []}');"
                             " raise SystemExit(1)"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    bench.finish_check(run, proc, started=0.0)
    stored = json.loads((run.path / "check.json").read_text())
    assert stored == {"ok": False, "rows": [], "exit_code": 1}


def test_quick_end_to_end_writes_a_complete_run_folder(tmp_path, capsys):
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy", "--size", "tiny",
                     "--no-check", "--report", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    assert path.name.endswith("-quick")
    done = Run.load(path)
    (row,) = done.cells
    assert row["status"] == "ok" and row["reason"] == ""
    for col in ("setup_s", "first_call_s", "step_median_s", "step_iqr_s", "gflops",
                "peak_gflops", "peak_fraction", "flops_per_step", "import_s", "final_loss"):
        assert float(row[col]) >= 0, col  # present and numeric; the values are not judged
    assert int(row["flops_per_step"]) == profiles.TINY.flops
    assert row["peak_mem_method"] and row["threads"] == str(done.meta["settings"]["threads"])
    assert len(done.samples) == int(row["repeats"]) >= 3
    assert [(t["dataset"], t["status"]) for t in done.tta] == [("moons", "ok")]
    meta = done.meta
    for k in ("profile", "options", "plan", "thread_budget", "machine", "peak", "impl_info"):
        assert k in meta, k
    assert meta["machine"]["versions"]["numpy"] and meta["machine"]["git"]["commit"]
    assert meta["thread_budget"]["env"]["OMP_NUM_THREADS"] == str(meta["settings"]["threads"])
    assert meta["peak"]["cpu"]["status"] == "ok" and meta["runs"][-1]["finished_utc"]
    assert not (path / "check.json").exists()  # --no-check
    assert "report" in capsys.readouterr().out  # rendered, or the reason it was not
