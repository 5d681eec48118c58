"""Data-parallel bugs: W workers simulated in one process, the reduction done right or wrong.

    from harness.check.dp_bugs import dp_variant, audit, diagnose_dp
    f = dp_variant("a")                       # f(params, X, T, loss) -> (loss, grads)
    L, G = f(params, X, T, "bce")             # the gradient worker 0 applies

Each simulated worker runs impls/handwritten.py's `grads`, unchanged, on its contiguous shard
of the batch (dataparallel/plan.py's shard_bounds: the engines' own plan); the "all-reduce"
is a plain sum over the list of workers. The right reduction is the engines': each worker
weights its local MEAN by n_r / n, and the sum is the global batch mean. The bugs change only
the reduction, or the shard:

  a          local means averaged: sum_r g_r / W (right only when every shard has n / W rows)
  b          the sum of the local means, not divided by the world size
  c          only W1 and W2 all-reduced; each worker keeps its own (weighted) b1, b2
  d          each worker steps with its local gradient, then the PARAMETERS are all-reduced (SUM)
  d_avg      ... averaged instead: plain SGD is linear in g, so this is (a) again
  e          every worker reads the whole batch (weight rows read / n = 1): W times the gradient
  e_planned  every worker reads the whole batch, weights from the plan (n_r / n): numerically
             EXACT (the weights sum to 1); only the row audit (rows read != n) shows it

`audit` is the engines' two free invariants for one step (rows read sum to n; every worker ends
with the same parameters); `diagnose_dp` names what a wrong data-parallel gradient equals.
"""

from __future__ import annotations

import numpy as np

from dataparallel.plan import shard_bounds
from harness.check.tolerances import scaled_errors
from impls import handwritten
from impls.contract import PARAM_NAMES

WORKERS = 2
LR = 0.5  # the step the simulated workers take (bugs d, d_avg show in it)


def _grads(P, X, T, loss):
    with np.errstate(over="ignore"):
        L, G = handwritten.grads(np, P, X, T, loss, "sigmoid")
    return float(L), G


def simulate(P, X, T, loss: str, workers: int = WORKERS, bug: str | None = None, lr: float = LR):
    """One step of W simulated workers: (loss worker 0 records, the gradient each worker r
    effectively applies (p_new = p - lr * g), rows read by all workers)."""
    P = {k: np.asarray(P[k], np.float64) for k in PARAM_NAMES}
    X, T = np.asarray(X, np.float64), np.asarray(T, np.float64)
    n = len(X)
    whole = bug in ("e", "e_planned")
    terms = []  # (rows read, planned rows, L_r, g_r) per worker
    for lo, hi in shard_bounds(n, workers):
        Xr, Tr = (X, T) if whole else (X[lo:hi], T[lo:hi])
        terms.append((len(Xr), hi - lo, *_grads(P, Xr, Tr, loss)))
    rows = sum(t[0] for t in terms)

    def weighted(t):  # what the right code puts in the buffer: (n_r / n) * (L_r, g_r)
        w = (t[1] if bug == "e_planned" else t[0]) / n
        return t[2] * w, {k: t[3][k] * w for k in PARAM_NAMES}

    def allreduce(items):  # a sum over workers
        return sum(i[0] for i in items), {k: sum(i[1][k] for i in items) for k in PARAM_NAMES}

    local = [weighted(t) for t in terms]
    if bug in ("d", "d_avg"):
        stepped = [{k: P[k] - lr * t[3][k] for k in PARAM_NAMES} for t in terms]
        new = {k: sum(s[k] for s in stepped) / (workers if bug == "d_avg" else 1)
               for k in PARAM_NAMES}
        return allreduce(local)[0], [{k: (P[k] - new[k]) / lr for k in PARAM_NAMES}] * workers, rows
    if bug in ("a", "b"):
        L, G = allreduce([(t[2], t[3]) for t in terms])
        scale = 1 / workers if bug == "a" else 1
        L, G = L * scale, {k: g * scale for k, g in G.items()}
    else:  # right, c, e, e_planned
        L, G = allreduce(local)
    per_rank = [dict(G) for _ in range(workers)]
    if bug == "c":  # b1, b2 never reached the all-reduce: each keeps its own share
        for r, g in enumerate(per_rank):
            g["b1"], g["b2"] = local[r][1]["b1"], local[r][1]["b2"]
    return L, per_rank, rows


def dp_variant(bug: str | None, workers: int = WORKERS):
    """f(params, X, T, loss) -> (loss, the gradient worker 0 applies): a user's signature."""

    def f(P, X, T, loss):
        L, per_rank, _ = simulate(P, X, T, loss, workers, bug)
        return L, per_rank[0]

    f.__name__ = f"dp_{bug or 'correct'}_w{workers}"
    return f


def audit(P, X, T, loss: str, workers: int = WORKERS, bug: str | None = None) -> dict:
    """The engines' free invariants, for one step: rows read (must be n), replica drift (the
    largest difference between two workers' new parameters; must be 0)."""
    _, per_rank, rows = simulate(P, X, T, loss, workers, bug)
    drift = max(float(np.max(np.abs(LR * (g[k] - per_rank[0][k])), initial=0.0))
                for g in per_rank for k in PARAM_NAMES)
    return {"rows": rows, "n": len(X), "rows_ok": rows == len(X), "replica_drift": drift}


def diagnose_dp(P, X, T, loss: str, G: dict, workers: int = WORKERS, tol: float = 1e-10) -> str:
    """What a wrong data-parallel gradient G equals, in terms of the workers' shards; '' when
    none of these fits (the generic diagnosis then stands).

    Why: on unequal shards these bugs are no constant factor of the right gradient, and where
    they are (a factor W = 2), the generic diagnosis names the single-process slip with that
    factor ("the gradient of (y-t)^2 used with 0.5 (y-t)^2"), which misleads here.
    """
    P64 = {k: np.asarray(P[k], np.float64) for k in PARAM_NAMES}
    X, T, n = np.asarray(X, np.float64), np.asarray(T, np.float64), len(X)
    ref = _grads(P64, X, T, loss)[1]
    shards = [_grads(P64, X[lo:hi], T[lo:hi], loss)[1] for lo, hi in shard_bounds(n, workers)]
    sizes = [hi - lo for lo, hi in shard_bounds(n, workers)]

    def fits(cand, names=PARAM_NAMES) -> bool:
        return all(np.shape(G[k]) == np.shape(cand[k]) and
                   float(np.max(scaled_errors(cand[k], G[k]), initial=0.0)) <= tol for k in names)

    summed = {k: sum(s[k] for s in shards) for k in PARAM_NAMES}
    W = workers
    if fits({k: W * ref[k] for k in PARAM_NAMES}):
        return (f"off by a factor of W={W}, the number of workers (the all-reduced sum never "
                "divided by the world size, or every worker reading the whole batch?)")
    if fits({k: summed[k] / W for k in PARAM_NAMES}):
        return (f"equals the average of the workers' local means (sum g_r / W): shards of "
                f"{'+'.join(map(str, sizes))} rows weighted as equal (weight each by n_r / n)")
    if fits(summed):
        return (f"equals the sum of the workers' local means (sum g_r): not divided by the world "
                f"size W={W}, and not weighted by shard size")
    own = {k: shards[0][k] * sizes[0] / n for k in PARAM_NAMES}
    kept = [k for k in PARAM_NAMES if not fits(ref, (k,)) and fits(own, (k,))]
    if kept and fits(ref, [k for k in PARAM_NAMES if k not in kept]):
        return (f"{', '.join(kept)} equal worker 0's own share (n_0 / n) g_0: left out of the "
                "all-reduce (the others are right)")
    if fits({k: summed[k] - (W - 1) * P64[k] / LR for k in PARAM_NAMES}):
        return (f"the step adds (W-1) = {W - 1} times the parameters: the PARAMETERS were summed "
                "over the workers after local steps (an all-reduce of parameters, not gradients)")
    return ""
