"""Issue 20's wiring, outside the smoke (tests/test_smoke.py has the smoke's): the GPU check's
compile pools, the wall budget after the check, the TF32 peak in a size's rounds and the peak
each cell is held against, info() read when a worker stops, JAX probed before torch, the
memory figure's panels, and the exhibit files' length. GPU facts are fakes, named as such:
nothing here pretends a GPU ran.
"""

from __future__ import annotations

import ast
import os
import textwrap
import time
import types

import numpy as np
import pandas as pd
import pytest

import impls
from harness import cli
from harness.bench import cells, checkrun, profiles
from harness.bench.budget import NO_BUDGET
from harness.bench.progress import Progress
from harness.bench.rows import cell_row
from harness.measure import cell as cell_jobs
from harness.measure import peer
from harness.measure.launch import cell_env
from harness.measure.pool import NotReady, Worker
from harness.measure.records import Final, Outcome, Ready, Sample
from harness.measure.spec import Cell, Job, RunSettings, Series, Size
from harness.measure.timing import Policy
from harness.process import Group
from harness.report import outcomes, plots
from harness.report.load import load
from harness.store import RunFolder
from tests.fixtures.runfolder import write_run
from tests.helpers import ROOT

VAR = "TORCHINDUCTOR_COMPILE_THREADS"
SETTINGS = RunSettings(threads=1, cpus=None, loss="bce", lr=0.01, seed=0, activation="sigmoid",
                       policy=Policy(warmup_steps=2, sample_s=0.002, samples_per_block=2,
                                     rounds=6),
                       time_limit_s=60.0, peak_n=64, peak_n_cpu=64, check=False,
                       check_timeout_s=60.0, wall_budget_s=None)
TINY = Size("tiny", 64, 2, 8)


# ---- the GPU check's compiled parts: each its share of the cores ----------------------------
def test_the_gpu_checks_compiled_parts_get_their_share_of_the_cores(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    envs = []
    group = types.SimpleNamespace(start=lambda argv, env, **kw: envs.append(env) or None)
    common = ["--loss", "bce", "--activation", "sigmoid", "--dtype", "float32"]
    for device, specs in (("gpu", ["torch:compile"]), ("gpu", ["torch:reduce-overhead"]),
                          ("gpu", ["torch:eager", "jax:jit"]), ("cpu", ["torch:compile"])):
        checkrun.start_shard(["--device", device, *common,
                              *[a for s in specs for a in ("--impl", s)]], group)
    share = str(max(1, (os.cpu_count() or 1) // len(checkrun.CHECK_APART)))
    assert [e.get(VAR) for e in envs] == [share, share, None, None]
    assert all(e["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" for e in envs)
    monkeypatch.setenv(VAR, "5")  # the caller's choice stands (the child inherits it)
    envs.clear()
    checkrun.start_shard(["--device", "gpu", "--impl", "torch:compile"], group)
    assert VAR not in envs[0]


# ---- the wall budget is the sweep's: it starts after the check ---------------------------------
@pytest.mark.slow
def test_the_wall_budget_starts_when_the_check_is_done(tmp_path, monkeypatch):
    seen = {}

    class SlowCheck:  # a check that takes its time (0.5 s) and checks nothing
        def __init__(self, folder, settings, plan, budget, group):
            seen["check_budget_end"] = budget.end

        def probe_series(self):
            return []

        def start_gpu(self, available):
            pass

        def finish(self):
            time.sleep(0.5)
            seen["check_done"] = time.time()

    def sweep(self, *args):
        seen["sweep_budget"] = self.budget
        return {"cells": [], "tta": []}

    monkeypatch.setattr(cells, "CheckRun", SlowCheck)
    monkeypatch.setattr(cells, "probe", lambda *a, **k: {})
    monkeypatch.setattr(cells.Cells, "run", sweep)
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy", "--size", "tiny",
                     "--wall-budget", "100", "--out", str(tmp_path)]) == 0
    budget = seen["sweep_budget"]
    assert budget.seconds == 100
    # the sweep has all of its 100 s from the end of the check, not what the check left
    assert budget.end >= seen["check_done"] + 100 - 0.05
    assert budget.end - seen["check_budget_end"] >= 0.5


# ---- the TF32 peak, and the peak each cell is held against -----------------------------------
HUGE = profiles.HUGE


def test_a_cell_is_held_against_the_peak_of_its_read_back_precision():
    values = {r: 2e-3 for r in range(6)}
    gflops = HUGE.flops / 2e-3 / 1e9
    f32, tf32 = {r: 1e5 for r in range(6)}, {r: 4e5 for r in range(6)}
    cell = Cell("torch", "eager-tf32", "gpu", "float32", HUGE)

    def row(precision, peaks):
        out = Outcome("ok", final=Final("ok", 0.5, info={"matmul_precision": precision}))
        return cell_row(cell, SETTINGS, out, values, peaks=peaks)

    ran_tf32 = "tf32 (allow_tf32 True, float32 matmul precision 'high')"
    assert row(ran_tf32, {"gpu": f32, "gpu-tf32": tf32}).peak_fraction == pytest.approx(
        gflops / 4e5)
    assert row(ran_tf32, {"gpu": f32}).peak_fraction is None  # never the float32 peak
    full = "highest (allow_tf32 False ...: full float32)"  # the switch did not take
    assert row(full, {"gpu": f32, "gpu-tf32": tf32}).peak_fraction == pytest.approx(
        gflops / 1e5)
    # the old call, one device's float32 peak: a TF32 cell still gets no share of it
    out = Outcome("ok", final=Final("ok", 0.5, info={"matmul_precision": ran_tf32}))
    assert cell_row(cell, SETTINGS, out, values, f32).peak_fraction is None


class FakeWorker(Worker):
    """A worker, no process, whose blocks take what its job says: a cell's step 2 ms; the
    float32 peak 1e5 GFLOP/s, the TF32 one 4e5."""

    def __init__(self, job: Job):  # not super().__init__: that wants a process
        self.job, self.closed = job, False
        tf32 = job.kind == "peak" and any("tf32" in s.mode for s in job.series)
        self.ready = Ready(first_call_s=0.1, steps_per_sample=1, flops_per_step=10**12,
                           key="gpu-tf32" if tf32 else job.device)
        self.step_s = (2e-3 if job.kind == "time" else 10**12 / 1e9 / (4e5 if tf32 else 1e5))

    def block(self, samples, seconds=None):
        return tuple(Sample(self.step_s) for _ in range(samples))

    def wait_quiet(self):
        return 0.0

    def stop(self, seconds=None):
        tf32 = self.job.cell.mode.endswith("tf32")
        return Final("ok", 0.5, info={"tf32": tf32, "matmul_precision": "tf32 (fake)" if tf32
                                      else "highest (fake)"})

    def close(self):
        self.closed = True


@pytest.mark.parametrize("tf32_peak", ["runs", "unavailable"])
def test_a_size_with_tf32_cells_times_a_tf32_peak_in_every_round(tmp_path, monkeypatch,
                                                                 tf32_peak):
    started = []

    def start(job, group, env, limit=None):
        if job.kind == "peak" and job.series and tf32_peak == "unavailable":
            raise NotReady("unavailable", "no tf32 peak on gpu (fake)")
        started.append(job)
        return FakeWorker(job)

    monkeypatch.setattr(cells.Worker, "start", start)
    folder = RunFolder.create(tmp_path, "gpu", {"peak": {}, "impl_info": {}})
    group = [Cell("torch", m, "gpu", "float32", HUGE) for m in ("eager", "eager-tf32")]
    run = cells.Cells(folder, SETTINGS, NO_BUDGET)
    try:
        assert run.run_size(group, {}, Progress(3))
        run._finish_peaks()
    finally:
        run.group.close()
    peaks = [j for j in started if j.kind == "peak"]
    rows = {r["mode"]: r for r in RunFolder.open(folder.path).cells}
    gflops = HUGE.flops / 2e-3 / 1e9
    assert float(rows["eager"]["peak_fraction"]) == pytest.approx(gflops / 1e5)
    if tf32_peak == "runs":
        assert [bool(j.series) for j in peaks] == [False, True]  # float32, then TF32
        assert folder.meta["peak"]["gpu-tf32"]["gflops"] == pytest.approx(4e5)
        assert len(folder.meta["peak"]["gpu-tf32"]["rounds_gflops"]) == 6  # every round
        assert float(rows["eager-tf32"]["peak_fraction"]) == pytest.approx(gflops / 4e5)
    else:
        assert folder.meta["peak"]["gpu-tf32"]["status"] == "unavailable"
        assert rows["eager-tf32"]["peak_fraction"] in ("", None)  # left out, not / float32
    assert folder.meta["peak"]["gpu"]["gflops"] == pytest.approx(1e5)


def test_a_size_without_tf32_cells_starts_no_tf32_peak(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(cells.Worker, "start", lambda job, *a, **k: started.append(job)
                        or FakeWorker(job))
    folder = RunFolder.create(tmp_path, "gpu", {"peak": {}, "impl_info": {}})
    run = cells.Cells(folder, SETTINGS, NO_BUDGET)
    try:
        assert run.run_size([Cell("torch", "eager", "gpu", "float32", HUGE)], {}, Progress(2))
    finally:
        run.group.close()
    assert [(j.kind, j.series) for j in started] == [("time", ()), ("peak", ())]


# ---- info() is read when the worker stops -------------------------------------------------------
COUNTING = textwrap.dedent('''
    """Test double: NumPy's implementation, whose info() says how many steps had run."""
    from impls import numpy_impl
    from impls.base import Implementation

    STEPS = [0]

    class Counting(numpy_impl.NumpySession):
        def step(self, batch):
            STEPS[0] += 1
            return super().step(batch)

    IMPL = Implementation(
        name="counting", modes=("default",), description="test double: counts its steps",
        _available=lambda device, mode: (device == "cpu", "CPU only"),
        _loss_and_grads=numpy_impl.loss_and_grads, _session=Counting,
        set_threads=numpy_impl.set_threads, info=lambda device, mode: {"steps": STEPS[0]})
''')


@pytest.mark.slow
def test_a_cells_info_is_read_back_when_its_worker_stops(tmp_path, monkeypatch):
    """What a library does at a replay (inductor skipping CUDA graphs) happens after the first
    call: the record is read when the worker stops, after every timed step."""
    path = tmp_path / "counting_impl.py"
    path.write_text(COUNTING)
    monkeypatch.setenv(impls.EXTRA_ENV, str(path))
    group = Group()
    try:
        job = Job("time", SETTINGS, cell=Cell("counting", "default", "cpu", "float32", TINY))
        worker = Worker.start(job, group, cell_env(1, str(group.folder()), "cpu"))
        worker.block(3)
        final = worker.stop()
    finally:
        group.close()
    ran = 1 + worker.ready.warmup_steps + 3 * worker.ready.steps_per_sample
    assert final.status == "ok" and final.info["steps"] >= ran > 1


# ---- JAX before torch, in the probe --------------------------------------------------------------
def test_the_probe_asks_jax_before_torch(monkeypatch):
    asked = []
    monkeypatch.setattr(peer, "resolve", lambda name: types.SimpleNamespace(
        available=lambda device, mode: asked.append(f"{name}:{mode}") or (True, "")))
    series = (Series("torch", "eager", "gpu"), Series("cupy", "default", "gpu"),
              Series("jax", "jit", "gpu"), Series("torch", "compile", "gpu"),
              Series("jax", "nojit", "gpu"))
    out = cell_jobs.job_probe(Job("probe", SETTINGS, series=series))
    assert asked == ["jax:jit", "jax:nojit", "torch:eager", "cupy:default", "torch:compile"]
    assert set(out["available"]) == {str(s) for s in series}


# ---- the memory figure: a panel per meaning --------------------------------------------------------
def test_the_memory_figure_has_one_panel_per_quantity(tmp_path, monkeypatch):
    path = write_run(tmp_path / "run", gpu=True)
    cells_csv = pd.read_csv(path / "cells.csv")
    cells_csv["peak_mem_method"] = np.where(
        cells_csv["device"] == "cpu", "host RSS peak over post-setup RSS (VmHWM reset)",
        "session.peak_memory() (device-memory high-water mark)")
    cells_csv.to_csv(path / "cells.csv", index=False)
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, out, name: figures.append(fig) or name)
    outcomes.sec_memory(load(path))
    (fig,) = figures
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    titles = [ax.get_title() for ax in shown]
    assert titles == ["host RSS growth", "CuPy: pool held", "JAX: peak in use",
                      "torch: allocated peak"]
    for ax, title in zip(shown, titles, strict=True):  # each panel holds its own kind only
        labels = {line.get_label() for line in ax.get_lines()}
        impl = {"host RSS growth": None, "CuPy: pool held": "cupy", "JAX: peak in use": "jax",
                "torch: allocated peak": "torch"}[title]
        assert labels and all((impl or "") in label for label in labels), (title, labels)
        assert all(("gpu" in label) == (impl is not None) for label in labels)
    # without the report's kinds (a table from elsewhere): CPU apart, each GPU counter apart
    table = pd.DataFrame({"impl": ["numpy", "torch", "jax"], "device": ["cpu", "gpu", "gpu"]})
    assert [k for k, _ in plots.memory_panels(table)] == [
        "host RSS growth", "jax: its own device counter", "torch: its own device counter"]


# ---- the exhibit: short files, maths first ----------------------------------------------------------
@pytest.mark.parametrize("name", ["torch_impl.py", "jax_impl.py", "cupy_impl.py",
                                  "numpy_impl.py", "readback.py"])
def test_the_implementation_files_stay_short_and_open_with_their_maths(name):
    text = (ROOT / "impls" / name).read_text()
    assert len(text.splitlines()) < 300, name  # the project's ~300-line limit
    if name in ("torch_impl.py", "jax_impl.py"):
        defs = [n.name for n in ast.parse(text).body
                if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        maths = [defs.index(f) for f in ("loss_fn", "grads", "step")]
        assert maths == sorted(maths) and max(maths) < defs.index("available"), defs
