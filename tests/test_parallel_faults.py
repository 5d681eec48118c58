"""Faults of data-parallel training (impls/parallel/): a worker that crashes, dies silently or
hangs fails the call with that worker's error within the time limit, and nothing is left
running; a caller killed with SIGKILL leaves no worker behind either.

    .venv/bin/pytest tests/test_parallel_faults.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import impls
from impls import parallel
from tests.helpers import ROOT, problem

pytestmark = pytest.mark.slow

# engine -> (impl name, options); the one-process jax mesh has only rank 0
ENGINES = {"numpy": ("numpy", {}), "torch": ("torch", {}),
           "jax-processes": ("jax", {"jax_launch": "processes"}),
           "jax-devices": ("jax", {"jax_launch": "devices"})}
FAULTS = {  # fault -> (what the error says, seconds it may take at most)
    "crash:1:3": (r"worker rank 1 failed: RuntimeError: injected crash in rank 1 at step 3", 20),
    "exit:1:2": (r"rank 1", 20),
    "hang:1:2": (r"did not finish within 5 s: suspect rank 1", 15),
}
CASES = [("numpy", f) for f in FAULTS] + [("torch", f) for f in FAULTS] + [
    ("jax-processes", "crash:1:3"), ("jax-processes", "hang:1:2"), ("jax-devices", "hang:0:2")]


def _skip_unless(name):
    ok, why = impls.get(name).available("cpu", None, workers=2)
    if not ok:
        pytest.skip(why)


def _no_leftovers(before: set[int], root) -> None:
    """No child of ours is alive, and no process anywhere (orphans go to init) names a run
    folder under this test's root."""
    time.sleep(0.3)
    mine = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not mine, f"left running: {mine}"
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        assert str(root) not in cmd, f"orphan worker: {p.pid} {cmd}"


@pytest.mark.parametrize("engine, fault", CASES, ids=[f"{e}-{f.split(':')[0]}" for e, f in CASES])
def test_a_failing_worker_fails_the_call_fast_and_leaves_nothing(engine, fault, tmp_path,
                                                                 monkeypatch):
    name, options = ENGINES[engine]
    _skip_unless(name)
    monkeypatch.setenv(parallel.RUN_ROOT_ENV, str(tmp_path))  # run folders here: findable
    expect, within = FAULTS[fault.replace(":0:", ":1:")]
    if engine == "jax-devices":  # one process holds both devices: it is the hung one
        expect = "did not finish within 5 s: rank 0"
    P, X, T = problem(13)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    t0 = time.monotonic()
    with pytest.raises(parallel.WorkerError, match=expect) as err:
        parallel.train(name, P, X, T, epochs=10, batch_size=5, workers=2, fault=fault,
                       timeout_s=5, **options)
    took = time.monotonic() - t0
    assert took < within, f"took {took:.1f} s"
    assert "\n" not in str(err.value)
    _no_leftovers(before, tmp_path)


def test_a_stalled_worker_is_named_before_the_time_limit(tmp_path, monkeypatch):
    """No heartbeat moved for stall_s: the call fails then, not at the (long) time limit."""
    _skip_unless("numpy")
    monkeypatch.setenv(parallel.RUN_ROOT_ENV, str(tmp_path))
    P, X, T = problem(13)
    t0 = time.monotonic()
    with pytest.raises(parallel.WorkerTimeout, match="no worker made progress for 2 s: suspect rank 1"):
        parallel.train("numpy", P, X, T, epochs=10, workers=2, fault="hang:1:1", timeout_s=60,
                       stall_s=2)
    assert time.monotonic() - t0 < 10


CALLER = """
import sys
import impls
from tests.helpers import problem
P, X, T = problem(13)
from impls import parallel
parallel.train("{name}", P, X, T, epochs=50, workers=2, fault="hang:1:1", timeout_s=120)
"""


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_workers_exit_when_their_caller_is_killed(name, tmp_path):
    """A caller killed with SIGKILL runs no clean-up: each worker's watchdog ends it."""
    _skip_unless(name)
    env = {**os.environ, parallel.RUN_ROOT_ENV: str(tmp_path), "PYTHONPATH": str(ROOT)}
    caller = subprocess.Popen([sys.executable, "-c", CALLER.format(name=name)], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("*/status-1.npy")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(tmp_path.glob("*/status-1.npy")), "the workers never started"
        time.sleep(0.5)
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [p for p in psutil.process_iter(["cmdline"])
                if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"orphans: {[p.pid for p in left]}"
