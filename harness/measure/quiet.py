"""Is a worker quiet? Wait until its threads stop using a CPU after a block, at a grain of
milliseconds, so the next block (its pair) starts as soon as the cores are free.

    waited = wait(child)                  # seconds waited (a harness.process.Child)
    waited = wait(child, read=fake, sleep=fake_sleep, clock=fake_clock)   # tests

Thread pools keep spinning for a while after a block, and a block started meanwhile shares
its cores with them. /proc/PID/stat counts CPU time in 10 ms ticks, so a wait built on it
takes 20 ms or more after every block, which is longer than a tiny block itself and pulls the
two halves of a pair apart in time (docs/timing.md). /proc/PID/task/*/schedstat counts it
in nanoseconds: a worker is quiet once its threads used under `busy` of a CPU during the
last `window` seconds. With the run's idle policy (harness/measure/launch.py: OpenBLAS's
short thread timeout, passive OpenMP waiting) that takes a few milliseconds; the figure is
recorded per block (settle_s), so a series whose threads spin shows it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

WINDOW_S = 0.003  # quiet for this long...
BUSY = 0.10  # ...using under this share of one CPU
MAX_S = 1.0  # give up waiting after this (recorded: settle_s shows it)
TICK_S = 0.001


def cpu_ns(pid: int) -> int | None:
    """Nanoseconds every thread of process `pid` has run on a CPU; None without /proc."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


def wait(child, window: float = WINDOW_S, busy: float = BUSY, max_s: float = MAX_S,
         read: Callable[[int], int | None] = cpu_ns, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> float:
    """Seconds waited until `child` (anything with a pid) used under `busy` of a CPU for
    `window` seconds, at most `max_s`; without /proc, the child's own (tick-grained) wait."""
    start = clock()
    last = read(child.pid)
    if last is None:
        return child.wait_quiet()
    mark_t, mark_ns = start, last
    while clock() - start < max_s:
        sleep(TICK_S)
        now, ns = clock(), read(child.pid)
        if ns is None:
            break  # it exited
        if ns - mark_ns > busy * (now - mark_t) * 1e9:
            mark_t, mark_ns = now, ns  # busy: the window starts again
        elif now - mark_t >= window:
            break
    return clock() - start
