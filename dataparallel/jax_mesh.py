"""Data-parallel `jax`: one batch-sharded jitted step over a jax.sharding.Mesh; XLA inserts the
all-reduce (no collective is written here).

    python -m dataparallel.jax_mesh RUN_DIR                         one process, W CPU devices
    python -m dataparallel.jax_mesh RUN_DIR --process-id R --num-processes W --coordinator H:P

The batch's rows are split over the mesh axis "batch", the parameters replicated, and the
single-process step is jitted with those shardings. Unequal shards: a sharded array needs equal
shard sizes, but 13 rows over 2 devices are 7 + 6. Each shard is padded to m = ceil(n / W) rows
of zeros and a row mask (1 real, 0 padding) enters the loss:

    L = sum_rows mask * loss_row / n        n = the GLOBAL batch size (real rows only)

which is the contract's batch mean exactly (padding adds 0 to the loss and to every gradient).
Dividing by the padded size, or by a device's row count, would be the classic bug. sum(mask)
comes back with the loss: the row audit for free.

W devices: one process with JAX_NUM_CPU_DEVICES=W (XLA flag --xla_force_host_platform_device_count
too), set before the backend starts; or W processes through jax.distributed.initialize and gloo
CPU collectives (dataparallel/engines.py launches them: JAX has no launcher). The profiled
step (timing only) is split: local gradients per device (shard_map), their sum (the
all-reduce, alone), the update; each synchronised.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np

from dataparallel import loop, plan, rundir
from impls import jax_impl
from impls.contract import PARAM_NAMES

AXIS = "batch"


def loss_fn(P, X, T, mask, n, loss: str, activation: str, precision):
    """Sum over real rows of the per-row loss, divided by the GLOBAL batch size n (jax_impl's
    loss_fn, with the row mask)."""
    jax = jax_impl._jax()
    jnp = jax.numpy
    Z1 = jnp.matmul(X, P["W1"], precision=precision) + P["b1"]
    A1 = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}[activation](Z1)
    Z2 = jnp.matmul(A1, P["W2"], precision=precision) + P["b2"]
    if loss == "mse":
        per_row = 0.5 * jnp.sum((jax.nn.sigmoid(Z2) - T) ** 2, axis=1)
    else:
        per_row = jnp.sum(jax.nn.softplus(Z2) - T * Z2, axis=1)
    return jnp.sum(mask * per_row) / n


@functools.cache
def _functions(mesh, loss: str, activation: str):
    """Shardings, the fused step, the gradient, and the split (profiled) step for one mesh."""
    jax = jax_impl._jax()
    jnp = jax.numpy
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as PS

    rows, repl = NamedSharding(mesh, PS(AXIS)), NamedSharding(mesh, PS())
    vg = jax.value_and_grad(functools.partial(loss_fn, loss=loss, activation=activation,
                                              precision=jax_impl._precision("jit")))

    def step(P, X, T, mask, n, lr):
        L, G = vg(P, X, T, mask, n)
        return {k: P[k] - lr * G[k] for k in P}, L, jnp.sum(mask)

    def grads(P, X, T, mask, n):
        L, G = vg(P, X, T, mask, n)
        return L, G, jnp.sum(mask)

    ins = (repl, rows, rows, rows, repl)
    fused = jax.jit(step, in_shardings=(*ins, repl), out_shardings=(repl, repl, repl),
                    donate_argnums=0)
    grads_j = jax.jit(grads, in_shardings=ins, out_shardings=(repl, repl, repl))
    split = None
    if hasattr(jax, "shard_map") and hasattr(jax.lax, "pcast"):
        def local(P, X, T, mask, n):
            # PITFALL (measured): inside shard_map the gradient with respect to a REPLICATED
            # input is already summed over the axis (jax inserts the psum in the transpose);
            # summing it again would be W times the gradient. pcast makes P per-device.
            P = jax.tree.map(lambda p: jax.lax.pcast(p, AXIS, to="varying"), P)
            L, G = vg(P, X, T, mask, n)  # this device's rows, still over the global n
            return L[None], {k: g[None] for k, g in G.items()}, jnp.sum(mask)[None]

        specs = (PS(), PS(AXIS), PS(AXIS), PS(AXIS), PS())
        split = (jax.jit(jax.shard_map(local, mesh=mesh, in_specs=specs,
                                       out_specs=(PS(AXIS), PS(AXIS), PS(AXIS)))),
                 jax.jit(lambda L, G, c: (L.sum(0), {k: g.sum(0) for k, g in G.items()}, c.sum(0)),
                         out_shardings=(repl, repl, repl)),
                 jax.jit(lambda P, G, lr: {k: P[k] - lr * G[k] for k in P}, donate_argnums=0,
                         out_shardings=repl))
    return rows, repl, fused, grads_j, split


def _padded_rows(X, T, rows, n: int, world: int, shards: list[int]):
    """This process's part of the padded batch: shard r (plan.shard_bounds) at the top of its
    block of m = ceil(n / world) rows; (X, T, mask, global shape)."""
    m = -(-n // world)
    bounds = plan.shard_bounds(n, world)
    Xp = np.zeros((len(shards) * m, X.shape[1]), X.dtype)
    Tp = np.zeros((len(shards) * m, T.shape[1]), X.dtype)
    mask = np.zeros(len(shards) * m, X.dtype)
    base = np.arange(len(X))[slice(None) if rows is None else rows]  # batch order
    for j, r in enumerate(shards):
        idx = base[bounds[r][0]:bounds[r][1]]
        Xp[j * m:j * m + len(idx)], Tp[j * m:j * m + len(idx)] = X[idx], T[idx]
        mask[j * m:j * m + len(idx)] = 1
    return Xp, Tp, mask, (world * m,)


class Replica:
    def __init__(self, task, P, X, T, *, mesh, status):
        self.jax = jax = jax_impl._jax()
        self.mesh, self.status, self.X, self.T = mesh, status, X, T
        self.world = mesh.devices.size
        me = jax.process_index()  # positions along the axis of this process's devices
        self.shards = [i for i, d in enumerate(mesh.devices.flat) if d.process_index == me]
        self.rows_sh, self.repl, self.fused, self.grads_j, self.split = _functions(
            mesh, task["loss"], task["activation"])
        self.P = {k: self._replicated(P[k]) for k in PARAM_NAMES}
        self.lr = self._replicated(np.asarray(task["lr"], X.dtype))
        self.full = None  # the full batch, sharded once (as jax_impl's session keeps X)

    def _replicated(self, a):
        return self.jax.make_array_from_process_local_data(self.repl, np.asarray(a))

    @staticmethod
    def _host(a) -> np.ndarray:
        return np.asarray(a.addressable_data(0))  # a replicated value: any copy

    def _batch(self, rows, n: int):
        if rows is None and self.full is not None:
            return self.full
        put = self.jax.make_array_from_process_local_data
        Xp, Tp, Mp, g = _padded_rows(self.X, self.T, rows, n, self.world, self.shards)
        batch = (put(self.rows_sh, Xp, g + Xp.shape[1:]), put(self.rows_sh, Tp, g + Tp.shape[1:]),
                 put(self.rows_sh, Mp, g), self._replicated(np.asarray(n, self.X.dtype)))
        if rows is None:
            self.full = batch
        return batch

    def grads(self, rows, n: int):
        L, G, count = self.grads_j(self.P, *self._batch(rows, n))
        return (float(self._host(L)), float(self._host(count)),
                {k: self._host(G[k]).copy() for k in PARAM_NAMES})

    def step(self, rows, n: int, profile: bool):
        ready = self.jax.block_until_ready
        t0 = time.perf_counter()
        batch = self._batch(rows, n)
        if not (profile and self.split):
            self.status.phase(2)  # compute and all-reduce are one XLA program
            self.P, L, count = self.fused(self.P, *batch, self.lr)
            loss, used = float(self._host(L)), float(self._host(count))  # waits for the step
            return loss, used, (time.perf_counter() - t0, np.nan, np.nan, np.nan)
        local, reduce, update = self.split
        parts = ready(local(self.P, *batch))
        t1 = time.perf_counter()
        self.status.phase(2)
        L, G, count = ready(reduce(*parts))  # the all-reduce, alone
        t2 = time.perf_counter()
        self.P = ready(update(self.P, G, self.lr))
        t3 = time.perf_counter()
        return float(self._host(L)), float(self._host(count)), (t1 - t0, np.nan, t2 - t1, t3 - t2)

    def params(self) -> dict:
        return {k: self._host(self.P[k]).copy() for k in PARAM_NAMES}

    def drift(self) -> float:
        """Largest difference between two copies of the parameters: this process's devices,
        then across processes (a collective)."""
        flat = [np.concatenate([np.asarray(self.P[k].addressable_shards[i].data).ravel()
                                for k in PARAM_NAMES])
                for i in range(len(self.P["W1"].addressable_shards))]
        if self.jax.process_count() > 1:
            from jax.experimental import multihost_utils

            flat += list(multihost_utils.process_allgather(flat[0]))
        with np.errstate(invalid="ignore"):
            return float(max(np.max(np.abs(f - flat[0]), initial=0.0) for f in flat))

    def sync(self) -> None:
        self.jax.block_until_ready(self.P)


def main(run_dir: Path, process_id: int | None, num_processes: int | None,
         coordinator: str | None) -> None:
    rank = process_id or 0
    status = rundir.Status(run_dir, rank)

    def work():
        spec, inputs = rundir.read_run(run_dir)
        # Before jax starts: XLA sizes its thread pools from the affinity.
        cores = rundir.pin_to_cores(rank, 1 if num_processes else spec.workers) if spec.pin else None
        jax = jax_impl._jax()
        if num_processes:
            # gloo is jax 0.10's default for CPU collectives; set it so that a jax without it
            # fails here, loudly, not at the first collective.
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            jax.distributed.initialize(coordinator_address=coordinator,
                                       num_processes=num_processes, process_id=process_id,
                                       initialization_timeout=int(max(10, spec.timeout_s)))
        jax_impl._dispatch("jit")  # synchronous CPU dispatch, as the single-process jit mode
        from jax.sharding import Mesh

        devices = jax.devices() if num_processes else jax.devices("cpu")[:spec.workers]
        mesh = Mesh(np.array(devices), (AXIS,))
        rundir.write_info(run_dir, rank, threads=spec.threads, pinned=cores,
                          devices=[str(d) for d in jax.local_devices()])
        if mesh.devices.size != spec.workers:
            raise RuntimeError(f"the mesh has {mesh.devices.size} devices, expected {spec.workers}")
        results = loop.run(spec, inputs,
                           lambda task, P, X, T: Replica(task, P, X, T, mesh=mesh, status=status),
                           rank, status)
        status(-1, -1, -1, 3)
        if rank == 0:
            rundir.write_result(run_dir, results, world=spec.workers,
                                engine=f"jax {jax.__version__} jit over a Mesh of "
                                       f"{mesh.devices.size} CPU device(s)")
        if num_processes:
            jax.distributed.shutdown()

    rundir.worker_guard(run_dir, rank, status, work)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="one data-parallel jax worker")
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--process-id", type=int)
    ap.add_argument("--num-processes", type=int)
    ap.add_argument("--coordinator")
    a = ap.parse_args()
    main(a.run_dir, a.process_id, a.num_processes, a.coordinator)
