"""Across hosts: prepare a run folder, start the per-host commands by hand, read the result.

    from dataparallel import multihost
    multihost.prepare("/shared/run1", "torch", params, X, T, workers=2, loss="bce", epochs=10)
    for host, cmd in multihost.host_commands("torch", "/shared/run1", ["hostA", "hostB"]):
        print(host, " ".join(cmd))                 # run each on its host, from the repo root
    params, history = multihost.result("/shared/run1")

The run folder must be at the same path on every host (a shared file system, or copied there
first): every worker reads spec.json and inputs.npz, and rank 0 writes result.npz on ITS host.
One worker per host. The tests run exactly these commands with two "hosts" on 127.0.0.1
(tests/test_parallel.py); real hosts were never tried (README, "Data parallel").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dataparallel import ENGINES, rundir, task
from impls import contract
from impls.contract import PARAM_NAMES


def prepare(run_dir, impl: str, params, X, T, *, workers: int, mode: str | None = None,
            device: str = "cpu", threads: int = 1, timeout_s: float = 600.0, **train_options):
    """Write the run folder of one training run (options as Implementation.train)."""
    if impl not in ENGINES:
        raise contract.ContractError(f"no data-parallel engine for {impl!r}; "
                                     f"expected one of {', '.join(ENGINES)}")
    t, inputs = task("train", params, X, T, device=device, workers=workers, **train_options)
    spec = rundir.Spec(impl=impl, mode=mode or ENGINES[impl][1][0], device=device,
                       workers=contract.check_workers(workers), tasks=[t], timeout_s=timeout_s,
                       threads=threads, engine_opts={"launch": "processes"} if impl == "jax" else {})
    rundir.write_run(Path(run_dir), spec, [inputs])  # owner_pid 0: no watchdog on other hosts


def host_commands(impl: str, run_dir, hosts: list[str], *, port: int = 29400,
                  python: str = "python") -> list[tuple[str, list[str]]]:
    """(host, command) for each host that must run one, host[0] first (the coordinator)."""
    if impl not in ENGINES:
        raise contract.ContractError(f"no data-parallel engine for {impl!r}")
    module, n, first = f"dataparallel.{ENGINES[impl][0]}", len(hosts), hosts[0]
    if impl == "numpy":  # one command on host A: Hydra starts the remote ranks (ssh)
        return [(first, ["mpiexec", "-hosts", ",".join(hosts), "-n", str(n), python, "-m", module,
                         str(run_dir)])]
    if impl == "torch":  # the same command on every host; c10d rendezvous on host A
        cmd = [python, "-m", "torch.distributed.run", "--nnodes", str(n), "--nproc-per-node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{first}:{port}",
               "--rdzv-id", "backprop-bench", "--max-restarts", "0", "-m", module, str(run_dir)]
        return [(h, cmd) for h in hosts]
    return [(h, [python, "-m", module, str(run_dir), "--process-id", str(i),  # jax
                 "--num-processes", str(n), "--coordinator", f"{first}:{port}"])
            for i, h in enumerate(hosts)]


def result(run_dir) -> tuple[dict, contract.History]:
    """(params, history) that rank 0 wrote; history.parallel holds the replicas' drift."""
    (out,), meta = rundir.read_result(Path(run_dir))
    history = contract.History(float(v) for v in out["history"])
    history.parallel = {"engine": meta.get("engine", ""), "workers": int(meta.get("world", 0)),
                        "replica_drift": float(out["replica_drift"])}
    return {k: np.asarray(out[k]) for k in PARAM_NAMES}, history
