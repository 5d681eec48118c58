"""The user's side of the sandbox (harness/check/sandbox.py): a guard process, and under it the
worker that loads the user's function, calls it on each job and appends each result as a
JSON line.

    python -m harness.check.sandbox_child SPEC RUN_DIR

Started by sandbox.run through harness/process (its own session, a channel, its rlimits,
bubblewrap around it where asked), never by hand; a callable from a notebook comes here by
fork (`forked_child`). SPEC is FILE.py:FUNCTION, or FILE.ipynb:FUNCTION: the notebook is
executed headless (harness/check/notebook.py), then its kernel serves the jobs. RUN_DIR holds
jobs.npz (the jobs, as plain arrays: no pickle) and results.jsonl (the answers).

The guard (harness/process/guard.py) first imports everything the worker needs: a failure
there is the checker's (a package missing, one not bound into bubblewrap), said as such on
the channel ({"error": ...}) before any of the user's code has run. Then it forks the worker,
waits for it, kills whatever it left and sends the worker's end on the channel, which the
worker does not hold: what the checker learns of the worker's end does not come from the
user's code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def _work_file(spec: str, run_dir: str) -> int:
    from harness.check import user
    from harness.check.serve import load_jobs, serve, usage
    from impls.contract import ContractError

    results = os.path.join(run_dir, "results.jsonl")
    try:
        f = user.load_function(spec)
    except ContractError as exc:
        usage(results, exc)
        return 3
    serve(f, load_jobs(os.path.join(run_dir, "jobs.npz")), results)
    return 0


def forked_child(f: Callable, run_dir: str) -> int:
    """A notebook's callable, in a process forked from the checker (harness/process's
    Group.fork: its own session, files, limits and channel): the guard and its worker."""
    from harness import process
    from harness.check.serve import load_jobs, serve

    def work():
        serve(f, load_jobs(os.path.join(run_dir, "jobs.npz")),
              os.path.join(run_dir, "results.jsonl"))
        return 0

    return process.guard(work, process.channel(), exit_handlers=False)


def main(argv: list[str]) -> int:
    """`python -m harness.check.sandbox_child SPEC RUN_DIR` (from sandbox.run)."""
    from harness import process

    channel = process.channel()
    try:  # everything the worker will need, imported here: a failure is the checker's
        spec, run_dir = argv
        if spec.rpartition(":")[0].endswith(".ipynb"):
            from harness.check.notebook import work_notebook as work
        else:
            work = _work_file
        import harness.check.serve  # noqa: F401
        import harness.check.user  # noqa: F401
        import impls.contract  # noqa: F401
    except BaseException as exc:
        channel.send({"error": f"{type(exc).__name__}: {exc}"[:400]})
        raise
    return process.guard(lambda: work(spec, run_dir), channel)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
