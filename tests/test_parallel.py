"""Data-parallel training (dataparallel/): `train(..., workers=W)` equals W = 1, the shard
plan, validation, availability, the multi-host commands on 127.0.0.1, the scaling interface.

    .venv/bin/pytest tests/test_parallel.py
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import dataparallel as parallel
import impls
from dataparallel import engines, launcher, multihost, plan, scaling
from harness import process
from impls import contract
from impls.base import Unavailable
from tests.helpers import ROOT, assert_same_training, problem

N, BATCH = 13, 5  # batches 5, 5, 3: every shard plan unequal at W = 2 (3+2, 3+2, 2+1)


def _need(name, mode=None, workers=2):
    ok, why = impls.get(name).available("cpu", mode, workers=workers)
    if not ok:
        pytest.skip(why)


def _reference(P, X, T, **kw):
    return impls.get("numpy").train(P, X, T, dtype="float64", **kw)


# ---- the shard plan and validation (no processes) ----------------------------------------------
@pytest.mark.parametrize("n, w", [(13, 2), (12, 3), (5, 5), (7, 4), (1, 1)])
def test_shards_partition_the_batch_contiguously(n, w):
    b = plan.shard_bounds(n, w)
    assert b[0][0] == 0 and b[-1][1] == n and all(b[i][1] == b[i + 1][0] for i in range(w - 1))
    sizes = [hi - lo for lo, hi in b]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


@pytest.mark.parametrize("workers, batch_size, words", [
    (0, None, "workers must be a positive integer, got 0"),
    (-1, None, "workers must be a positive integer, got -1"),
    (2.0, None, "workers must be a positive integer, got float 2.0"),
    (True, None, "workers must be a positive integer, not a bool"),
    ("2", None, "workers must be a positive integer, got str"),
    (10_000, None, "workers=10000 exceeds the limit of"),
    (2, 4, "smallest batch has 1 row (the last batch of each epoch: N=13, batch_size=4)"),
])
def test_bad_workers_are_one_line_errors_naming_workers(workers, batch_size, words):
    with pytest.raises(contract.ContractError) as err:
        contract.check_workers(workers, N, batch_size)
    assert words in str(err.value) and "\n" not in str(err.value)
    P, X, T = problem(N)
    with pytest.raises(contract.ContractError, match="workers"):  # before anything starts
        impls.get("numpy").train(P, X, T, epochs=1, batch_size=batch_size, workers=workers)
    ok, why = impls.get("numpy").available("cpu", workers=workers)  # never raises
    assert not ok or workers == 2


def test_a_batch_smaller_than_the_workers_is_refused():
    P, X, T = problem(1)
    with pytest.raises(contract.ContractError, match="workers=2 but the smallest batch has 1 row "
                                                     r"\(the full batch\)"):
        impls.get("torch").loss_and_grads(P, X, T, workers=2)


def test_workers_1_is_todays_path(monkeypatch):
    monkeypatch.setattr(parallel, "run_tasks", lambda *a, **k: pytest.fail("launched"))
    P, X, T = problem(N)
    p1, h1 = impls.get("numpy").train(P, X, T, epochs=2, batch_size=BATCH, workers=1)
    p0, h0 = impls.get("numpy").train(P, X, T, epochs=2, batch_size=BATCH)
    assert h1 == h0 and all(np.array_equal(p1[k], p0[k]) for k in p0)
    assert not hasattr(h1, "parallel")


def test_importing_the_engines_imports_no_framework():
    code = ("import sys, impls, dataparallel, dataparallel.scaling, dataparallel.multihost;"
            "impls.names(); print(sorted(m for m in ('torch', 'jax', 'mpi4py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    assert out.strip() == "[]"


# ---- availability --------------------------------------------------------------------------------
def test_without_mpi_numpy_is_unavailable_at_w2_never_a_crash(monkeypatch):
    monkeypatch.setattr(engines, "mpiexec_path", lambda: None)
    ok, why = impls.get("numpy").available("cpu", workers=2)
    assert not ok and "no mpiexec" in why
    P, X, T = problem(N)
    with pytest.raises(Unavailable, match="numpy \\(default\\) with workers=2 is unavailable on "
                                          "cpu: no mpiexec"):
        impls.get("numpy").train(P, X, T, epochs=1, workers=2)
    impls.get("numpy").train(P, X, T, epochs=1, workers=1)  # W = 1 needs no MPI
    real = engines.importlib.util.find_spec
    monkeypatch.setattr(engines.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real(name, *a))
    assert "mpi4py is not installed" in impls.get("numpy").available("cpu", workers=2)[1]


@pytest.mark.parametrize("name, mode, device, words", [
    ("torch", "compile", "cpu", "eager only"),
    ("jax", "nojit", "cpu", "jit only"),
    ("cupy", "default", "gpu", ""),
    ("numpy", "default", "gpu", ""),
])
def test_engines_say_why_they_cannot_run(name, mode, device, words):
    ok, why = impls.get(name).available(device, mode, workers=2)
    assert not ok and why and words in why
    assert parallel.available("cupy", "cpu", "default", 2) == (
        False, "no data-parallel engine for cupy (engines: numpy, torch, jax)")


# ---- W = 2 equals W = 1 (float64, unequal shards, minibatch), one launch each ------------------
def test_numpy_mpi_equals_one_process_at_w2_and_w3():
    _need("numpy", workers=3)
    P, X, T = problem(N)
    kw = dict(loss="bce", epochs=4, batch_size=BATCH)
    p0, h0 = _reference(P, X, T, **kw)
    p2, h2 = impls.get("numpy").train(P, X, T, workers=2, **kw)
    assert_same_training(p2, h2, p0, h0, "float64", "numpy W=2")
    assert h2.parallel["replica_drift"] == 0.0 and h2.parallel["launcher"].startswith("mpiexec -n 2")
    L0, G0 = impls.get("numpy").loss_and_grads(P, X, T, loss="mse")
    L3, G3 = impls.get("numpy").loss_and_grads(P, X, T, loss="mse", workers=3)  # 5+4+4 rows
    assert abs(L3 - L0) < 1e-15 and all(np.allclose(G3[k], G0[k], rtol=0, atol=1e-15) for k in G0)


def test_torch_equals_one_process_and_retries_a_taken_port(monkeypatch):
    _need("torch", "eager")
    import socket

    held = socket.socket()
    held.bind(("127.0.0.1", 0))  # torchrun's first port is taken: the launch is retried
    held.listen()
    asked = []

    def port():
        asked.append(held.getsockname()[1] if not asked else launcher.free_port())
        return asked[-1]

    monkeypatch.setattr(parallel, "free_port", port)
    P, X, T = problem(N)
    kw = dict(loss="mse", epochs=3, batch_size=BATCH)
    p0, h0 = _reference(P, X, T, **kw)
    try:
        p2, h2 = impls.get("torch").train(P, X, T, workers=2, **kw)
    finally:
        held.close()
    assert len(asked) == 2  # the first launch failed on the taken port, the second ran
    assert_same_training(p2, h2, p0, h0, "float64", "torch W=2")
    assert "torchrun" in h2.parallel["launcher"] and "gloo" in h2.parallel["engine"]


@pytest.mark.parametrize("launch", ["processes", "devices"])
def test_jax_equals_one_process_with_either_launch(launch, monkeypatch):
    _need("jax", "jit")
    monkeypatch.setenv(engines.JAX_LAUNCH_ENV, launch)
    P, X, T = problem(N)
    kw = dict(loss="bce", epochs=3, batch_size=BATCH, activation="tanh")
    p0, h0 = _reference(P, X, T, **kw)
    p2, h2 = impls.get("jax").train(P, X, T, workers=2, **kw)
    assert_same_training(p2, h2, p0, h0, "float64", f"jax W=2 ({launch})")
    assert h2.parallel["processes"] == (2 if launch == "processes" else 1)
    assert h2.parallel["replica_drift"] == 0.0


def test_divergence_at_w2_is_a_flagged_history():
    _need("numpy")
    P, X, T = problem(N, seed=5)
    params, history = impls.get("numpy").train(P, X, T, loss="bce", lr=1e300, epochs=4,
                                               activation="relu", workers=2)
    assert history.diverged and np.isfinite(history[0]) and len(history) == 4


# ---- across hosts: the per-host commands, two "hosts" on 127.0.0.1 -----------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_multihost_commands_on_two_local_hosts(name, tmp_path):
    _need(name)
    P, X, T = problem(N)
    kw = dict(loss="bce", epochs=3, batch_size=BATCH)
    multihost.prepare(tmp_path, name, P, X, T, workers=2, **kw)
    cmds = multihost.host_commands(name, tmp_path, ["127.0.0.1", "127.0.0.1"],
                                   port=launcher.free_port(), python=sys.executable)
    assert len(cmds) == (1 if name == "numpy" else 2)
    lines = [[engines.mpiexec_path() if c[0] == "mpiexec" else c[0], *c[1:]] for _, c in cmds]
    env = engines.worker_env(1, engines.xla_env(1, 1) if name == "jax" else None)
    with process.Group() as group:
        info = launcher.launch(lines, tmp_path, group, env=env, processes=2,
                             timeout_s=120, term_grace_s=0.5)
    assert info.survivors == 0
    p2, h2 = multihost.result(tmp_path)
    p0, h0 = _reference(P, X, T, **kw)
    assert_same_training(p2, h2, p0, h0, "float64", f"{name} on two local hosts")


# ---- the scaling interface -------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_time_steps_separates_communication_and_records_pinning(workers):
    _need("numpy")
    P, X, T = problem(64, f=2, h=8, k=1)
    r = scaling.time_steps("numpy", None, "cpu", workers, X, T, P, warmup_steps=2, block_steps=3,
                           blocks=2)
    assert len(r["step_s"]) == len(r["comm_s"]) == len(r["wait_s"]) == 2
    assert all(v > 0 for v in r["step_s"] + r["comm_s"] + r["compute_s"])
    used = r["used"]
    assert used["threads_per_worker"] == 1 and used["pinned"] and used["processes"] == workers
    cores = sorted(c for w in used["worker_info"] for c in w["cores"])
    assert len(cores) == workers and [w["threads"] for w in used["worker_info"]] == [1] * workers
    assert np.isfinite(r["final_loss"]) and r["comm_method"].startswith("comm.Barrier()")
