"""The user's side of the sandbox (harness/check/sandbox.py): the child process that loads
the user's function, calls it on each job and appends each result as a JSON line.

    python -m harness.check.sandbox_child FILE.py:FUNCTION JOBS.npz RESULTS.jsonl

Started by sandbox.run, never by hand; a callable from a notebook comes here by fork
(_forked_child). The jobs travel as plain arrays (no pickle), the results as JSON lines.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

import numpy as np

from harness.check import user
from impls.contract import PARAM_NAMES, ContractError

MAX_FILE_BYTES = 64 * 2**20  # a user's print loop must not fill the disk before the time limit


# ---- the jobs, through a file the parent writes -------------------------------------------------
def _save_jobs(jobs: list, path: str) -> None:
    arrays = {}
    for i, (loss, params, X, T) in enumerate(jobs):
        arrays.update({f"{i}.{k}": params[k] for k in PARAM_NAMES})
        arrays.update({f"{i}.X": X, f"{i}.T": T, f"{i}.loss": np.array(loss)})
    np.savez(path, **arrays)


def load_jobs(path: str) -> list:
    """[(loss, params, X, T)] as `run` was given them (no pickle: plain arrays only)."""
    with np.load(path, allow_pickle=False) as z:
        n = sum(key.endswith(".loss") for key in z.files)
        return [(str(z[f"{i}.loss"]), {k: z[f"{i}.{k}"] for k in PARAM_NAMES},
                 z[f"{i}.X"], z[f"{i}.T"]) for i in range(n)]


# ---- in the child -------------------------------------------------------------------------------
def serve(f: Callable, jobs: list, results_path: str) -> None:
    """Call f on each job and append each result as a JSON line, flushed at once: what a
    child that dies half way delivered is still there."""
    with open(results_path, "a", encoding="utf-8") as out:
        def emit(msg):
            out.write(json.dumps(msg, default=lambda a: a.tolist()) + "\n")
            out.flush()

        emit({"loaded": True})
        for i, (loss, params, X, T) in enumerate(jobs):
            emit({"job": i, "result": user.call(f, params, X, T, loss)})
        emit({"done": True})


def _limit_files() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        limit = MAX_FILE_BYTES if hard == resource.RLIM_INFINITY else min(MAX_FILE_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass  # no such limit here (Windows): the time limit still ends a print loop


def _forked_child(f: Callable, files: dict) -> None:
    """The forked child: a group of its own, its own stdin/stdout/stderr, then serve."""
    os.setsid()
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, files["stdout.txt"], os.O_WRONLY | os.O_APPEND),
                            (2, files["stderr.txt"], os.O_WRONLY | os.O_APPEND)):
        new = os.open(path, flags)
        os.dup2(new, fd)
        os.close(new)
    # Fresh Python streams on the new descriptors: the inherited ones may be Jupyter's, which
    # would send the child's prints to the notebook through the parent's sockets.
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    _limit_files()
    serve(f, load_jobs(files["jobs.npz"]), files["results.jsonl"])


def main(argv: list[str]) -> int:
    """`python -m harness.check.sandbox_child FILE.py:FUNCTION JOBS RESULTS` (started by `run`)."""
    spec, jobs_path, results_path = argv
    _limit_files()
    try:
        f = user.load_function(spec)
    except ContractError as exc:
        with open(results_path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"usage": str(exc)}) + "\n")
        return 3
    serve(f, load_jobs(jobs_path), results_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
