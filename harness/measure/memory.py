"""Peak memory of a training step, measured in a process of its own (tracking never slows a
timed run): the `memory` job of harness/measure/cell.py.

CPU: host RSS growth over the RSS just after setup, peaking during the first call
and a few steps (setup's own growth is `setup_mem_bytes`). GPU: the session's
`peak_memory()`, the framework's own peak-allocated counter. The memory pass reuses
the timing pass's compile cache, so a compile here is warm and its compiler memory
is smaller than cold.
"""

from __future__ import annotations

import resource

MEMORY_STEPS = 4  # steps after the first call: enough for every temporary to have existed


def rss() -> tuple[int | None, int | None]:
    """(current RSS, peak RSS since the last reset) in bytes, from /proc; (None, None) elsewhere."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None, None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(impl: str, device: str, start_session) -> dict:
    """Peak memory of `start_session()` (-> (session, batch)) and a few steps after it.

    Returns the cells.csv fields setup_mem_bytes, peak_mem_bytes, peak_mem_method and
    final_loss.
    """
    out: dict = {}
    rss0, _ = rss()
    exact = reset_peak_rss()
    s, batch = start_session()
    rss1, hwm = rss()
    out["setup_mem_bytes"] = None if rss0 is None else hwm - rss0
    exact = exact and reset_peak_rss()
    last = None
    for _ in range(MEMORY_STEPS):
        last = s.step(batch)
    s.sync()
    out["final_loss"] = s.value(last)
    device_peak = s.peak_memory()  # None where the framework keeps no counter (the CPU)
    if device_peak is not None:
        out.update(peak_mem_bytes=int(device_peak),
                   peak_mem_method=f"session.peak_memory() ({impl}'s device-memory "
                                   "high-water mark)")
    elif device != "cpu":
        out.update(peak_mem_bytes=None,
                   peak_mem_method="none: session has no peak_memory() for device memory")
    elif rss1 is not None:
        _, hwm = rss()
        if not exact:  # no reset: ru_maxrss is the whole process's high-water mark
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out.update(peak_mem_bytes=max(0, hwm - rss1),
                   peak_mem_method="host RSS peak over post-setup RSS "
                                   + ("(VmHWM reset)" if exact else "(ru_maxrss)"))
    return out
