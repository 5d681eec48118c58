"""Starting processes: a Group (the children and temp folder of one run), each child handed back
as a Child (harness/process/handle.py: its messages, limits, facts and close).
harness/process/__init__.py says how to use them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.process.child import CHANNEL, CPUS, TAGS, rlimit_argv
from harness.process.forked import Forked, fork_child
from harness.process.handle import Cancelled, Child, ChildError, Limit  # noqa: F401
from harness.process.reap import PREFIX, _ctime_of, kill
from harness.process.signals import _shielded

REPO = Path(__file__).resolve().parents[2]  # the repository root: on every child's PYTHONPATH
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """BLAS and OpenMP thread counts: read when a library starts, so set before the process."""
    return {v: str(threads) for v in THREAD_VARS}


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
