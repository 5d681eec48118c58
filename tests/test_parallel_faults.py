"""Faults of data-parallel training (dataparallel/): a worker that crashes, dies silently or
hangs fails the call with that worker's error, and nothing is left running or in the temp
folder; a slow start is neither a hang nor counted as work; a caller killed with SIGKILL or
SIGTERM leaves no worker (and, SIGTERM, no folder) behind. No wall-clock time is asserted:
which limit fired is read from the error, and a timeout only guards against a hang.

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

import dataparallel as parallel
import impls
from harness import process
from impls import contract
from tests.helpers import ROOT, problem

# One pytest process runs this file and tests/test_leftovers.py (or test_parallel_faults.py)
# one test at a time (`make test`: --dist loadgroup): they signal and kill launchers whose
# start-up a concurrent one slowed past its guard under a loaded suite.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("signals")]

# engine -> (impl name, options); the one-process jax mesh has only rank 0
ENGINES = {"numpy": ("numpy", {}), "torch": ("torch", {}),
           "jax-processes": ("jax", {"jax_launch": "processes"}),
           "jax-devices": ("jax", {"jax_launch": "devices"})}
FAULTS = {  # fault -> what the error says
    "crash:1:3": r"worker rank 1 failed: RuntimeError: injected crash in rank 1 at step 3",
    "exit:1:2": r"rank 1",
    # the WORK limit fired (not the start-up one), however long the workers took to start
    "hang:1:2": r"did not finish within 5 s of work \(after a start-up of [0-9.]+ s\): suspect "
                r"rank 1",
}
CASES = [("numpy", f) for f in FAULTS] + [("torch", f) for f in FAULTS] + [
    ("jax-processes", "crash:1:3"), ("jax-processes", "hang:1:2"), ("jax-devices", "hang:0:2")]


def _skip_unless(name):
    ok, why = impls.get(name).available("cpu", None, workers=2)
    if not ok:
        pytest.skip(why)


def _no_leftovers(before: set[int], root) -> None:
    """No child of ours is alive, no process anywhere (orphans go to init) names a run folder
    under this test's root, and the root is empty."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = {p.pid for p in psutil.Process().children(recursive=True)} - before
        orphans = [p.pid for p in psutil.process_iter(["cmdline"])
                   if str(root) in " ".join(p.info["cmdline"] or [])]
        if not mine and not orphans:
            break
        time.sleep(0.2)
    assert not mine and not orphans, f"left running: {mine} {orphans}"
    assert not list(root.iterdir()), f"left in the folder: {list(root.iterdir())}"


@pytest.mark.parametrize("engine, fault", CASES, ids=[f"{e}-{f.split(':')[0]}" for e, f in CASES])
def test_a_failing_worker_fails_the_call_and_leaves_nothing(engine, fault, tmp_path,
                                                            monkeypatch):
    name, options = ENGINES[engine]
    _skip_unless(name)
    monkeypatch.setenv(parallel.RUN_ROOT_ENV, str(tmp_path))  # run folders here: findable
    expect = FAULTS[fault.replace(":0:", ":1:")]
    if engine == "jax-devices":  # one process holds both devices: it is the hung one
        expect = expect.replace("suspect rank 1", "rank 0")
    P, X, T = problem(13)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(parallel.WorkerError, match=expect) as err:
        parallel.train(name, P, X, T, epochs=10, batch_size=5, workers=2, fault=fault,
                       timeout_s=5, **options)
    assert "\n" not in str(err.value)
    _no_leftovers(before, tmp_path)


def test_start_up_and_work_have_limits_of_their_own(tmp_path, monkeypatch):
    """A worker 3 s slow to start (a loaded machine importing) passes a 1 s limit on the work;
    one that never starts is stopped by the start-up limit, named as such."""
    _skip_unless("numpy")
    monkeypatch.setenv(parallel.RUN_ROOT_ENV, str(tmp_path))
    P, X, T = problem(13)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    params, history = parallel.train("numpy", P, X, T, epochs=2, workers=2, fault="slow:1:0",
                                     timeout_s=1)
    assert history.parallel["start_s"] is not None and len(history) == 2
    with pytest.raises(parallel.WorkerTimeout, match=r"^workers did not start within 2 s "
                                                     r"\(imports, connecting, the first step\): "):
        parallel.train("numpy", P, X, T, epochs=2, workers=2, fault="hang:1:0", timeout_s=600,
                       start_s=2)
    _no_leftovers(before, tmp_path)


def test_a_stalled_worker_is_named_before_the_time_limit(tmp_path, monkeypatch):
    """No heartbeat moved for stall_s: the call fails then, not at the (long) time limit."""
    _skip_unless("numpy")
    monkeypatch.setenv(parallel.RUN_ROOT_ENV, str(tmp_path))
    P, X, T = problem(13)
    with pytest.raises(parallel.WorkerTimeout, match="no worker made progress for 2 s: suspect rank 1"):
        parallel.train("numpy", P, X, T, epochs=10, workers=2, fault="hang:1:1", timeout_s=600,
                       stall_s=2)


def test_every_rule_is_checked_once_per_call(monkeypatch):
    """Implementation.train(workers=2) validates its inputs once, where they enter; the hook
    and the engines trust them (here the launch itself is replaced: no process starts)."""
    counts = {}
    for name in ("check_workers", "check_call", "check_train"):
        real = getattr(contract, name)

        def counted(*a, _real=real, _name=name, **k):
            counts[_name] = counts.get(_name, 0) + 1
            return _real(*a, **k)

        monkeypatch.setattr(contract, name, counted)
    P, X, T = problem(13)
    ran = {"history": [0.5], "replica_drift": 0.0, **{k: P[k] for k in contract.PARAM_NAMES}}
    monkeypatch.setattr(parallel, "_run", lambda *a, **k: ([ran], {}))
    monkeypatch.setattr(parallel.engines, "available", lambda *a: (True, ""))
    impls.get("numpy").train(P, X, T, epochs=1, workers=2)
    assert counts == {"check_workers": 1, "check_call": 1, "check_train": 1}


CALLER = """
import sys
import impls
from tests.helpers import problem
P, X, T = problem(13)
impls.get("{name}").train(P, X, T, epochs={epochs}, workers=2)
import dataparallel
dataparallel.train("{name}", P, X, T, epochs=50, workers=2, fault="hang:1:1", timeout_s=120)
"""


def _caller(name: str, tmp_path, epochs: int = 1) -> subprocess.Popen:
    """A caller whose temp folder is tmp_path/tmp: a torch call at W = 2 that succeeds, then
    one that hangs (until the test signals the caller)."""
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(ROOT)}
    env.pop(parallel.RUN_ROOT_ENV, None)
    return subprocess.Popen([sys.executable, "-c", CALLER.format(name=name, epochs=epochs)],
                            env=env, cwd=ROOT)


def _wait_for_workers(tmp_path) -> None:
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while not list(tmp_path.glob("tmp/**/status-1.npy")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(tmp_path.glob("tmp/**/status-1.npy")), "the workers never started"
    time.sleep(0.5)


def _orphans(tmp_path) -> list[int]:
    deadline = time.monotonic() + 10
    while True:
        left = [p.pid for p in psutil.process_iter(["cmdline"])
                if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_sigterm_to_the_caller_leaves_no_process_and_no_folder(name, tmp_path):
    """After a successful call (torch: no torchelastic_* folder) and during a hung one, SIGTERM
    ends the caller as SIGTERM does, after its workers and run folder are gone."""
    _skip_unless(name)
    caller = _caller(name, tmp_path)
    try:
        _wait_for_workers(tmp_path)
        caller.send_signal(signal.SIGTERM)
        assert caller.wait(timeout=60) == -signal.SIGTERM
    finally:
        caller.kill()
        caller.wait()
    assert not _orphans(tmp_path), "orphan workers"
    assert not list((tmp_path / "tmp").iterdir()), list((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_workers_exit_when_their_caller_is_killed(name, tmp_path):
    """A caller killed with SIGKILL runs no clean-up: each worker's watchdog ends it, and the
    next run reaps the folder it left."""
    _skip_unless(name)
    caller = _caller(name, tmp_path)
    try:
        _wait_for_workers(tmp_path)
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait()
    assert not _orphans(tmp_path), "orphan workers"
    assert process.reap_stale(str(tmp_path / "tmp"))
    assert not list((tmp_path / "tmp").iterdir())
