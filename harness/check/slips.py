"""The classic slips a wrong answer can be matched to, so that its diagnosis names them: another
activation's derivative in the backward pass, minibatches in file order, a loss history
recorded at the wrong moment, a training update whose gradient is off.

    from harness.check import slips
    rows = slips.activation(rows, job, {"W1": array, "b1": array})   # W1 and b1 rows renamed
    row = slips.trajectory(row, job, got)                           # one train row renamed

Each slip is recomputed from the job's problem in float64 and compared with what the user's
function returned; a diagnosis changes only when the user's numbers match the slip's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from harness.check.agreement import Row, compare
from harness.check.problems import derivative_slip, loss_value, reference
from harness.check.tolerances import tolerance
from impls import contract, handwritten

if TYPE_CHECKING:
    from harness.check.tasks import Job

# The derivative each activation has, written as a student would (from the output A).
DERIVATIVES = {"sigmoid": "A (1 - A)", "tanh": "1 - A^2", "relu": "1 where A > 0, else 0"}
_NOWHERE = dict(impl="", mode="", device="", loss="", activation="", problem="")  # side rows


def activation(out: list[Row], job: Job, got: Mapping) -> list[Row]:
    """W1 and b1 wrong in the way of another activation's derivative: say whose."""
    bad = {r.tensor for r in out if not r.ok}
    if not {"W1", "b1"} & bad or not all(isinstance(got.get(k), np.ndarray) for k in ("W1",
                                                                                     "b1")):
        return out
    p = job.problem
    for used in contract.ACTIVATIONS:
        if used == job.activation:
            continue
        slip = derivative_slip(p.params, p.X, p.T, job.loss, job.activation, used)
        rows = compare(slip, {k: got[k] for k in slip}, "grad", job.dtype, **_NOWHERE)
        if all(r.ok for r in rows):
            why = (f"uses {used}'s derivative {DERIVATIVES[used]}: {job.activation}'s is "
                   f"{DERIVATIVES[job.activation]}")
            return [dataclasses.replace(r, diagnosis=why) if r.tensor in bad and
                    r.tensor in slip else r for r in out]
    return out


def trajectory(r: Row, job: Job, got: Mapping) -> Row:
    """Name the classic slips of a training loop where the data shows them."""
    if r.ok or r.tensor in ("(call)",):
        return r
    p = job.problem
    if r.tensor == "history":
        h = got.get("history")
        if h is None or h.ndim != 1:
            return r
        if len(h) != job.epochs:
            return dataclasses.replace(r, diagnosis=f"history has {len(h)} entries for "
                                       f"{job.epochs} epochs (one loss per epoch)")
        rtol = max(1e-6, 10 * tolerance("trajectory", job.dtype))
        for how, why in HISTORY_SLIPS.items():
            if np.allclose(_variant(job, how), h, rtol=rtol, atol=0):
                return dataclasses.replace(r, diagnosis=why)
        return r
    if job.task == "train" and job.epochs == 1 and (job.batch_size or 0) >= len(p.X) \
            and isinstance(got.get(r.tensor), np.ndarray) \
            and got[r.tensor].shape == p.params[r.tensor].shape:
        implied = (p.params[r.tensor] - got[r.tensor]) / job.lr
        L, G = reference(p.params, p.X, p.T, job.loss, job.activation)
        (g,) = compare({r.tensor: G[r.tensor]}, {r.tensor: implied}, "grad", job.dtype,
                       len(p.X), p.shape[3], **_NOWHERE)
        if g.diagnosis:
            return dataclasses.replace(r, diagnosis=f"the update's gradient: {g.diagnosis}")
    return r


HISTORY_SLIPS = {
    "in order": "the loss history of minibatches taken in file order: the contract shuffles "
                "every epoch (impls.contract.batch_order(N, batch_size, seed, epoch))",
    "after": "history[e] is the loss after epoch e's updates: the contract records the mean "
             "of the batch losses, each taken before its update",
    "whole set": "history[e] is the whole set's loss at the start of epoch e: the contract "
                 "averages the batch losses, each taken before its update",
}


def _variant(job: Job, how: str) -> np.ndarray:
    """The history a training loop with one classic slip records (float64)."""
    p = job.problem
    P = contract.cast(p.params, "float64")
    X, T = np.asarray(p.X, np.float64), np.asarray(p.T, np.float64)
    n, history = len(X), []
    for epoch in range(job.epochs):
        order = contract.batch_order(n, job.batch_size, job.seed, epoch)
        if order is None or how == "in order":
            b = job.batch_size or n
            order = [np.arange(n)[i:i + b] for i in range(0, n, b)]
        start = loss_value(P, X, T, job.loss, job.activation)
        losses = []
        for idx in order:
            L, G = handwritten.grads(np, P, X[idx], T[idx], job.loss, job.activation)
            losses.append(float(L))
            P = {k: P[k] - job.lr * G[k] for k in P}
        history.append({"after": loss_value(P, X, T, job.loss, job.activation),
                        "whole set": start}.get(how, float(np.mean(losses))))
    return np.asarray(history)
