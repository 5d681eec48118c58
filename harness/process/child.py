"""The child's side of harness/process.py: the first calls of a process the project started.

    from harness.process import child_setup, channel
    child_setup()                 # pin to the parent's CPUs before any BLAS or framework starts
    ch = channel()                # ch.receive() -> dict | None (the parent is gone); ch.send(dict)
    process.progress("started")   # or, where the parent may or may not listen: a no-op if not

The standard library only: nothing here may start a thread pool before the pinning.

    python -m harness.process.child --rlimits 1=65536:65536 -- ARGV...   # limits, then exec ARGV

is how a Group applies resource limits: set in this small process, then exec'd into the
command (no preexec_fn: forking a threaded parent to run Python code is unsafe, and JAX warns).
"""

from __future__ import annotations

import json
import os
import sys

TAGS, CHANNEL, CPUS = "BACKPROP_BENCH_TAGS", "BACKPROP_BENCH_CHANNEL", "BACKPROP_BENCH_CPUS"


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
    send() a dict; close() (a forked worker that must not speak for its parent)."""

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

    def close(self) -> None:
        for f in (self._in, self._out):
            try:
                f.close()
            except OSError:
                pass
        if self in _channel:
            _channel.remove(self)


_channel: list[Channel] = []  # this process's, once taken


def channel() -> Channel:
    """This process's end of the message pipes (the same one on every call). The variable that
    names them is taken out of the environment, so no process started from here believes it
    holds them."""
    if not _channel:
        read_fd, write_fd = map(int, os.environ.pop(CHANNEL).split(","))
        _channel.append(Channel(read_fd, write_fd))
    return _channel[0]


def progress(phase: str) -> None:
    """Tell the parent that `phase` is over ({"progress": phase, "at": time.time()}), if it
    started this process with a channel; nothing otherwise (the same command runs by hand). A
    parent that gives start-up and work limits of their own waits for it (bench/checkrun.py)."""
    if _channel or CHANNEL in os.environ:
        import time

        channel().send({"progress": phase, "at": time.time()})


def rlimit_argv(rlimits: dict, argv: list[str]) -> list[str]:
    """`argv` run under `rlimits` ({resource.RLIMIT_*: (soft, hard)}): this module first."""
    spec = ",".join(f"{which}={soft}:{hard}" for which, (soft, hard) in rlimits.items())
    return [sys.executable, "-m", "harness.process.child", "--rlimits", spec, "--", *argv]


def set_rlimits(rlimits: dict) -> None:
    """Apply {resource.RLIMIT_*: (soft, hard)}, each at most the hard limit already in force
    (lowering a hard limit is for good: the code run next cannot raise it again)."""
    import resource

    def at_most(value, bound):
        infinite = resource.RLIM_INFINITY
        return value if bound == infinite else bound if value == infinite else min(value, bound)

    for which, (soft, hard) in rlimits.items():
        hard = at_most(hard, resource.getrlimit(which)[1])
        resource.setrlimit(which, (at_most(soft, hard), hard))


def _exec_with_limits(args: list[str]) -> None:
    spec, argv = args[1], args[args.index("--") + 1:]
    limits = {}
    for item in filter(None, spec.split(",")):
        which, _, pair = item.partition("=")
        limits[int(which)] = tuple(int(x) for x in pair.split(":"))
    set_rlimits(limits)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    _exec_with_limits(sys.argv[1:])
