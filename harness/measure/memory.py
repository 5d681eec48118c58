"""Peak memory of a training step, read in the benchmark worker around its first call and
warm-up steps (harness/measure/worker.py), before any step is timed.

CPU: host RSS growth over the RSS just after setup, peaking during the first call
and the warm-up steps (setup's own growth is `setup_mem_bytes`). GPU: the session's
`peak_memory()`, the framework's own peak-allocated counter. Nothing here traces
allocations: the kernel keeps the high-water mark, and reading /proc afterwards
costs the steps nothing. For compiled modes the first call compiles, so their
host peak includes the compiler's working memory in this process.
"""

from __future__ import annotations

import resource


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


def peak(impl: str, device: str, session, rss_after_setup: int | None, exact: bool) -> dict:
    """The peak of the first call and the warm-up steps, taken right after them: the
    session's own device counter where it has one (GPU), else host RSS growth over the
    RSS right after setup (`exact`: the kernel's peak counter was reset there; otherwise
    ru_maxrss, the whole process's high-water mark, is all there is)."""
    device_peak = session.peak_memory()  # None where the framework keeps no counter (the CPU)
    if device_peak is not None:
        return {"peak_mem_bytes": int(device_peak),
                "peak_mem_method": f"session.peak_memory() ({impl}'s device-memory high-water mark)"}
    if device != "cpu":
        return {"peak_mem_bytes": None,
                "peak_mem_method": "none: session has no peak_memory() for device memory"}
    if rss_after_setup is None:
        return {"peak_mem_bytes": None, "peak_mem_method": "none: no /proc on this system"}
    _, hwm = rss()
    if not exact:
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_mem_bytes": max(0, hwm - rss_after_setup),
            "peak_mem_method": "host RSS peak over post-setup RSS "
                               + ("(VmHWM reset)" if exact else "(ru_maxrss)")}
