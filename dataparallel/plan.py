"""Who reads which rows, and what one all-reduce carries: the shard plan every engine shares.

Data parallelism here: W workers start from the same parameters, walk the same batches
(contract.batch_order) and each takes one *contiguous shard* of every batch. Each computes the
gradient of the MEAN loss over its own rows, weights it by its share of the batch, and the
workers sum

    g = sum_r (n_r / n) * g_r          n_r rows in shard r, n rows in the batch

with one all-reduce: exactly the contract's mean over the GLOBAL batch, whatever the shard
sizes. Averaging the local means (sum_r g_r / W) is the same only when every n_r is equal:
the classic bug (harness/check/dp_bugs.py has it, and the others).

Everything here exists only for sharding (harness/lessons/parallel_cost.py counts every use of
this module as such). NumPy only; no framework is imported here.
"""

from __future__ import annotations

import numpy as np

from impls import contract
from impls.contract import PARAM_NAMES


# ---- shards -------------------------------------------------------------------------------------
def shard_bounds(n: int, world: int) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) row ranges of a batch of n rows, one per worker.

    Sizes differ by at most one (the first n % world shards get the extra row), as
    np.array_split does. Every worker computes this itself from (n, world): no plan is sent.
    """
    base, extra = divmod(n, world)
    bounds, lo = [], 0
    for r in range(world):
        hi = lo + base + (1 if r < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def epoch_batches(n_samples: int, batch_size: int | None, seed: int, epoch: int):
    """The batches of one epoch as (rows, n): rows None for the (unshuffled) full batch, else
    the index array of contract.batch_order; n the batch's GLOBAL size."""
    order = contract.batch_order(n_samples, batch_size, seed, epoch)
    if order is None:
        return [(None, n_samples)]
    return [(idx, len(idx)) for idx in order]


def my_rows(rows, n: int, rank: int, world: int):
    """This worker's contiguous shard of a batch (rows None = the full batch): a slice or an
    index array into X and T."""
    lo, hi = shard_bounds(n, world)[rank]
    return slice(lo, hi) if rows is None else rows[lo:hi]


# ---- one flat buffer per step ----------------------------------------------------------------
# Slot 0: the weighted loss (n_r / n) * L_r, which sums to the batch loss.
# Slot 1: the number of rows this worker used, which must sum to n: a free audit that catches a
#         worker reading the whole batch, or a shard plan that drops or repeats rows (that bug
#         can be exact in the numbers: only this audit shows it).
# Then every gradient, weighted by n_r / n. One buffer: ONE collective per step (at small sizes
# a collective's latency, not its bandwidth, is what costs).
LOSS_SLOT, ROWS_SLOT, FIRST_GRAD = 0, 1, 2


def layout(P: dict) -> list[tuple[str, tuple, int, int]]:
    """(name, shape, start, stop) of each gradient in the flat all-reduce buffer."""
    out, pos = [], FIRST_GRAD
    for k in PARAM_NAMES:
        size = int(np.prod(P[k].shape))
        out.append((k, tuple(P[k].shape), pos, pos + size))
        pos += size
    return out


def buffer_size(P: dict) -> int:
    return FIRST_GRAD + sum(int(np.prod(P[k].shape)) for k in PARAM_NAMES)


def check_rows(rows_total: float, n: int, epoch: int, batch: int) -> None:
    """The row audit: every row of the batch read by exactly one worker."""
    if rows_total != n:
        raise RuntimeError(f"row accounting failed at epoch {epoch} batch {batch}: the workers "
                           f"used {rows_total:g} rows of a batch of {n}")
