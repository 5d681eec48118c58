"""The parent's handle on one child process: its messages (a channel of its own), the limits
a wait runs under (Limit: seconds and what they are for, named in the error), its facts (CPU
time, whether its threads are quiet) and its close. A Group (harness/process/group.py) starts
children and owns their folder; harness/process/__init__.py says how to use both.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.process.reap import _ctime, _descendants, kill


class Cancelled(Exception):
    """The caller's cancel event was set while it waited: the child is gone (grade's Ctrl-C)."""


class ChildError(RuntimeError):
    """A child that crashed, hung past its limit or broke the protocol; `status` is "failed"
    or "timeout", `reason` one line."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Limit:
    """How long one phase may take, and what that phase is (named in the error)."""

    seconds: float
    what: str = "work"

    def error(self) -> ChildError:
        return ChildError("timeout", f"killed after {self.seconds:g} s of {self.what}")


class Child:
    """A started process: messages, its facts (CPU time, stderr), and `close()`."""

    def __init__(self, proc: subprocess.Popen, tag: str, files: dict, pipes: tuple | None):
        self.proc, self.pid, self.tag, self.files = proc, proc.pid, tag, files
        self._to, self._from = pipes or (None, None)
        self._buffer, self._seen, self.closed = b"", {}, False

    def send(self, message: dict) -> None:
        try:
            os.write(self._to, (json.dumps(message) + "\n").encode())
        except OSError:
            raise ChildError("failed", self._died()) from None

    def receive(self, limit: Limit) -> dict:
        """The next message; ChildError when the child exits first or `limit` passes (the child
        is then killed with everything it started)."""
        deadline = time.monotonic() + limit.seconds
        with selectors.DefaultSelector() as sel:
            sel.register(self._from, selectors.EVENT_READ)
            while True:
                line, sep, rest = self._buffer.partition(b"\n")
                if sep:
                    self._buffer = rest
                    try:
                        message = json.loads(line)
                    except ValueError:
                        message = None
                    if not isinstance(message, dict):
                        self.close()
                        raise ChildError("failed", f"broke the protocol: {line[:200]!r}")
                    return message
                left = deadline - time.monotonic()
                if left <= 0:
                    self.close()
                    raise limit.error()
                self._track()
                if sel.select(min(left, 0.5)):
                    chunk = os.read(self._from, 1 << 16)
                    if not chunk:
                        raise ChildError("failed", self._died())
                    self._buffer += chunk

    def pending(self) -> list[dict]:
        """The messages that have arrived, without waiting (after the child ended: all it sent).
        A line that is no JSON object ends the list (the protocol is broken from there)."""
        if self._from is not None and not self.closed:
            os.set_blocking(self._from, False)
            with contextlib.suppress(BlockingIOError, OSError):
                while chunk := os.read(self._from, 1 << 16):
                    self._buffer += chunk
        out = []
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if not isinstance(message, dict):
                self._buffer = b""
                break
            out.append(message)
        return out

    def ask(self, message: dict, limit: Limit) -> dict:
        self.send(message)
        return self.receive(limit)

    def wait(self, limit: Limit | None = None, *, cancel: threading.Event | None = None,
             until: Callable[[], bool] | None = None) -> int | None:
        """The exit code (negative: killed by that signal); ChildError (after killing it) when
        `limit` passes first, Cancelled (after killing it) once `cancel` is set. `until`: a
        question asked as it waits (the child said it is done?): None, the child still running,
        as soon as it says yes. Polled fast at first, so a short child costs no idle wait."""
        deadline = None if limit is None else time.monotonic() + limit.seconds
        delay, tracked = 0.002, 0.0
        while (code := self.proc.poll()) is None:
            now = time.monotonic()
            if cancel is not None and cancel.is_set():
                self.close()
                raise Cancelled()
            if until is not None and until():
                return None
            if deadline is not None and now > deadline:
                self.close()
                raise limit.error()
            if now - tracked >= 0.05:
                self._track()
                tracked = now
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
        return code

    def poll(self) -> int | None:
        return self.proc.poll()

    def stderr_tail(self, default: str = "no output") -> str:
        return _last_line(self.files.get("stderr"), default)

    def cpu_seconds(self) -> float | None:
        """CPU time the child has used so far (all its threads), from /proc."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_quiet(self, window: float = 0.02, max_s: float = 1.0) -> float:
        """Wait until the child uses no CPU for `window` seconds (at most `max_s`); return the
        seconds waited. After a block, thread pools keep spinning for a while (measured here:
        OpenBLAS ~0.1-0.2 s of a core after a large GEMM, torch's OpenMP ~10 ms, XLA ~2 ms);
        a block started meanwhile would share its cores. Without /proc: `max_s / 4`."""
        start, last = time.monotonic(), self.cpu_seconds()
        if last is None:
            time.sleep(max_s / 4)
            return max_s / 4
        quiet_since = start
        while time.monotonic() - start < max_s:
            time.sleep(0.005)
            now = self.cpu_seconds()
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= window:
                break
        return time.monotonic() - start

    def _track(self) -> None:
        """Remember every process seen below the child (killed by pid at close, start time
        checked: a recycled pid is never hit)."""
        for p in _descendants(self.pid):
            self._seen.setdefault(p.pid, _ctime(p))

    def _died(self) -> str:
        code = self.proc.wait()
        self.close()
        return f"exit code {code}: {self.stderr_tail()}"

    def close(self, grace_s: float = 0.0) -> int:
        """Kill the child's group, every process seen below it and every process carrying its
        tag (SIGTERM first when `grace_s` > 0, then SIGKILL); idempotent. Returns how many
        processes are still alive afterwards (0 unless one cannot be killed)."""
        self._track()
        left = kill(self.tag, [] if self.closed else [self.pid], self._seen, grace_s)
        self._release()
        return left

    def _release(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            for fd in (self._to, self._from):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)


def _last_line(path: str | None, default: str) -> str:
    if not path:
        return default
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return default
    return (text.strip().splitlines() or [default])[-1][:300]
