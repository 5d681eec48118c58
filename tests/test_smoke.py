"""`smoke` (`make gpu-smoke`): every GPU code path once, each a pass / FAIL / unavailable row.

No GPU is needed here: without one every GPU row is unavailable with its reason (exit 0);
`--device cpu` drives the same machinery (the probe, the grads process, the benchmark
worker, the memory hook, the peak) through real CPU implementations and through ones that
crash, hang, raise, diverge or return wrong gradients. Nothing here pretends a GPU ran.
"""

from __future__ import annotations

import json
import textwrap

import pytest

import impls
from harness import cli
from harness.bench import smoke, smoke_rows
from harness.measure.spec import Series

pytestmark = pytest.mark.slow  # subprocesses: a few seconds each

# An implementation written for these tests: NumPy's, with its gradients scaled per mode.
WRONG = textwrap.dedent('''
    from impls import numpy_impl
    from impls.base import Implementation

    SCALE = {"right": 1.0, "double": 2.0, "tf32ish": 1.0 + 1e-3, "tf32bad": 1.1}

    def _loss_and_grads(P, X, T, *, mode, **kw):
        L, G = numpy_impl.loss_and_grads(P, X, T, mode=mode, **kw)
        return L, {k: v * SCALE[mode] for k, v in G.items()}

    IMPL = Implementation(
        name="wrong", modes=tuple(SCALE), description="test double: scaled gradients",
        _available=lambda device, mode: (device == "cpu", "CPU only"),
        _loss_and_grads=_loss_and_grads, _session=numpy_impl.NumpySession,
        set_threads=numpy_impl.set_threads, info=numpy_impl.info,
        timing_only=("tf32ish", "tf32bad"))
''')


def _smoke(capsys, *argv) -> tuple[int, dict]:
    code = cli.main(["smoke", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def _rows(report: dict) -> dict:
    return {r["series"]: r for r in report["rows"]}


def test_without_a_gpu_every_row_is_unavailable_with_its_reason_and_exit_0(monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, even on a machine that has one
    monkeypatch.setattr(smoke.machine, "gpus", lambda: [])  # ... whatever nvidia-smi says
    assert cli.main(["smoke"]) == 0
    out = capsys.readouterr().out
    expected = [f"{n} {m} gpu" for n in impls.names() if n != "numpy"
                for m in impls.get(n).modes] + ["peak gpu", "peak gpu-tf32"]
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["series", "result"]
    for name in expected:
        (line,) = [ln for ln in lines if ln.startswith(name + " ")]
        assert "unavailable" in line and "FAIL" not in line, line
        assert len(line.split("unavailable", 1)[1].split()) > 2, f"no reason: {line}"
    # what nvidia-smi could not say is told first, as a warning that fails nothing
    assert lines[1].startswith("before the run ") and "WARN nvidia-smi: " in lines[1]
    assert f"0 pass, 0 FAIL, {len(expected)} unavailable" in out
    code, report = _smoke(capsys)
    assert code == 0 and report["ok"] and set(_rows(report)) == {*expected, "before the run"}
    assert all(r["status"] == "unavailable" and r["reason"] for r in report["rows"]
               if r["series"] != "before the run")


class Started(Exception):
    """A process the test says must not start."""


def _no_processes(monkeypatch):
    def started(*args, **kwargs):
        raise Started(args)

    for name in ("probe_once", "run_once"):
        monkeypatch.setattr(smoke, name, started)
    monkeypatch.setattr(smoke.Worker, "start", started)


FAKE_H200 = {"index": "0", "name": "NVIDIA H200", "compute_mode": "Default", "mig": "Disabled",
             "persistence": "Enabled", "processes": []}


@pytest.mark.parametrize("gpu, words", [
    ({"compute_mode": "Exclusive_Process"}, "FAIL compute mode: GPU 0 (NVIDIA H200) is in "
                                            "compute mode Exclusive_Process"),
    ({"processes": [{"pid": 4242, "name": "python3", "memory": "1024 MiB"}]},
     "FAIL processes: GPU 0 (NVIDIA H200) is in use by python3 (pid 4242, 1024 MiB)"),
])
def test_what_would_waste_the_run_is_one_fail_row_and_nothing_starts(monkeypatch, capsys,
                                                                     gpu, words):
    monkeypatch.setattr(smoke.machine, "gpus", lambda: [{**FAKE_H200, **gpu}])
    _no_processes(monkeypatch)
    code, report = _smoke(capsys)
    assert code == 1 and not report["ok"]
    (row,) = report["rows"]
    assert row["series"] == "before the run" and row["status"] == "FAIL"
    assert words in row["steps"]["checks"]["detail"]
    assert "nothing was started" in row["steps"]["checks"]["detail"]


def test_the_smokes_own_process_is_not_another_process_on_the_gpu(monkeypatch):
    import os

    mine = {**FAKE_H200, "processes": [{"pid": os.getpid(), "name": "python3"}]}
    monkeypatch.setattr(smoke.machine, "gpus", lambda: [mine])
    row, ruled_out = smoke.Smoke("gpu", [Series("torch", "eager", "gpu")], 80).before()
    assert row.status == "pass" and ruled_out == {}
    assert row.reason == "nothing found that would waste the run"


def test_compiled_modes_without_tritons_toolchain_are_unavailable_and_never_started(
        monkeypatch, capsys):
    monkeypatch.setattr(smoke.machine, "gpus", lambda: [FAKE_H200])
    monkeypatch.setattr(smoke.gpu_checks.readback, "c_toolchain", lambda: "no C compiler")
    probed = []
    monkeypatch.setattr(smoke, "probe_once", lambda job, *a: probed.extend(job.series) or {
        "status": "ok", "available": {str(s): [False, "no GPU (fake)"] for s in job.series}})
    monkeypatch.setattr(smoke.Worker, "start", lambda *a, **k: (_ for _ in ()).throw(
        smoke.NotReady("unavailable", "no GPU (fake)")))
    code, report = _smoke(capsys, "--impl", "torch")
    rows = _rows(report)
    assert code == 0 and rows["before the run"]["status"] == "pass"
    for mode in ("compile", "reduce-overhead"):
        row = rows[f"torch {mode} gpu"]
        assert row["status"] == "unavailable" and row["reason"].startswith(
            "before the run: toolchain: torch.compile on a GPU: Triton cannot build its "
            "launchers (no C compiler)")
    assert {s.mode for s in probed} == {"eager", "eager-tf32"}  # the rest were never asked


def test_the_cpu_rehearsal_passes_every_step_of_a_working_implementation(capsys):
    code, report = _smoke(capsys, "--device", "cpu", "--impl", "numpy")
    assert code == 0, report
    rows = _rows(report)
    numpy, peak = rows["numpy default cpu"], rows["peak cpu"]
    assert numpy["status"] == "pass" and peak["status"] == "pass"
    assert {k for k, s in numpy["steps"].items() if s["ok"]} == {"grads", "timed", "memory"}
    assert float(numpy["steps"]["grads"]["text"]) < 1e-4  # against the float64 reference
    assert numpy["steps"]["timed"]["text"].endswith("/step")
    assert "GFLOP/s" in peak["steps"]["timed"]["text"]


def test_a_crash_a_hang_an_error_and_divergence_are_fail_rows_within_the_budget(capsys,
                                                                                faulty):
    code, report = _smoke(capsys, "--device", "cpu", "--budget", "12",
                          "--impl", "faulty:fine,faulty:crash,faulty:hang",
                          "--impl", "faulty:raise,faulty:diverge")
    assert code == 1 and not report["ok"]
    rows = _rows(report)
    assert rows["faulty fine cpu"]["status"] == "pass"
    # the hang is killed when the budget runs out, in its start-up (which the error names)
    for mode, words in (("crash", "exit code 3: injected crash"),
                        ("hang", "worker timeout: killed after"),
                        ("raise", "RuntimeError: injected error"), ("diverge", "diverged")):
        row = rows[f"faulty {mode} cpu"]
        assert row["status"] == "FAIL" and words in row["steps"]["timed"]["detail"], row
    text = smoke.render([smoke.Row(r["series"], steps={
        k: (s["ok"], s["text"], s["detail"]) for k, s in r["steps"].items()})
        for r in report["rows"]], "cpu", 12.0)
    assert "timed: worker failed: exit code 3: injected crash" in text
    assert "2 pass, 4 FAIL, 0 unavailable" in text  # peak cpu passes too


def test_wrong_gradients_fail_and_tf32_modes_are_held_to_a_sanity_bound(tmp_path, monkeypatch,
                                                                       capsys):
    path = tmp_path / "wrong_impl.py"
    path.write_text(WRONG)
    monkeypatch.setenv(impls.EXTRA_ENV, str(path))
    code, report = _smoke(capsys, "--device", "cpu", "--impl", "wrong")
    assert code == 1
    rows = _rows(report)
    grads = {m: rows[f"wrong {m} cpu"]["steps"]["grads"] for m in
             ("right", "double", "tf32ish", "tf32bad")}
    assert grads["right"]["ok"] and rows["wrong right cpu"]["status"] == "pass"
    assert not grads["double"]["ok"] and "W1" in grads["double"]["detail"]
    # TF32 modes: 1e-3 off passes (not held to float32's 1e-4, and says so); 10% off fails.
    assert grads["tf32ish"]["ok"] and grads["tf32ish"]["text"].endswith("*")
    assert "not held to float32's tolerance" in grads["tf32ish"]["detail"]
    assert not grads["tf32bad"]["ok"] and "sanity bound" in grads["tf32bad"]["detail"]


def test_a_failed_probe_is_a_fail_row_and_every_series_finds_out_for_itself(monkeypatch,
                                                                            capsys):
    monkeypatch.setattr(smoke, "probe_once", lambda *a, **k: {"status": "timeout",
                                                              "reason": "killed after 40 s"})
    code, report = _smoke(capsys, "--device", "cpu", "--impl", "numpy,cupy")
    rows = _rows(report)
    assert code == 1 and rows["probe"]["status"] == "FAIL"
    assert "killed after 40 s" in rows["probe"]["steps"]["probe"]["detail"]
    assert rows["numpy default cpu"]["status"] == "pass"
    cupy = rows["cupy default cpu"]  # no probe answer: its own processes say why
    assert cupy["status"] == "unavailable" and "GPU only" in cupy["reason"]


def test_a_probe_that_says_available_where_a_series_cannot_run_fails_that_row(monkeypatch,
                                                                              capsys):
    said = {"status": "ok", "available": {"cupy/default/cpu": [True, ""]}}
    monkeypatch.setattr(smoke, "probe_once", lambda *a, **k: said)
    code, report = _smoke(capsys, "--device", "cpu", "--impl", "cupy")
    row = _rows(report)["cupy default cpu"]
    assert code == 1 and row["status"] == "FAIL"
    assert "the probe said it was available" in row["steps"]["grads"]["detail"]


def test_series_selection_and_bad_options():
    gpu = smoke.select("gpu", None)
    assert Series("torch", "reduce-overhead", "gpu") in gpu and Series("cupy", "default", "gpu") in gpu
    assert not [s for s in gpu if s.impl == "numpy"]  # the reference runs on the CPU only
    assert smoke.select("cpu", ["torch:eager", "torch"])[0] == Series("torch", "eager", "cpu")
    assert len(smoke.select("cpu", ["torch:eager", "torch"])) == len(impls.get("torch").modes)
    for argv in (["--impl", "tensorflow"], ["--impl", "torch:nope"], ["--budget", "0"],
                 ["--budget", "nan"], ["--device", "tpu"]):
        assert cli.main(["smoke", *argv]) == 2, argv


def test_every_gpu_step_passes_on_a_numpy_backed_fake_cupy(tmp_path, monkeypatch, capsys):
    """The GPU side of each step (the memory counter, the precision record, the GPU peak) on
    cupy_impl over a NumPy stand-in for `cupy`: the bookkeeping, not a GPU."""
    from tests.test_gpu_branches import fake_cupy_impl

    monkeypatch.setenv(impls.EXTRA_ENV, fake_cupy_impl(tmp_path))
    monkeypatch.delenv("CUPY_TF32", raising=False)
    monkeypatch.setattr(smoke.machine, "gpus", lambda: [FAKE_H200])
    code, report = _smoke(capsys, "--impl", "fakecupy")
    rows = _rows(report)
    assert code == 0 and set(rows) == {"before the run", "fakecupy default gpu", "peak gpu"}
    steps = rows["fakecupy default gpu"]["steps"]
    assert {k for k, s in steps.items() if s["ok"]} == {*smoke_rows.STEPS, "device"}
    assert steps["memory"]["text"] == "1.0 MiB" and steps["precision"]["text"] == "highest"
    assert steps["precision"]["detail"].startswith("highest (")  # as cupy_impl read it back
    assert steps["device"]["detail"] == "device Fake GPU"
    assert rows["peak gpu"]["status"] == "pass"
    # TF32 switched on where the mode says full float32: the precision step catches it.
    monkeypatch.setenv("CUPY_TF32", "1")
    code, report = _smoke(capsys, "--impl", "fakecupy")
    precision = _rows(report)["fakecupy default gpu"]["steps"]["precision"]
    assert code == 1 and not precision["ok"] and "tf32 (CUPY_TF32" in precision["detail"]
    assert "the mode asks for full float32 matmuls" in precision["detail"]


# ---- a cell's record, held to its mode ------------------------------------------------------
ON_GPU = {"device": "NVIDIA H200", "tf32": False,
          "matmul_precision": "highest (allow_tf32 False, ...: full float32)"}


@pytest.mark.parametrize("series, info, bound, expected", [
    (Series("torch", "eager", "gpu"), ON_GPU, 2,
     {"device": (True, "gpu"), "precision": (True, "highest")}),
    (Series("torch", "eager-tf32", "gpu"), ON_GPU, 2,  # the switch did not take
     {"device": (True, "gpu"), "precision": (False, "FAIL")}),
    (Series("jax", "jit", "gpu"), {**ON_GPU, "device": "cpu", "backend": "cpu"}, 2,
     {"device": (False, "FAIL"), "precision": (True, "highest")}),
    (Series("torch", "reduce-overhead", "gpu"),
     {**ON_GPU, "cudagraph_skips": 2, "cudagraph_skip_reasons": ["mutated inputs"],
      "compile_threads": 8, "compile_threads_from": "TORCHINDUCTOR_COMPILE_THREADS=8"}, 8,
     {"device": (True, "gpu"), "precision": (True, "highest"), "CUDA graphs": (False, "FAIL"),
      "compile threads": (True, "8")}),
    (Series("torch", "compile", "gpu"), {**ON_GPU, "compile_threads": 16}, 8,
     {"device": (True, "gpu"), "precision": (True, "highest"),
      "compile threads": (True, "warn")}),
    (Series("jax", "jit", "cpu"), {"cpu_dispatch": "asynchronous"}, 2,
     {"dispatch": (False, "FAIL")}),
    (Series("jax", "jit-async", "cpu"), {"cpu_dispatch": "asynchronous"}, 2,
     {"dispatch": (True, "asynchronous")}),
    (Series("numpy", "default", "cpu"), {}, 2, {}),
], ids=lambda v: str(v) if isinstance(v, Series) else None)
def test_each_check_of_a_cells_record_is_a_step(series, info, bound, expected):
    steps = smoke_rows.record_steps(series, info, bound)
    assert {k: (ok, text) for k, (ok, text, _) in steps.items()} == expected
    row = smoke.Row(str(series), available=True, steps=steps)
    assert row.status == ("FAIL" if any(ok is False for ok, _ in expected.values()) else "pass")
    table = smoke.render([row], series.device, 1.0)
    for check, (ok, text) in expected.items():
        if ok is False or text == "warn":  # said in the detail column
            assert steps[check][2] in table.splitlines()[1]


POOL = textwrap.dedent('''
    from impls import numpy_impl
    from impls.base import Implementation

    IMPL = Implementation(
        name="pool", modes=("default",), description="test double: a 64-worker compile pool",
        _available=lambda device, mode: (device == "cpu", "CPU only"),
        _loss_and_grads=numpy_impl.loss_and_grads, _session=numpy_impl.NumpySession,
        set_threads=numpy_impl.set_threads,
        info=lambda device, mode: {"compile_threads": 64, "compile_threads_from": "its own"})
''')


def test_the_worker_s_record_is_held_to_the_smokes_thread_budget(tmp_path, monkeypatch,
                                                                 capsys):
    """The whole path: the worker's info() read back when it stopped, through of_record, with
    the compile pool bound the smoke gave (its thread budget: no TORCHINDUCTOR_COMPILE_THREADS)."""
    monkeypatch.delenv("TORCHINDUCTOR_COMPILE_THREADS", raising=False)
    path = tmp_path / "pool_impl.py"
    path.write_text(POOL)
    monkeypatch.setenv(impls.EXTRA_ENV, str(path))
    code, report = _smoke(capsys, "--device", "cpu", "--impl", "pool")
    step = _rows(report)["pool default cpu"]["steps"]["compile threads"]
    assert code == 0 and step["ok"] and step["text"] == "warn"  # a warning, not a FAIL
    assert "64 workers (its own), above the bound 2" in step["detail"]


@pytest.mark.slow
def test_the_cpu_rehearsal_reads_jaxs_dispatch_back(capsys):
    """The record step on a real library: JAX's CPU dispatch, read back in the worker when it
    stopped, against what each mode asks (harness/measure/gpu_checks.py)."""
    pytest.importorskip("jax")
    code, report = _smoke(capsys, "--device", "cpu", "--impl", "jax:jit,jax:jit-async")
    rows = _rows(report)
    assert code == 0, report
    assert rows["jax jit cpu"]["steps"]["dispatch"]["text"] == "synchronous"
    assert rows["jax jit-async cpu"]["steps"]["dispatch"]["text"] == "asynchronous"


# ---- cold compiles: staggered, each with its share of the cores ---------------------------
def test_cold_compiles_start_first_at_most_two_at_once_with_their_compile_pools(monkeypatch):
    import os
    import threading
    import time as clock

    monkeypatch.delenv("TORCHINDUCTOR_COMPILE_THREADS", raising=False)
    monkeypatch.setattr(smoke.machine, "gpus", lambda: [FAKE_H200])
    monkeypatch.setattr(smoke.gpu_checks.readback, "c_toolchain", lambda: "")
    series = smoke.select("gpu", ["jax:jit", "torch"])  # torch's compiled modes listed last
    lock, alive, seen = threading.Lock(), [], []

    def process(job, env):  # a fake process: compiles for a while if its series does
        s = job.cell.series
        with lock:
            alive.append(s)
            seen.append((s, env.get("TORCHINDUCTOR_COMPILE_THREADS"),
                         sum(smoke.gpu_checks.compiles_cold(a) for a in alive)))
        clock.sleep(0.3 if smoke.gpu_checks.compiles_cold(s) else 0.05)
        with lock:
            alive.remove(s)

    def start(job, group, env, limit=None):
        if job.kind == "peak":
            raise smoke.NotReady("unavailable", "no peak here (fake)")
        process(job, env)
        raise smoke.NotReady("failed", "fake worker")

    def grads(job, group, env, limit):
        process(job, env)
        return {"status": "ok", "ok": True, "worst_error": 1e-7, "tolerance": 1e-5}

    monkeypatch.setattr(smoke, "probe_once", lambda job, *a: {
        "status": "ok", "available": {str(s): [True, ""] for s in job.series}})
    monkeypatch.setattr(smoke.Worker, "start", start)
    monkeypatch.setattr(smoke, "run_once", grads)
    rows = smoke.Smoke("gpu", series, budget=30).run()
    assert len(seen) == 2 * len(series)  # every series' grads process and worker
    cold = [(s, threads, at_once) for s, threads, at_once in seen
            if smoke.gpu_checks.compiles_cold(s)]
    assert len(cold) == 4 and max(at_once for *_, at_once in cold) == 2  # never three
    share = str(max(1, (os.cpu_count() or 1) // smoke.COLD_COMPILES_AT_ONCE))
    assert all(threads == share for _, threads, _ in cold)  # each its share of the cores
    assert all(threads is None for s, threads, _ in seen if not smoke.gpu_checks.compiles_cold(s))
    assert [s.mode for s in smoke.start_order(series)][:2] == ["compile", "reduce-overhead"]
    assert [r.name for r in rows][:2] == ["before the run", "jax jit gpu"]  # listed as asked


def test_a_cold_compile_waiting_past_the_budget_is_not_run(monkeypatch):
    import threading

    s = smoke.Smoke("gpu", [Series("torch", "compile", "gpu")], budget=2.0)
    for _ in range(smoke.COLD_COMPILES_AT_ONCE):
        s.cold.acquire()  # every slot held by compiles that outlast the budget
    got = {}
    waiter = threading.Thread(target=lambda: got.update(s.grads(smoke.Cell(
        "torch", "compile", "gpu", "float32", smoke.SIZE))), daemon=True)
    waiter.start()
    waiter.join(15)
    assert not waiter.is_alive(), "it waited for a slot past the smoke's budget"
    assert got == {"status": "not run", "reason": "the smoke's budget was spent"}


def test_a_tf32_mode_brings_the_tf32_peak_into_the_smoke():
    tf32 = smoke.Smoke("gpu", [Series("torch", "eager-tf32", "gpu")], 80).peak_jobs()
    assert list(tf32) == ["gpu", "gpu-tf32"]
    assert [(x.impl, x.mode) for x in tf32["gpu-tf32"].series] == [("torch", "eager-tf32"),
                                                                  ("jax", "jit-tf32")]
    assert list(smoke.Smoke("gpu", [Series("torch", "eager", "gpu")], 80).peak_jobs()) == ["gpu"]
    assert list(smoke.Smoke("cpu", [Series("numpy", "default", "cpu")], 80).peak_jobs()) == [
        "cpu"]
