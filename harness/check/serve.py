"""The worker's loop (harness/check/sandbox_child.py, harness/check/notebook.py): the jobs in,
one JSON line per answer out.

    save_jobs(jobs, "jobs.npz")                  # the checker: Job.wire() dicts, plain arrays
    serve(f, load_jobs("jobs.npz"), "results.jsonl")  # the worker: loaded, job..., done
    usage("results.jsonl", ContractError(...))    # or one {"usage", "missing"} line instead

The jobs travel as plain arrays and numbers (np.savez without pickle), the answers as JSON
lines, each flushed at once: what a worker that dies half way delivered is still there.
harness/check/outcome.py reads them back, trusting nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from harness.check import tasks, user
from impls.contract import PARAM_NAMES, ContractError


# ---- the jobs, through a file the parent writes -------------------------------------------------
def save_jobs(jobs: list[dict], path: str) -> None:
    arrays = {}
    for i, job in enumerate(jobs):
        arrays.update({f"{i}.{k}": job["params"][k] for k in PARAM_NAMES})
        arrays.update({f"{i}.X": job["X"], f"{i}.T": job["T"]})
        meta = {k: v for k, v in job.items() if k not in ("params", "X", "T")}
        arrays[f"{i}.meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def load_jobs(path: str) -> list[dict]:
    """[job] as `run` was given them (Job.wire(): plain arrays and numbers, no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        n = sum(key.endswith(".meta") for key in z.files)
        return [dict(json.loads(str(z[f"{i}.meta"])), params={k: z[f"{i}.{k}"]
                                                               for k in PARAM_NAMES},
                     X=z[f"{i}.X"], T=z[f"{i}.T"]) for i in range(n)]


# ---- the worker: call f on each job ---------------------------------------------------------
def serve(f: Callable, jobs: list[dict], results_path: str) -> None:
    """Call f on each job and append each result as a JSON line, flushed at once: what a
    worker that dies half way delivered is still there."""
    pass_activation = takes_activation(f)
    wanted = {job["activation"] for job in jobs} - {"sigmoid"}
    with open(results_path, "a", encoding="utf-8") as out:
        def emit(msg):
            out.write(json.dumps(msg, default=lambda a: a.tolist()) + "\n")
            out.flush()

        if wanted and not pass_activation:
            emit({"usage": f"{getattr(f, '__name__', 'the function')} takes no 'activation' "
                           f"parameter, so it cannot be checked with {', '.join(wanted)}: add "
                           "activation=\"sigmoid\" to its parameters and use it"})
            return
        emit({"loaded": True})
        for i, job in enumerate(jobs):
            emit({"job": i, "result": tasks.call(f, job, pass_activation)})
        emit({"done": True})


def takes_activation(f: Callable) -> bool:
    """Whether f has a parameter named `activation`, or **kwargs."""
    import inspect

    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):  # a builtin or an odd callable: do not pass it
        return False
    return any(p.name == "activation" and p.kind != p.POSITIONAL_ONLY
               or p.kind == p.VAR_KEYWORD for p in params)


def usage(results_path: str, exc: ContractError) -> None:
    with open(results_path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"usage": str(exc), "missing": isinstance(
            exc, user.MissingFunction)}) + "\n")
