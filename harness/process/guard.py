"""A guard: the child's side of running code that is not ours (a student's function) under a
process of our own, which outlives it, kills what it left and says how it ended.

    from harness import process
    channel = process.channel()          # the parent started us with channel=True
    ...                                  # imports, set-up: a failure here is ours, not the code's
    process.guard(work, channel)         # {"ready": true}, work() in a forked worker, then
                                         # {"end": "exit" | "signal", "code": N, "left": K}

The guard is a child subreaper (Linux): a grandchild that called os.setsid() and was orphaned
comes back to it, and when the worker ends everything below the guard is killed. The worker
dies with its guard (PR_SET_PDEATHSIG) and never holds the channel, so what the parent learns
of the worker's end never comes from the code that ran in it. What the parent can tell apart:
no "ready" (the guard's own set-up failed: its stderr or {"error": ...} says why), "ready" and
no "end" (the guard was killed: the code signalled its parent?), and the worker's end.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


def guard(work: Callable[[], int], channel, exit_handlers: bool = True) -> int:
    """Run work() in a forked worker; when it ends, kill everything it left and send its end
    on `channel` (a harness.process.Channel). Without fork (Windows) work() runs here.
    exit_handlers: run the atexit handlers after work(), as an interpreter's exit does (not in
    a child forked from the checker: those handlers are the checker's, its temporary folder's
    removal among them). Returns the guard's own exit code: 0 once the end is sent."""
    channel.send({"ready": True})
    if not hasattr(os, "fork"):
        code = work()
        channel.send({"end": "exit", "code": code, "left": 0})
        return 0
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of the worker's tree come back here
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            channel.close()
            _prctl(PR_SET_PDEATHSIG, 9)  # SIGKILL: the worker dies with its guard
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
    end = ("signal", os.WTERMSIG(status)) if os.WIFSIGNALED(status) \
        else ("exit", os.WEXITSTATUS(status))
    channel.send({"end": end[0], "code": end[1], "left": left})
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
