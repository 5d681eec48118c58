"""The processes and folders one `bench` invocation owns, so none outlives it.

    children = Children()                 # a temp folder bpb-run-<...> owned by this process
    cache = children.folder()             # a fresh compile-cache folder inside it
    children.adopt(pid)                   # a child's process group, killed by close()
    children.close()                      # kill every adopted group, remove the folder
    reap_stale()                          # what a killed (SIGKILL) bench left: clean it up

Every child runs in a process group of its own (a hung compile or its workers die
with it). Ctrl-C, SIGTERM and SIGHUP reach the parent, whose `finally` calls close().
SIGKILL cannot be caught: its leftovers are found by the next bench, which kills the
groups recorded in a folder whose owner is gone and removes the folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

PREFIX = "bpb-run-"


class Children:
    def __init__(self, root: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
        (self.dir / "owner").write_text(str(os.getpid()))
        self.groups: list[int] = []

    def folder(self) -> str:
        return tempfile.mkdtemp(dir=self.dir)

    def adopt(self, pid: int) -> None:
        self.groups.append(pid)
        with open(self.dir / "groups", "a") as f:
            f.write(f"{pid}\n")

    def close(self) -> None:
        for pgid in self.groups:
            _kill_group(pgid)
        self.groups.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(pgid: int) -> bool:
    """May group `pgid` be killed? Its leader, if alive, must be a harness process (an id
    reused by a stranger is not ours). With the leader gone the group can only be ours:
    Linux never hands out a pid that is still some group's id."""
    try:
        cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return b"harness" in cmdline


def reap_stale(root: str | None = None) -> list[str]:
    """Kill the process groups and remove the folders of bench invocations that died
    without cleaning up (their owner process is gone). Returns what was removed."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((folder / "owner").read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        groups = (folder / "groups").read_text().split() if (folder / "groups").exists() else []
        for pgid in map(int, groups):
            if _ours(pgid):
                _kill_group(pgid)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(str(folder))
    return removed
