"""Check your own backprop from Python (a notebook cell, a script): no command line needed.

    from harness.check.api import check_my_backprop
    result = check_my_backprop(my_grads)        # f(params, X, T, loss) -> (loss, grads)
    result                                      # a table in Jupyter, text in a terminal
    result.ok, result.failures, result.stdout   # the verdict, failing rows, what f printed
    check_my_backprop("my_backprop.py:grads", dtype="float32", timeout=20)
    check_my_backprop(my_grads, activation="tanh")        # f(..., activation="sigmoid")
    check_my_backprop(my_step, task="step")     # f(params, X, T, loss, lr) -> new params
    check_my_backprop(my_train, task="train")   # f(params, X, T, loss, lr, epochs,
                                                #   batch_size, seed) -> (params, history)

It is what `python -m harness check --impl FILE.py:FUNCTION` runs: f goes to a separate
process with a time limit (harness/check/sandbox.py; a notebook's function is forked there,
a file is imported there), and this process compares what came back with the float64
reference (harness/check/user.py). An exit, crash, hang or unreadable result of f's process
is a failure, never a pass. Within a notebook, f's process is isolated from the checker, but
the notebook itself is yours: the checker protects its verdict from f, not from you.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.check import sandbox, tasks, user
from harness.check.agreement import Row
from harness.check.problems import visible_problems
from harness.check.table import render
from impls import contract
from impls.contract import ContractError

DEFAULT_TIMEOUT = 60.0  # seconds for the whole run: imports (torch: seconds) and 6 calls
SHOW_LINES = 20  # of the user's stdout and stderr in the text and HTML views; all is in .stdout


@dataclass(frozen=True, repr=False)
class UserCheck:
    """The verdict on one user's function: rows, failures with their diagnosis, its output."""

    name: str  # FILE.py:FUNCTION, or the callable's name
    dtype: str  # the check's dtype: the tolerance follows it, never what f returned
    rows: list[Row]
    process: str = ""  # "" when f's process ran to the end; else why not (always a failure)
    extra: list[str] = field(default_factory=list)  # names f returned beyond W1, b1, W2, b2
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True only when every comparison was made and agreed, and f's process finished."""
        return bool(self.rows) and all(r.ok for r in self.rows) and not self.process

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def remarks(self) -> list[str]:
        """What went wrong with f's process, and the names f returned that are not compared."""
        lines = [f"user process: {self.process}"] if self.process else []
        if self.extra:
            lines.append(f"note: {self.name} also returned {', '.join(map(repr, self.extra))}: "
                         "reported, not compared (only W1, b1, W2, b2 and the loss are)")
        return lines

    def notes(self) -> list[str]:
        """The remarks and f's output (its first lines), for the text table."""
        lines = self.remarks()
        for stream in ("stdout", "stderr"):
            text = getattr(self, stream).rstrip("\n")
            if text:
                shown, more = _head(text)
                lines.append(f"output of {self.name} ({stream}):")
                lines += [f"  | {line}" for line in shown] + ([f"  ... {more}"] if more else [])
        return lines

    def __str__(self) -> str:
        return render(self.rows, [], self.seconds, {}, self.notes())

    __repr__ = __str__  # a terminal or a plain REPL shows the table, not the fields

    def _repr_html_(self) -> str:
        """Jupyter's view: the verdict, one line per row (failures first), f's output.
        Everything the user's code produced is escaped: its output is text, never markup."""
        e = html.escape
        bad = len(self.failures)
        verdict = (f"OK: all {len(self.rows)} comparisons agree" if self.ok else
                   f"FAIL: {bad} of {len(self.rows)} comparisons disagree")
        colour = "#1a7f37" if self.ok else "#cf222e"
        out = [f"<p><b style='color:{colour}'>{e(verdict)}</b> &mdash; {e(self.name)}, "
               f"{e(self.dtype)}, {self.seconds:.1f} s</p>"]
        out += [f"<p>{e(line)}</p>" for line in self.remarks()]
        head = ("problem", "loss", "tensor", "worst error", "tolerance", "result", "diagnosis")
        out.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>")
        for r in sorted(self.rows, key=lambda r: r.ok):
            err = "-" if r.worst_error is None else f"{r.worst_error:.2e}"
            cells = (r.problem, r.loss, r.tensor, err, f"{r.tolerance:.0e}",
                     "OK" if r.ok else "FAIL", r.diagnosis)
            out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
        out.append("</table>")
        for stream in ("stdout", "stderr"):
            text = getattr(self, stream).rstrip("\n")
            if text:
                shown, more = _head(text)
                out.append(f"<p>{stream} of {e(self.name)}:</p><pre>{e(chr(10).join(shown))}"
                           + (f"\n... {e(more)}" if more else "") + "</pre>")
        return "\n".join(out)

    def to_json(self) -> dict:
        """What `check --json` adds under "user" (the rows are in its "rows")."""
        return {"name": self.name, "dtype": self.dtype, "ok": self.ok, "process": self.process,
                "extra": self.extra, "stdout": self.stdout, "stderr": self.stderr,
                "seconds": round(self.seconds, 2)}

    def to_frame(self):
        """The rows as a pandas DataFrame (one per checked tensor), for filtering in a notebook."""
        import pandas as pd

        return pd.DataFrame([r.to_json() for r in self.rows])


def _head(text: str) -> tuple[list[str], str]:
    lines = text.splitlines()
    more = len(lines) - SHOW_LINES
    return lines[:SHOW_LINES], (f"({more} more lines)" if more > 0 else "")


def check_my_backprop(f: Callable | str, dtype: str = "float64", losses=contract.LOSSES,
                      timeout: float = DEFAULT_TIMEOUT, name: str | None = None,
                      task: str = "grads", activation: str = "sigmoid") -> UserCheck:
    """Check f on the checker's (visible) problems, in a child process that may run `timeout`
    seconds in all; f is a callable or "FILE.py:FUNCTION". task "grads" (the default):
    f(params, X, T, loss) -> (loss, grads); "step": f(params, X, T, loss, lr) -> new params;
    "train": f(params, X, T, loss, lr, epochs, batch_size, seed) -> (params, history)
    (harness/check/tasks.py). activation= is passed to f when f takes it (a parameter named
    activation, or **kwargs); a function that does not take it is checked with sigmoid only.

    ContractError (a ValueError) for bad arguments and for a file that cannot be loaded (no
    such file or function, an exception at import, no activation parameter for tanh or relu).
    Everything f does wrong is in the result.
    """
    dtype = contract.check_dtype(dtype)
    losses = (losses,) if isinstance(losses, str) else losses  # losses="mse" means one loss
    losses = tuple(contract.check_loss(loss) for loss in losses)
    timeout = contract.check_number("timeout", timeout, "positive")
    activation = contract.check_activation(activation)
    if task not in tasks.TASKS:
        raise ContractError(f"unknown task {task!r}; expected one of {', '.join(tasks.TASKS)}")
    name = _name(f, name)
    if not losses:
        raise ContractError("losses must name at least one loss")
    jobs = tasks.plan(task, visible_problems(activation), losses, dtype, activation)
    result, outcome = run_jobs(f, jobs, sandbox.Limits(timeout=timeout), name)
    if outcome.usage:
        raise ContractError(f"{name}: {outcome.usage}")
    return result


def _name(f, name: str | None) -> str:
    if isinstance(f, str):
        name = name or f
        if not f.rpartition(":")[0]:
            raise ContractError(f"{f}: a file must name its function, as FILE.py:FUNCTION")
        try:
            user.check_spec(f)
        except ContractError as exc:
            raise ContractError(f"{name}: {exc}") from None
        return name
    if callable(f):
        return name or getattr(f, "__qualname__", None) or type(f).__name__
    raise ContractError(f"f must be a function or 'FILE.py:FUNCTION', got {type(f).__name__}")


def run_jobs(f: Callable | str, jobs: list[tasks.Job], limits: sandbox.Limits,
             name: str) -> tuple[UserCheck, sandbox.Outcome]:
    """Run f on `jobs` in the sandbox and judge every answer here: (the verdict, what the
    sandbox saw). Never raises for what f does; outcome.usage says when f could not be loaded
    (the verdict then has no rows)."""
    start = time.perf_counter()
    outcome = sandbox.run(f, [job.wire() for job in jobs], limits)
    seconds = time.perf_counter() - start
    dtype = jobs[0].dtype if jobs else "float64"
    where = dict(impl="user", mode=name)
    rows = []
    if not outcome.usage:
        for i, job in enumerate(jobs):
            rows += tasks.rows(outcome.results.get(i), job, outcome.failure, **where)
    if outcome.failure and len(outcome.results) == len(jobs):  # every result came, then it failed
        rows.append(user.call_row(outcome.failure, dtype, dict(
            device="cpu", loss="-", activation=jobs[0].activation if jobs else "sigmoid",
            problem="(all)", **where), "(process)"))
    check = UserCheck(name, dtype, rows, outcome.failure, user.extras(outcome.results.values()),
                      outcome.stdout, outcome.stderr, seconds)
    return check, outcome
