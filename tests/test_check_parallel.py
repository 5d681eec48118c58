"""`python -m harness check --workers W` (harness/check/parallel.py): every data-parallel
engine against the single-process float64 reference, one launch per engine; exit 0/1/2.

    .venv/bin/pytest tests/test_check_parallel.py
"""

from __future__ import annotations

import json

import pytest

import dataparallel as parallel
from harness import cli
from harness.check import parallel as check_parallel


@pytest.mark.slow
def test_check_workers_2_agrees_for_every_available_engine(capsys):
    assert cli.main(["check", "--workers", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["workers"] == 2
    engines = {(e["impl"], e["mode"]) for e in report["engines"]}
    ran = {(r["impl"], r["mode"]) for r in report["rows"]}
    assert engines == ran and ("numpy", "default") in ran  # the project venv has mpich
    for impl, mode in ran:
        rows = [r for r in report["rows"] if (r["impl"], r["mode"]) == (impl, mode)]
        problems = {r["problem"] for r in rows}
        for kind in ("grad", "trajectory"):
            for dtype in ("float64", "float32"):
                assert any(r["kind"] == kind and r["dtype"] == dtype for r in rows)
        assert {"F5-H7-K3-N12-W2", "F5-H7-K3-N13-W2", "F5-H7-K3-N12-full-e10-W2",
                "F5-H7-K3-N13-full-e10-W2", "F5-H7-K3-N12-minibatch-b4-e3-W2",
                "F5-H7-K3-N13-minibatch-b5-e3-W2"} <= problems
        assert all(r["workers"] == 2 and r["ok"] for r in rows)
        assert any(r["tensor"] == "(replicas)" for r in rows)
    reasons = {(u["impl"], u["mode"]): u["reason"] for u in report["unavailable"]}
    assert "eager only" in reasons[("torch", "compile")]
    assert all(e["launcher"] and e["processes"] >= 1 for e in report["engines"])


def test_the_table_names_the_launcher(capsys):
    assert cli.main(["check", "--workers", "2", "--impl", "numpy", "--loss", "bce"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("check --workers 2:") and "mpiexec -n 2" in out
    assert "check: all" in out and "comparisons agree" in out


def test_a_wrong_engine_is_a_finding(capsys, monkeypatch):
    real = parallel.run_tasks

    def tampered(*a, **k):  # every gradient and trained W1 off by 1%
        results, used = real(*a, **k)
        return [{**r, "W1": r["W1"] * 1.01} for r in results], used

    monkeypatch.setattr(check_parallel.dp, "run_tasks", tampered)
    assert cli.main(["check", "--workers", "2", "--impl", "numpy", "--dtype", "float64"]) == 1
    out = capsys.readouterr().out
    assert "FAIL numpy default cpu float64" in out and "W1" in out and "DISAGREE" in out


def test_a_failed_launch_is_a_finding(capsys, monkeypatch):
    def broken(*a, **k):
        raise parallel.WorkerError("worker rank 1 failed: RuntimeError: boom")

    monkeypatch.setattr(check_parallel.dp, "run_tasks", broken)
    assert cli.main(["check", "--workers", "2", "--impl", "numpy", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and {r["tensor"] for r in report["rows"]} == {"(call)"}
    assert "worker rank 1 failed: RuntimeError: boom" in report["rows"][0]["diagnosis"]


@pytest.mark.parametrize("argv, words", [
    (["--workers", "0"], "error: workers must be a positive integer, got 0"),
    (["--workers", "10000"], "error: workers=10000 exceeds the limit of"),
    (["--workers", "2.5"], "error: argument --workers: invalid int value"),
    (["--workers", "2", "--impl", "docs/examples/my_backprop.py:grads"], "error: --workers checks"),
    (["--workers", "2", "--impl", "torch:compile"], "error: nothing to check: torch compile"),
])
def test_usage_errors_exit_2(argv, words, capsys):
    assert cli.main(["check", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(words) and err.count("\n") == 1
