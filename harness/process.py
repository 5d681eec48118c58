"""The one way this project runs a process: its own session, a thread budget, CPU pinning, one
message protocol, time limits that separate start-up from work, and nothing left behind.

    from harness import process
    with process.Group() as group:             # the processes and temp folders of one run
        child = group.start([sys.executable, "-m", "harness.measure.worker"], threads=2,
                            cpus=(0, 1), channel=True)
        child.send(job)                        # JSON lines on a pipe pair of their own
        ready = child.receive(process.Limit(60, "start-up (import, set-up, first call)"))
        reply = child.ask({"op": "block"}, process.Limit(10, "work (one block)"))
    # leaving the block: every child and everything it started is killed, the folder removed
    process.reap_stale()                       # what an owner killed with SIGKILL left behind

The child's side (the first lines of `python -m harness.measure.worker`):

    process.child_setup()                      # pin to the parent's CPUs before any BLAS starts
    channel = process.channel()                # channel.receive() -> dict | None; .send(dict)

Nothing escapes. Each child starts in a session of its own, and every process started here
carries a tag in its environment (BACKPROP_BENCH_TAGS) that its descendants inherit, also those
that leave the session with os.setsid() (torchrun's workers do; a student's function may): a
child's `close()` signals its process group, every process seen below it, and every process of
this user that carries its tag. stdout and stderr go to files (a chatty child never blocks on a
full pipe), stdin is empty; the messages travel on their own pipes, so a framework printing to
stdout cannot corrupt them. A group records its owner and tags in a temp folder: the next
`reap_stale()` kills what an owner that died without cleaning up (SIGKILL) left, and removes it.

For a sandbox: `start(..., rlimits={resource.RLIMIT_FSIZE: (n, n)}, wrapper=["bwrap", ...])`; a
forked child calls `tag_self(child.tag)` before running anything else (see docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # the repository root: on every child's PYTHONPATH
TAGS, CHANNEL, CPUS = "BACKPROP_BENCH_TAGS", "BACKPROP_BENCH_CHANNEL", "BACKPROP_BENCH_CPUS"
PREFIX = "bpb-run-"  # temp folders of groups: <tmp>/bpb-run-XXXX/{owner, tags, ...}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


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

    def ask(self, message: dict, limit: Limit) -> dict:
        self.send(message)
        return self.receive(limit)

    def wait(self, limit: Limit | None = None) -> int:
        """The exit code; ChildError (after killing it) when `limit` passes first."""
        deadline = None if limit is None else time.monotonic() + limit.seconds
        while self.proc.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                self.close()
                raise limit.error()
            self._track()
            time.sleep(0.05)
        return self.proc.returncode

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
        (self.dir / "owner").write_text(f"{os.getpid()} {_ctime_of(os.getpid())}")
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
        pair for messages. `rlimits` {resource.RLIMIT_*: (soft, hard)} apply before exec."""
        with self._lock:
            n, self._count = self._count, self._count + 1
            tag = f"{self.id}:{n}"
            with open(self.dir / "tags", "a") as f:
                f.write(tag + "\n")
        full = {k: v for k, v in os.environ.items() if k not in unset}
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
        pre = None if not rlimits else (lambda: _set_limits(rlimits))
        with open(files["stdout"], "ab") as out, \
                open(files["stderr"] or os.devnull, "ab") as err:
            try:
                proc = subprocess.Popen([*wrapper, *argv], cwd=cwd, env=full,
                                        stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT if merge_stderr else err,
                                        start_new_session=True, pass_fds=keep, preexec_fn=pre)
            finally:
                for fd in keep:
                    os.close(fd)
        if merge_stderr:
            files["stderr"] = files["stdout"]
        child = Child(proc, tag, files, pipes)
        with self._lock:
            self.children.append(child)
            with open(self.dir / "groups", "a") as f:
                f.write(f"{proc.pid}\n")
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
            shutil.rmtree(self.dir, ignore_errors=True)
        return left

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- killing ---------------------------------------------------------------------------------
def kill(tag: str, pgids: list[int], seen: dict[int, float], grace_s: float) -> int:
    """Signal the groups `pgids`, the processes in `seen` (pid -> start time) and every process
    of this user whose tags start with `tag` (all of a group's: "<id>:"): SIGTERM and `grace_s`
    to go first when > 0, then SIGKILL. Returns how many are alive afterwards."""
    def victims():
        out = {p.pid: p for p in _tagged(tag)}
        for pid, ctime in seen.items():
            p = _process(pid)
            if p is not None and _ctime(p) == ctime:
                out[pid] = p
        return [p for p in out.values() if _alive(p)]

    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        if sig == signal.SIGTERM and grace_s <= 0:
            continue
        for pgid in pgids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        for p in victims():
            with contextlib.suppress(Exception):
                p.send_signal(sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and victims():
            time.sleep(0.02)
        if not victims():
            return 0
    return len(victims())


def _tagged(prefix: str) -> list:
    """Processes of this user whose BACKPROP_BENCH_TAGS holds a tag starting with `prefix`."""
    import psutil

    me, out = os.getpid(), []
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            tags = p.environ().get(TAGS, "")
        except (psutil.Error, OSError):
            continue
        if any(t == prefix or (prefix.endswith(":") and t.startswith(prefix))
               for t in tags.split()):
            out.append(p)
    return out


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _process(pid: int):
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _ctime(p) -> float | None:
    try:
        return p.create_time()
    except Exception:
        return None


def _ctime_of(pid: int) -> float | None:
    p = _process(pid)
    return None if p is None else _ctime(p)


def _alive(p) -> bool:
    import psutil

    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def reap_stale(root: str | None = None) -> list[str]:
    """Kill what groups whose owner is gone (killed with SIGKILL) left running, and remove
    their folders. Returns the folders removed."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            pid, _, ctime = (folder / "owner").read_text().partition(" ")
            owner = _process(int(pid))
        except (OSError, ValueError):
            continue  # being created right now, or not ours
        # A live owner is ours to leave alone: the same pid and, where recorded, the same start
        # time (a folder written without one, by an older version, is judged by its pid alone).
        if owner is not None and _alive(owner) and ctime.strip() in ("", str(_ctime(owner))):
            continue
        gid = folder.name[len(PREFIX):]
        pgids = (folder / "groups").read_text().split() if (folder / "groups").exists() else []
        for pgid in map(int, pgids):
            if _leader_is_ours(pgid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        kill(f"{gid}:", [], {}, 0.0)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(str(folder))
    return removed


def _leader_is_ours(pgid: int) -> bool:
    """With its leader gone a group can only be ours (Linux never hands out a pid that is still
    a group's id); a live leader must carry a tag of ours (a recycled id is a stranger's)."""
    p = _process(pgid)
    if p is None:
        return True
    try:
        return TAGS in p.environ()
    except Exception:
        return False


# ---- signals ---------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the code was, so `finally` blocks clean up."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_held: list[int] = []  # clean-ups in progress (interrupts() defers its signals meanwhile)
_pending: list[int] = []


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
            raise Interrupted(_pending.pop())


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
            _pending.append(signum)
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


# ---- the child's side ------------------------------------------------------------------------
def pin(cpus) -> list[int] | None:
    """Restrict this process to `cpus` (threads started later inherit it); the CPUs it may use."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, [int(c) for c in cpus])
        return sorted(os.sched_getaffinity(0))
    return None


def child_setup() -> list[int] | None:
    """The first call of a child: pin to the CPUs its parent chose (XLA sizes its pools from
    the affinity, so this must come before any framework or BLAS is imported)."""
    cpus = os.environ.get(CPUS)
    return pin(cpus.split(",")) if cpus else None


def tag_self(tag: str) -> None:
    """A forked child's first call: carry `tag` (group.start's children get it from their
    environment), so that whatever it starts is found and killed by close()."""
    os.environ[TAGS] = " ".join(filter(None, [os.environ.get(TAGS), tag]))


class Channel:
    """The child's end of the message pipes: receive() a dict (None when the parent is gone),
    send() a dict."""

    def __init__(self, read_fd: int, write_fd: int):
        for fd in (read_fd, write_fd):
            os.set_inheritable(fd, False)  # a compiler the child forks must not hold them open
        self._in = os.fdopen(read_fd, "rb")
        self._out = os.fdopen(write_fd, "wb", buffering=0)

    def receive(self) -> dict | None:
        line = self._in.readline()
        return json.loads(line) if line else None

    def send(self, message: dict) -> None:
        self._out.write((json.dumps(message, default=str) + "\n").encode())


def channel() -> Channel:
    read_fd, write_fd = map(int, os.environ[CHANNEL].split(","))
    return Channel(read_fd, write_fd)


def _set_limits(rlimits: dict) -> None:
    import resource

    for which, value in rlimits.items():
        resource.setrlimit(which, value)


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
