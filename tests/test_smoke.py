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
from harness.bench import smoke
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
    assert cli.main(["smoke"]) == 0
    out = capsys.readouterr().out
    expected = [f"{n} {m} gpu" for n in impls.names() if n != "numpy"
                for m in impls.get(n).modes] + ["peak gpu"]
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["series", "result"]
    for name in expected:
        (line,) = [ln for ln in lines if ln.startswith(name + " ")]
        assert "unavailable" in line and "FAIL" not in line, line
        assert len(line.split("unavailable", 1)[1].split()) > 2, f"no reason: {line}"
    assert f"0 pass, 0 FAIL, {len(expected)} unavailable" in out
    code, report = _smoke(capsys)
    assert code == 0 and report["ok"] and set(_rows(report)) == set(expected)
    assert all(r["status"] == "unavailable" and r["reason"] for r in report["rows"])


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
    code, report = _smoke(capsys, "--impl", "fakecupy")
    rows = _rows(report)
    assert code == 0 and set(rows) == {"fakecupy default gpu", "peak gpu"}
    steps = rows["fakecupy default gpu"]["steps"]
    assert {k for k, s in steps.items() if s["ok"]} == set(smoke.STEPS)
    assert steps["memory"]["text"] == "1.0 MiB" and steps["precision"]["text"] == "highest"
    assert "Fake GPU" in steps["precision"]["detail"]
    assert rows["peak gpu"]["status"] == "pass"
    # TF32 switched on where the mode says full float32: the precision step catches it.
    monkeypatch.setenv("CUPY_TF32", "1")
    code, report = _smoke(capsys, "--impl", "fakecupy")
    precision = _rows(report)["fakecupy default gpu"]["steps"]["precision"]
    assert code == 1 and not precision["ok"] and "tf32 (CUPY_TF32)" in precision["detail"]
