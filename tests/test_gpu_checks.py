"""Before a GPU run wastes its time, and after: the GPU facts nvidia-smi gives (a fake
nvidia-smi on PATH), the checks on them and on each cell's read-back record, the TF32 peak
and which peak a cell is held against, JAX checked before torch, and the report's memory and
share-of-peak sections comparing only what means the same. No GPU here: every GPU fact is a
fake, named as such.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import types

import numpy as np
import pandas as pd
import pytest

import impls
from harness.check import suite
from harness.measure import gpu_checks, machine, peak
from harness.measure.spec import Job, RunSettings, Series
from harness.measure.timing import Policy
from harness.report import costs, outcomes
from harness.report.load import load
from tests.fixtures.runfolder import write_run

# ---- a fake nvidia-smi --------------------------------------------------------------------------
FACTS = {  # field -> value on the fake H200 (nvidia-smi's own spellings and units)
    "name": "NVIDIA H200", "driver_version": "570.86.15", "memory.total": "143771 MiB",
    "index": "0", "uuid": "GPU-1234", "compute_mode": "Default", "mig.mode.current": "Disabled",
    "persistence_mode": "Enabled", "pstate": "P0", "clocks.sm": "345 MHz",
    "clocks.max.sm": "1980 MHz", "clocks.mem": "2619 MHz", "clocks.max.memory": "2619 MHz",
    "power.draw": "75.20 W", "power.limit": "700.00 W", "power.default_limit": "700.00 W",
    "power.max_limit": "700.00 W"}
APPS = "GPU-1234, 4242, /usr/bin/python3, 1024 MiB\n"

FAKE_SMI = r'''#!/usr/bin/env python3
"""A fake nvidia-smi: answers --query-gpu and --query-compute-apps from a JSON file."""
import json, os, sys
spec = json.load(open(os.environ["FAKE_SMI"]))
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
if "query-gpu" in args:
    fields = args["query-gpu"].split(",")
    bad = [f for f in fields if f in spec["rejects"] or f not in spec["facts"]]
    if bad:
        print(f'Field "{bad[0]}" is not a valid field to query.', file=sys.stderr)
        sys.exit(2)
    print(", ".join(spec["facts"][f] for f in fields))
elif "query-compute-apps" in args:
    sys.stdout.write(spec["apps"])
'''


@pytest.fixture
def smi(tmp_path, monkeypatch):
    """Put the fake nvidia-smi first on PATH; returns a function to set what it answers."""
    exe = tmp_path / "bin" / "nvidia-smi"
    exe.parent.mkdir()
    exe.write_text(FAKE_SMI)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    spec = tmp_path / "smi.json"
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SMI", str(spec))

    def answer(facts=None, apps="", rejects=()):
        spec.write_text(json.dumps({"facts": {**FACTS, **(facts or {})}, "apps": apps,
                                    "rejects": list(rejects)}))
    answer()
    return answer


def test_gpu_facts_come_from_nvidia_smi(smi):
    smi(apps=APPS)
    (gpu,) = machine.gpus()
    assert (gpu["name"], gpu["driver"], gpu["memory"]) == ("NVIDIA H200", "570.86.15",
                                                           "143771 MiB")
    assert gpu["compute_mode"] == "Default" and gpu["mig"] == "Disabled"
    assert gpu["persistence"] == "Enabled" and gpu["clocks_max_sm"] == "1980 MHz"
    assert gpu["power_limit"] == "700.00 W" and gpu["power_default_limit"] == "700.00 W"
    assert gpu["processes"] == [{"pid": "4242", "name": "/usr/bin/python3", "memory": "1024 MiB"}]
    line = machine.describe_gpu(gpu)
    assert line.startswith("NVIDIA H200, driver 570.86.15, memory 143771 MiB; compute mode "
                           "Default, MIG Disabled, persistence Enabled, SM clock 345 MHz (max "
                           "1980 MHz), power limit 700.00 W (default 700.00 W)")
    assert line.endswith("1 other process on it: /usr/bin/python3 (1024 MiB)")


def test_a_field_the_driver_rejects_costs_only_that_field(smi):
    smi(facts={"mig.mode.current": "[N/A]"}, rejects=("power.default_limit",))
    (gpu,) = machine.gpus()
    assert gpu["power_default_limit"] is None and gpu["mig"] is None  # rejected; "[N/A]"
    assert gpu["compute_mode"] == "Default" and gpu["power_limit"] == "700.00 W"
    assert gpu["processes"] == []


def test_no_nvidia_smi_means_no_gpus(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert machine.gpus() == []
    (found,) = gpu_checks.machine_findings([])
    assert found.severity == "warn" and found.check == "nvidia-smi"


# ---- the checks on the machine --------------------------------------------------------------
def test_machine_findings_fail_what_would_waste_the_run(smi):
    smi()
    assert gpu_checks.machine_findings(machine.gpus()) == []  # a clean, idle H200
    smi(facts={"compute_mode": "Exclusive_Process"}, apps=APPS)
    found = gpu_checks.machine_findings(machine.gpus())
    assert [(f.check, f.severity) for f in found] == [("compute mode", "fail"),
                                                      ("processes", "fail")]
    assert "pid 4242" in found[1].text
    assert gpu_checks.machine_findings(machine.gpus(), own_pids=[4242])[1:] == []  # ours
    smi(facts={"compute_mode": "Prohibited", "mig.mode.current": "Enabled",
               "persistence_mode": "Disabled", "power.limit": "400.00 W"})
    found = gpu_checks.machine_findings(machine.gpus())
    assert [(f.check, f.severity) for f in found] == [
        ("compute mode", "fail"), ("MIG", "warn"), ("persistence", "warn"), ("power", "warn")]
    assert gpu_checks.failing(found) == found[:1]
    assert gpu_checks.render(found).splitlines()[0].startswith("FAIL compute mode: GPU 0")


def test_unknown_processes_are_a_warning_not_a_pass():
    gpu = {"name": "Fake", "compute_mode": "Default", "processes": None}
    (found,) = gpu_checks.machine_findings([gpu])
    assert found.check == "processes" and found.severity == "warn"


def test_before_run_checks_the_toolchain_only_for_compiled_torch_on_a_gpu(monkeypatch):
    monkeypatch.setattr(gpu_checks.readback, "c_toolchain", lambda: "no C compiler")
    series = [Series("torch", m, d) for m in ("eager", "compile", "reduce-overhead")
              for d in ("cpu", "gpu")]
    gpus = [{"name": "Fake", "compute_mode": "Default", "processes": []}]
    found = gpu_checks.before_run(gpus, series)
    assert [f.series for f in found] == ["torch/compile/gpu", "torch/reduce-overhead/gpu"]
    assert gpu_checks.before_run(None, [Series("numpy", "default", "cpu")]) == []
    monkeypatch.setattr(gpu_checks.readback, "c_toolchain", lambda: "")
    assert gpu_checks.before_run(gpus, series) == []


# ---- the checks on a cell's record -------------------------------------------------------------
GPU = {"device": "Fake H200"}  # what a GPU series' info() reads back as its device


@pytest.mark.parametrize("series, info, checks", [
    (Series("torch", "eager", "gpu"), {**GPU, "tf32": False, "matmul_precision": "highest (...)"},
     []),
    (Series("jax", "jit", "gpu"), {**GPU, "tf32": False, "matmul_precision": "bf16_bf16_f32"},
     ["precision"]),
    (Series("torch", "eager-tf32", "gpu"), {**GPU, "tf32": True}, []),
    (Series("torch", "eager-tf32", "gpu"), {**GPU, "tf32": False, "matmul_precision": "highest"},
     ["precision"]),
    (Series("cupy", "default", "gpu"), {**GPU, "tf32": True, "tf32_override": "1"},
     ["precision"]),
    (Series("cupy", "default", "gpu"), {**GPU, "matmul_precision": "highest"}, ["precision"]),
    # a GPU series whose library ran on the CPU after all: its full float32 proves nothing
    (Series("torch", "eager", "gpu"), {"device": "cpu", "tf32": False,
                                       "matmul_precision": "highest (full float32)"}, ["device"]),
    (Series("jax", "jit", "gpu"), {"device": "cpu", "backend": "cpu", "tf32": False,
                                   "matmul_precision": "highest"}, ["device"]),
    (Series("cupy", "default", "gpu"), {"tf32": False, "matmul_precision": "highest"},
     ["device"]),
    (Series("jax", "nojit", "cpu"), {"cpu_dispatch": "synchronous"}, []),
    (Series("jax", "jit-async", "cpu"), {"cpu_dispatch": "synchronous"}, ["dispatch"]),
    (Series("jax", "jit", "cpu"), {}, ["dispatch"]),  # not read back: cannot show it
    (Series("torch", "reduce-overhead", "gpu"), {**GPU, "tf32": False, "cudagraph_skips": 0,
                                                 "matmul_precision": "highest"}, []),
    (Series("torch", "reduce-overhead", "gpu"), {**GPU, "tf32": False,
                                                 "matmul_precision": "highest"},
     ["CUDA graphs"]),
    (Series("numpy", "default", "cpu"), {}, []),
], ids=lambda v: str(v) if isinstance(v, Series) else None)
def test_of_record_holds_each_record_to_its_mode(series, info, checks):
    found = gpu_checks.of_record(series, info)
    assert [f.check for f in found] == checks
    assert {f.check for f in found} <= set(gpu_checks.checks_of(series, info))  # named there


def test_checks_of_names_every_check_a_record_gets():
    compiled = Series("torch", "reduce-overhead", "gpu")
    assert gpu_checks.checks_of(compiled, {"compile_threads": 8}, compile_threads_bound=8) == [
        "device", "precision", "CUDA graphs", "compile threads"]
    assert gpu_checks.checks_of(compiled, {}, compile_threads_bound=8) == [
        "device", "precision", "CUDA graphs"]  # no pool read back: nothing to hold to a bound
    assert gpu_checks.checks_of(Series("jax", "jit", "cpu"), {}) == ["dispatch"]
    assert gpu_checks.checks_of(Series("numpy", "default", "cpu"), {}) == []


def test_the_compile_pool_bound_is_what_the_process_was_told(monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_COMPILE_THREADS", raising=False)
    assert gpu_checks.compile_threads_bound({}, threads=2) == 2  # torch_impl's own bound
    env = gpu_checks.compile_threads_env(16, 2)
    assert env == {"TORCHINDUCTOR_COMPILE_THREADS": "8"}
    assert gpu_checks.compile_threads_bound(env, threads=2) == 8
    monkeypatch.setenv("TORCHINDUCTOR_COMPILE_THREADS", "3")  # the caller's choice stands
    assert gpu_checks.compile_threads_env(16, 2) == {}
    assert gpu_checks.compile_threads_bound({}, threads=2) == 3
    assert gpu_checks.compiles_cold(Series("torch", "compile", "cpu"))
    assert not gpu_checks.compiles_cold(Series("jax", "jit", "gpu"))


def test_compile_threads_share_the_cores():
    assert gpu_checks.compile_threads(16, 4) == 4 and gpu_checks.compile_threads(2, 4) == 1
    assert gpu_checks.compile_threads(16, 0) == 16


# ---- the TF32 peak, and which peak a cell is held against -----------------------------------
SETTINGS = RunSettings(threads=1, cpus=None, loss="bce", lr=0.01, seed=0, activation="sigmoid",
                       policy=Policy(), time_limit_s=60.0, peak_n=32, peak_n_cpu=32,
                       check=False, check_timeout_s=60.0, wall_budget_s=None)


def test_which_peak_a_cell_is_held_against():
    assert peak.peak_key("gpu") == "gpu" and peak.peak_key("gpu", "tf32") == "gpu-tf32"
    assert peak.held_against("gpu", True, {"gpu", "gpu-tf32"}) == "gpu-tf32"
    assert peak.held_against("gpu", True, {"gpu"}) is None  # never the float32 peak
    assert peak.held_against("gpu", False, {"gpu"}) == "gpu"
    assert peak.held_against("cpu", False, {"gpu"}) is None
    assert peak.is_tf32("tf32 (allow_tf32 True ...)") and not peak.is_tf32("highest (...)")
    assert not peak.is_tf32(float("nan"))
    job = peak.peak_job(SETTINGS, "gpu", "tf32")
    assert [(s.impl, s.mode) for s in job.series] == [("torch", "eager-tf32"),
                                                      ("jax", "jit-tf32")]
    assert peak.peak_job(SETTINGS, "gpu").series == ()


def _fake(name: str, tf32: bool, available=True):
    """numpy's implementation under another name, "running on a GPU", whose info() reads back
    `tf32` (a stand-in for a library whose switch did or did not take)."""
    real = impls.get("numpy")
    return dataclasses.replace(
        real, name=name, modes=("default", "eager", "jit", "eager-tf32", "jit-tf32"),
        _available=lambda d, m: (available, "" if available else "faked away"),
        _session=lambda *a, device, mode, **kw: real._session(*a, device="cpu", mode="default",
                                                              **kw),
        info=lambda d, m: {"tf32": tf32, "matmul_precision": "tf32 (fake)" if tf32
                           else "highest (fake: the switch did not take)"})


def test_the_tf32_peak_is_measured_only_where_tf32_is_read_back(monkeypatch):
    fakes = {"torch": _fake("torch", tf32=True), "jax": _fake("jax", tf32=True)}
    monkeypatch.setattr(peak, "resolve", lambda name: fakes[name])
    out: dict = {}
    step, sync, value, info, _ = peak.peak_stepper(peak.peak_job(SETTINGS, "gpu", "tf32"), out)
    assert out["key"] == "gpu-tf32" and out["precision"] == "tf32" and info["tf32"] is True
    assert out["method"] == "torch (eager-tf32) tf32 training step, N=F=H=32, K=1"
    last = step()
    sync()
    assert np.isfinite(value(last))
    # torch's TF32 switch does not take, jax is not there: no TF32 peak, and why
    fakes = {"torch": _fake("torch", tf32=False), "jax": _fake("jax", tf32=True, available=False)}
    out = {}
    assert peak.peak_stepper(peak.peak_job(SETTINGS, "gpu", "tf32"), out) is None
    assert out["status"] == "unavailable"
    assert out["reason"] == ("no tf32 peak on gpu: torch (eager-tf32): asked for tf32, but info()"
                             " reads back 'highest (fake: the switch did not take)'; jax "
                             "(jit-tf32): faked away")


def test_the_float32_peak_refuses_a_library_that_runs_tf32(monkeypatch):
    fakes = {"torch": _fake("torch", tf32=True), "cupy": _fake("cupy", tf32=False),
             "jax": _fake("jax", tf32=False)}
    monkeypatch.setattr(peak, "resolve", lambda name: fakes[name])
    out: dict = {}
    peak.peak_stepper(Job("peak", SETTINGS, device="gpu"), out)
    assert out["key"] == "gpu" and out["method"].startswith("cupy (default) float32")


# ---- JAX before torch -----------------------------------------------------------------------
def test_the_check_asks_jax_first_when_a_gpu_is_among_the_devices(monkeypatch):
    asked = []
    real = impls.get("numpy")
    fake = {n: dataclasses.replace(real, name=n, modes=("m",), timing_only=(),
                                   _available=lambda d, m, n=n: asked.append(n) or (True, ""))
            for n in ("cupy", "jax", "numpy", "torch")}
    monkeypatch.setattr(suite, "impls", types.SimpleNamespace(names=lambda: sorted(fake),
                                                              get=fake.__getitem__))
    targets, _ = suite.select([], ("cpu", "gpu"))
    assert asked[:2] == ["jax", "jax"] and [t[0].name for t in targets][:2] == ["jax", "jax"]
    asked.clear()
    suite.select(["torch:m", "jax:m"], ("gpu",))
    assert asked == ["jax", "torch"]
    asked.clear()
    suite.select(["torch:m", "jax:m"], ("cpu",))  # no GPU: the order asked for
    assert asked == ["torch", "jax"]


# ---- the report: memory and share of peak -----------------------------------------------------
@pytest.fixture
def gpu_run(tmp_path):
    return write_run(tmp_path / "run", gpu=True)


def _rewrite(path, cells=None, meta=None):
    if cells is not None:
        cells.to_csv(path / "cells.csv", index=False)
    if meta is not None:
        (path / "meta.json").write_text(json.dumps(meta))


def test_memory_is_compared_only_where_it_counts_the_same(gpu_run):
    cells = pd.read_csv(gpu_run / "cells.csv")
    cells["peak_mem_method"] = np.where(
        cells["device"] == "cpu", "host RSS peak over post-setup RSS (VmHWM reset)",
        "session.peak_memory() (device-memory high-water mark)")
    _rewrite(gpu_run, cells)
    text = outcomes.sec_memory(load(gpu_run))
    assert "measured in runs separate from timing" not in text
    assert "before any timed step" in text
    assert "**torch: allocated peak** is the most bytes torch's caching allocator" in text
    assert "**CuPy: pool held** is the bytes CuPy's memory pool holds" in text
    assert "no framework is ranked against another on the GPU" in text
    assert "host RSS growth on the cpu at its largest size (xl):" in text  # CPU: one kind
    for kind in ("torch: allocated peak", "JAX: peak in use", "CuPy: pool held"):
        assert f"{kind} on the gpu: " in text and f"{kind} on the gpu at" not in text
    assert "| torch eager gpu (torch: allocated peak) |" in text  # each column says what


def test_an_old_run_without_methods_still_keeps_the_gpu_counters_apart(gpu_run):
    text = outcomes.sec_memory(load(gpu_run))  # the fixture records no peak_mem_method
    assert "JAX: peak in use on the gpu: jax jit gpu" in text
    assert "host RSS growth on the cpu at its largest size" in text


def test_tf32_cells_are_held_against_a_tf32_peak_or_left_out(gpu_run):
    cells = pd.read_csv(gpu_run / "cells.csv")
    tf32 = cells[(cells["impl"] == "torch") & (cells["device"] == "gpu")].assign(
        mode="eager-tf32", matmul_precision="tf32 (allow_tf32 True, float32 matmul precision "
        "'high')")
    tf32 = tf32.assign(peak_fraction=tf32["peak_fraction"] * 6)  # TF32 against float32's peak
    cells = pd.concat([cells, tf32], ignore_index=True)
    _rewrite(gpu_run, cells)
    text = costs.sec_peak(load(gpu_run))
    assert "underestimates" not in text
    assert "Left out: torch eager-tf32 gpu, whose matmuls ran in TF32" in text
    assert "torch eager-tf32 gpu |" not in text.split("Left out")[1]  # not in the table
    meta = json.loads((gpu_run / "meta.json").read_text())
    meta["peak"]["gpu-tf32"] = dict(meta["peak"]["gpu"], method="torch (eager-tf32) tf32 step")
    _rewrite(gpu_run, meta=meta)
    text = costs.sec_peak(load(gpu_run))
    assert "Left out" not in text and "gpu-tf32: torch (eager-tf32) tf32 step" in text
    assert "torch eager-tf32 gpu" in text
