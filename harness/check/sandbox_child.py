"""The user's side of the sandbox (harness/check/sandbox.py): a guard process, and under it the
worker that loads the user's function, calls it on each job and appends each result as a
JSON line.

    python -m harness.check.sandbox_child SPEC RUN_DIR STATUS_FD MEMORY_BYTES

Started by sandbox.run, never by hand; a callable from a notebook comes here by fork
(`forked_child`). SPEC is FILE.py:FUNCTION, or FILE.ipynb:FUNCTION: the notebook is executed
headless (harness/check/notebook.py), then its kernel serves the jobs. RUN_DIR holds jobs.npz (the
jobs, as plain arrays: no pickle) and results.jsonl (the answers). The guard forks the worker,
waits for it, kills whatever it left (the guard is a child subreaper on Linux: a grandchild
that calls os.setsid() and is orphaned comes back to it), and writes the worker's exit status
on STATUS_FD, a pipe the worker does not hold: what the checker learns of the worker's end
does not come from the user's code.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from harness.check import user
from harness.check.serve import load_jobs, serve, usage
from impls.contract import ContractError

MAX_FILE_BYTES = 64 * 2**20  # a user's print loop must not fill the disk before the time limit


def _work_file(spec: str, run_dir: str) -> int:
    results = os.path.join(run_dir, "results.jsonl")
    try:
        f = user.load_function(spec)
    except ContractError as exc:
        usage(results, exc)
        return 3
    serve(f, load_jobs(os.path.join(run_dir, "jobs.npz")), results)
    return 0


# ---- the guard -------------------------------------------------------------------------------
def guard(work: Callable[[], int], status_fd: int | None, exit_handlers: bool = True) -> int:
    """Run work() in a forked worker; when it ends, kill everything it left and write its
    status ("exit N" or "signal N") on status_fd. Without fork (Windows), work() runs here.
    exit_handlers: run the atexit handlers after work(), as an interpreter's exit does (not in
    a child forked from the checker: those handlers are the checker's, its temporary folder's
    removal among them)."""
    if not hasattr(os, "fork"):
        return work()
    _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans of the worker's tree come back here
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            if status_fd is not None:
                os.close(status_fd)
            _prctl(1, 9)  # PR_SET_PDEATHSIG = SIGKILL: the worker dies with its guard
            code = work()
            if exit_handlers:
                import atexit

                atexit._run_exitfuncs()  # a user's atexit handler runs, as at any exit
        except SystemExit as exc:  # sys.exit() in the user's code, at import or in a call
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    left = kill_descendants()
    if status_fd is not None:
        end = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exit {os.WEXITSTATUS(status)}")
        os.write(status_fd, f"{end} left {left}\n".encode())
        os.close(status_fd)
    return 0


def kill_descendants(rounds: int = 200) -> int:
    """SIGKILL every process below this one (orphans included, where this is a subreaper)
    and reap them; returns how many there were."""
    import psutil

    me, seen = psutil.Process(), set()
    for _ in range(rounds):
        kids = [k for k in _children(me) if _alive(k)]
        for k in kids:
            seen.add(k.pid)
            try:
                k.kill()
            except psutil.Error:
                pass
        while True:  # reap what has died (our direct children, and orphans given to us)
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if not kids:
            return len(seen)
        time.sleep(0.005)
    return len(seen)


def _children(me):
    import psutil

    try:
        return me.children(recursive=True)
    except psutil.Error:
        return []


def _alive(p) -> bool:
    import psutil

    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _prctl(option: int, value: int) -> None:
    if sys.platform != "linux":
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


# ---- limits ------------------------------------------------------------------------------
def limit(memory: int) -> None:
    """Files this process writes at most MAX_FILE_BYTES (a print loop: SIGXFSZ), and its
    address space at most `memory` bytes (0: no limit; an allocation past it: MemoryError)."""
    try:
        import resource
    except ImportError:  # Windows: the time limit still ends a print loop
        return
    for what, value in ((resource.RLIMIT_FSIZE, MAX_FILE_BYTES),
                        (resource.RLIMIT_AS, memory)):
        if not value:
            continue
        try:
            soft, hard = resource.getrlimit(what)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(what, (value, hard))
        except (ValueError, OSError):
            pass


def forked_child(f: Callable, run_dir: str, files: dict, status_fd: int, memory: int) -> int:
    """A notebook's callable, in a process forked from the checker: a session of its own, its
    own stdin/stdout/stderr, the limits, then the guard and its worker."""
    os.setsid()
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, files["stdout"], os.O_WRONLY | os.O_APPEND),
                            (2, files["stderr"], os.O_WRONLY | os.O_APPEND)):
        new = os.open(path, flags)
        os.dup2(new, fd)
        os.close(new)
    # Fresh Python streams on the new descriptors: the inherited ones may be Jupyter's, which
    # would send the child's prints to the notebook through the parent's sockets.
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    limit(memory)

    def work():
        serve(f, load_jobs(os.path.join(run_dir, "jobs.npz")),
              os.path.join(run_dir, "results.jsonl"))
        return 0

    return guard(work, status_fd, exit_handlers=False)


def main(argv: list[str]) -> int:
    """`python -m harness.check.sandbox_child SPEC RUN_DIR STATUS_FD MEMORY` (from `run`)."""
    spec, run_dir, status_fd, memory = argv
    limit(int(memory))
    if spec.rpartition(":")[0].endswith(".ipynb"):
        from harness.check.notebook import work_notebook as work
    else:
        work = _work_file
    return guard(lambda: work(spec, run_dir), int(status_fd) if int(status_fd) >= 0 else None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
