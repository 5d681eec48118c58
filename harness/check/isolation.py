"""How far a user's process is walled off: bubblewrap where it works, a plain process elsewhere.

    from harness.check.isolation import bwrap_status, describe
    ok, why = bwrap_status()        # (True, "/usr/bin/bwrap") or (False, the reason)
    describe("bwrap")               # one sentence: what that isolation does and does not do

bubblewrap (`bwrap`, the Debian package bubblewrap; what Flatpak uses) puts the process in new
namespaces without a daemon: its own PID namespace (it sees and can signal only its own
processes, and all of them die with it), no network (a loopback only), its own IPC and
hostname, and a mount namespace that holds only the system's programs and libraries, Python
and its packages, the checker's own code, the paths it is given to read (its submission), a
private /tmp, and its run folder, the only place it can write. It needs user namespaces for an
unprivileged user (Debian enables them; some containers do not), so `bwrap_status` tries it
once and says why not. The sandbox (sandbox.py) puts every other limit on either way: time,
memory, file size, the process group, the fresh working folder, the last sweep.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

ISOLATIONS = ("bwrap", "process")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DESCRIPTIONS = {
    "bwrap": "bubblewrap: its own PID, network, IPC and mount namespaces; no network; it reads "
             "only the system, Python, the checker and its own submission, writes only its "
             "fresh working folder, and sees and can signal only its own processes",
    "process": "a separate process only (no bubblewrap): its own session, a fresh working "
               "folder, time, memory and file-size limits, every process it starts killed at "
               "the end; NOT walled off: it can read what your user can read, use the network "
               "and signal your other processes",
}


def describe(isolation: str) -> str:
    return DESCRIPTIONS[isolation]


@functools.cache
def bwrap_status() -> tuple[bool, str]:
    """(True, bwrap's path) when bubblewrap can make its namespaces here, else (False, why)."""
    path = shutil.which("bwrap")
    if not path:
        return False, "bwrap is not installed (Debian, Ubuntu: apt-get install bubblewrap)"
    try:
        r = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent",
                            "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap does not run here ({exc})"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
        return False, f"bwrap cannot make its namespaces here ({last[:200]})"
    return True, path


def choose(wanted: str) -> tuple[str, str]:
    """(isolation, note) for --isolation auto|bwrap|process; ValueError when bwrap is asked for
    and does not work here (the reason in the message)."""
    ok, why = bwrap_status() if wanted in ("auto", "bwrap") else (False, "")
    if wanted == "bwrap" and not ok:
        raise ValueError(f"--isolation bwrap: {why}")
    if wanted == "auto":
        return ("bwrap", "") if ok else ("process", why)
    return wanted, ""


def bwrap_wrapper(run_dir: str, readable: list[str]) -> list[str]:
    """The command line to put before a command (harness/process's `wrapper=`) to run it inside
    bubblewrap: the system and Python read-only, `readable` read-only, `run_dir` writable, a
    private /tmp, no network, a PID namespace that dies with us."""
    out = [bwrap_status()[1], "--unshare-all", "--die-with-parent", "--new-session",
           "--hostname", "sandbox"]
    for d in SYSTEM:
        if os.path.islink(d):
            out += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            out += ["--ro-bind", d, d]
    out += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp"]
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix,
              os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    for d in sorted(python) + list(readable):
        if os.path.exists(d) and not d.startswith(SYSTEM):
            out += ["--ro-bind", d, d]
    return out + ["--bind", run_dir, run_dir, "--chdir", os.path.join(run_dir, "work"),
                  "--setenv", "TMPDIR", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp"]
