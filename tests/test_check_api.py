"""The checker from Python (a notebook cell): harness.check.api.check_my_backprop, and the
sandbox's rules for what a child's result data must look like.

    .venv/bin/pytest tests/test_check_api.py

Functions defined inside the tests stand for functions typed into a notebook: no file holds
them, so they reach the child process by fork (harness/check/sandbox.py says why).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from harness.check import bugs, sandbox, user
from harness.check.api import check_my_backprop
from harness.check.problems import make_problem
from impls.contract import ContractError
from tests.helpers import ROOT
from tests.test_check_hostile import hang_guard, survives


def module_level(P, X, T, loss):
    """Importable by path (this file): what a platform without fork can still run."""
    return bugs.correct(P, X, T, loss)


def test_a_notebook_function_passes_and_renders_as_text_and_html():
    def mine(P, X, T, loss):  # a closure: no file could import it
        return bugs.correct(P, X, T, loss)

    result = check_my_backprop(mine)
    assert result.ok and len(result.rows) == 30 and not result.failures
    assert "check: all 30 comparisons agree" in str(result) and repr(result) == str(result)
    html = result._repr_html_()
    assert "OK: all 30 comparisons agree" in html and html.count("<tr>") == 31
    frame = result.to_frame()
    assert len(frame) == 30 and {"tensor", "worst_error", "ok"} <= set(frame.columns)


def test_a_wrong_function_lists_its_failures_with_the_diagnosis():
    result = check_my_backprop(bugs.sign_flipped, losses=("mse",))
    assert not result.ok and result.failures
    assert all("sign flipped" in r.diagnosis for r in result.failures if r.tensor != "loss")
    assert "FAIL" in result._repr_html_() and "FAIL user" in str(result)


def test_what_the_function_prints_is_captured_and_escaped():
    def chatty(P, X, T, loss):
        print("<script>alert(1)</script>")
        print("oops", file=sys.stderr)
        return bugs.correct(P, X, T, loss)

    result = check_my_backprop(chatty)
    assert result.ok and result.stdout.count("<script>") == 6 and "oops" in result.stderr
    html = result._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "output of" in str(result) and "  | <script>" in str(result)


def test_an_exit_in_a_notebook_function_is_a_failure():
    def quits(P, X, T, loss):
        sys.exit(0)

    result = check_my_backprop(quits)
    assert not result.ok and "exited with code 0 with 0 of 6 results" in result.process
    assert len(result.failures) == 6 and all(r.tensor == "(call)" for r in result.failures)


def test_a_notebook_function_that_hangs_is_stopped():
    result = hang_guard(lambda: check_my_backprop(lambda P, X, T, loss: time.sleep(3600),
                                                  timeout=1))
    assert not result.ok and "time limit of 1 s" in result.process


def test_nothing_a_notebook_function_started_outlives_the_check(tmp_path):
    pid_file = tmp_path / "pid"

    def spawns(P, X, T, loss):
        pid_file.write_text(str(subprocess.Popen(["sleep", "600"]).pid))
        time.sleep(3600)

    assert not check_my_backprop(spawns, timeout=2).ok
    pid = int(pid_file.read_text())
    assert not survives(pid), f"the function's child {pid} survived the check"


def test_a_notebook_function_using_jax_after_jax_ran_here_says_why_it_hung():
    jax = pytest.importorskip("jax")
    jax.numpy.ones(3).sum().block_until_ready()  # JAX has run in this process

    def with_jax(P, X, T, loss):
        jax.numpy.zeros(1).block_until_ready()  # any JAX work in the child
        return bugs.correct(P, X, T, loss)

    result = check_my_backprop(with_jax, losses=("mse",), timeout=3)
    assert result.ok or sandbox.JAX_AFTER_FORK in result.process  # measured: it hangs


def test_float32_is_checked_at_float32_tolerance():
    result = check_my_backprop(bugs.correct, dtype="float32", losses="bce")
    assert result.ok and {r.tolerance for r in result.rows} == {1e-4}
    assert {r.loss for r in result.rows} == {"bce"} and len(result.rows) == 15


def test_without_fork_a_function_in_a_file_runs_by_path(monkeypatch):
    monkeypatch.setattr(sandbox, "_can_fork", lambda: False)
    assert check_my_backprop(module_level).ok
    with pytest.raises(ContractError, match="cannot fork.*save it in a .py file"):
        check_my_backprop(lambda P, X, T, loss: None)


@pytest.mark.parametrize("kwargs, words", [
    ({"f": 3}, "f must be a function or 'FILE.py:FUNCTION', got int"),
    ({"f": "nowhere.py:f"}, "nowhere.py:f: no such file nowhere.py"),
    ({"f": "nowhere.py"}, "must name its function"),
    ({"dtype": "float16"}, "unknown dtype 'float16'"),
    ({"losses": ("hinge",)}, "unknown loss 'hinge'"),
    ({"timeout": 0}, "timeout must be a positive number"),
    ({"timeout": True}, "timeout must be a positive number, not a bool"),
    ({"timeout": float("nan")}, r"timeout must be a positive number \(finite\)"),
])
def test_bad_arguments_raise_value_errors_naming_them(kwargs, words):
    kwargs = {"f": bugs.correct, **kwargs}
    with pytest.raises(ValueError, match=words):
        check_my_backprop(**kwargs)


def test_a_file_without_the_function_is_an_error_naming_it(tmp_path):
    (tmp_path / "mine.py").write_text("def other(P, X, T, loss): pass\n")
    with pytest.raises(ContractError, match="has no function 'grads'"):
        check_my_backprop(f"{tmp_path}/mine.py:grads")


# ---- the child's result data: what counts ------------------------------------------------------
def lines(*messages) -> list:
    return [json.dumps(m) for m in messages]


GOOD = {"loss": 0.5, "grads": {}, "extra": []}


@pytest.mark.parametrize("text, results, problem", [
    (lines({"loaded": True}, {"job": 0, "result": GOOD}, {"job": 1, "result": GOOD},
           {"done": True}), 2, ""),
    (lines({"usage": "no function"}), 0, ""),
    (lines({"job": 0, "result": GOOD}), 0, "line 1 is out of place"),  # before "loaded"
    (lines({"loaded": True}, {"job": 1, "result": GOOD}), 0, "line 2 is out of place"),
    (lines({"loaded": True}, {"job": 0, "result": GOOD}, {"job": 0, "result": GOOD}), 1,
     "line 3 is out of place"),  # a second result for the same job
    (lines({"loaded": True}, {"job": True, "result": GOOD}), 0, "line 2 is out of place"),
    (lines({"loaded": True}, {"done": True}), 0, "line 2 is out of place"),  # done too early
    (lines({"loaded": True}, {"job": 0, "result": GOOD}, {"job": 1, "result": GOOD},
           {"done": True}, {"done": True}), 2, "line 5 is out of place"),
    (["{half a line"], 0, "line 1 is not a JSON object"),
    (lines({"loaded": True}, [1, 2]), 0, "line 2 is out of place"),
])
def test_only_well_formed_results_in_order_count(tmp_path, text, results, problem):
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(text) + "\n")
    got = sandbox.read_results(str(path), n=2)
    assert len(got.results) == results and got.bad == problem


def test_a_malformed_result_becomes_a_finding_not_a_crash():
    p = make_problem(4, 3, 6, 2)
    for result in ({"loss": "0.5", "grads": {}}, {"loss": 0.5, "grads": {"W1": {"shape": "x"}}},
                   {"loss": 0.5, "grads": {"W9": {}}}, [1], "text", 7):
        (row,) = user.rows(result, p, "mse", "float64", impl="user", mode="t")
        assert not row.ok and row.diagnosis.startswith("malformed result"), result
    rows = user.rows({"loss": 0.1, "grads": {"W1": {"shape": [3, 6], "data": [0.0] * 18,
                                                    "dtype": "float32"}}},
                     p, "mse", "float64", impl="user", mode="t")
    assert {r.tensor for r in rows if not r.ok} == {"loss", "W1", "b1", "W2", "b2"}
    assert "lower precision than the float64 inputs" in next(r for r in rows
                                                          if r.tensor == "W1").diagnosis
    assert np.isfinite([r.tolerance for r in rows]).all()


def test_the_python_example_runs_from_anywhere(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "docs/examples/check_in_python.py")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "  | shapes: (11, 5) (11, 3)" in result.stdout
    assert "ok: False | first failure: off by a factor of N=11" in result.stdout


def test_a_notebook_step_and_training_loop_are_checked_by_task():
    def step(P, X, T, loss, lr):
        L, G = bugs.correct(P, X, T, loss)
        return {k: P[k] - lr * G[k] for k in P}

    def train(P, X, T, loss, lr, epochs, batch_size, seed):  # full batch only: wrong for
        history = []                                         # the minibatch runs
        for _ in range(epochs):
            L, G = bugs.correct(P, X, T, loss)
            history.append(L)
            P = {k: P[k] - lr * G[k] for k in P}
        return P, history

    assert check_my_backprop(step, task="step").ok
    result = check_my_backprop(train, task="train")
    assert not result.ok and {r.problem for r in result.failures} == {"F8-H4-K5-N9-s2-e3-b3"}
    with pytest.raises(ContractError, match="unknown task 'fly'"):
        check_my_backprop(step, task="fly")


def test_a_process_that_lingers_after_its_last_result_is_stopped_not_failed(tmp_path):
    path = tmp_path / "lingers.py"
    path.write_text("import atexit, time\nfrom harness.check.bugs import correct as grads\n"
                    "atexit.register(time.sleep, 3600)\n")
    result = hang_guard(lambda: check_my_backprop(f"{path}:grads", timeout=600))
    assert result.ok and "stopped this process 5 s after its last result" in result.stderr
