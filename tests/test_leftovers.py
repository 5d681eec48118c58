"""Nothing is left in the temp folder after a data-parallel call ends, normally or by SIGINT or
SIGTERM, for every engine (issue 19, item 3). tests/test_parallel_faults.py covers SIGTERM
to numpy and torch callers and SIGKILL; this file adds what had no test: a normal end of every
engine (torch leaves no torchelastic_* folder), SIGINT to every engine's caller, and SIGTERM to
jax's. The check's side (a child that leaves its session or holds stdout) is
tests/test_check_hostile.py's. No wall-clock time is asserted: timeouts only guard a hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import dataparallel
import impls
from tests.helpers import ROOT

# One pytest process runs this file and tests/test_leftovers.py (or test_parallel_faults.py)
# one test at a time (`make test`: --dist loadgroup): they signal and kill launchers whose
# start-up a concurrent one slowed past its guard under a loaded suite.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("signals")]

ENGINES = {"numpy": "", "torch": "", "jax": ", jax_launch='processes'"}
CALLER = """
import impls, dataparallel
from tests.helpers import problem
P, X, T = problem(13)
impls.get("{name}").train(P, X, T, epochs=1, workers=2)
{hang}
"""
HANG = ('dataparallel.train("{name}", P, X, T, epochs=50, workers=2, fault="hang:1:1",'
        ' timeout_s=300{options})')


def _skip_unless(name):
    ok, why = impls.get(name).available("cpu", None, workers=2)
    if not ok:
        pytest.skip(why)


def _start(tmp_path, names, hang: str | None) -> subprocess.Popen:
    """A caller whose temp folder is tmp_path/tmp: a successful call of each engine in `names`,
    then (hang) one of that engine that hangs until the test signals the caller."""
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(ROOT)}
    env.pop(dataparallel.RUN_ROOT_ENV, None)
    code = "".join(CALLER.format(name=n, hang="") for n in names)
    if hang:
        code += HANG.format(name=hang, options=ENGINES[hang]) + "\n"
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)


def _left(tmp_path) -> tuple[list[int], list[str]]:
    """Processes that name this test's folder, and what is in its temp folder (after a grace
    period for the kernel to reap them)."""
    deadline = time.monotonic() + 10
    while True:
        alive = [p.pid for p in psutil.process_iter(["cmdline"])
                 if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
        files = sorted(p.name for p in (tmp_path / "tmp").iterdir())
        if (not alive and not files) or time.monotonic() > deadline:
            return alive, files
        time.sleep(0.2)


def test_a_normal_end_of_every_engine_leaves_nothing(tmp_path):
    names = [n for n in ENGINES if impls.get(n).available("cpu", None, workers=2)[0]]
    if not names:
        pytest.skip("no data-parallel engine runs here")
    caller = _start(tmp_path, names, None)
    try:
        assert caller.wait(timeout=600) == 0  # a hang guard, not a measurement
    finally:
        caller.kill()
        caller.wait()
    assert _left(tmp_path) == ([], []), "a normal end left processes or files"


@pytest.mark.parametrize("name, sig", [("numpy", signal.SIGINT), ("torch", signal.SIGINT),
                                       ("jax", signal.SIGINT), ("jax", signal.SIGTERM)])
def test_a_signal_to_the_caller_during_a_call_leaves_nothing(name, sig, tmp_path):
    _skip_unless(name)
    caller = _start(tmp_path, [name], name)
    try:
        deadline = time.monotonic() + 300  # a hang guard: the workers start in seconds
        while not list(tmp_path.glob("tmp/**/status-1.npy")):
            assert time.monotonic() < deadline and caller.poll() is None, "no workers started"
            time.sleep(0.1)
        time.sleep(0.5)
        caller.send_signal(sig)
        code = caller.wait(timeout=120)
    finally:
        caller.kill()
        caller.wait()
    assert code != 0  # it ended (by the signal or the exception it raised), not hung
    assert _left(tmp_path) == ([], []), "a signal left processes or files"
