"""Check your own backprop from Python (a notebook cell, a script): no command line needed.

    from harness.check.api import check_my_backprop
    result = check_my_backprop(my_grads)        # f(params, X, T, loss) -> (loss, grads)
    result                                      # a table in Jupyter, text in a terminal
    result.ok, result.failures, result.stdout   # the verdict, failing rows, what f printed
    check_my_backprop("my_backprop.py:grads", dtype="float32", timeout=20)

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

from harness.check import sandbox, user
from harness.check.agreement import Row
from harness.check.problems import make_problem
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
                      timeout: float = DEFAULT_TIMEOUT, name: str | None = None) -> UserCheck:
    """Check f(params, X, T, loss) -> (loss, grads) on the checker's problems, in a child
    process that may run `timeout` seconds in all; f is a callable or "FILE.py:FUNCTION".

    ContractError (a ValueError) for bad arguments and for a file that cannot be loaded (no
    such file or function, an exception at import). Everything f does wrong is in the result.
    """
    dtype = contract.check_dtype(dtype)
    losses = (losses,) if isinstance(losses, str) else losses  # losses="mse" means one loss
    losses = tuple(contract.check_loss(loss) for loss in losses)
    timeout = contract.check_number("timeout", timeout, "positive")
    if isinstance(f, str):
        name = name or f
        if not f.rpartition(":")[0]:
            raise ContractError(f"{f}: a file must name its function, as FILE.py:FUNCTION")
        try:
            user.check_spec(f)
        except ContractError as exc:
            raise ContractError(f"{name}: {exc}") from None
    elif callable(f):
        name = name or getattr(f, "__qualname__", None) or type(f).__name__
    else:
        raise ContractError(f"f must be a function or 'FILE.py:FUNCTION', got {type(f).__name__}")
    if not losses:
        raise ContractError("losses must name at least one loss")
    problems = [make_problem(*shape, seed=i) for i, shape in enumerate(user.USER_SHAPES)]
    runs = user.jobs(problems, losses, dtype)
    start = time.perf_counter()
    outcome = sandbox.run(f, [(loss, p.params, p.X, p.T) for p, loss in runs], timeout)
    seconds = time.perf_counter() - start
    if outcome.usage:
        raise ContractError(f"{name}: {outcome.usage}")
    where = dict(impl="user", mode=name)
    rows = []
    for i, (p, loss) in enumerate(runs):
        rows += user.rows(outcome.results.get(i), p, loss, dtype, outcome.failure, **where)
    if outcome.failure and len(outcome.results) == len(runs):  # every result came, then it failed
        rows.append(user.call_row(outcome.failure, dtype, dict(
            device="cpu", loss="-", activation="sigmoid", problem="(all)", **where), "(process)"))
    return UserCheck(name, dtype, rows, outcome.failure, user.extras(outcome.results.values()),
                     outcome.stdout, outcome.stderr, seconds)
