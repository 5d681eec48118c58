"""Starting processes: a Group (the children and temp folder of one run) and each Child (its
messages, limits, facts and close). harness/process/__init__.py says how to use them.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.process.child import CHANNEL, CPUS, TAGS, rlimit_argv
from harness.process.forked import Forked, fork_child
from harness.process.reap import PREFIX, _ctime, _ctime_of, _descendants, kill
from harness.process.signals import _shielded

REPO = Path(__file__).resolve().parents[2]  # the repository root: on every child's PYTHONPATH
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


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


def thread_env(threads: int) -> dict[str, str]:
    """BLAS and OpenMP thread counts: read when a library starts, so set before the process."""
    return {v: str(threads) for v in THREAD_VARS}


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


class Group:
    """The children and temp folders of one run (or one data-parallel call): every child is
    killed and the folder removed on close(); if the owner dies first, reap_stale() does it."""

    def __init__(self, root: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
        self.id = self.dir.name[len(PREFIX):]
        # Written whole and renamed: reap_stale() in another process never reads half of it.
        (self.dir / "owner.new").write_text(f"{os.getpid()} {_ctime_of(os.getpid())}")
        os.replace(self.dir / "owner.new", self.dir / "owner")
        self.children: list[Child] = []
        self._lock = threading.Lock()  # the smoke starts children from threads
        self._count = 0

    def folder(self, name: str | None = None) -> Path:
        """A fresh folder inside the group's (a compile cache, a data-parallel run folder)."""
        if name is None:
            return Path(tempfile.mkdtemp(dir=self.dir))
        (self.dir / name).mkdir()
        return self.dir / name

    def start(self, argv: list[str], *, env: dict | None = None, threads: int | None = None,
              cpus=None, channel: bool = False, stdout: str | None = None,
              stderr: str | None = None, merge_stderr: bool = False, cwd=REPO,
              rlimits: dict | None = None, wrapper: list[str] = (),
              unset: tuple[str, ...] = ()) -> Child:
        """Start `argv` (after `wrapper`, e.g. bubblewrap) in a session of its own, with the
        repository on PYTHONPATH, `threads` BLAS/OpenMP threads, pinned to `cpus` by the child's
        `child_setup()`, `env` on top of ours (names in `unset` removed). stdout and stderr go
        to files (default: in the group's folder; `merge_stderr`: one file); `channel`: a pipe
        pair for messages. `rlimits` {resource.RLIMIT_*: (soft, hard)} apply before exec (set
        by a small process that then execs the command: harness/process/child.py)."""
        n, tag = self._tag()
        full = {k: v for k, v in os.environ.items() if k not in unset and k != CHANNEL}
        full.update(env or {})
        if threads is not None:
            full.update(thread_env(threads))
        if cpus:
            full[CPUS] = ",".join(map(str, cpus))
        full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full.get("PYTHONPATH")]))
        full[TAGS] = " ".join(filter(None, [os.environ.get(TAGS), tag]))
        files = {"stdout": stdout or str(self.dir / f"{n}.out"),
                 "stderr": None if merge_stderr else stderr or str(self.dir / f"{n}.err")}
        pipes, keep = None, ()
        if channel:
            p2c, c2p = os.pipe(), os.pipe()
            full[CHANNEL] = f"{p2c[0]},{c2p[1]}"
            keep, pipes = (p2c[0], c2p[1]), (p2c[1], c2p[0])
        argv = rlimit_argv(rlimits, [*wrapper, *argv]) if rlimits else [*wrapper, *argv]
        with open(files["stdout"], "ab") as out, \
                open(files["stderr"] or os.devnull, "ab") as err:
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=full, stdin=subprocess.DEVNULL,
                                        stdout=out,
                                        stderr=subprocess.STDOUT if merge_stderr else err,
                                        start_new_session=True, pass_fds=keep)
            finally:
                for fd in keep:
                    os.close(fd)
        if merge_stderr:
            files["stderr"] = files["stdout"]
        return self._add(Child(proc, tag, files, pipes))

    def fork(self, fn: Callable[[], int], *, env: dict | None = None, channel: bool = False,
             stdout: str | None = None, stderr: str | None = None, cwd=None,
             rlimits: dict | None = None) -> Child:
        """Run fn() in a child forked from this process (a function typed into a notebook, which
        no fresh interpreter could import): the same session of its own, tag, files, channel and
        rlimits as start() gives, `env` set and `cwd` entered before fn() runs; fn's return
        value is the exit code, and the child never returns into the caller's code."""
        n, tag = self._tag()
        files = {"stdout": stdout or str(self.dir / f"{n}.out"),
                 "stderr": stderr or str(self.dir / f"{n}.err")}
        for path in files.values():
            open(path, "ab").close()
        p2c, c2p = (os.pipe(), os.pipe()) if channel else ((-1, -1), (-1, -1))
        env = dict(env or {}, **({CHANNEL: f"{p2c[0]},{c2p[1]}"} if channel else {}))
        pid = fork_child(fn, tag, env, files, cwd, rlimits or {}, close=(p2c[1], c2p[0]))
        for fd in (p2c[0], c2p[1]):
            if fd >= 0:
                os.close(fd)
        return self._add(Child(Forked(pid), tag, files, (p2c[1], c2p[0]) if channel else None))

    def _tag(self) -> tuple[int, str]:
        with self._lock:
            n, self._count = self._count, self._count + 1
            tag = f"{self.id}:{n}"
            with open(self.dir / "tags", "a") as f:
                f.write(tag + "\n")
        return n, tag

    def _add(self, child: Child) -> Child:
        with self._lock:
            self.children.append(child)
            with open(self.dir / "groups", "a") as f:
                f.write(f"{child.pid}\n")
        return child

    def kill(self, grace_s: float = 0.0) -> int:
        """Kill every child and everything carrying the group's tags at once (SIGTERM first,
        `grace_s` for all to go, then SIGKILL); the folder stays. Returns how many processes
        could not be killed (0)."""
        seen: dict[int, float] = {}
        for c in self.children:
            c._track()
            seen.update(c._seen)
        left = kill(f"{self.id}:", [c.pid for c in self.children if not c.closed], seen, grace_s)
        for c in self.children:
            c._release()
        return left

    def close(self, grace_s: float = 0.0) -> int:
        """kill(), then remove the folder; a signal arriving meanwhile waits until both are done
        (else a SIGTERM in the middle of the clean-up would leave half of it)."""
        with _shielded():
            left = self.kill(grace_s)
            for _ in range(5):  # a child dying meanwhile may still have written into it
                shutil.rmtree(self.dir, ignore_errors=True)
                if not self.dir.exists():
                    break
                time.sleep(0.1)
        return left

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
