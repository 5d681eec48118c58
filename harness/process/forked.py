"""A child forked from this process, for a callable no fresh interpreter can import (a
function typed into a notebook): Group.fork() starts it, and it gets what Group.start() gives a
command, a session of its own, its tag, its files, its channel and its rlimits.

    child = group.fork(fn, env={...}, channel=True, stdout=..., stderr=..., cwd=..., rlimits=...)

The child runs fn() and exits with its return value; it never returns into the caller's code,
nor runs its clean-ups (os._exit): a `finally` of the caller's, in the child, could close the
caller's own group. Fork in a threaded process copies only the forking thread: if fn needs a
lock another thread held at the fork (JAX, once JAX has run here), it hangs, and the caller's
time limit turns that into a failure, never a pass.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

from harness.process.child import set_rlimits, tag_self


class Forked:
    """Popen's face (pid, poll, wait, returncode) for a forked child."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                done, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: it is gone, how is unknown
                done, status = self.pid, 255 << 8
            if done:
                self.returncode = (-os.WTERMSIG(status) if os.WIFSIGNALED(status)
                                   else os.WEXITSTATUS(status))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
        return self.returncode


def fork_child(fn: Callable[[], int], tag: str, env: dict, files: dict, cwd,
               rlimits: dict, close: tuple[int, ...] = ()) -> int:
    """Fork; in the child: a new session, the tag, `env`, stdin empty, stdout and stderr
    appended to `files`, `rlimits`, `cwd`, then fn(). `close`: descriptors that are the
    caller's alone (its ends of the child's channel). Returns the child's pid."""
    sys.stdout.flush()  # else the child would print the parent's buffered text a second time
    sys.stderr.flush()
    with warnings.catch_warnings():  # Python 3.12+ and JAX warn about fork in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: never returns into the caller's code
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGHUP):  # the caller's handlers are not ours
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        tag_self(tag)
        os.environ.update(env)
        if "TMPDIR" in env:
            import tempfile

            tempfile.tempdir = None  # read TMPDIR again
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, files["stdout"], os.O_WRONLY | os.O_APPEND),
                                (2, files["stderr"], os.O_WRONLY | os.O_APPEND)):
            new = os.open(path, flags)
            os.dup2(new, fd)
            os.close(new)
        # Fresh Python streams on the new descriptors: the inherited ones may be Jupyter's,
        # which would send the child's prints to the notebook through the caller's sockets.
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
        sys.stdin = open(0, closefd=False)
        set_rlimits(rlimits)
        if cwd is not None:
            os.chdir(cwd)
        for fd in close:
            if fd >= 0:
                os.close(fd)
        code = fn()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)
    return pid  # never reached
