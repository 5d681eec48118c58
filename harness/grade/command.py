"""`grade`: grade a whole class's backprop, each submission sandboxed, several at once.

    python -m harness grade docs/examples/class --out grades/               # a folder
    python -m harness grade class.zip --out grades/ --rubric rubric.toml    # or a .zip
    python -m harness grade class/ --out grades/ --resume                   # finish an interrupted run
    python -m harness grade class/ --out grades/ --jobs 2 --timeout 60 --memory 2G --isolation bwrap

Every entry of SUBMISSIONS (a .py, a .ipynb, or a folder holding one: harness/grade/
submissions.py) runs the rubric's checks (harness/grade/rubric.py) in its own sandboxed
process (harness/check/sandbox.py): a time and a memory limit, a fresh empty working folder,
everything it starts killed at its end, bubblewrap where it works (--isolation auto). One
submission's crash, hang or attack is its own verdict and changes nothing for the others.
DIR gets grades.csv, feedback/<name>.md, gradescope/<name>/results.json and summary.md
(harness/grade/folder.py). Exit 0 when every submission was graded, whatever the grades; 2 on
a usage error; 130 on Ctrl-C and 143 on SIGTERM, with every finished grade kept and written
(--resume grades the rest).
"""

from __future__ import annotations

import re
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from harness import options
from harness.check import isolation, sandbox, tasks
from harness.errors import UsageError
from harness.grade import rubric as rubrics
from harness.grade import score
from harness.grade.folder import GradeFolder
from harness.grade.submissions import Submission, find, unpack
from impls import contract

DEFAULT_MEMORY = "2G"


def add_arguments(parser) -> None:
    parser.add_argument("submissions", metavar="SUBMISSIONS",
                        help="a folder or a .zip: one .py, .ipynb, or folder holding one, per "
                             "student; the entry's name is the submission's")
    parser.add_argument("--out", required=True, metavar="DIR", help="where the grades go")
    parser.add_argument("--rubric", type=Path, metavar="FILE",
                        help="a TOML rubric (default: harness/grade/rubric.py's DEFAULT_TEXT, "
                             "documented in docs/grading.md)")
    parser.add_argument("--function", metavar="NAME", help="the function to check (default: "
                        "the rubric's, grads)")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="submissions graded at once (default: the usable cores)")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="seconds per submission, all checks together (default: the "
                             "rubric's, 60)")
    parser.add_argument("--memory", default=DEFAULT_MEMORY, metavar="SIZE",
                        help="address space per submission: 2G, 512M, 0 for no limit "
                             f"(default {DEFAULT_MEMORY})")
    parser.add_argument("--isolation", choices=("auto", *isolation.ISOLATIONS), default="auto",
                        help="bwrap: bubblewrap namespaces (refused where it does not work); "
                             "process: a separate process only; auto (default): bwrap where "
                             "it works")
    parser.add_argument("--resume", action="store_true",
                        help="finish DIR: grade only the submissions it has no grade for")


def main(args) -> int:
    options.seconds("--timeout", args.timeout)
    options.integer("--jobs", args.jobs)
    if args.function is not None:
        options.name("--function", args.function)
    options.out_folder("--out", args.out, inputs=[args.submissions])
    rubric = rubrics.load(args.rubric)
    function = args.function or rubric.function
    timeout = rubric.timeout if args.timeout is None else args.timeout
    jobs = contract.usable_cores() if args.jobs is None else args.jobs
    memory = parse_size(args.memory)
    try:
        walls, note = isolation.choose(args.isolation)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    source = Path(args.submissions)
    if not source.exists():
        raise UsageError(f"{source}: no such folder or .zip")
    with tempfile.TemporaryDirectory(prefix="backprop-grade-") as tmp:
        folder = unpack(source, Path(tmp)) if source.is_file() else source
        submissions = find(folder, function)
        meta = {"rubric": rubric.text, "function": function, "source": str(source),
                "task": rubric.task, "activation": rubric.activation,
                "submissions": len(submissions), "isolation": isolation.describe(walls),
                "isolation_note": note and f"bubblewrap is not used: {note}"}
        with GradeFolder.open(Path(args.out), meta, args.resume) as out:
            todo = [s for s in submissions if s.name not in out.done()]
            _say(f"grade: {len(submissions)} submissions ({len(submissions) - len(todo)} "
                 f"already graded), {jobs} at a time, {timeout:g} s and "
                 f"{args.memory if memory else 'no'} memory limit each; isolation: {walls}"
                 + (f" ({note})" if note else ""))
            limits = sandbox.Limits(timeout, memory, walls)
            try:
                with _terminate_as_exit():
                    _grade_all(todo, rubric, function, limits, jobs, out)
            finally:
                out.write_views(rubric)  # what finished, also after Ctrl-C or SIGTERM
            counts = {}
            for r in out.done().values():
                counts[r["status"]] = counts.get(r["status"], 0) + 1
            _say("grade: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                 + f"; {out.path}/grades.csv, summary.md, feedback/, gradescope/")
    return 0


def _grade_all(todo: list[Submission], rubric, function: str, limits, jobs: int,
               out: GradeFolder) -> None:
    plan, parts = score.plan(rubric)
    wires = [job.wire() for job in plan]
    cancel = threading.Event()
    limits = sandbox.Limits(limits.timeout, limits.memory, limits.isolation, cancel=cancel)
    pool = ThreadPoolExecutor(jobs, thread_name_prefix="grade")
    try:
        futures = [pool.submit(grade_one, s, rubric, function, limits, plan, parts, wires)
                   for s in todo]
        for i, future in enumerate(as_completed(futures), 1):
            record = future.result()
            out.add(record)
            _say(f"[{i:>{len(str(len(todo)))}}/{len(todo)}] {record['submission']}: "
                 f"{record['status']} {record['score']:g}/{record['max_score']:g} "
                 f"({record['seconds']:.1f} s){'  ' + record['diagnosis'] if record['diagnosis'] else ''}")
    except BaseException:
        cancel.set()  # every running sandbox kills its process and returns at once
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def grade_one(sub: Submission, rubric, function: str, limits, plan, parts, wires) -> dict:
    """One submission's record: run its checks in the sandbox, score what came back."""
    start = time.perf_counter()
    status, why = "", ""
    rows = [[] for _ in plan]
    if sub.file is None:
        status, why = ("missing" if sub.missing else "error"), sub.problem
    else:
        import dataclasses

        mine = dataclasses.replace(limits, readable=(str(sub.readable),))
        outcome = sandbox.run(f"{sub.file}:{function}", wires, mine)
        if outcome.usage:
            status, why = ("missing" if outcome.missing else "error"), outcome.usage
        else:
            if outcome.timed_out or outcome.failure:
                status = "timeout" if outcome.timed_out else "error"
                why = outcome.failure.removeprefix("the user's process ")
            rows = [tasks.rows(outcome.results.get(i), job, outcome.failure, impl="user",
                               mode=sub.name) for i, job in enumerate(plan)]
    for path in {str(sub.file), str(Path(str(sub.file)).absolute())} if sub.file else ():
        why = why.replace(path, sub.shown)  # the class's own names, never this machine's paths
    g = score.grade(rows, parts, rubric, status, why)
    diagnosis = g.diagnosis
    if "MemoryError" in diagnosis and limits.memory:
        diagnosis += f" (the memory limit is {limits.memory / 2**30:g} GiB)"
    return {"submission": sub.name, "file": sub.shown, "function": function,
            "status": g.status, "score": g.score, "max_score": g.max_score,
            "checks_passed": g.checks_passed, "checks_total": len(g.tests),
            "diagnosis": diagnosis, "seconds": round(time.perf_counter() - start, 2),
            "tests": [{"family": t.family, "hidden": t.hidden, "score": t.score,
                       "max_score": t.max_score, "checks": t.checks,
                       "failures": list(t.failures)} for t in g.tests]}


def parse_size(text: str) -> int:
    """Bytes from "2G", "512M", "1.5GiB", "0" (no limit)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)(i?B)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise UsageError(f"--memory must be a size such as 2G or 512M (0: no limit), got {text!r}")
    value = float(m.group(1)) * 1024 ** " KMG".index((m.group(2) or " ").upper())
    if 0 < value < 64 * 2**20:
        raise UsageError(f"--memory {text}: too small for Python and NumPy (at least 64M)")
    return int(value)


class _terminate_as_exit:
    """SIGTERM raises SystemExit(143) in the main thread while grading, so that every sandbox
    is killed and every finished grade written before the process ends."""

    def __enter__(self):
        self.old = signal.signal(signal.SIGTERM, self._raise)

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, self.old)

    @staticmethod
    def _raise(signum, frame):
        raise SystemExit(128 + signum)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
