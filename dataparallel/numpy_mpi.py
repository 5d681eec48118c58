"""Data-parallel `numpy`: impls/handwritten.py unchanged, plus one MPI all-reduce per step.

    mpiexec -n W python -m dataparallel.numpy_mpi RUN_DIR     (dataparallel starts it)

Each rank, for every batch (the same order on every rank):

    its contiguous shard of the batch                    (plan.my_rows)
    L_r, g_r = handwritten.grads(np, P, X_r, T_r, ...)   the LOCAL mean, by hand
    buf = [L_r * w, n_r, g_r * w]   with w = n_r / n     (n_r itself unweighted: the row audit)
    comm.Allreduce(IN_PLACE, buf, SUM)                   -> the GLOBAL batch mean on every rank
    p -= lr * g                                          identical on every rank

The math file is not touched: data parallelism is the weighting and one Allreduce. mpi4py is
imported in the worker only (importing mpi4py.MPI initialises MPI).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from dataparallel import loop, plan, rundir
from dataparallel.plan import LOSS_SLOT, ROWS_SLOT
from impls import handwritten
from impls.contract import PARAM_NAMES


def _quiet():
    return np.errstate(over="ignore", invalid="ignore")  # as impls/numpy_impl.py: see there


class Replica:
    """One rank's parameters and data for one task; `comm` is MPI.COMM_WORLD (or a stand-in)."""

    def __init__(self, task, P, X, T, *, comm, mpi, rank: int, world: int, status):
        self.P, self.X, self.T = P, X, T
        self.dtype = X.dtype
        self.lr = np.asarray(task["lr"], dtype=self.dtype)  # a dtype scalar: float32 stays float32
        self.loss, self.activation = task["loss"], task["activation"]
        self.comm, self.mpi, self.rank, self.world, self.status = comm, mpi, rank, world, status
        self.layout = plan.layout(P)
        self.buf = np.empty(plan.buffer_size(P), dtype=self.dtype)

    def _local(self, rows, n: int) -> None:
        mine = plan.my_rows(rows, n, self.rank, self.world)
        Xr, Tr = self.X[mine], self.T[mine]
        with _quiet():
            L, G = handwritten.grads(np, self.P, Xr, Tr, self.loss, self.activation)
            w = self.dtype.type(len(Xr) / n)  # this shard's share of the batch, n_r / n
            self.buf[LOSS_SLOT] = L * w
            self.buf[ROWS_SLOT] = len(Xr)
            for k, _, a, z in self.layout:
                np.multiply(G[k].reshape(-1), w, out=self.buf[a:z])

    def _allreduce(self) -> None:
        self.status.phase(2)
        self.comm.Allreduce(self.mpi.IN_PLACE, self.buf, op=self.mpi.SUM)

    def grads(self, rows, n: int):
        self._local(rows, n)
        self._allreduce()
        return (float(self.buf[LOSS_SLOT]), float(self.buf[ROWS_SLOT]),
                {k: self.buf[a:z].reshape(s).copy() for k, s, a, z in self.layout})

    def step(self, rows, n: int, profile: bool):
        t0 = time.perf_counter()
        self._local(rows, n)
        t1 = time.perf_counter()
        if profile:
            self.comm.Barrier()
        t2 = time.perf_counter()
        self._allreduce()
        t3 = time.perf_counter()
        with _quiet():
            for k, s, a, z in self.layout:
                self.P[k] -= self.lr * self.buf[a:z].reshape(s)
        t4 = time.perf_counter()
        return (float(self.buf[LOSS_SLOT]), float(self.buf[ROWS_SLOT]),
                (t1 - t0, t2 - t1 if profile else np.nan, t3 - t2, t4 - t3))

    def params(self) -> dict:
        return {k: self.P[k].copy() for k in PARAM_NAMES}

    def drift(self) -> float:
        """The largest difference between two ranks' parameters (0 when the scheme is right)."""
        flat = np.concatenate([self.P[k].ravel() for k in PARAM_NAMES])
        hi, lo = np.empty_like(flat), np.empty_like(flat)
        self.comm.Allreduce(flat, hi, op=self.mpi.MAX)
        self.comm.Allreduce(flat, lo, op=self.mpi.MIN)
        with _quiet():
            return float(np.max(hi - lo, initial=0.0))

    def sync(self) -> None:
        pass  # synchronous


def main(run_dir: Path) -> None:
    from mpi4py import MPI  # initialises MPI: only ever in a worker

    comm = MPI.COMM_WORLD
    rank, world = comm.Get_rank(), comm.Get_size()
    status = rundir.Status(run_dir, rank)

    def work():
        spec, inputs = rundir.read_run(run_dir)
        cores = rundir.pin_to_cores(rank) if spec.pin else None
        rundir.write_info(run_dir, rank, threads=spec.threads, pinned=cores,
                          mpi=MPI.Get_library_version().splitlines()[0].strip())
        if world != spec.workers:
            raise RuntimeError(f"started with {world} MPI ranks, expected {spec.workers}")

        def make(task, P, X, T):
            return Replica(task, P, X, T, comm=comm, mpi=MPI, rank=rank, world=world, status=status)

        results = loop.run(spec, inputs, make, rank, status)
        status(-1, -1, -1, 3)
        if rank == 0:
            rundir.write_result(run_dir, results, world=world, engine="numpy + mpi4py Allreduce")

    try:
        rundir.worker_guard(run_dir, rank, status, work)
    except BaseException:
        # Never leave the partners blocked in a collective: MPI_Abort ends every rank now.
        sys.stderr.flush()
        comm.Abort(1)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
