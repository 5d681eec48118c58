"""From the rubric to the jobs a submission runs, and from its rows to its grade.

    from harness.grade.score import plan, grade
    jobs, parts = plan(rubric)                      # the same for every submission
    g = grade(rows_per_job, parts, rubric, outcome)  # Grade: status, score, tests, diagnosis

A test is one check family (rubric.FAMILIES) on the visible or on the hidden problems; it
passes when each of its comparisons agrees. Status: "missing" (no such function, or nothing
to grade), "error" (the file cannot be loaded, a notebook cell fails, the process crashes,
exits or is killed before it has answered everything), "timeout", else "pass" when every test
passes and "fail" when one does not. The one-line diagnosis is the first failing comparison's,
with every number that could reveal a hidden problem's shape taken out (`general`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.check import tasks
from harness.check.agreement import Row
from harness.check.problems import hidden_problems, visible_problems
from harness.grade.rubric import FAMILIES, Rubric
from impls.contract import LOSSES, PARAM_NAMES

TENSORS = {"loss": ("loss", "history"), **{k: (k,) for k in PARAM_NAMES}}


@dataclass(frozen=True)
class Part:
    """Where a job counts: its group ("main", "trajectory", "float32"), visible or hidden."""

    group: str
    hidden: bool


@dataclass(frozen=True)
class Test:
    family: str
    hidden: bool
    score: float
    max_score: float
    checks: int  # comparisons made
    failures: tuple  # one line per distinct failure (hidden ones: general, no numbers)

    @property
    def passed(self) -> bool:
        return self.score == self.max_score


@dataclass(frozen=True)
class Grade:
    status: str  # pass | fail | error | timeout | missing
    score: float
    max_score: float
    tests: tuple
    diagnosis: str  # one line, "" on a pass

    @property
    def checks_passed(self) -> int:
        return sum(t.passed for t in self.tests)


def families(rubric: Rubric) -> list[str]:
    """The rubric's families that apply to its task (a step returns no loss)."""
    return [f for f in FAMILIES if f in rubric.points and not (f == "loss" and rubric.task ==
                                                                 "step")]


def plan(rubric: Rubric) -> tuple[list[tasks.Job], list[Part]]:
    """Every job a submission runs, with where each counts."""
    task, act = rubric.task, rubric.activation
    visible = visible_problems(act)
    hidden = hidden_problems(rubric.hidden_shapes, rubric.hidden_seed, act)
    names = [f"hidden {i + 1}" for i in range(len(hidden))]
    jobs: list[tasks.Job] = []
    parts: list[Part] = []

    def add(new, group, is_hidden):
        jobs.extend(new)
        parts.extend([Part(group, is_hidden)] * len(new))

    add(tasks.plan(task, visible, LOSSES, "float64", act), "main", False)
    add(tasks.plan(task, hidden, LOSSES, "float64", act, names), "main", True)
    if "trajectory" in rubric.points:
        add(tasks.plan_trajectory(task, visible[:1], LOSSES, act), "trajectory", False)
        add(tasks.plan_trajectory(task, hidden[:1], LOSSES, act, names[:1]), "trajectory", True)
    if "float32" in rubric.points:
        add(tasks.plan(task, visible[:1], LOSSES, "float32", act), "float32", False)
        add(tasks.plan(task, hidden[:1], LOSSES, "float32", act, names[:1]), "float32", True)
    return jobs, parts


def grade(rows: list[list[Row]], parts: list[Part], rubric: Rubric, status: str = "",
          why: str = "") -> Grade:
    """The grade from each job's rows. status/why: "missing", "error" or "timeout" and the
    reason, when the sandbox says so; the tests whose every answer arrived still count."""
    has_hidden = any(p.hidden for p in parts)
    share = rubric.visible_share if has_hidden else 1.0
    tests = []
    for family in families(rubric):
        for hidden in (False, True):
            max_score = round(rubric.points[family] * ((1 - share) if hidden else share), 6)
            if max_score <= 0:
                continue
            mine = [r for rs, p in zip(rows, parts, strict=True) if p.hidden == hidden for r in
                    _select(family, p.group, rs)]
            ok = bool(mine) and (_shapes_right(mine) if family == "shapes" else
                                 all(r.ok for r in mine))
            tests.append(Test(family, hidden, max_score if ok else 0.0,
                              max_score, len(mine), _failures(mine, hidden, family)))
    score = round(sum(t.score for t in tests), 6)
    max_score = round(sum(t.max_score for t in tests), 6)
    if status:
        return Grade(status, score, max_score, tuple(tests), general(why))
    failing = [t for t in tests if not t.passed]
    if not failing:
        return Grade("pass", score, max_score, tuple(tests), "")
    return Grade("fail", score, max_score, tuple(tests), _first(rows, parts, failing[0]))


def _select(family: str, group: str, rows: list[Row]) -> list[Row]:
    if family in ("trajectory", "float32"):
        return rows if group == family else []
    if group != "main":
        return []
    if family == "shapes":
        return [r for r in rows if r.tensor in PARAM_NAMES + ("(call)",)]
    return [r for r in rows if r.tensor in TENSORS[family] + ("(call)",)]


def _shapes_right(rows: list[Row]) -> bool:
    """Every gradient came back with its parameter's shape (so it could be compared)."""
    return all(r.worst_error is not None for r in rows)


def _failures(rows: list[Row], hidden: bool, family: str) -> tuple:
    """One line per distinct (tensor, diagnosis): how many runs it failed, and on a visible
    problem its first worst entry (hidden problems: the general diagnosis only)."""
    runs = len({(r.problem, r.loss, r.dtype) for r in rows})
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        if (r.worst_error is None) if family == "shapes" else not r.ok:
            groups.setdefault((r.tensor, general(r.diagnosis or "wrong values")), []).append(r)
    out = []
    for (tensor, diagnosis), bad in groups.items():
        line = ("" if tensor == "(call)" else f"{tensor}: ") + diagnosis
        line += f" ({len({(r.problem, r.loss, r.dtype) for r in bad})} of {runs} runs)"
        r = next((r for r in bad if r.worst_index is not None and r.expected is not None), None)
        if r is not None and not hidden:
            at = f"worst entry [{', '.join(map(str, r.worst_index))}]: " if r.worst_index else ""
            line += (f"; e.g. problem {r.problem}, {r.loss}, {r.dtype}: {at}"
                     f"expected {r.expected:.6g}, got {r.got:.6g}")
        out.append(line)
    return tuple(out[:8])


def _first(rows, parts, test: Test) -> str:
    """The first failing comparison of the first failing test, as one general line."""
    for rs, p in zip(rows, parts, strict=True):
        if p.hidden != test.hidden:
            continue
        for r in _select(test.family, p.group, rs):
            if (r.worst_error is None) if test.family == "shapes" else not r.ok:
                what = "" if r.tensor == "(call)" else f"{r.tensor}: "
                return general(f"{what}{r.diagnosis or 'wrong values'}")
    return f"{test.family}: failed"


_GENERAL = [
    (re.compile(r"\b(N|K|N\*K|1/N|1/K|1/\(N\*K\))=(1/)?\d+"), r"\1"),  # N=11 -> N
    (re.compile(r"\(\d+(?:, \d+)*,?\)"), "(...)"),  # shapes
    (re.compile(r" \(\d+ of \d+ entries non-finite\)"), ""),
    (re.compile(r"\[\d+(?:, \d+)*\]"), "[...]"),  # indices, shapes as lists
]


def general(text: str) -> str:
    """`text` without the numbers that could tell a hidden problem's shape."""
    for pattern, repl in _GENERAL:
        text = pattern.sub(repl, text)
    return text.strip()[:300]
