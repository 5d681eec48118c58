"""Killing what a process started, whatever it did to its session, and reaping what an owner
that died without cleaning up (SIGKILL) left behind. harness/process.py's group.py calls it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from harness.process.child import TAGS

PREFIX = "bpb-run-"  # temp folders of groups: <tmp>/bpb-run-XXXX/{owner, tags, groups, ...}


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
