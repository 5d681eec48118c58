"""`python -m harness check`: exit codes, the table, --json, and a user's own function.

    .venv/bin/pytest tests/test_check_command.py

Most tests call harness.cli.main in-process (importing torch and jax once); one runs
the real `python -m harness` to see that a usage error prints one line and no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import impls
from harness import cli
from harness.check import suite
from tests.helpers import ROOT

USER_FILE = textwrap.dedent('''
    import numpy as np

    def grads(P, X, T, loss):
        s = lambda z: 1 / (1 + np.exp(-z))
        A1 = s(X @ P["W1"] + P["b1"])
        Z2 = A1 @ P["W2"] + P["b2"]
        Y, N = s(Z2), len(X)
        if loss == "mse":
            L, dZ2 = 0.5 * ((Y - T) ** 2).sum() / N, (Y - T) * Y * (1 - Y) / N
        else:
            L, dZ2 = (np.logaddexp(0, Z2) - T * Z2).sum() / N, (Y - T) / N
        dZ1 = dZ2 @ P["W2"].T * A1 * (1 - A1)
        return L, {"W1": X.T @ dZ1, "b1": dZ1.sum(0), "W2": A1.T @ dZ2, "b2": dZ2.sum(0)}

    def summed(P, X, T, loss):  # dW2 summed over the batch, not averaged
        L, G = grads(P, X, T, loss)
        G["W2"] = G["W2"] * len(X)
        return L, G

    def raises(P, X, T, loss):
        raise RuntimeError("boom")

    def no_pair(P, X, T, loss):
        return {"W1": P["W1"]}

    def w2_none(P, X, T, loss):  # a skeleton whose W2 line is not written yet
        L, G = grads(P, X, T, loss)
        return L, dict(G, W2=None)

    NOT_A_FUNCTION = 3
''')


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_backprop.py"
    path.write_text(USER_FILE)
    return path


def test_check_passes_on_the_repo_implementations(capsys):
    # numpy, one torch mode and one jax mode keep it fast; `make check` runs them all.
    code = cli.main(["check", "--impl", "numpy", "--impl", "torch:eager", "--impl", "jax:jit"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "numpy default (cpu)" in out and "check: all" in out
    for name in ("torch", "jax"):
        ok, why = impls.get(name).available("cpu", "eager" if name == "torch" else "jit")
        assert (f"{name} " in out) if ok else (why in out)


def test_check_json_follows_the_schema(capsys):
    assert cli.main(["check", "--impl", "numpy", "--loss", "bce", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and set(report) >= {"ok", "rows", "unavailable", "curves"}
    fields = {"kind", "impl", "mode", "device", "dtype", "loss", "activation", "problem",
              "tensor", "worst_error", "tolerance", "ok", "worst_index", "diagnosis"}
    assert all(fields <= set(r) for r in report["rows"])
    assert {r["kind"] for r in report["rows"]} == {"fd", "grad", "trajectory"}
    assert {r["loss"] for r in report["rows"]} == {"bce"}
    assert {r["activation"] for r in report["rows"] if r["kind"] == "grad"} == {
        "sigmoid", "tanh", "relu"}
    curve = [c for c in report["curves"] if c["dtype"] == "float64"]
    assert [c["epoch"] for c in curve] == list(range(suite.TRAJECTORIES[0][2]))
    assert {"impl", "mode", "dtype", "loss", "epoch", "value"} <= set(curve[0])


def test_user_function_that_is_right_passes(user_file, capsys):
    assert cli.main(["check", "--impl", f"{user_file}:grads"]) == 0
    assert "check: all" in capsys.readouterr().out


def test_user_function_with_a_wrong_gradient_fails_and_names_the_tensor(user_file, capsys):
    assert cli.main(["check", "--impl", f"{user_file}:summed"]) == 1
    out = capsys.readouterr().out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert fails and all(": W2 worst entry [" in line for line in fails)
    assert "expected" in fails[0] and "got" in fails[0] and "off by a factor of N=" in fails[0]


@pytest.mark.parametrize("function, words", [
    ("raises", "[grad]: raised RuntimeError: boom (on all 6 runs)"),
    ("no_pair", "[grad]: returned dict; expected a pair"),
])
def test_user_function_that_breaks_is_a_finding(user_file, capsys, function, words):
    assert cli.main(["check", "--impl", f"{user_file}:{function}"]) == 1
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--impl", "{file}:nope"], "has no function 'nope'"),
    (["--impl", "{file}:NOT_A_FUNCTION"], "is not callable"),
    (["--impl", "{dir}/missing.py:grads"], "no such file"),
    (["--impl", "{file}"], "as FILE.py:FUNCTION"),
    (["--impl", "{file}:grads", "--activation", "relu"], "takes no 'activation' parameter"),
    (["--impl", "{file}:grads", "--device", "all"], "checked on the CPU"),
    (["--impl", "numpy", "--task", "step"], "--task is for a user's FILE.py:FUNCTION only"),
    (["--impl", "{file}:grads", "--task", "fly"], "invalid choice: 'fly'"),
    (["--impl", "{file}:grads", "--impl", "numpy"], "cannot be combined"),
    (["--impl", "nosuch"], "unknown implementation 'nosuch'"),
    (["--impl", "torch:bogus"], "unknown mode 'bogus' for torch"),
    (["--impl", "torch:eager-tf32"], "timing-only"),
    (["--impl", "cupy"], "nothing to check: cupy default on cpu"),
    (["--device", "tpu"], "invalid choice"),
    (["--dtype", "float16"], "invalid choice"),
    (["--impl", "{file}:grads", "--timeout", "0"], "--timeout must be a positive number"),
    (["--impl", "{file}:grads", "--timeout", "-1"], "--timeout must be a positive number"),
    (["--impl", "{file}:grads", "--timeout", "nan"], "seconds, got nan"),
    (["--impl", "{file}:grads", "--timeout", "inf"], "seconds, got inf"),
    (["--impl", "{file}:grads", "--timeout", "soon"], "invalid float value: 'soon'"),
    (["--impl", "numpy", "--timeout", "5"], "--timeout limits a user's FILE.py:FUNCTION only"),
])
def test_usage_errors_exit_2_with_one_line(user_file, capsys, argv, words):
    argv = [a.format(file=user_file, dir=user_file.parent) for a in argv]
    assert cli.main(["check", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and words in captured.err
    assert captured.err.count("\n") == 1


def test_a_file_that_raises_on_import_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("raise ValueError('half written')\n")
    assert cli.main(["check", "--impl", f"{tmp_path}/broken.py:grads"]) == 2
    err = capsys.readouterr().err
    assert "raised ValueError: half written" in err and err.startswith("error: --impl ")


def test_usage_error_through_python_m_harness_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "harness", "check", "--impl",
                             f"{tmp_path}/missing.py:grads"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --impl") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


BROKEN_FILE = textwrap.dedent('''
    from impls import numpy_impl
    from impls.base import Implementation


    def loss_and_grads(P, X, T, **kw):
        L, G = numpy_impl.loss_and_grads(P, X, T, **kw)
        G["b1"] = G["b1"] * len(X)  # the bias gradient summed where the loss is a mean
        return L, G


    IMPL = Implementation(
        name="broken", modes=("default", "elsewhere", "fast"), description="test double",
        _available=lambda device, mode: (mode != "elsewhere", "not here"),
        _loss_and_grads=loss_and_grads, _session=numpy_impl.NumpySession,
        timing_only=("fast",))
''')


def test_any_registered_implementation_is_checked_generically(tmp_path, monkeypatch, capsys):
    """An implementation file (here kept outside impls/, registered by BACKPROP_BENCH_IMPLS)
    is checked with no change to the checker: its broken mode fails, its unavailable mode
    is listed, its timing-only mode is skipped."""
    (tmp_path / "broken_impl.py").write_text(BROKEN_FILE)
    monkeypatch.setenv(impls.EXTRA_ENV, str(tmp_path / "broken_impl.py"))
    assert "broken" in impls.names()
    assert cli.main(["check", "--impl", "broken", "--dtype", "float64", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    failing = [r for r in report["rows"] if not r["ok"]]
    assert failing and {r["tensor"] for r in failing} == {"b1"}
    assert all("factor of N=12" in r["diagnosis"] for r in failing)
    assert {r["mode"] for r in report["rows"] if r["impl"] == "broken"} == {"default"}
    assert report["unavailable"] == [{"impl": "broken", "mode": "elsewhere", "device": "cpu",
                                      "reason": "not here"}]
    # trajectories run through the (correct) session and agree
    assert all(r["ok"] for r in report["rows"] if r["kind"] == "trajectory")
    assert np.isfinite([r["worst_error"] for r in failing]).all()


def test_a_notebook_is_checked_after_running_top_to_bottom(capsys):
    folder = ROOT / "docs" / "examples" / "class"
    assert cli.main(["check", "--impl", f"{folder}/carol_notebook.ipynb:grads"]) == 0, \
        capsys.readouterr().out
    assert "  | a quick try:" in capsys.readouterr().out  # what its cells printed
    assert cli.main(["check", "--impl", f"{folder}/heidi_notebook.ipynb:grads"]) == 2
    assert "cell 3 of 4 raised FileNotFoundError: my_data.csv not found" in \
        capsys.readouterr().err


def test_a_gradient_returned_as_none_is_one_line_for_that_tensor(user_file, capsys):
    assert cli.main(["check", "--impl", f"{user_file}:w2_none"]) == 1
    out = capsys.readouterr().out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert fails == [f"FAIL user {user_file}:w2_none [grad]: W2: not computed (None) "
                     "(on all 6 runs)"] and "Traceback" not in out
