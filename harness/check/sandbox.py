"""Run a user's function in a process of its own: a time limit, a memory limit, a fresh empty
working folder, its output captured, and only plain data coming back. The checker decides;
this module only reports what happened.

    from harness.check.sandbox import run, Limits
    outcome = run("my_backprop.py:grads", jobs, Limits(timeout=60))  # or run(f, ...): a callable
    outcome.results[i]    # job i's result as harness.check.tasks.call made it (plain data)
    outcome.failure       # "" if the process delivered everything and exited 0, else why not
    outcome.usage         # "" or why the file could not be loaded (missing function, ...)
    outcome.stdout, outcome.stderr                            # what the user's code printed

jobs: [Job.wire()] (harness/check/tasks.py). Why a process: the user's code is untrusted. In
the checker's own process it could exit (sys.exit(0) read as "agree"), hang, print into
--json, or patch the checker's compare. Here it runs in a worker under a guard process
(harness/check/sandbox_child.py): stdin empty, stdout and stderr into files, files limited to
64 MB, address space to `memory`, in a fresh working folder that is also its TMPDIR, all in a
session of its own. When the worker ends the guard kills everything it left, a grandchild that
called os.setsid() included (the guard is a child subreaper); at the time limit, on Ctrl-C or
SIGTERM the whole session is killed from here, and a last sweep kills any process that still
carries this run's mark in its environment. The run counts as finished only if the worker said
"done" and its guard reported an exit code of 0; a result counts only if it arrived, once, in
order. The check returns as soon as the worker has ended (a grandchild holding its stdout open
changes nothing), or LINGER seconds after "done" if it lingers (then it is stopped, and that
is no failure: every result is in).

Isolation (Limits.isolation): "process" is the above. "bwrap" runs the guard inside bubblewrap
as well (isolation.py): its own PID, network and mount namespaces, no network, nothing
readable but Python, the checker and `Limits.readable` (the submission), nothing writable but
its working folder; everything in it dies with it. `grade` uses bwrap where it works.

Two ways to start it. A FILE.py:FUNCTION (or FILE.ipynb:FUNCTION) runs in a fresh `python -m
harness.check.sandbox_child`, which imports the file itself (an exit at import is caught too)
and works on every platform. A callable (a function typed into a notebook, which no file
holds) cannot be imported by path, and cloudpickle is no dependency: it runs in a child forked
from this process, which inherits the function (JAX, once run here, hangs there: see
JAX_AFTER_FORK). Without fork (Windows) a callable that lives in a .py file is run by its path
instead; any other is refused with a ContractError that says to save it in a file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.check import isolation
from harness.check.outcome import LINGER, End, Outcome, outcome, read_results, signal_name  # noqa: F401  (Outcome, read_results: this module's API)
from harness.check.sandbox_child import forked_child
from harness.check.serve import save_jobs
from impls.contract import ContractError

ROOT = Path(__file__).resolve().parents[2]  # on the child's PYTHONPATH: it imports harness
MARK = "BACKPROP_SANDBOX_RUN"  # in the child's environment: the last sweep looks for it
# Measured: JAX in a forked child hangs once JAX has run in the parent (its threads' locks
# are copied locked). Torch and NumPy run fine there.
JAX_AFTER_FORK = ("(JAX is loaded in this process, and JAX hangs in a forked child: if the "
                  "function uses JAX, save it in a .py file and pass 'FILE.py:FUNCTION')")


class Cancelled(Exception):
    """Limits.cancel was set while the run was going: its processes are gone."""


@dataclass(frozen=True)
class Limits:
    timeout: float = 60.0  # seconds for the whole run
    memory: int = 0  # bytes of address space (0: none)
    isolation: str = "process"  # "process" or "bwrap"
    readable: tuple[str, ...] = ()  # bwrap: paths the child may read (its submission)
    cancel: threading.Event | None = None  # set it to stop the run from another thread


def run(source: str | Callable, jobs: list[dict], limits: Limits | float) -> Outcome:
    """Run f (FILE.py:FUNCTION, FILE.ipynb:FUNCTION or a callable) on every job in a child."""
    limits = limits if isinstance(limits, Limits) else Limits(timeout=float(limits))
    if not isinstance(source, str):
        source = _forkable(source)  # the callable itself, or FILE.py:NAME where no fork
    forked = not isinstance(source, str)
    with _terminate_as_exit(), tempfile.TemporaryDirectory(
            prefix="backprop-check-", ignore_cleanup_errors=True) as tmp:
        run_dir = os.path.join(tmp, "run")
        files = {"stdout": os.path.join(tmp, "stdout.txt"),
                 "stderr": os.path.join(tmp, "stderr.txt"),
                 "results": os.path.join(run_dir, "results.jsonl")}
        for sub in ("work", "tmp"):
            os.makedirs(os.path.join(run_dir, sub))
        save_jobs(jobs, os.path.join(run_dir, "jobs.npz"))
        for name in files.values():
            open(name, "w").close()
        end = _run_child(source, run_dir, files, limits, forked)
        why = JAX_AFTER_FORK if forked and end.timed_out and "jax" in sys.modules else ""
        return outcome(files, end, len(jobs), limits, why)


# ---- starting, waiting, killing: the one place that handles processes -------------------------
def _run_child(source, run_dir: str, files: dict, limits: Limits, forked: bool) -> End:
    mark = os.urandom(8).hex()
    guarded = hasattr(os, "fork")  # without fork (Windows) there is no guard, and no pipe
    read_end, write_end = os.pipe() if guarded else (-1, -1)
    status: list[str] = []
    try:
        if forked:
            pid = _fork(source, run_dir, files, limits, write_end, mark)
            poll = _poll_pid(pid)
        else:
            proc = _spawn(source, run_dir, files, limits, write_end, mark)
            pid, poll = proc.pid, proc.poll
        if write_end >= 0:
            os.close(write_end)
            write_end = -1
        try:
            code, timed_out, lingered = _wait(poll, files["results"], limits)
        except BaseException:  # Ctrl-C, SIGTERM, a cancel: nothing may outlive us
            _kill(pid, poll)
            raise
        _kill(pid, poll)
        if read_end >= 0:
            os.set_blocking(read_end, False)
            with contextlib.suppress(BlockingIOError):
                status = os.read(read_end, 200).decode(errors="replace").split()
    finally:
        _sweep(mark)
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    if not guarded:
        return End(code, "", timed_out, lingered)
    if len(status) >= 2 and status[1].isdigit():
        worker = int(status[1]) * (-1 if status[0] == "signal" else 1)
        return End(worker, "", timed_out, lingered)
    how = ("was stopped" if code is None else f"was killed by signal {signal_name(-code)}"
           if code < 0 else f"exited with code {code}")
    return End(None, how, timed_out, lingered)


def _spawn(spec: str, run_dir, files, limits: Limits, status_fd: int, mark: str):
    path, _, name = spec.rpartition(":")
    env = dict(os.environ, HOME=os.path.join(run_dir, "work"),
               TMPDIR=os.path.join(run_dir, "tmp"), MPLCONFIGDIR=os.path.join(run_dir, "tmp"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env[MARK] = mark
    argv = [sys.executable, "-m", "harness.check.sandbox_child", f"{os.path.abspath(path)}:{name}",
            run_dir, str(status_fd), str(limits.memory)]
    if limits.isolation == "bwrap":
        argv = isolation.bwrap_argv(argv, run_dir, [str(ROOT / p) for p in ("harness", "impls", "dataparallel")]
                                    + [os.path.abspath(p) for p in limits.readable])
    with open(files["stdout"], "wb") as out, open(files["stderr"], "wb") as err:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                cwd=os.path.join(run_dir, "work"),
                                pass_fds=(status_fd,) if status_fd >= 0 else (),
                                start_new_session=True)  # its own session and group


def _fork(f: Callable, run_dir, files, limits: Limits, status_fd: int, mark: str) -> int:
    sys.stdout.flush()  # else the child would print the parent's buffered text a second time
    sys.stderr.flush()
    # Fork in a threaded process draws warnings (Python 3.12+, and JAX's once JAX has run
    # here). The child runs only f; if f needs a lock that a parent thread held at the fork
    # (JAX in the child, after JAX ran here), it hangs, and the time limit makes that a
    # failure, never a pass.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: never returns into the caller's code
        os.chdir(os.path.join(run_dir, "work"))
        os.environ.update({MARK: mark, "TMPDIR": os.path.join(run_dir, "tmp")})
        tempfile.tempdir = os.environ["TMPDIR"]
        code = forked_child(f, run_dir, files, status_fd, limits.memory)
    finally:
        os._exit(code)


def _poll_pid(pid: int) -> Callable[[], int | None]:
    """Popen.poll for a forked child: its exit code, negative for a signal; None if running."""
    code: list[int] = []

    def poll():
        if not code:
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                return None
            code.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status)
                        else os.WEXITSTATUS(status))
        return code[0]

    return poll


def _wait(poll: Callable, results: str, limits: Limits) -> tuple[int | None, bool, bool]:
    """(exit code, timed out?, lingered?): polls the child, the clock and the results file."""
    deadline = time.monotonic() + limits.timeout
    size, done, delay = 0, False, 0.002
    while (code := poll()) is None:
        if limits.cancel is not None and limits.cancel.is_set():
            raise Cancelled()
        now = time.monotonic()
        if not done and os.path.getsize(results) != size:
            size = os.path.getsize(results)
            done = _said_done(results, size)
            deadline = min(deadline, now + LINGER) if done else deadline
        if now >= deadline:
            return None, not done, done
        time.sleep(delay)
        delay = min(2 * delay, 0.05)
    return code, False, False


def _said_done(path: str, size: int) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, size - 64))
        return f.read().endswith(b'{"done": true}\n')


def _kill(pid: int, poll: Callable) -> None:
    """SIGKILL the child's session (its process group) and the child, then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError, AttributeError):
        os.killpg(pid, signal.SIGKILL)  # no killpg on Windows
    if poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    while poll() is None:
        time.sleep(0.001)


def _sweep(mark: str) -> None:
    """Kill any process that still carries this run's mark (one that left the session and
    was orphaned before its guard could take it back: the guard killed first)."""
    import psutil

    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if p.pid != os.getpid() and p.environ().get(MARK) == mark:
                p.kill()


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM raises SystemExit(143) meanwhile (where nobody handles it yet), so a
    terminated check still kills its child and removes its temporary folder."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _can_fork() -> bool:
    return hasattr(os, "fork")


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
