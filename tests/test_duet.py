"""`bench --against REV` (harness/bench/duet.py): the verdicts on planted pairs, a REV whose
workers speak another protocol or cannot be resolved (exit 2, one line, nothing left behind),
and a real duet of a committed copy of this project against its own HEAD (its folders, its
verdict table, its worktree removed). No timing is asserted: whether the machine flags a
series is a benchmark figure (docs/timing.md), not a test."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.bench.duet import Duet
from harness.bench.pairs import Pair
from harness.bench.profiles import TINY
from harness.bench.revisions import Repo
from harness.measure.records import Outcome
from harness.measure.spec import Cell
from tests.test_commits import _project_copy, commit, git

CELL = Cell("torch", "eager", "cpu", "float32", TINY)


def _judged(out_a, out_b, found):
    duet = Duet.__new__(Duet)
    duet.changes, duet.rows = [], []
    duet._judge(CELL, out_a, out_b, found)
    return duet.changes[0], duet.rows[0]


def test_a_planted_15_percent_slowdown_is_slower_and_jitter_is_not():
    ok = Outcome("ok")
    slow = [Pair(r, 1e-3 * (1 + 0.01 * (r % 5)), 1.15e-3 * (1 + 0.01 * (r % 5)))
            for r in range(30)]
    change, row = _judged(ok, ok, slow)
    assert change.verdict == "slower" and change.ratio.estimate == pytest.approx(1.15)
    assert row["verdict"] == "slower" and row["pairs"] == 30
    same = [Pair(r, 1e-3, 1e-3 * (1.04 if r % 2 else 0.97)) for r in range(30)]
    assert _judged(ok, ok, same)[0].verdict == "same"
    few = slow[:5]  # too few pairs for a 99% interval: never a verdict
    change, _ = _judged(ok, ok, few)
    assert change.verdict == "same" and "too few" in change.note


def test_a_series_that_breaks_in_the_working_tree_is_a_regression():
    change, _ = _judged(Outcome("ok"), Outcome("failed", "exit code 3"), [])
    assert change.verdict == "broken" and change.regression
    change, _ = _judged(Outcome("ok"), Outcome("unavailable", "no torch"), [])
    assert change.verdict == "lost" and change.regression
    change, _ = _judged(Outcome("unavailable", "new here"), Outcome("ok"), [])
    assert change.verdict == "not compared" and not change.regression


@pytest.mark.parametrize("argv, said", [
    (["--against", "nosuchrev"], "'nosuchrev' names no commit"),
    (["--against", "HEAD", "--resume", "x"], "--against and --resume do not go together"),
    (["--against", "HEAD", "--profile", "scaling"], "a scaling run"),
])
def test_bad_revisions_and_options_are_exit_2_in_one_line(argv, said, capsys, tmp_path):
    assert cli.main(["bench", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_duet_of_a_project_copy_against_its_head(tmp_path):
    repo = _project_copy(tmp_path / "project")
    shutil_copy_fixtures(repo)
    worker = repo / "harness" / "measure" / "worker.py"
    text = worker.read_text()
    commit(repo, "before issue 18", **{"harness/measure/worker.py":
                                       text.replace("\nPROTOCOL = ", "\nOLD_PROTOCOL = ")})
    old = git(repo, "rev-parse", "HEAD")
    commit(repo, "issue 18", **{"harness/measure/worker.py": text})
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(repo)}

    def bench(*argv):
        return subprocess.run([sys.executable, "-m", "harness", "bench", *argv, "--profile",
                               "quick", "--impl", "numpy,torch", "--size", "tiny",
                               "--no-check", "--out", str(results)],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=600)

    refused = bench("--against", old)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "speak no protocol" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert not results.exists() or not list(results.iterdir())

    (repo / "NOTES.txt").write_text("an uncommitted change: the working tree is B")
    done = bench("--against", "HEAD")
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, \
        done.stdout[-3000:] + done.stderr[-3000:]
    folders = sorted(results.iterdir())
    assert len(folders) == 2
    b, a = sorted(folders, key=lambda p: len(p.name))
    meta_a, meta_b = (json.loads((p / "meta.json").read_text()) for p in (a, b))
    head = git(repo, "rev-parse", "HEAD")
    assert meta_a["against"]["side"] == "A" and meta_b["against"]["side"] == "B"
    assert meta_a["machine"]["git"]["commit"] == head and meta_b["machine"]["git"]["dirty"]
    rows = _csv(b / "against.csv")
    assert [(r["impl"], r["size"]) for r in rows] == [("numpy", "tiny"), ("torch", "tiny")]
    assert {r["verdict"] for r in rows} <= {"same", "slower", "faster"}
    assert all(int(r["pairs"]) > 0 for r in rows)
    for folder in (a, b):
        cells = _csv(folder / "cells.csv")
        assert {c["status"] for c in cells} == {"ok"} and len(cells) == 2
        assert (folder / "blocks.csv").exists()
    assert ("1 slower" in done.stdout) == (done.returncode == 1)
    assert Repo.find(repo).worktrees() == [repo.resolve()]  # the REV's worktree removed


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def shutil_copy_fixtures(repo: Path) -> None:
    """The test fixtures travel with the copy (a test-only implementation may be needed)."""
    import shutil

    from tests.helpers import ROOT

    shutil.copytree(ROOT / "tests" / "fixtures", repo / "tests" / "fixtures",
                    ignore=shutil.ignore_patterns("__pycache__"))
