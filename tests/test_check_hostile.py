"""The checker against hostile or sloppy user code, through `check --impl FILE.py:FUNCTION`.

    .venv/bin/pytest tests/test_check_hostile.py

One test per row of the README's table "What the checker withstands": the user's function
runs in a process of its own (harness/check/sandbox.py), and only the checker's process
decides. Most tests call harness.cli.main in-process (the user's code never runs there);
the exit and --json cases also run the real `python -m harness`, where the user meets them.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from harness import cli
from harness.check.api import check_my_backprop
from tests.helpers import ROOT
from tests.test_check_command import USER_FILE

HOSTILE = USER_FILE + textwrap.dedent('''
    import os, signal, subprocess, sys, time

    def doubled(P, X, T, loss):
        L, G = grads(P, X, T, loss)
        return L, {k: 2 * g for k, g in G.items()}

    def exits(P, X, T, loss):          # wrong gradients, then "success"
        doubled(P, X, T, loss)
        sys.exit(0)

    def hard_exit(P, X, T, loss):
        os._exit(0)

    def patches_compare(P, X, T, loss):
        import harness.check.agreement, harness.check.user
        harness.check.agreement.compare = lambda *a, **k: []
        harness.check.user.compare = lambda *a, **k: []
        return doubled(P, X, T, loss)

    def sleeps(P, X, T, loss):
        time.sleep(3600)

    def leaves_a_child(P, X, T, loss):
        child = subprocess.Popen(["sleep", "600"])
        with open(os.environ["PID_FILE"], "w") as f:
            f.write(str(child.pid))
        time.sleep(3600)

    def escapes_the_group(P, X, T, loss):  # a child in a session of its own, left running
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)
        with open(os.environ["PID_FILE"], "a") as f:
            f.write(f"{child.pid}\\n")
        return grads(P, X, T, loss)

    def escapes_unmarked(P, X, T, loss):  # a new session and an empty environment: no mark
        child = subprocess.Popen(["sleep", "600"], start_new_session=True, env={})
        with open(os.environ["PID_FILE"], "a") as f:
            f.write(f"{child.pid}\\n")
        return grads(P, X, T, loss)

    def double_forks(P, X, T, loss):  # the daemon's way out: setsid, fork again, orphan it
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                with open(os.environ["PID_FILE"], "a") as f:
                    f.write(f"{os.getpid()}\\n")
                time.sleep(600)
            os._exit(0)
        return grads(P, X, T, loss)

    def holds_its_output(P, X, T, loss):  # a forked child keeps stdout (and all) open
        if os.fork() == 0:
            with open(os.environ["PID_FILE"], "a") as f:
                f.write(f"{os.getpid()}\\n")
            time.sleep(600)
            os._exit(0)
        return grads(P, X, T, loss)

    def kills_its_parent(P, X, T, loss):
        os.kill(os.getppid(), signal.SIGKILL)
        return grads(P, X, T, loss)

    def segfaults(P, X, T, loss):
        os.kill(os.getpid(), signal.SIGSEGV)

    def prints(P, X, T, loss):
        print("{not json", loss)
        print("a warning", file=sys.stderr)
        return grads(P, X, T, loss)

    def forges_done(P, X, T, loss):    # claims the run is over, then leaves quietly
        with open(os.path.join(sys.argv[2], "results.jsonl"), "a") as results:
            results.write('{"done": true}\\n')
        sys.exit(0)

    def as_torch(P, X, T, loss):
        import torch
        L, G = grads(P, X, T, loss)
        t = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)
        return t(L), {k: t(g) for k, g in G.items()}

    def as_jax(P, X, T, loss):
        import jax
        jax.config.update("jax_enable_x64", True)
        L, G = grads(P, X, T, loss)
        return jax.numpy.asarray(L), {k: jax.numpy.asarray(g) for k, g in G.items()}

    def as_lists(P, X, T, loss):
        L, G = grads(P, X, T, loss)
        return [L], {k: g.tolist() for k, g in G.items()}

    class NoFloat:
        def __float__(self):
            raise RuntimeError("no float here")

    def loss_without_float(P, X, T, loss):
        return NoFloat(), grads(P, X, T, loss)[1]

    def grad_not_an_array(P, X, T, loss):
        L, G = grads(P, X, T, loss)
        return L, dict(G, W1=object())

    def slightly_off_with_a_float32_extra(P, X, T, loss):
        L, G = grads(P, X, T, loss)
        G = {k: g * (1 + 1e-6) for k, g in G.items()}
        G["debug"] = np.zeros(3, np.float32)   # once loosened the tolerance to float32's
        return L, G
''')


@pytest.fixture
def hostile(tmp_path):
    path = tmp_path / "hostile.py"
    path.write_text(HOSTILE)
    return path


def survives(pid: int, wait: float = 10) -> bool:
    """Whether process `pid` still runs `wait` seconds from now (a killed orphan is a zombie
    until init reaps it: that counts as dead)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.1)
    return True


def hang_guard(fn, seconds: float = 300):
    """fn() in a thread; a failure if it has not returned after `seconds` (a generous guard
    against a hang, never a timing claim: the limit is minutes where the work takes seconds)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(fn)
        try:
            return future.result(timeout=seconds)
        except concurrent.futures.TimeoutError:
            pytest.fail(f"still running after {seconds} s: a hang")


def check(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["check", *map(str, argv)])
    return code, capsys.readouterr().out


def python_m_harness(*argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "check", *map(str, argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("function", ["exits", "hard_exit"])
def test_an_exit_in_the_function_is_a_finding_not_agreement(hostile, function):
    result = python_m_harness("--impl", f"{hostile}:{function}")
    assert result.returncode == 1, result.stdout
    assert "exited with code 0 with 0 of 6 results (sys.exit() or os._exit()" in result.stdout
    assert "check: 6 of 26 comparisons DISAGREE" in result.stdout


def test_an_exit_while_importing_the_file_is_a_finding(tmp_path):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(0)\ndef f(P, X, T, loss): pass\n")
    result = python_m_harness("--impl", f"{tmp_path}/quits.py:f")
    assert result.returncode == 1 and "exited with code 0 while importing the file" in result.stdout


def test_patching_the_checker_from_the_function_changes_nothing(hostile, capsys):
    code, out = check(capsys, "--impl", f"{hostile}:patches_compare")
    assert code == 1 and "off by a factor of 2" in out and "24 of 50 comparisons DISAGREE" in out


def test_a_function_that_never_returns_is_stopped_at_the_time_limit(hostile, capsys):
    code, out = hang_guard(lambda: check(capsys, "--impl", f"{hostile}:sleeps", "--timeout", "2"))
    assert code == 1 and "stopped at the time limit of 2 s with 0 of 6 results" in out


def test_nothing_the_function_started_outlives_the_check(hostile, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PID_FILE", str(tmp_path / "pid"))
    code, _ = check(capsys, "--impl", f"{hostile}:leaves_a_child", "--timeout", "3")
    pid = int((tmp_path / "pid").read_text())
    assert code == 1
    assert not survives(pid), f"the function's child {pid} survived the check"


def test_a_crash_is_a_finding_that_names_the_signal(hostile, capsys):
    code, out = check(capsys, "--impl", f"{hostile}:segfaults")
    assert code == 1 and "killed by signal SIGSEGV with 0 of 6 results" in out


def test_forged_result_data_is_a_finding(hostile, capsys):
    code, out = check(capsys, "--impl", f"{hostile}:forges_done")
    assert code == 1 and "result data is malformed or was tampered with" in out


def test_what_the_function_prints_never_breaks_json(hostile):
    result = python_m_harness("--impl", f"{hostile}:prints", "--json")
    report = json.loads(result.stdout)  # the whole of stdout is the checker's JSON
    assert result.returncode == 0 and report["ok"] is True
    assert report["user"]["stdout"].count("{not json") == 6
    assert "a warning" in report["user"]["stderr"] and report["user"]["process"] == ""


def test_what_the_function_prints_is_shown_in_the_human_report(hostile, capsys):
    code, out = check(capsys, "--impl", f"{hostile}:prints")
    assert code == 0 and "(stdout):\n  | {not json mse" in out and "  | a warning" in out


@pytest.mark.parametrize("function", ["as_torch", "as_jax", "as_lists"])
def test_correct_gradients_in_any_array_type_pass(hostile, capsys, function):
    code, out = check(capsys, "--impl", f"{hostile}:{function}")
    assert code == 0, out
    assert "check: all 50 comparisons agree" in out


@pytest.mark.parametrize("function, words", [
    ("loss_without_float", "loss: the loss cannot be read as a number (RuntimeError: no float"),
    ("grad_not_an_array", "W1: not an array of numbers (object:"),
])
def test_an_unreadable_result_is_a_finding_without_a_traceback(hostile, capsys, function, words):
    code, out = check(capsys, "--impl", f"{hostile}:{function}")
    assert code == 1 and words in out and "Traceback" not in out


def test_an_extra_entry_is_reported_and_never_loosens_the_tolerance(hostile, capsys):
    code, out = check(capsys, "--impl", f"{hostile}:slightly_off_with_a_float32_extra")
    assert code == 1 and "also returned 'debug': reported, not compared" in out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert fails and all("> tolerance 1e-10)" in line for line in fails)


def test_float32_check_holds_float32_results_to_float32s_tolerance(hostile, capsys):
    code, out = check(capsys, "--impl", f"{hostile}:grads", "--dtype", "float32")
    assert code == 0 and "grad       float32" in out and "1e-04  OK" in out


def test_a_process_that_fails_after_its_last_result_is_a_finding(tmp_path, capsys):
    exits_late = "\nimport atexit, os\natexit.register(os._exit, 5)\n"  # after main() returns
    (tmp_path / "late.py").write_text(USER_FILE + exits_late)
    code, out = check(capsys, "--impl", f"{tmp_path}/late.py:grads")
    assert code == 1 and "(process): the user's process exited with code 5 after delivering" in out


# ---- what a function does to its session, its output or its parent (issues 19 and 21) ----------
def pids(path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("function", ["escapes_the_group", "escapes_unmarked", "double_forks",
                                      "holds_its_output"])
def test_no_child_survives_the_check_whatever_it_does_to_its_session(hostile, tmp_path, function):
    """Correct gradients, and a child left behind: setsid(), a double fork, or a fork that
    holds every descriptor. The check passes, returns without waiting for the child (the
    time limit is 600 s, the hang guard 300 s) and leaves none of them running."""
    pid_file, tmp = tmp_path / "pids", tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PID_FILE=str(pid_file), TMPDIR=str(tmp))
    result = hang_guard(lambda: python_m_harness("--impl", f"{hostile}:{function}", "--timeout",
                                                 "600", env=env))
    assert result.returncode == 0, result.stdout
    assert pids(pid_file) and not [pid for pid in pids(pid_file) if survives(pid, wait=5)]
    assert list(tmp.iterdir()) == [], "the check left files in the temporary folder"


@pytest.mark.parametrize("function", ["escapes_the_group", "escapes_unmarked",
                                      "holds_its_output"])
def test_no_child_of_a_notebook_function_survives(hostile, tmp_path, monkeypatch, function):
    import importlib.util

    monkeypatch.setenv("PID_FILE", str(tmp_path / "pids"))
    spec = importlib.util.spec_from_file_location("hostile_module", hostile)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = hang_guard(lambda: check_my_backprop(getattr(module, function), timeout=600))
    assert result.ok, str(result)
    alive = [pid for pid in pids(tmp_path / "pids") if survives(pid, wait=5)]
    assert pids(tmp_path / "pids") and not alive


def test_a_function_that_kills_its_parent_is_a_finding(hostile):
    """Its parent is the sandbox's guard, not the checker: the check reports, exit 1."""
    result = python_m_harness("--impl", f"{hostile}:kills_its_parent")
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "lost its guard process, which was killed by signal SIGKILL" in result.stdout


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 128 + signal.SIGTERM),
                                       (signal.SIGINT, 130)])
def test_a_check_stopped_by_a_signal_leaves_no_process_and_no_file(hostile, tmp_path, sig, code):
    tmp, pid_file = tmp_path / "tmp", tmp_path / "pid"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), PID_FILE=str(pid_file))
    check = subprocess.Popen([sys.executable, "-m", "harness", "check", "--impl",
                              f"{hostile}:leaves_a_child", "--timeout", "600"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # a hang guard: the child starts in about a second
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and check.poll() is None
            time.sleep(0.05)
        check.send_signal(sig)
        _, err = check.communicate(timeout=300)
        assert check.returncode == code, err
    finally:
        check.kill()
        check.communicate()
    assert not survives(int(pid_file.read_text())), "the function's child survived"
    assert list(tmp.iterdir()) == [], "the check left files in the temporary folder"


# ---- a guard that fails on its own: the checker's fault, never the student's --------------------
BROKEN_GUARDS = {
    # the guard's imports fail (a package the sandbox lacks): it says so on its channel
    "channel": ("import sys\nsys.modules['impls.contract'] = None  # the import fails\n"
                "from harness.check import sandbox_child\n"
                "sys.exit(sandbox_child.main(sys.argv[1:]))\n",
                "ModuleNotFoundError: import of impls.contract halted"),
    # it fails before it can speak at all: its stderr says why
    "stderr": ("import a_package_the_sandbox_lacks\n",
               "ModuleNotFoundError: No module named 'a_package_the_sandbox_lacks'"),
}


@pytest.mark.parametrize("how", BROKEN_GUARDS)
def test_a_guard_that_fails_before_the_code_runs_says_why_and_blames_no_one(
        hostile, tmp_path, monkeypatch, how):
    from harness.check import sandbox

    code, words = BROKEN_GUARDS[how]
    (tmp_path / "broken_guard.py").write_text(code)
    monkeypatch.setattr(sandbox, "GUARD", "broken_guard")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = check_my_backprop(f"{hostile}:grads", timeout=120)
    assert not result.ok
    assert "the sandbox failed before the user's code ran (not a fault of the code checked): " \
           "its guard process exited with code 1: " + words in result.process, result.process
    assert "signal its parent" not in str(result)


def test_a_package_missing_inside_bubblewrap_is_said_as_such(hostile, monkeypatch):
    """The day dataparallel/ was not bound into bubblewrap, every submission got "lost its guard
    process ... did the code signal its parent?": now the guard's own error is the diagnosis."""
    from harness.check import isolation, sandbox

    if not isolation.bwrap_status()[0]:
        if os.environ.get("BACKPROP_REQUIRE_BWRAP") == "1":
            pytest.fail(f"bubblewrap is required here: {isolation.bwrap_status()[1]}")
        pytest.skip(f"bubblewrap: {isolation.bwrap_status()[1]}")
    monkeypatch.setattr(sandbox, "READABLE", ("harness", "impls"))  # dataparallel/ left out
    outcome = sandbox.run(f"{hostile}:grads", [], sandbox.Limits(timeout=120, isolation="bwrap"))
    assert outcome.failure.startswith("the sandbox failed before the user's code ran")
    assert "No module named 'dataparallel'" in outcome.failure, outcome.failure
