"""`bench`: faulty cells are recorded and the sweep goes on, bad options exit 2, and a tiny
end-to-end run produces a complete run folder. No timing value is ever asserted."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

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


# ---- the gpu profile, the check on every device, the wall budget ----------------------------
def _known() -> dict[str, tuple[str, ...]]:
    return bench._known()  # every registered implementation and the peer row, all "runnable"


def test_gpu_profile_on_a_cpu_only_machine_says_why_each_gpu_cell_cannot_run(tmp_path):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    run = bench.new_run(parser.parse_args(["--profile", "gpu", "--no-check",
                                           "--out", str(tmp_path)]))
    plan = run.meta["plan"]
    available = bench.probe(run, plan["cells"] + plan["tta"])  # one subprocess, no cell
    gpu = [c for c in plan["cells"] if c["device"] == "gpu"]
    if any(available[f"{c['impl']}/{c['mode']}/gpu"][0] for c in gpu):
        pytest.skip("this machine runs some GPU cells (tests/test_gpu.py covers them)")
    rows = [bench.run_cell(run, c, available) for c in gpu]  # unavailable: no subprocess
    assert rows and all(r["status"] == "unavailable" and r["reason"] for r in rows)
    assert {r["impl"] for r in rows} == {"torch", "jax", "cupy"}
    cpu = {(c["impl"], c["mode"]) for c in plan["cells"] if c["device"] == "cpu"}
    assert cpu == {("numpy", "default"), ("sklearn", "default")}
    assert all(available[f"{i}/{m}/cpu"][0] for i, m in cpu)  # the reference rows run


# Seconds per process on the GPU machine (16 cores, cold caches), pessimistic: a fresh
# python importing torch/jax and starting CUDA 4-6 s, a cold torch.compile 20-40 s.
PESSIMISTIC = {"cpu": 3.0, "gpu": 6.0, "compiled": 35.0, "memory": 6.0, "tta_cpu": 2.0,
               "tta_gpu": 7.0, "peaks": 13.0, "check": 120.0, "start": 3.0, "report": 10.0}
LIKELY = {"cpu": 2.0, "gpu": 4.0, "compiled": 20.0, "memory": 4.0, "tta_cpu": 1.0,
          "tta_gpu": 5.0, "peaks": 10.0, "check": 75.0, "start": 2.0, "report": 8.0}


def _estimate(plan: dict, cost: dict) -> float:
    cells = sum(cost["cpu"] if c["device"] == "cpu" else
                cost["compiled"] if c["mode"] in ("compile", "reduce-overhead") else cost["gpu"]
                for c in plan["cells"])
    memory = cost["memory"] * sum(c["memory"] for c in plan["cells"])
    tta = sum(cost["tta_" + g["device"]] for g in plan["tta"])
    return (cells + memory + tta + cost["peaks"] + cost["check"] + cost["start"]
            + cost["report"])


def test_gpu_profile_fits_make_gpu_in_six_minutes():
    """The counts and estimates quoted in harness/profiles.py, and the hard bound."""
    profile = profiles.get("gpu")
    plan = profiles.plan(profile, _known())
    assert len(plan["cells"]) == 25
    assert sum(c["memory"] for c in plan["cells"]) == 3  # eager/jit/cupy at huge
    assert not any(c["memory"] for c in plan["cells"]
                   if c["mode"] in ("compile", "reduce-overhead") or "tf32" in c["mode"])
    assert len(plan["tta"]) == 4
    assert [c["size"]["name"] for c in plan["cells"]][0] == "huge"  # largest first
    assert not any(c["device"] == "cpu" and c["size"]["name"] == "huge" for c in plan["cells"])
    assert _estimate(plan, LIKELY) <= 260
    assert _estimate(plan, PESSIMISTIC) <= 380  # over 6 minutes: the wall budget cuts it
    # Whatever happens: bench stops at its wall budget (a running job is killed there),
    # and start-up plus the report fit in what is left of 6 minutes.
    assert profile.wall_budget_s + PESSIMISTIC["start"] + PESSIMISTIC["report"] <= 345
    assert profile.time_limit_s <= 90 and profile.check_timeout_s < profile.wall_budget_s
    huge = next(z for z in profile.sizes if z.name == "huge")
    floats = 2 * huge.n_samples * (huge.n_features + 4 * huge.n_hidden)  # X, Z1, A1, dZ1, ...
    assert 4 * floats < 8 * 2**30  # float32 bytes, generously counted: far below 80 GB


def test_gpu_shards_put_each_compiled_mode_in_a_process_of_its_own():
    assert bench.gpu_shards({}) == [["--device", "gpu"]]  # no GPU, or the probe failed
    both = {"torch/compile/gpu": [True, ""], "torch/reduce-overhead/gpu": [True, ""]}
    shards = bench.gpu_shards(both)
    assert shards[:2] == [["--device", "gpu", "--impl", "torch:compile"],
                          ["--device", "gpu", "--impl", "torch:reduce-overhead"]]
    rest = shards[2]
    specs = [rest[i + 1] for i in range(2, len(rest), 2)]
    assert "torch:eager" in specs and "numpy" in specs and "jax" in specs
    assert not any(s in specs for s in ("torch", "torch:compile", "torch:eager-tf32"))
    one = bench.gpu_shards({"torch/compile/gpu": [True, ""]})
    assert len(one) == 2 and "torch:reduce-overhead" in one[1]  # the rest says why not


def _fd(tensor):
    return {"kind": "fd", "impl": "numpy", "mode": "default", "device": "cpu",
            "tensor": tensor, "ok": True}


def test_merged_check_parts_are_one_report():
    cpu = {"ok": True, "rows": [_fd("W1"), {"kind": "grad", "impl": "torch", "device": "cpu"}],
           "unavailable": [{"impl": "cupy", "mode": "default", "device": "cpu", "reason": "x"}],
           "curves": [{"impl": "torch", "epoch": 0}], "timings": {"torch eager (cpu)": 1.0}}
    gpu = {"ok": False, "rows": [_fd("W1"), {"kind": "grad", "impl": "torch", "device": "gpu"}],
           "unavailable": [{"impl": "numpy", "mode": "default", "device": "gpu", "reason": "y"}],
           "curves": [], "timings": {"torch compile (gpu)": 9.0}}
    failed = {"ok": None, "error": "no JSON from check: boom"}
    m = bench.merge_checks([cpu, gpu, failed], 12.5, shards=[{"args": []}] * 3)
    assert [r["kind"] for r in m["rows"]] == ["fd", "grad", "grad"]  # fd rows once
    assert [u["device"] for u in m["unavailable"]] == ["cpu", "gpu"]
    assert m["ok"] is False and m["exit_code"] == 1 and m["error"].endswith("boom")
    assert m["timings"] == {"torch eager (cpu)": 1.0, "torch compile (gpu)": 9.0}
    assert m["seconds"] == 12.5 and len(m["shards"]) == 3
    assert bench.merge_checks([cpu, failed], 1.0)["ok"] is None
    assert bench.merge_checks([cpu, cpu], 1.0)["ok"] is True


def test_a_gpu_plan_checks_every_device_in_parallel_parts(tmp_path, monkeypatch):
    started = []

    def fake_shard(args):  # a check process that prints a report naming its arguments
        started.append(args)
        report = {"ok": True, "rows": [_fd("W1"), {"kind": "grad", "args": args}],
                  "unavailable": [], "curves": [], "timings": {" ".join(args): 0.1}}
        err = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen([sys.executable, "-c", f"print({json.dumps(report)!r})"],
                                stdout=subprocess.PIPE, stderr=err, text=True)
        return bench.CheckShard(args, proc, err, 0.0)

    monkeypatch.setattr(bench, "_start_shard", fake_shard)
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    run = bench.new_run(parser.parse_args(["--profile", "gpu", "--size", "tiny",
                                           "--out", str(tmp_path)]))
    check = bench.CheckRun(run)
    assert started == [["--device", "cpu"]]  # at once, beside the probe
    assert ("torch", "compile", "gpu") in check.probe_triples()
    check.start_gpu({"torch/compile/gpu": [True, ""], "torch/reduce-overhead/gpu": [True, ""]})
    check.finish()
    stored = json.loads((run.path / "check.json").read_text())
    assert stored["ok"] is True and len(stored["shards"]) == 4
    assert [r["kind"] for r in stored["rows"]] == ["fd"] + ["grad"] * 4
    assert [s["args"] for s in stored["shards"]] == started
    assert run.meta["check_seconds"] >= 0

    cpu_only = bench.new_run(parser.parse_args(["--profile", "quick", "--impl", "numpy",
                                                "--out", str(tmp_path / "cpu")]))
    started.clear()
    check = bench.CheckRun(cpu_only)
    check.start_gpu({})
    check.finish()
    assert started == [[]] and check.probe_triples() == []  # `check --json`, as always
    assert "shards" not in json.loads((cpu_only.path / "check.json").read_text())


def test_a_spent_wall_budget_leaves_jobs_for_resume(tmp_path, capsys):
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy", "--size", "tiny",
                     "--no-check", "--wall-budget", "1", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    done = Run.load(path)
    assert done.cells == [] and done.tta == [] and done.meta["peak"] == {}
    left = done.meta["runs"][-1]["not_started"]
    assert len(left["cells"]) == 1 and len(left["tta"]) == 1
    assert "--resume" in capsys.readouterr().out
    assert cli.main(["bench", "--resume", str(path), "--wall-budget", "0"]) == 0
    done = Run.load(path)
    assert [c["status"] for c in done.cells] == ["ok"] and len(done.tta) == 1


def test_ctrl_c_keeps_finished_cells_and_resume_finishes_the_run(tmp_path):
    """A real SIGINT to the whole process group (what Ctrl-C sends) while the second cell
    hangs: the first cell stays on disk, the run exits non-zero, `--resume` finishes it."""
    import os
    import signal
    import time

    from tests.conftest import ROOT

    run = _run(tmp_path, "--time-limit", "60")
    plan = run.meta["plan"]
    plan["cells"] = [plan["cells"][0], {**plan["cells"][0], "dtype": "float64", "fault": "hang"}]
    plan["tta"] = []
    run.save_meta()
    env = {**os.environ, cell.FAULTS_ENV: "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "bench", "--resume", str(run.path)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(Run.load(run.path).cells) < 1:
        time.sleep(0.2)
    time.sleep(1.0)  # the hanging cell has started
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "interrupted" in out + err and "--resume" in out + err
    assert "Traceback" not in err
    done = Run.load(run.path)
    assert [(c["dtype"], c["status"]) for c in done.cells] == [("float32", "ok")]

    plan = done.meta["plan"]
    plan["cells"][1].pop("fault")  # the "hang" is gone: resume runs only the missing cell
    done.save_meta()
    assert cli.main(["bench", "--resume", str(run.path)]) == 0
    assert [(c["dtype"], c["status"]) for c in Run.load(run.path).cells] == [
        ("float32", "ok"), ("float64", "ok")]
