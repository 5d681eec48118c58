"""The rubric: what `grade` checks and what each check is worth, from a small TOML file.

    from harness.grade.rubric import load, DEFAULT_TEXT
    rubric = load(None)               # the default below
    rubric = load(Path("rubric.toml"))  # a course's own: any field left out keeps its default

Points are given per check family, and each family is scored twice: on the visible problems
(the ones `python -m harness check --impl FILE:FUNCTION` shows a student, numbers and all) and
on the hidden ones (shapes and seeds the student never sees; feedback never shows their
values). A family passes on a set of problems when every one of its comparisons agrees: no
partial credit inside a family, so a score reads as a list of things that work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import tomllib

from harness.check import tasks
from harness.errors import UsageError
from impls import contract

FAMILIES = ("loss", "W1", "b1", "W2", "b2", "shapes", "trajectory", "float32")
LABELS = {"loss": "loss value", "W1": "dW1", "b1": "db1", "W2": "dW2", "b2": "db2",
          "shapes": "shapes of the gradients", "trajectory": "training trajectory",
          "float32": "float32"}
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")

DEFAULT_TEXT = '''\
# The default rubric of `python -m harness grade` (docs/grading.md explains each field).
# Copy it, change what you like, and pass it with --rubric FILE; a field you leave out keeps
# the value below.

task = "grads"          # what the function does: grads | step | train (as `check --task`)
function = "grads"      # its name in every submission (--function overrides it)
activation = "sigmoid"  # sigmoid | tanh | relu: passed as activation= when it takes one
timeout = 60            # seconds per submission, all checks together (--timeout overrides it)

[points]                # per check family; 0 leaves a family out
loss = 1                # the loss value (train: the loss history)
W1 = 2                  # each gradient (step: the gradient its update implies;
b1 = 1                  #   train: the parameters after training)
W2 = 2
b2 = 1
shapes = 1              # every gradient returned with its parameter's shape
trajectory = 2          # a short training run with the function: 5 full-batch updates
                        #   (train: 3 epochs of shuffled minibatches) against the reference
float32 = 1             # the same checks on float32 inputs, at float32's tolerance

[problems]
visible_share = 0.5     # the share of each family's points earned on the visible problems
# Hidden problems: (N, F, H, K) shapes and a seed a student never sees. These defaults are
# public (they are in this file): set your own before grading for marks.
hidden_shapes = [[13, 6, 9, 4], [6, 2, 5, 7]]
hidden_seed = 9001
hidden_visibility = "after_published"   # Gradescope: when students see the hidden tests
'''


@dataclass(frozen=True)
class Rubric:
    task: str
    function: str
    activation: str
    timeout: float
    points: dict  # family -> points (> 0 only)
    visible_share: float
    hidden_shapes: tuple  # ((N, F, H, K), ...)
    hidden_seed: int
    hidden_visibility: str
    text: str  # the file as given (recorded with the grades)

    @property
    def max_score(self) -> float:
        return float(sum(self.points.values()))


def load(path: Path | None) -> Rubric:
    """The rubric at `path` over the default (UsageError naming the field when one is wrong)."""
    text = DEFAULT_TEXT if path is None else _read(path)
    where = "the default rubric" if path is None else str(path)
    try:
        given = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML ({exc})") from None
    base = tomllib.loads(DEFAULT_TEXT)
    unknown = set(given) - set(base)
    if unknown:
        raise UsageError(f"{where}: unknown field {sorted(unknown)[0]!r}; expected "
                         f"{', '.join(base)}")
    table = {k: {**base[k], **given.get(k, {})} if isinstance(base[k], dict)
             else given.get(k, base[k]) for k in base}
    for section in ("points", "problems"):
        extra = set(given.get(section, {})) - set(base[section])
        if extra:
            raise UsageError(f"{where}: unknown field [{section}] {sorted(extra)[0]!r}; "
                             f"expected {', '.join(base[section])}")
    return _validate(table, text, where)


def _read(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--rubric {path}: {exc.strerror or exc}") from None


def _validate(t: dict, text: str, where: str) -> Rubric:
    def fail(field, why):
        raise UsageError(f"{where}: {field} {why}")

    if t["task"] not in tasks.TASKS:
        fail("task", f"must be one of {', '.join(tasks.TASKS)}, got {t['task']!r}")
    if not (isinstance(t["function"], str) and t["function"].isidentifier()):
        fail("function", f"must be a Python name, got {t['function']!r}")
    if t["activation"] not in contract.ACTIVATIONS:
        fail("activation", f"must be one of {', '.join(contract.ACTIVATIONS)}")
    timeout = _number(t["timeout"], "timeout", fail)
    points = {}
    for family in FAMILIES:
        value = _number(t["points"][family], f"[points] {family}", fail, zero=True)
        if value:
            points[family] = value
    if not points:
        fail("[points]", "gives no points to any family")
    p = t["problems"]
    share = _number(p["visible_share"], "[problems] visible_share", fail, zero=True)
    if share > 1:
        fail("[problems] visible_share", f"must be at most 1, got {share:g}")
    shapes = p["hidden_shapes"]
    if not isinstance(shapes, list) or not all(
            isinstance(s, list) and len(s) == 4 and all(type(n) is int and n >= 1 for n in s)
            for s in shapes):
        fail("[problems] hidden_shapes", "must be a list of [N, F, H, K], each a positive "
             "integer")
    for N, F, H, K in shapes:  # docs/../gradcheck: shapes that can see the bugs
        if N < 2 or K < 2 or len({F, H, K}) < 3:
            fail("[problems] hidden_shapes", f"has {[N, F, H, K]}, which hides bugs: N >= 2, "
                 "K >= 2 and F, H, K all different (N = 1 hides a sum for a mean, square "
                 "shapes hide a transpose)")
    if share < 1 and not shapes:
        fail("[problems] hidden_shapes", "is empty, so visible_share must be 1")
    seed = p["hidden_seed"]
    if type(seed) is not int or seed < 0:
        fail("[problems] hidden_seed", f"must be a non-negative integer, got {seed!r}")
    if p["hidden_visibility"] not in VISIBILITIES:
        fail("[problems] hidden_visibility", f"must be one of {', '.join(VISIBILITIES)}")
    return Rubric(t["task"], t["function"], t["activation"], timeout, points, float(share),
                  tuple(tuple(s) for s in shapes), seed, p["hidden_visibility"], text)


def _number(value, field: str, fail, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not zero):
        fail(field, f"must be a {'non-negative' if zero else 'positive'} number, got {value!r}")
    return float(value)
