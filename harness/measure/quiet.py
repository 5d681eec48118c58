"""Is a worker quiet? Wait until none of its threads is running or waiting to run after a
block, at a grain of a millisecond, so the next block (its pair) starts as soon as the cores
are free.

    waited = wait(child)                  # seconds waited (a harness.process.Child)
    waited = wait(child, read=fake, sleep=fake_sleep, clock=fake_clock)   # tests

Thread pools may keep spinning for a while after a block, and a block started meanwhile
shares its cores with them. CPU-time counters cannot say so quickly: /proc/PID/stat counts in
10 ms ticks, and a thread's schedstat runtime is brought up to date only at the scheduler's
tick, so a spinning thread can look idle for several milliseconds (measured here: a 3 ms
window on schedstat called OpenBLAS's spinning threads quiet after 11 ms, when they spin for
about 0.1 s). A thread's state can: a spinning thread is R (running or runnable), one that
waits on a futex or a pipe is S. A worker is quiet once every thread of it has been out of R
for `window` seconds (two or more reads in a row). Without /proc, the child's own wait.
The wait is recorded per block (settle_s): a series whose threads spin shows it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

WINDOW_S = 0.002  # every thread out of R for this long
MAX_S = 1.0  # give up waiting after this (recorded: settle_s shows it)
TICK_S = 0.0005


def running(pid: int) -> int | None:
    """How many threads of process `pid` are running or runnable (state R); None without
    /proc or once the process is gone."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    n = 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # a thread that ended meanwhile
        n += state == "R"
    return n


def wait(child, window: float = WINDOW_S, max_s: float = MAX_S,
         read: Callable[[int], int | None] = running, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> float:
    """Seconds waited until no thread of `child` (anything with a pid) was running for
    `window` seconds, at most `max_s`; without /proc, the child's own (tick-grained) wait."""
    start = clock()
    if read(child.pid) is None:
        return child.wait_quiet()
    quiet_since = None
    while clock() - start < max_s:
        now, busy = clock(), read(child.pid)
        if busy is None:
            break  # it exited
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= window:
            break
        sleep(TICK_S)
    return clock() - start
