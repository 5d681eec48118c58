"""A notebook submission, in the sandbox's worker (harness/check/sandbox_child.py): executed
headless with nbclient, top to bottom, in a kernel of this interpreter; then its last cell,
added here, serves the jobs with the notebook's function.

    python -m harness check --impl my_work.ipynb:grads      # or a .ipynb entry of `grade`

A cell that raises is the notebook's finding: "cell 3 of 7 raised NameError: ..." (the cell's
number counts every cell, markdown too, as Jupyter shows them). What the cells print is this
process's output, captured as any submission's.
"""

from __future__ import annotations

import os
import sys

from harness.check import user
from harness.check.serve import load_jobs, serve, usage
from impls.contract import ContractError


def serve_namespace(namespace: dict, name: str, run_dir: str) -> None:
    """The last cell of an executed notebook: serve the jobs with namespace[name]."""
    results = os.path.join(run_dir, "results.jsonl")
    try:
        f = user.function_in(namespace, name, "the notebook")
    except ContractError as exc:
        usage(results, exc)
        return
    serve(f, load_jobs(os.path.join(run_dir, "jobs.npz")), results)


def work_notebook(spec: str, run_dir: str) -> int:
    """Execute the notebook headless in a kernel of this interpreter; its last cell serves."""
    path, _, name = spec.rpartition(":")
    tmp = os.environ.get("TMPDIR") or run_dir
    for var, sub in (("JUPYTER_RUNTIME_DIR", "jupyter"), ("IPYTHONDIR", "ipython")):
        os.environ[var] = os.path.join(tmp, sub)
        os.makedirs(os.environ[var], exist_ok=True)
    results = os.path.join(run_dir, "results.jsonl")
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, DeadKernelError
    except ImportError as exc:
        usage(results, ContractError(f"checking a notebook needs nbclient, nbformat and "
                                      f"ipykernel ({exc}): pip install nbclient ipykernel"))
        return 3
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook
        usage(results, ContractError(f"{path} cannot be read as a notebook: "
                                      f"{user.raised(exc)}"))
        return 3
    count = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import harness.check.notebook as _bpb\n"
        f"_bpb.serve_namespace(globals(), {name!r}, {run_dir!r})"))
    from jupyter_client import KernelManager

    # A kernel of this interpreter, talking over Unix sockets in the run's own folder (no
    # TCP), unless that path is too long for a socket's name (then loopback TCP).
    sockets = os.path.join(os.environ["JUPYTER_RUNTIME_DIR"], "kernel")
    km = (KernelManager(kernel_name="python3", transport="ipc", ip=sockets)
          if len(sockets) < 80 else KernelManager(kernel_name="python3"))
    client = NotebookClient(nb, km=km, timeout=None, allow_errors=False,
                            resources={"metadata": {"path": os.getcwd()}})
    try:
        client.execute()
    except CellExecutionError:
        for i, cell in enumerate(nb.cells[:count], 1):
            error = next((o for o in cell.get("outputs", []) if o.output_type == "error"), None)
            if error is not None:
                last = (str(error.get("evalue", "")).strip().splitlines() or [""])[-1][:300]
                usage(results, ContractError(f"cell {i} of {count} raised "
                                              f"{error.get('ename', 'an error')}: {last}"))
                return 3
        print("the notebook's checking cell failed", file=sys.stderr)
        return 1
    except DeadKernelError:
        print("the notebook's kernel died (os._exit() or a crash in the notebook?)",
              file=sys.stderr)
        return 1
    finally:
        _echo_outputs(nb)
    return 0


def _echo_outputs(nb) -> None:
    """What the notebook's cells printed, on this process's stdout and stderr (captured)."""
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                (sys.stderr if o.get("name") == "stderr" else sys.stdout).write(o.get("text", ""))
