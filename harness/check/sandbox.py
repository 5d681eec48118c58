"""Run a user's function in a process of its own: a time limit, its output captured, and only
plain data coming back. The checker decides; this module only reports what happened.

    from harness.check.sandbox import run
    outcome = run("my_backprop.py:grads", jobs, timeout=60)   # or run(f, ...) for a callable
    outcome.results[i]    # job i's result as harness.check.user.call made it (plain data)
    outcome.failure       # "" if the process delivered everything and exited 0, else why not
    outcome.usage         # "" or why the file could not be loaded (missing function, ...)
    outcome.stdout, outcome.stderr                            # what the user's code printed

jobs: [(loss, params, X, T)]. Why a process: the user's code is untrusted. In the checker's
own process it could exit (sys.exit(0) read as "agree"), hang, print into --json, or patch the
checker's compare. Here it runs in a child: stdin empty, stdout and stderr into files, files
limited to 64 MB, the child and anything it starts in a process group of their own, killed at
the time limit and after the run (no orphan). The parent creates every file; the child
appends one JSON line per result. What the parent does not receive it never assumes: a
result counts only if it arrived, once, in order, and the run counts as finished only if the
child said "done" and exited with code 0.

Two ways to start the child (its side: harness/check/sandbox_child.py). A FILE.py:FUNCTION
runs in a fresh `python -m harness.check.sandbox_child SPEC JOBS RESULTS`: it imports the file
itself (so an exit at import is caught too), and it works on every platform. A callable (a
function typed into a notebook, which no file holds) cannot be imported by path, and
cloudpickle is no dependency: it runs in a child forked from this process, which inherits the
function (JAX, once run here, hangs there: see JAX_AFTER_FORK). Without fork (Windows) a
callable that lives in a .py file is run by its path instead; any other is refused with a
ContractError that says to save it in a file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.check.sandbox_child import _forked_child, _save_jobs
from impls.contract import ContractError

ROOT = Path(__file__).resolve().parents[2]  # on the child's PYTHONPATH: it imports harness
SHOW_BYTES = 20_000  # of the user's stdout and stderr, each; the rest is counted, not kept
# Measured: JAX in a forked child hangs once JAX has run in the parent (its threads' locks
# are copied locked). Torch and NumPy run fine there.
JAX_AFTER_FORK = ("(JAX is loaded in this process, and JAX hangs in a forked child: if the "
                  "function uses JAX, save it in a .py file and pass 'FILE.py:FUNCTION')")


@dataclass(frozen=True)
class Outcome:
    results: dict[int, dict]  # job index -> user.call's plain data
    failure: str  # "" when the child delivered every result, said done and exited 0
    usage: str  # "" or why FILE.py:FUNCTION could not be loaded (a usage error)
    stdout: str
    stderr: str


def run(source: str | Callable, jobs: list, timeout: float) -> Outcome:
    """Run f (FILE.py:FUNCTION, or a callable) on every job in a child; wait at most `timeout`
    seconds for the whole run."""
    with tempfile.TemporaryDirectory(prefix="backprop-check-") as tmp:
        files = {name: os.path.join(tmp, name)
                 for name in ("jobs.npz", "results.jsonl", "stdout.txt", "stderr.txt")}
        _save_jobs(jobs, files["jobs.npz"])
        for name in ("results.jsonl", "stdout.txt", "stderr.txt"):
            open(files[name], "w").close()
        if not isinstance(source, str):
            source = _forkable(source)  # the callable itself, or FILE.py:NAME where no fork
        forked = not isinstance(source, str)
        code, timed_out = (_run_forked if forked else _run_fresh)(source, files, timeout)
        why = JAX_AFTER_FORK if forked and timed_out and "jax" in sys.modules else ""
        return _outcome(files, code, timed_out, len(jobs), timeout, why)


# ---- starting, waiting, killing -------------------------------------------------------------
def _run_fresh(spec: str, files: dict, timeout: float) -> tuple[int, bool]:
    path, _, name = spec.rpartition(":")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "harness.check.sandbox_child", f"{os.path.abspath(path)}:{name}",
            files["jobs.npz"], files["results.jsonl"]]
    with open(files["stdout.txt"], "wb") as out, open(files["stderr.txt"], "wb") as err:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                             start_new_session=True)  # its own process group: killed as one
    return _wait(p.pid, lambda t: _wait_popen(p, t), timeout)


def _wait_popen(p: subprocess.Popen, t: float | None) -> int | None:
    try:
        return p.wait(t)
    except subprocess.TimeoutExpired:
        return None


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _forkable(f: Callable) -> Callable | str:
    """f itself where this platform forks; else FILE.py:NAME if f is a module-level function
    of a .py file (a fresh interpreter can import it); else ContractError."""
    if _can_fork():
        return f
    module = sys.modules.get(getattr(f, "__module__", None) or "")
    file = getattr(module, "__file__", None) or ""
    name = getattr(f, "__name__", "")
    if module is not None and module.__name__ != "__main__" and file.endswith(".py") \
            and getattr(module, name, None) is f:
        return f"{file}:{name}"
    raise ContractError("this platform cannot fork, so a function typed into a notebook cannot "
                        "run in a separate process: save it in a .py file and pass "
                        "'FILE.py:FUNCTION' instead")


def _run_forked(f: Callable, files: dict, timeout: float) -> tuple[int, bool]:
    sys.stdout.flush()  # else the child would print the parent's buffered text a second time
    sys.stderr.flush()
    p = multiprocessing.get_context("fork").Process(target=_forked_child, args=(f, files))
    # Fork in a threaded process draws warnings: Python 3.12+'s (DeprecationWarning), and JAX's
    # (RuntimeWarning) once JAX has run here. The child runs only f; if f needs a lock that a
    # parent thread held at the fork (JAX in the child, after JAX ran here), it hangs, and the
    # time limit makes that a failure, never a pass.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        p.start()

    def wait(t):
        p.join(t)
        return p.exitcode

    return _wait(p.pid, wait, timeout)


def _wait(pid: int, wait: Callable, timeout: float) -> tuple[int, bool]:
    """(exit code, timed out?) of the child `pid`. Its process group is killed at the time
    limit, on Ctrl-C, and after it exits: whatever the user's code started dies with it."""
    try:
        code = wait(timeout)
    except BaseException:  # Ctrl-C: the child is in its own group and would outlive us
        _kill(pid, child_too=True)
        wait(None)
        raise
    _kill(pid, child_too=code is None)  # the child itself only while it is not yet reaped
    return wait(None), code is None


def _kill(pid: int, child_too: bool) -> None:
    if hasattr(os, "killpg"):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # no group left (or not made yet: then the child itself is killed below)
    if child_too:
        try:  # Windows has no SIGKILL; there os.kill with SIGTERM terminates the process
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        except (ProcessLookupError, PermissionError, OSError):
            pass


# ---- what came back ---------------------------------------------------------------------------
def _outcome(files: dict, code: int, timed_out: bool, n: int, timeout: float,
             why: str = "") -> Outcome:
    results, loaded, done, usage, bad = _read_results(files["results.jsonl"], n)
    stdout, stderr = _read_capped(files["stdout.txt"]), _read_capped(files["stderr.txt"])
    got = f"{len(results)} of {n} results"
    if usage:
        failure = ""
    elif timed_out:
        failure = (f"stopped at the time limit of {timeout:g} s with {got} "
                   + (why or "(an endless loop? a slow import? raise the time limit)"))
    elif bad:
        failure = f"its result data is malformed or was tampered with ({bad})"
    elif code < 0:
        failure = f"killed by signal {_signal_name(-code)} with {got}"
    elif done and code != 0:
        failure = f"exited with code {code} after delivering every result"
    elif not done:
        where = f"with {got}" if loaded else "while importing the file"
        why = (" (sys.exit() or os._exit() in the user's code?)" if code == 0
               else f": {_last_line(stderr)}")
        failure = f"exited with code {code} {where}{why}"
    else:
        failure = ""
    return Outcome(results, f"the user's process {failure}" if failure else "", usage,
                   stdout, stderr)


def _read_results(path: str, n: int) -> tuple[dict, bool, bool, str, str]:
    """(results, loaded?, done?, usage message, what is malformed) from the child's lines:
    {"usage": why} alone, or {"loaded": true}, {"job": i, "result": ...} for each i in
    order, {"done": true}. Anything else, or anything out of that order, is malformed."""
    results: dict[int, dict] = {}
    loaded = done = False
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            try:
                msg = json.loads(line)
                keys = set(msg)
            except (ValueError, TypeError):
                return results, loaded, done, "", f"line {number} is not a JSON object"
            if keys == {"usage"} and number == 1:
                return {}, False, False, str(msg["usage"])[:400], ""
            if keys == {"loaded"} and number == 1:
                loaded = True
            elif keys == {"job", "result"} and loaded and not done and len(results) < n \
                    and type(msg["job"]) is int and msg["job"] == len(results):
                results[len(results)] = msg["result"]
            elif keys == {"done"} and loaded and not done and len(results) == n:
                done = True
            else:
                return results, loaded, done, "", f"line {number} is out of place"
    return results, loaded, done, "", ""


def _read_capped(path: str) -> str:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        text = f.read(SHOW_BYTES).decode("utf-8", errors="replace")
    return text + (f"\n[... {size - SHOW_BYTES} more bytes not kept]" if size > SHOW_BYTES else "")


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["(nothing on stderr)"])[-1][:200]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
