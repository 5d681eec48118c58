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
--json, or patch the checker's compare. Here it runs through harness/process, the one way this
project runs a process: a Group (its temp folder holds the run; reap_stale() removes what a
killed checker left), a session of its own, stdin empty, stdout and stderr into files, files
limited to 64 MB and address space to `memory` (rlimits set before exec), in a fresh working
folder that is also its TMPDIR. On the child's side a guard (harness/process/guard.py, entered
from harness/check/sandbox_child.py) runs the function in a worker, a child subreaper that kills
everything the worker left, a grandchild that called os.setsid() included, and says on its
channel how the worker ended. At the time limit, on Ctrl-C, SIGTERM or a cancel, the child's
group, every process seen below it and every process carrying its tag are killed. The run
counts as finished only if the worker said "done" and the guard reported an exit code of 0; a
result counts only if it arrived, once, in order. The check returns as soon as the worker has
ended (a grandchild holding its stdout open changes nothing), or LINGER seconds after "done"
if it lingers (then it is stopped, and that is no failure: every result is in). A guard that
fails before any of the user's code ran (a package missing, or not bound into bubblewrap) is
the checker's fault and said so, with the guard's own words, never blamed on the code.

Isolation (Limits.isolation): "process" is the above. "bwrap" runs the guard inside bubblewrap
as well (isolation.py, the process module's `wrapper=`): its own PID, network and mount
namespaces, no network, nothing readable but Python, the checker and `Limits.readable` (the
submission), nothing writable but its working folder; everything in it dies with it. `grade`
uses bwrap where it works.

Two ways to start it. A FILE.py:FUNCTION (or FILE.ipynb:FUNCTION) runs in a fresh `python -m
harness.check.sandbox_child`, which imports the file itself (an exit at import is caught
too). A callable (a function typed into a notebook, which no file
holds) cannot be imported by path, and cloudpickle is no dependency: it runs in a child forked
from this process (Group.fork), which inherits the function (JAX, once run here, hangs there: see
JAX_AFTER_FORK). Without fork (Windows) a callable that lives in a .py file is run by its path
instead; any other is refused with a ContractError that says to save it in a file.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness import process
from harness.check import isolation
from harness.check.outcome import LINGER, End, Outcome, outcome, read_results, signal_name  # noqa: F401  (Outcome, read_results: this module's API)
from harness.check.sandbox_child import forked_child
from harness.check.serve import save_jobs
from impls.contract import ContractError

ROOT = process.REPO  # on the child's PYTHONPATH: it imports harness
READABLE = ("harness", "impls", "dataparallel")  # what bubblewrap lets the guard import
GUARD = "harness.check.sandbox_child"  # the child's entry point: python -m GUARD SPEC RUN_DIR
MAX_FILE_BYTES = 64 * 2**20  # a user's print loop must not fill the disk before the time limit
# Measured: JAX in a forked child hangs once JAX has run in the parent (its threads' locks
# are copied locked). Torch and NumPy run fine there.
JAX_AFTER_FORK = ("(JAX is loaded in this process, and JAX hangs in a forked child: if the "
                  "function uses JAX, save it in a .py file and pass 'FILE.py:FUNCTION')")
Cancelled = process.Cancelled  # Limits.cancel was set while the run was going: its processes are gone


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
    with process.sigterm_as_exit(), process.Group() as group:
        run_dir = str(group.folder("run"))
        files = {"stdout": str(group.dir / "stdout.txt"), "stderr": str(group.dir / "stderr.txt"),
                 "results": os.path.join(run_dir, "results.jsonl")}
        for sub in ("work", "tmp"):
            os.makedirs(os.path.join(run_dir, sub))
        save_jobs(jobs, os.path.join(run_dir, "jobs.npz"))
        for name in files.values():
            open(name, "w").close()
        end = _run_child(group, source, run_dir, files, limits, forked)
        why = JAX_AFTER_FORK if forked and end.timed_out and "jax" in sys.modules else ""
        return outcome(files, end, len(jobs), limits, why)


# ---- the child, through harness/process: started or forked, waited for, killed --------------
def _run_child(group: process.Group, source, run_dir: str, files: dict, limits: Limits,
               forked: bool) -> End:
    work, tmp = os.path.join(run_dir, "work"), os.path.join(run_dir, "tmp")
    env = {"HOME": work, "TMPDIR": tmp, "MPLCONFIGDIR": tmp}
    rlimits = {resource.RLIMIT_FSIZE: (MAX_FILE_BYTES, MAX_FILE_BYTES)}
    if limits.memory:
        rlimits[resource.RLIMIT_AS] = (limits.memory, limits.memory)
    where = {"stdout": files["stdout"], "stderr": files["stderr"], "cwd": work,
             "rlimits": rlimits, "env": env, "channel": True}
    if forked:
        child = group.fork(lambda: forked_child(source, run_dir), **where)
    else:
        path, _, name = source.rpartition(":")
        wrapper = isolation.bwrap_wrapper(run_dir, [str(ROOT / p) for p in READABLE] + [
            os.path.abspath(p) for p in limits.readable]) if limits.isolation == "bwrap" else []
        child = group.start([sys.executable, "-m", GUARD,
                             f"{os.path.abspath(path)}:{name}", run_dir], wrapper=wrapper,
                            **where)
    results, seen = files["results"], [0, False]

    def said_done() -> bool:  # the results file grew: does it end with the worker's "done"?
        size = os.path.getsize(results)
        if size != seen[0]:
            seen[:] = [size, _said_done(results, size)]
        return seen[1]

    code, timed_out, lingered = None, False, False
    deadline = time.monotonic() + limits.timeout
    try:
        code = child.wait(process.Limit(limits.timeout, "the time limit"), cancel=limits.cancel,
                          until=said_done)
        if code is None:  # every result is in: it may take LINGER seconds to exit
            left = min(LINGER, max(0.0, deadline - time.monotonic()))
            code = child.wait(process.Limit(left, "the exit after its last result"),
                              cancel=limits.cancel)
    except process.ChildError:
        timed_out, lingered = not seen[1], seen[1]
    messages = child.pending()
    child.close()
    return _end(code, messages, timed_out, lingered, child.stderr_tail(""))


def _end(code: int | None, messages: list[dict], timed_out: bool, lingered: bool,
         stderr: str) -> End:
    """How the run ended, from the guard's exit code and its messages (harness/process/guard.py):
    the worker's end as the guard saw it; else the guard's own failure before any of the
    user's code ran (the checker's fault, said with the guard's words); else the guard lost."""
    ready = any(m.get("ready") is True for m in messages)
    for m in messages:
        if m.get("end") in ("exit", "signal") and type(m.get("code")) is int:
            return End(m["code"] * (-1 if m["end"] == "signal" else 1), "", timed_out, lingered)
    how = ("was stopped" if code is None else f"was killed by signal {signal_name(-code)}"
           if code < 0 else f"exited with code {code}")
    errors = [str(m["error"]) for m in messages if "error" in m]
    if not ready and not timed_out and not lingered:
        return End(None, how, broken=(errors or [stderr or "nothing on stderr"])[-1][:300])
    return End(None, how, timed_out, lingered)


def _said_done(path: str, size: int) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, size - 64))
        return f.read().endswith(b'{"done": true}\n')


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
