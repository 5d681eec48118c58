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

For a sandbox (harness/check/sandbox.py): `start(..., rlimits={resource.RLIMIT_AS: (n, n)},
wrapper=["bwrap", ...])`, or `fork(fn, ...)` for a callable no fresh interpreter can import; on
the child's side `guard(work, channel())` runs the untrusted work in a worker below a guard that
kills what it left and says how it ended (guard.py); `wait(limit, cancel=event, until=done)`.
"""

from __future__ import annotations

from harness.process.child import (  # noqa: F401  (the public face)
    CHANNEL,
    CPUS,
    TAGS,
    Channel,
    channel,
    child_setup,
    pin,
    progress,
    set_rlimits,
    tag_self,
)
from harness.process.group import (  # noqa: F401
    REPO,
    THREAD_VARS,
    Cancelled,
    Child,
    ChildError,
    Group,
    Limit,
    thread_env,
)
from harness.process.guard import guard  # noqa: F401
from harness.process.reap import PREFIX, kill, reap_stale  # noqa: F401
from harness.process.signals import Interrupted, interrupts, sigterm_as_exit  # noqa: F401
