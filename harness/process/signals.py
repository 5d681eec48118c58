"""Signals while processes run: SIGTERM and SIGHUP end a run as Ctrl-C does, so every child is
killed and every folder removed on the way out; a clean-up is never cut in half.

    with interrupts():                 # bench: Interrupted (a KeyboardInterrupt) -> exit 130
    with interrupts(redeliver=True):   # a library call: clean up, then die of the signal
    with sigterm_as_exit():            # a command (check): SIGTERM is SystemExit(143)
"""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the code was, so `finally` blocks clean up."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_held: list[int] = []  # clean-ups in progress (interrupts() defers its signals meanwhile)
_pending: list[BaseException] = []  # what a deferred signal raises once they are over


@contextlib.contextmanager
def _shielded():
    """Hold SIGINT, SIGTERM and SIGHUP back (they are delivered when the block ends): blocked
    for this thread, and interrupts()'s handler defers them should another thread get one."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM,
                                                    signal.SIGHUP}) if main else None
    _held.append(1)
    try:
        yield
    finally:
        _held.pop()
        if main:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if main and not _held and _pending:
            raise _pending.pop()


@contextlib.contextmanager
def interrupts(redeliver: bool = False):
    """SIGTERM and SIGHUP raise Interrupted (a KeyboardInterrupt) inside the block, as Ctrl-C
    does, so every child is killed and every folder removed on the way out. `redeliver`: then
    the signal is sent again with the old handler back (a library call dies as the caller
    expects). Outside the main thread signals cannot be caught: nothing changes there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if _held:  # in the middle of a clean-up: after it
            _pending.append(Interrupted(signum))
            return
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    except Interrupted as exc:
        for s, h in old.items():
            signal.signal(s, h)
        if redeliver:
            signal.raise_signal(exc.signum)
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def sigterm_as_exit():
    """SIGTERM raises SystemExit(143) inside the block where nothing handles it yet (a command
    such as `check`, which then exits 143 as if it had died of it, its children killed and its
    folders removed on the way out). Outside the main thread, or with a handler already set
    (interrupts(), a caller's own), nothing changes."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def terminate(signum, frame):
        if _held:  # in the middle of a clean-up: after it
            _pending.append(SystemExit(128 + signum))
            return
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
