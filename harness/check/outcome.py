"""What came back from a user's process (harness/check/sandbox.py): its result lines, read with
no trust in them, and what the way it ended means for the run.

    from harness.check.outcome import read_results
    lines = read_results("results.jsonl", n=6)   # Lines: results, loaded, done, usage, bad

A result counts only if it arrived, once, in order; the run counts as finished only if the
worker said "done" and its guard reported an exit code of 0.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass

SHOW_BYTES = 20_000  # of the user's stdout and stderr, each; the rest is counted, not kept
LINGER = 5.0  # seconds a worker may take to exit after it said "done" (JAX's exit: ~2 s)


@dataclass(frozen=True)
class Outcome:
    results: dict[int, dict]  # job index -> tasks.call's plain data
    failure: str  # "" when the child delivered every result, said done and exited 0
    usage: str  # "" or why the FILE could not be loaded (a usage error)
    stdout: str
    stderr: str
    missing: bool = False  # usage says the function does not exist (grade: "missing")
    timed_out: bool = False
    isolation: str = "process"


@dataclass(frozen=True)
class End:
    code: int | None  # the worker's exit code (negative: killed by that signal); None: unknown
    guard: str  # "" when the guard reported; else how the guard itself ended
    timed_out: bool = False
    lingered: bool = False  # said "done", then did not exit within LINGER seconds
    broken: str = ""  # the guard failed before any user code ran: its own words (not the user's fault)


def outcome(files: dict, end: End, n: int, limits, why: str = "") -> Outcome:
    got = read_results(files["results"], n)
    stdout, stderr = _read_capped(files["stdout"]), _read_capped(files["stderr"])
    count = f"{len(got.results)} of {n} results"
    code = end.code
    if end.broken:  # nothing of the user's ran: the checker's own fault, said as such
        return Outcome({}, f"the sandbox failed before the user's code ran (not a fault of the "
                           f"code checked): its guard process {end.guard}: {end.broken}", "",
                       stdout, stderr, False, False, limits.isolation)
    if got.usage:
        failure = ""
    elif end.timed_out:
        failure = (f"stopped at the time limit of {limits.timeout:g} s with {count} "
                   + (why or "(an endless loop? a slow import? raise the time limit)"))
    elif got.bad:
        failure = f"its result data is malformed or was tampered with ({got.bad})"
    elif end.lingered:  # every result is in: stopping it is no failure of the user's code
        failure = ""
        stderr += (f"\n[the checker stopped this process {LINGER:g} s after its last result: a "
                   "thread or an atexit handler was still running]")
    elif code is None:
        failure = (f"lost its guard process, which {end.guard}, with {count} (did the code "
                   "signal its parent?)")
    elif code < 0:
        failure = f"was killed by signal {signal_name(-code)} with {count}" + (
            " (past the memory limit?)" if limits.memory and -code == signal.SIGKILL else
            " (it wrote more than 64 MB: printing far too much?)"
            if -code == getattr(signal, "SIGXFSZ", 0) else "")
    elif got.done and code != 0:
        failure = f"exited with code {code} after delivering every result"
    elif not got.done:
        where = f"with {count}" if got.loaded else "while importing the file"
        hint = (" (sys.exit() or os._exit() in the user's code?)" if code == 0
                else f": {_last_line(stderr)}")
        failure = f"exited with code {code} {where}{hint}"
    else:
        failure = ""
    return Outcome(got.results, f"the user's process {failure}" if failure else "", got.usage,
                   stdout, stderr, got.missing, end.timed_out, limits.isolation)


@dataclass(frozen=True)
class Lines:
    """What the child's result lines say, read with no trust in them."""

    results: dict
    loaded: bool = False
    done: bool = False
    usage: str = ""
    missing: bool = False
    bad: str = ""  # what is malformed, "" when nothing


def read_results(path: str, n: int) -> Lines:
    """The child's lines: {"usage": why[, "missing": bool]} alone, or {"loaded": true},
    {"job": i, "result": ...} for each i in order, {"done": true}. Anything else, or anything
    out of that order, is malformed."""
    results: dict[int, dict] = {}
    loaded = done = False
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            try:
                msg = json.loads(line)
                keys = set(msg)
            except (ValueError, TypeError):
                return Lines(results, loaded, done, bad=f"line {number} is not a JSON object")
            if keys in ({"usage"}, {"usage", "missing"}) and number == 1:
                return Lines({}, usage=str(msg["usage"])[:400], missing=msg.get("missing") is True)
            if keys == {"loaded"} and number == 1:
                loaded = True
            elif keys == {"job", "result"} and loaded and not done and len(results) < n \
                    and type(msg["job"]) is int and msg["job"] == len(results):
                results[len(results)] = msg["result"]
            elif keys == {"done"} and loaded and not done and len(results) == n:
                done = True
            else:
                return Lines(results, loaded, done, bad=f"line {number} is out of place")
    return Lines(results, loaded, done)


def _read_capped(path: str) -> str:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        text = f.read(SHOW_BYTES).decode("utf-8", errors="replace")
    return text + (f"\n[... {size - SHOW_BYTES} more bytes not kept]" if size > SHOW_BYTES else "")


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["(nothing on stderr)"])[-1][:200]


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
