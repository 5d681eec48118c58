"""Data-parallel `torch`: autograd gradients (impls/torch_impl.py's `grads`), one explicit
`all_reduce` of a flat buffer per step; gloo on the CPU, NCCL on GPUs.

    python -m torch.distributed.run --nproc-per-node W ... -m dataparallel.torch_dist RUN_DIR

Why an explicit all_reduce and not DistributedDataParallel (DDP):
1. DDP AVERAGES (sum / W). With unequal shards (13 rows over 2 ranks: 7 + 6) the mean of the
   local means is not the batch mean: the classic bug, measured in the prototype at 2.5e-2 to
   5.3e-2 on N = 13 (exact on equal shards). DDP is right only if every rank first rescales its
   loss by n_r * W / n: a factor that exists only to undo DDP's division.
2. DDP hooks into loss.backward() and .grad; the project's torch code takes
   torch.autograd.grad (nothing accumulates in .grad), which DDP does not reduce: silently
   unreduced gradients. DDP would mean rewriting the step around .backward().
3. DDP needs an nn.Module called through its wrapper; the project passes a dict of leaf tensors.
4. What DDP buys (bucketing, overlapping communication with the backward pass) is worth nothing
   for four tensors: one flat buffer is one collective per step already.

NCCL (device "gpu", one GPU per rank, LOCAL_RANK) is written but has never run: no GPU here.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from dataparallel import loop, plan, rundir
from dataparallel.plan import FIRST_GRAD, LOSS_SLOT, ROWS_SLOT
from impls import torch_impl
from impls.contract import PARAM_NAMES


class Replica:
    def __init__(self, task, P, X, T, *, dev, rank: int, world: int, status):
        import torch
        import torch.distributed as dist

        self.torch, self.dist, self.dev = torch, dist, dev
        self.rank, self.world, self.status = rank, world, status
        self.P = {k: torch.tensor(P[k], device=dev, requires_grad=True) for k in PARAM_NAMES}
        self.X, self.T = torch.tensor(X, device=dev), torch.tensor(T, device=dev)
        self.loss, self.activation, self.lr = task["loss"], task["activation"], task["lr"]
        self.layout = plan.layout(P)
        self.buf = torch.empty(plan.buffer_size(P), dtype=self.X.dtype, device=dev)
        self.views = {k: self.buf[a:z].view(s) for k, s, a, z in self.layout}

    def _local(self, rows, n: int) -> None:
        torch = self.torch
        mine = plan.my_rows(rows, n, self.rank, self.world)
        if not isinstance(mine, slice):
            mine = torch.as_tensor(mine, device=self.dev)  # index on the device
        Xr, Tr = self.X[mine], self.T[mine]
        value, G = torch_impl.grads(self.P, Xr, Tr, self.loss, self.activation)
        w = len(Xr) / n  # this shard's share of the batch, n_r / n
        with torch.no_grad():
            self.buf[LOSS_SLOT] = value * w
            self.buf[ROWS_SLOT] = len(Xr)
            for k, g in zip(PARAM_NAMES, G, strict=True):
                torch.mul(g, w, out=self.views[k])

    def _allreduce(self) -> None:
        self.status.phase(2)
        self.dist.all_reduce(self.buf, op=self.dist.ReduceOp.SUM)  # gradients, loss, rows: one

    def grads(self, rows, n: int):
        self._local(rows, n)
        self._allreduce()
        loss, used = self.buf[:FIRST_GRAD].tolist()
        return loss, used, {k: v.cpu().numpy().copy() for k, v in self.views.items()}

    def step(self, rows, n: int, profile: bool):
        torch = self.torch
        t0 = time.perf_counter()
        self._local(rows, n)
        if profile:
            self.sync()
        t1 = time.perf_counter()
        if profile:
            self.dist.barrier()
        t2 = time.perf_counter()
        self._allreduce()
        if profile:
            self.sync()
        t3 = time.perf_counter()
        with torch.no_grad():  # the update of torch_impl.step: one fused add over the four tensors
            torch._foreach_add_([self.P[k] for k in PARAM_NAMES],
                                [self.views[k] for k in PARAM_NAMES], alpha=-self.lr)
        if profile:
            self.sync()
        t4 = time.perf_counter()
        # The one host read per step (the row audit and the loss; a device sync on a GPU).
        loss, used = self.buf[:FIRST_GRAD].tolist()
        return loss, used, (t1 - t0, t2 - t1 if profile else np.nan, t3 - t2, t4 - t3)

    def params(self) -> dict:
        return {k: p.detach().cpu().numpy().copy() for k, p in self.P.items()}

    def drift(self) -> float:
        flat = self.torch.cat([self.P[k].detach().reshape(-1) for k in PARAM_NAMES])
        hi, lo = flat.clone(), flat.clone()
        self.dist.all_reduce(hi, op=self.dist.ReduceOp.MAX)
        self.dist.all_reduce(lo, op=self.dist.ReduceOp.MIN)
        return float((hi - lo).max())

    def sync(self) -> None:
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize(self.dev)


def _device(device: str, local_rank: int):
    import torch

    torch_impl._setup(device, "eager")  # matmul precision as the single-process eager mode
    if device == "gpu":
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def main(run_dir: Path) -> None:
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    status = rundir.Status(run_dir, rank)

    def work():
        import torch
        import torch.distributed as dist

        spec, inputs = rundir.read_run(run_dir)
        cores = rundir.pin_to_cores(rank) if spec.pin else None
        torch.set_num_threads(spec.threads)
        dev = _device(spec.device, local_rank)
        rundir.write_info(run_dir, rank, threads=torch.get_num_threads(), pinned=cores,
                          backend="nccl" if spec.device == "gpu" else "gloo")
        # The collective time-out: a partner that died or hangs makes all_reduce raise here
        # instead of after gloo's default 30 minutes (the caller kills earlier anyway).
        dist.init_process_group("nccl" if spec.device == "gpu" else "gloo",
                                timeout=timedelta(seconds=spec.timeout_s),
                                **({"device_id": dev} if spec.device == "gpu" else {}))

        def train_here():
            if world != spec.workers:
                raise RuntimeError(f"started with {world} ranks, expected {spec.workers}")

            def make(task, P, X, T):
                return Replica(task, P, X, T, dev=dev, rank=rank, world=world, status=status)

            results = loop.run(spec, inputs, make, rank, status)
            status(-1, -1, -1, 3)
            if rank == 0:
                rundir.write_result(run_dir, results, world=world,
                                    engine=f"torch {torch.__version__} + {dist.get_backend()} "
                                           "all_reduce")

        try:
            # The error file is written HERE, before destroy_process_group closes the sockets:
            # otherwise a partner's "Connection reset by peer" is written first, as the cause.
            rundir.worker_guard(run_dir, rank, status, train_here)
        finally:
            dist.destroy_process_group()

    rundir.worker_guard(run_dir, rank, status, work)  # exit 1: torchrun stops the others


if __name__ == "__main__":
    main(Path(sys.argv[1]))
