"""What a user's function is asked to do, and how its answer is judged: one Job per call.

    grads  f(params, X, T, loss[, activation]) -> (loss, grads)         (the default)
    step   f(params, X, T, loss, lr[, activation]) -> new params         one plain update
    train  f(params, X, T, loss, lr, epochs, batch_size, seed[, activation]) -> (params, history)
    drive  a grads function, driven by its own process through `epochs` full-batch updates
           p := p - lr * g (what `grade`'s trajectory family runs); drive_step: a step function,
           applied `epochs` times

    from harness.check.tasks import plan, call, rows
    jobs = plan("step", visible_problems(), ("mse", "bce"), "float64", "sigmoid")
    result = call(f, job.wire(), pass_activation=True)     # in the user's process: plain data
    rows(result, job, missing="", impl="user", mode=name)   # in the checker: Rows

A step is judged by the gradient its update implies, (params - new) / lr, against the
reference gradient: its diagnosis is then the gradient's ("sign flipped" for p + lr * g,
"off by a factor of N"). A training run is judged by its final parameters and its history
against the contract's trajectory (impls/base.py's train: history[e] is the mean of the batch
losses, each taken before its update; minibatches in impls.contract.batch_order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

import impls
from harness.check import slips, user
from harness.check.agreement import Row, compare
from harness.check.problems import Problem, reference
from harness.check.tolerances import tolerance
from impls import contract

TASKS = ("grads", "step", "train")
LR = 0.5


@dataclass(frozen=True)
class Job:
    """One call of the user's function, on a problem already rounded to `dtype`."""

    task: str  # grads | step | train | drive
    problem: Problem
    loss: str
    activation: str = "sigmoid"
    dtype: str = "float64"
    lr: float = LR
    epochs: int = 0  # train, drive
    batch_size: int | None = None  # train (None: the whole set)
    seed: int = 0  # train: the minibatch order's seed
    name: str = ""  # the problem's name in rows ("hidden 1" for a hidden one)

    def wire(self) -> dict:
        """What the user's process gets: plain arrays and numbers, no pickle."""
        return {"task": self.task, "loss": self.loss, "activation": self.activation,
                "lr": self.lr, "epochs": self.epochs, "batch_size": self.batch_size,
                "seed": self.seed, "params": self.problem.params, "X": self.problem.X,
                "T": self.problem.T}


def plan_trajectory(task: str, problems: Sequence[Problem], losses, activation: str,
                    names: Sequence[str] | None = None) -> list[Job]:
    """A training run per problem and loss, for `grade`'s trajectory family: a grads or a step
    function driven through five full-batch updates in its own process, a train function
    through three epochs of minibatches of ceil(N / 3) rows."""
    if task != "train":
        return plan("drive" if task == "grads" else "drive_step", problems, losses, "float64",
                    activation, names)
    jobs = []
    for i, p in enumerate(problems):
        batch = -(-len(p.X) // 3)
        name = f"{names[i] if names else p.name}-e3-b{batch}"
        jobs += [Job("train", p.cast("float64"), loss, activation, "float64", epochs=3, batch_size=batch,
                     seed=p.seed + 1, name=name) for loss in losses]
    return jobs


def plan(task: str, problems: Sequence[Problem], losses, dtype: str, activation: str,
         names: Sequence[str] | None = None) -> list[Job]:
    """The jobs of `task` on each problem and loss. train: the first problem one full-batch
    epoch (its update is diagnosed like a step), the second four full-batch epochs, the
    others three epochs of minibatches of ceil(N / 3) rows (a smaller last batch)."""
    jobs = []
    for i, p in enumerate(problems):
        name = names[i] if names else p.name
        extra: dict = {}
        if task == "train":
            n = len(p.X)
            epochs, batch = ((1, n), (4, n))[i] if i < 2 else (3, -(-n // 3))
            extra = dict(epochs=epochs, batch_size=batch, seed=p.seed + 1)
            name = f"{name}-e{epochs}" + (f"-b{batch}" if batch < n else "")
        elif task in ("drive", "drive_step"):
            extra = dict(epochs=5)
            name = f"{name}-e5"
        for loss in losses:
            jobs.append(Job(task, p.cast(dtype), loss, activation, dtype, name=name, **extra))
    return jobs


# ---- in the user's process ---------------------------------------------------------------
def call(f: Callable, job: Mapping, pass_activation: bool) -> dict:
    """f's answer to one job as plain data ({"error": ...} when there is none)."""
    P, X, T, loss = job["params"], job["X"], job["T"], job["loss"]
    kw = {"activation": job["activation"]} if pass_activation else {}
    task = job["task"]
    if task == "grads":
        return user.call(f, P, X, T, loss, **kw)
    if task in ("drive", "drive_step"):
        return _drive(f, job, kw)
    args = (job["lr"],) if task == "step" else (job["lr"], job["epochs"], job["batch_size"],
                                                  job["seed"])
    try:
        out = f({k: np.array(v) for k, v in P.items()}, X.copy(), T.copy(), loss, *args, **kw)
    except Exception as exc:
        return {"error": user.raised(exc)}
    try:
        return _step_answer(out) if task == "step" else _train_answer(out)
    except Exception as exc:  # a result whose keys() or len() raises
        return {"error": f"returned a {type(out).__name__} that cannot be read: {exc!r:.200}"}


def _params(out) -> dict:
    names = list(out.keys())
    return {"params": {k: user.array(out[k]) for k in contract.PARAM_NAMES if k in names},
            "extra": [str(k)[:40] for k in names if k not in contract.PARAM_NAMES]}


def _step_answer(out) -> dict:
    if not isinstance(out, Mapping):
        return {"error": f"returned {type(out).__name__}; expected the new params, a dict "
                         "{'W1': .., 'b1': .., 'W2': .., 'b2': ..}"}
    return _params(out)


def _train_answer(out) -> dict:
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], Mapping)):
        return {"error": f"returned {type(out).__name__}; expected a pair (params, history)"}
    return {**_params(out[0]), "history": user.array(list(out[1]) if out[1] is not None
                                                       else None)}


def _drive(f: Callable, job: Mapping, kw: dict) -> dict:
    """Full-batch gradient descent in this (the user's) process: with f's gradients (drive:
    p := p - lr * g, the loss before each update in the history), or with f's own update
    (drive_step: p := f(p, ..., lr), no history)."""
    P = {k: np.array(v) for k, v in job["params"].items()}
    history = []
    for epoch in range(job["epochs"]):
        if job["task"] == "drive":
            answer = user.call(f, P, job["X"], job["T"], job["loss"], **kw)
            tensors = answer.get("grads", {})
        else:
            answer = call(f, dict(job, task="step", params=P), bool(kw))
            tensors = answer.get("params", {})
        bad = answer.get("error") or (answer["loss"].get("error")
                                      if isinstance(answer.get("loss"), dict) else "")
        for k in contract.PARAM_NAMES:
            g = tensors.get(k, {"error": "missing"})
            bad = bad or ("error" in g and f"{k}: {g['error']}")
            bad = bad or (tuple(g["shape"]) != P[k].shape and f"{k}: wrong shape {g['shape']}")
        if bad:
            return {"error": f"update {epoch + 1}: {bad}"}
        new = {k: np.reshape(tensors[k]["data"], P[k].shape).astype(P[k].dtype) for k in P}
        if job["task"] == "drive":
            history.append(answer["loss"])
            new = {k: P[k] - job["lr"] * new[k] for k in P}
        P = new
    answer = {"params": {k: user.array(v) for k, v in P.items()}}
    return answer | ({"history": user.array(history)} if job["task"] == "drive" else {})


# ---- in the checker ------------------------------------------------------------------------
_CACHE: dict = {}


def expected(job: Job) -> dict:
    """The reference answer (float64), cached: `grade` asks for the same jobs many times."""
    p = job.problem
    key = (job.task, job.name, p.seed, p.shape, job.dtype, job.loss, job.activation, job.lr,
           job.epochs, job.batch_size, job.seed)
    if key not in _CACHE:
        if job.task in ("grads", "step"):
            L, G = reference(p.params, p.X, p.T, job.loss, job.activation)
            _CACHE[key] = {"loss": L, **G} if job.task == "grads" else G
        else:
            params, history = impls.get("numpy").train(
                p.params, p.X, p.T, loss=job.loss, lr=job.lr, epochs=job.epochs,
                batch_size=job.batch_size, dtype="float64", seed=job.seed,
                activation=job.activation)
            _CACHE[key] = {**params, "history": np.asarray(history)}
    return _CACHE[key]


def rows(result: dict | None, job: Job, missing: str = "", **context) -> list[Row]:
    """The Rows of one job: one per tensor (and the loss or history), or one "(call)" row."""
    p, dtype = job.problem, job.dtype
    N, _, _, K = p.shape
    if job.task == "grads":
        out = user.rows(result, p, job.loss, dtype, missing, job.activation, job.name,
                        expected(job), **context)
        try:
            got = user.decode(result["grads"])[0]
        except (TypeError, ValueError, KeyError, AttributeError):  # no result: nothing to name
            got = {}
        return slips.activation(out, job, got)
    kind = "step" if job.task == "step" else "trajectory"
    where = dict(device="cpu", loss=job.loss, activation=job.activation, problem=job.name,
                 **context)
    if result is None:
        return [_call_row(f"no result: {missing or 'none was delivered'}", kind, dtype, where)]
    try:
        if "error" in result:
            return [_call_row(str(result["error"])[:400], kind, dtype, where)]
        tensors = dict(result["params"], **({"history": result["history"]}
                                            if job.task in ("train", "drive") else {}))
        got, errors, low = user.decode(tensors)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return [_call_row(f"malformed result from the user's process ({exc})", kind, dtype,
                          where)]
    if job.task == "step":
        implied = {k: (p.params[k] - g) / job.lr for k, g in got.items()
                   if g.shape == p.params[k].shape}
        out = compare(expected(job), {**got, **implied}, "grad", dtype, N, K, **where)
        out = [dataclasses.replace(r, kind="step") for r in user.finish(out, errors, low, dtype)]
        return slips.activation(out, job, implied)
    want = expected(job)
    if job.task == "drive_step":  # a step returns no loss: the parameters tell it all
        want = {k: v for k, v in want.items() if k != "history"}
    out = compare(want, got, "trajectory", dtype, job.batch_size or N, K, **where)
    out = [slips.trajectory(r, job, got) for r in user.finish(out, errors, low, dtype)]
    if any(r.tensor == "history" and r.diagnosis == slips.HISTORY_SLIPS["in order"] for r in out):
        out = [dataclasses.replace(r, diagnosis="minibatches in file order, not the contract's "
                                   "(see history)") if r.diagnosis == "wrong values" else r
               for r in out]
    return out


def _call_row(diagnosis: str, kind: str, dtype: str, where: dict) -> Row:
    return dataclasses.replace(user.call_row(diagnosis, dtype, where), kind=kind,
                               tolerance=tolerance("grad" if kind == "step" else kind, dtype))
