"""The check at the start of a benchmark run (harness/bench/checkrun.py): one process on a CPU
plan, parallel parts on a GPU plan, merged into one report; stored whatever its exit code."""

from __future__ import annotations

import json
import sys
import time

import pytest

from harness.bench import checkrun
from harness.bench.checkrun import (
    CheckRun,
    CheckShard,
    checkable,
    collect_check,
    gpu_shards,
    merge_checks,
)
from harness.measure.spec import Series
from harness.process import Group
from tests.test_bench import create


@pytest.fixture
def group(tmp_path):
    with Group(str(tmp_path)) as g:
        yield g


def test_a_report_is_collected_even_when_check_exits_1(group):
    child = group.start([sys.executable, "-c", "print('{\"ok\": false, \"rows\": []}');"
                         " raise SystemExit(1)"])
    assert collect_check(child, timeout=60) == {"ok": False, "rows": [], "exit_code": 1}


def test_no_json_or_a_timeout_is_an_error_not_a_crash(group):
    child = group.start([sys.executable, "-c", "import sys; sys.exit('boom')"])
    report = collect_check(child, timeout=60)
    assert report["ok"] is None and report["error"] == "no JSON from check: boom"
    child = group.start([sys.executable, "-c", "import time; time.sleep(60)"])
    assert collect_check(child, timeout=1)["error"] == "check killed after 1 s of work (the check)"
    assert child.poll() is not None  # killed, not left running


SAYS_STARTED = ("from harness import process; import time; time.sleep({before}); "
                "process.progress('started'); time.sleep({after}); print('{{\"ok\": true}}')")


def test_start_up_and_work_have_limits_of_their_own_each_named(group):
    """A check that never says "started" is killed at the start-up limit, one that says it and
    then hangs at the work limit; a slow start-up does not eat into the work's time."""
    def run(before, after, start_limit, timeout):
        child = group.start([sys.executable, "-c", SAYS_STARTED.format(before=before,
                                                                         after=after)],
                            channel=True)
        return collect_check(child, timeout, start_limit)

    assert run(60, 0, start_limit=1, timeout=600)["error"] == (
        "check killed after 1 s of start-up (interpreter, imports, devices)")
    assert run(0, 60, start_limit=60, timeout=1)["error"] == (
        "check killed after 1 s of work (the check)")
    # 4 s of start-up, then half a second of work: inside both limits (a work limit of 4 s
    # counted from the process's start, as before, would kill it before it said "started")
    assert run(4, 0.5, start_limit=60, timeout=4) == {"ok": True, "exit_code": 0}
    budget = collect_check(group.start([sys.executable, "-c", "import time; time.sleep(60)"],
                                       channel=True), 600, 600, end=time.time() + 1)
    assert budget["error"] == ("check killed at the run's wall budget, in its start-up "
                               "(interpreter, imports, devices)")


def test_gpu_shards_put_each_compiled_mode_in_a_process_of_its_own():
    assert gpu_shards([]) == []  # nothing the GPU runs: no GPU part
    shards = gpu_shards(["torch:eager", "torch:compile", "jax:jit", "torch:reduce-overhead"])
    assert shards == [["torch:compile"], ["torch:reduce-overhead"], ["torch:eager", "jax:jit"]]


def test_the_check_covers_what_the_plan_times_and_no_more(tmp_path):
    _, settings, plan = create(tmp_path, "--profile", "gpu")
    assert checkable(plan, "cpu") == ["numpy:default"]  # the peer row is not checked here
    gpu = checkable(plan, "gpu")
    assert "torch:compile" in gpu and "cupy:default" in gpu
    assert not [s for s in gpu if "tf32" in s]  # timing-only modes are never checked


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
    m = merge_checks([cpu, gpu, failed], 12.5, shards=[{"args": []}] * 3)
    assert [r["kind"] for r in m["rows"]] == ["fd", "grad", "grad"]  # fd rows once
    assert [u["device"] for u in m["unavailable"]] == ["cpu", "gpu"]
    assert m["ok"] is False and m["exit_code"] == 1 and m["error"].endswith("boom")
    assert m["timings"] == {"torch eager (cpu)": 1.0, "torch compile (gpu)": 9.0}
    assert m["seconds"] == 12.5 and len(m["shards"]) == 3
    assert merge_checks([cpu, failed], 1.0)["ok"] is None
    assert merge_checks([cpu, cpu], 1.0)["ok"] is True


def test_a_gpu_plan_checks_every_device_in_parallel_parts(tmp_path, monkeypatch, group):
    started = []

    def fake_shard(args, group):  # a check process that prints a report naming its arguments
        started.append(args)
        report = {"ok": True, "rows": [_fd("W1"), {"kind": "grad", "args": args}],
                  "unavailable": [], "curves": [], "timings": {" ".join(args): 0.1}}
        child = group.start([sys.executable, "-c", f"print({json.dumps(report)!r})"],
                            channel=True)  # as start_shard: it never says "started"
        return CheckShard(args, child, time.time())

    monkeypatch.setattr(checkrun, "start_shard", fake_shard)
    folder, settings, plan = create(tmp_path, "--profile", "gpu", "--size", "tiny")
    check = CheckRun(folder, settings, plan, group=group)
    common = ["--loss", "bce", "--activation", "sigmoid", "--dtype", "float32"]
    assert started == [["--device", "cpu", *common, "--impl", "numpy:default"]]  # at once
    assert Series("torch", "compile", "gpu") in check.probe_series()
    available = {str(s): [True, ""] for s in check.probe_series()}
    available["cupy/default/gpu"] = [False, "cupy is not installed"]
    check.start_gpu(available)
    check.finish()
    stored = json.loads((folder.path / "check.json").read_text())
    assert stored["ok"] is True and len(stored["shards"]) == 4  # cpu, compile, CUDA graphs, rest
    assert started[1] == ["--device", "gpu", *common, "--impl", "torch:compile"]
    assert "cupy:default" not in started[3] and "torch:eager" in started[3]
    assert {"impl": "cupy", "mode": "default", "device": "gpu",
            "reason": "cupy is not installed"} in stored["unavailable"]
    assert [r["kind"] for r in stored["rows"]] == ["fd"] + ["grad"] * 4
    assert [s["args"] for s in stored["shards"]] == started
    assert folder.meta["check_seconds"] >= 0

    cpu_folder, settings, cpu_plan = create(tmp_path / "cpu")
    started.clear()
    check = CheckRun(cpu_folder, settings, cpu_plan, group=group)
    check.start_gpu({})
    check.finish()
    assert len(started) == 1 and check.probe_series() == []  # one process on a CPU plan
    assert "shards" not in json.loads((cpu_folder.path / "check.json").read_text())
