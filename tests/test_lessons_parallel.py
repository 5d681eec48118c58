"""`lessons`, data parallelism: what each engine cost, counted from the source (parallel_cost)."""

from __future__ import annotations

import ast
import re
import shutil

import pytest

from harness import cli
from harness.lessons import cost
from harness.lessons import parallel_cost as pc
from tests.helpers import ROOT

# An engine in miniature, small enough to count by eye.
SYNTHETIC = '''
import functools

import numpy as np
from mpi4py import MPI

from dataparallel import plan
from dataparallel.plan import LOSS_SLOT
from impls import handwritten

comm = MPI.COMM_WORLD


def step(P, X, T, rows, n, rank, world):
    """A docstring naming comm.Allreduce( is not code."""
    buf = np.empty(plan.buffer_size(P))
    mine = plan.my_rows(rows, n, rank, world)
    Xr = X[mine]
    L, G = handwritten.grads(np, P, Xr, T[mine], "mse", "sigmoid")
    w = len(Xr) / n
    buf[LOSS_SLOT] = L * w
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    comm.Barrier()
    total = functools.reduce(lambda a, b: a + b, G)  # a local reduce: no collective
    n = total / 2
    return n


def drift(x):
    # comm.allreduce(x) in a comment is not code either
    return comm.allreduce(x, op=MPI.MAX)
'''

ALIASED = '''
import torch.distributed as dist
from jax.experimental.multihost_utils import process_allgather as gather_all


def train(t, x):
    dist.all_reduce(t)
    return gather_all(x)
'''

LAUNCH = '''
def launch_plan(name):
    x = 1
    if name == "numpy":
        return "mpiexec"
    if name == "torch":
        return "torchrun"
    y = 2
    return "jax"


def torchrun():
    return ["python", "-m", "torch.distributed.run"]
'''


def line_of(source: str, text: str) -> int:
    """The 1-based line of the only line holding `text` (as code, not in a comment)."""
    found = [i for i, ln in enumerate(source.splitlines(), 1)
             if text in ln and not ln.strip().startswith(("#", '"""'))]
    assert len(found) == 1, (text, found)
    return found[0]


def test_counts_on_a_synthetic_engine():
    c = pc.parallel_cost(SYNTHETIC)
    assert c.training == (line_of(SYNTHETIC, "comm.Allreduce(MPI.IN_PLACE"),)
    assert c.barrier == (line_of(SYNTHETIC, "comm.Barrier()"),)
    assert c.check == (line_of(SYNTHETIC, "return comm.allreduce"),)  # inside drift()
    # the plan's buffer and shard, the shard's rows, the weighting and the packing; not the
    # gradient (the implementation's math), not the local reduce, not the collective's line
    assert c.bookkeeping == tuple(line_of(SYNTHETIC, t) for t in (
        "from dataparallel.plan import", "buf = np.empty", "mine = plan.my_rows", "Xr = X[mine]",
        "w = len(Xr) / n", "buf[LOSS_SLOT] ="))
    assert c.framework == (line_of(SYNTHETIC, "from mpi4py"), line_of(SYNTHETIC, "COMM_WORLD"))
    assert c.code == tuple(sorted(cost.code_lines(SYNTHETIC)))  # the activation lesson's rule


def test_aliases_are_resolved():
    c = pc.parallel_cost(ALIASED)
    assert c.training == (line_of(ALIASED, "dist.all_reduce"), line_of(ALIASED, "gather_all(x)"))
    assert line_of(ALIASED, "import torch.distributed") in c.framework


def test_launch_lines_follow_names_and_branches():
    got = pc.launch_lines(LAUNCH)
    at = {t: line_of(LAUNCH, t) for t in ('"numpy"', '"mpiexec"', '"torch":', '"torchrun"',
                                           "y = 2", '"jax"', "def torchrun", "torch.distributed.run")}
    assert got["numpy"] == {at['"numpy"'], at['"mpiexec"']}
    assert got["torch"] == {at['"torch":'], at['"torchrun"'], at["def torchrun"],
                            at["torch.distributed.run"]}
    assert got["jax"] == {at["y = 2"], at['"jax"']}  # the fall-through after both ifs


COLLECTIVE_CALL = re.compile(r"\b(Allreduce|allreduce|Barrier|barrier|Bcast|bcast|all_reduce|"
                             r"broadcast|all_gather|process_allgather|psum|pmean)\s*\(")


@pytest.mark.parametrize("rel, runs_as", [(e[0], e[1]) for e in pc.ENGINES])
def test_engine_collectives_match_a_plain_text_search(rel, runs_as):
    """An independent re-count: a regex over the code lines finds the same collective calls."""
    source = (ROOT / rel).read_text(encoding="utf-8")
    code = cost.code_lines(source)
    by_text = [i for i, ln in enumerate(source.splitlines(), 1)
               if i in code and COLLECTIVE_CALL.search(ln.split("#")[0])]
    c = pc.parallel_cost(source)
    assert sorted(c.training + c.barrier + c.check) == by_text
    if runs_as in ("numpy", "torch"):  # one explicit all-reduce of the gradients, by hand
        assert len(c.training) == 1 and len(c.barrier) == 1 and len(c.check) == 2
    else:  # jax: XLA inserts the all-reduce; only the drift check gathers by hand
        assert c.training == () and c.barrier == ()
        assert c.check == (line_of(source, "multihost_utils.process_allgather("),)
    assert c.bookkeeping and c.framework


def test_shared_machinery_writes_no_collective_and_engines_py_is_split_exactly():
    engines, launch, shared = pc.measure()
    for c in shared.values():
        assert c.training == c.barrier == c.check == ()
    eng_code = cost.code_lines((ROOT / pc.PAR / "engines.py").read_text(encoding="utf-8"))
    parts = [*launch.values(), set(shared[pc.PAR + "engines.py"].code)]
    assert sum(map(len, parts)) == len(eng_code) and set().union(*parts) == eng_code
    assert all(launch.values())


def _copy_tree(tmp_path):
    dest = tmp_path / pc.PAR
    shutil.copytree(ROOT / pc.PAR, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.mark.parametrize("where, field", [("self.comm.Allreduce(self.mpi.IN_PLACE", "training"),
                                          ("self.comm.Allreduce(flat, hi", "check")])
def test_a_planted_allreduce_raises_the_count_by_one(tmp_path, where, field):
    rel = pc.PAR + "numpy_mpi.py"
    before = pc.measure()[0][rel]
    path = _copy_tree(tmp_path) / "numpy_mpi.py"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    i = next(i for i, ln in enumerate(lines) if where in ln)
    lines.insert(i + 1, lines[i])  # the same collective, written twice
    path.write_text("".join(lines), encoding="utf-8")
    after = pc.measure(tmp_path)[0][rel]
    for f in ("training", "barrier", "check"):
        assert len(getattr(after, f)) == len(getattr(before, f)) + (f == field), f
    assert len(after.code) == len(before.code) + 1
    row = next(r for r in pc.parallel_table(tmp_path).splitlines() if f"`{rel}`" in r)
    assert (" 2 / 1 / 2 |" if field == "training" else " 1 / 1 / 3 |") in row


def _rename(source: str, old: str, new: str) -> str:
    """Every use of the variable `old` (a local, or an attribute self.old) renamed `new`."""
    return re.sub(rf"\b{old}\b", new, source)


@pytest.mark.parametrize("rel, old", [
    (pc.PAR + "numpy_mpi.py", "buf"),  # self.buf: the flat buffer the old rules knew by name
    (pc.PAR + "numpy_mpi.py", "mine"),  # a local: this worker's shard of the batch
    (pc.PAR + "torch_dist.py", "views"),
    (pc.PAR + "jax_mesh.py", "mask"),
    (pc.PAR + "jax_mesh.py", "_padded_rows"),
    (pc.PAR + "loop.py", "rep"),
])
def test_renaming_a_local_moves_no_figure(tmp_path, rel, old):
    """The counts follow the code's structure (its calls and bindings), not its spelling."""
    before = pc.measure()
    path = _copy_tree(tmp_path) / rel.split("/", 1)[1]
    text = path.read_text(encoding="utf-8")
    renamed = _rename(text, old, "zz_renamed")
    assert renamed != text and ast.parse(renamed)
    path.write_text(renamed, encoding="utf-8")
    after = pc.measure(tmp_path)
    assert after == before
    table = pc.parallel_table(tmp_path)
    assert table.split("Which lines")[0] == pc.parallel_table().split("Which lines")[0]


def test_a_statement_that_uses_the_plan_is_counted_wherever_it_is(tmp_path):
    """A planted use of the shard plan in an engine adds a bookkeeping line."""
    rel = pc.PAR + "torch_dist.py"
    before = pc.measure()[0][rel]
    path = _copy_tree(tmp_path) / "torch_dist.py"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    i = next(i for i, ln in enumerate(lines) if "def drift(self)" in ln)
    lines.insert(i + 1, "        _ = plan.shard_bounds(4, self.world)\n")
    path.write_text("".join(lines), encoding="utf-8")
    after = pc.measure(tmp_path)[0][rel]
    assert len(after.bookkeeping) == len(before.bookkeeping) + 1


def test_lessons_writes_and_prints_the_section(tmp_path, capsys):
    assert cli.main(["lessons", "--out", str(tmp_path), "--steps", "3"]) == 0
    assert f"| `{pc.PAR}numpy_mpi.py` | numpy |" in capsys.readouterr().out
    text = (tmp_path / "lessons.md").read_text()
    first, dp, last = (text.index(h) for h in ("## The cost of change", "## What data parallelism"
                                               " cost each implementation", "## Vanishing"))
    assert first < dp < last and pc.parallel_table() in text
