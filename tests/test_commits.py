"""History over commits: revisions.py (worktrees of any revision, cleaned up) on a small synthetic
repository, and `bench --commits` end to end on a copy of this project committed twice (the
quick profile, numpy at tiny: one cell per commit)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from harness import cli
from harness.bench import commits
from harness.bench.revisions import Repo
from harness.errors import UsageError
from tests.helpers import ROOT


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def commit(repo: Path, message: str, **files: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def small_repo(tmp_path):
    """Three commits of one file: a.txt says 1, 2, 3."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shas = [commit(repo, f"commit {i}", **{"a.txt": str(i)}) for i in (1, 2, 3)]
    return repo, shas


def test_range_is_oldest_first_and_excludes_its_start(small_repo):
    path, (c1, c2, c3) = small_repo
    repo = Repo.find(path / ".")
    assert repo.range(f"{c1}..{c3}") == [c2, c3]
    assert repo.range("HEAD~2..HEAD") == [c2, c3]
    assert repo.range("HEAD~1") == [c2]  # a lone revision: that commit only
    assert repo.resolve("main") == c3 and repo.subject(c2) == "commit 2"


@pytest.mark.parametrize("spec, said", [
    ("nosuchrev..HEAD", "'nosuchrev' names no commit"),
    ("HEAD..HEAD~2", "holds no commit"),
    ("HEAD~1..", "both ends are needed"),
    ("a..b..c", "give A..B"),
    ("HEAD~1...HEAD", "give A..B"),
    ("--all", "is not a revision"),
])
def test_bad_ranges_are_one_line_errors(small_repo, spec, said):
    repo = Repo.find(small_repo[0])
    with pytest.raises(UsageError, match=said.replace("(", r"\(").replace(".", r"\.")):
        repo.range(spec)


def test_a_folder_outside_git_is_said(tmp_path):
    with pytest.raises(UsageError, match="not inside a git repository"):
        Repo.find(tmp_path)


def test_checkout_gives_that_revision_and_cleans_up(small_repo):
    path, (c1, c2, c3) = small_repo
    repo = Repo.find(path)
    with repo.checkout(c1) as tree:
        assert (tree / "a.txt").read_text() == "1"
        assert git(tree, "rev-parse", "HEAD") == c1
        assert tree in repo.worktrees()
    assert not tree.exists() and not tree.parent.exists()
    assert repo.worktrees() == [path.resolve()]
    assert (path / "a.txt").read_text() == "3"  # the working tree untouched
    with pytest.raises(RuntimeError), repo.checkout(c2) as tree:  # an error inside: still gone
        raise RuntimeError("boom")
    assert not tree.parent.exists() and repo.worktrees() == [path.resolve()]


def test_dirty_lists_uncommitted_tracked_files_only(small_repo):
    path, _ = small_repo
    repo = Repo.find(path)
    assert repo.dirty() == []
    (path / "scratch.txt").write_text("untracked")  # untracked files are no dirt
    (path / "results").mkdir()
    assert repo.dirty() == []
    (path / "a.txt").write_text("changed")
    assert repo.dirty() == ["a.txt"]


def _args(**kw) -> Namespace:
    base = {"commits": "HEAD~1..HEAD", "profile": "quick", "resume": None, "out": "results",
            "threads": None, "time_limit": None, "wall_budget": None, "no_check": True,
            "report": False, **{n: None for n in commits.RESTRICTIONS}}
    return Namespace(**{**base, **kw})


def test_bench_commits_refuses_a_dirty_tree_and_bad_options(small_repo, tmp_path):
    path, _ = small_repo
    (path / "a.txt").write_text("changed")
    with pytest.raises(UsageError, match=r"uncommitted changes \(1 file, e.g. a.txt\)"):
        commits.run_commits(_args(out=str(tmp_path / "r")), path)
    with pytest.raises(UsageError, match="cannot --resume"):
        commits.run_commits(_args(resume="x"), path)
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        commits.run_commits(_args(profile="nope"), path)


def test_bench_commits_on_the_command_line_is_exit_2_in_one_line(capsys):
    assert cli.main(["bench", "--commits", "nosuchrev..HEAD", "--profile", "quick"]) in (2,)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_child_args_carry_the_profile_and_restrictions():
    argv = commits.child_args(_args(impl=["numpy,torch"], size=["tiny"], threads=1))
    assert argv == ["--profile", "quick", "--impl", "numpy,torch", "--size", "tiny",
                    "--threads", "1", "--no-check"]
    assert commits.restrictions({"impl": ["torch,numpy", "jax"], "size": None}) == {
        "impl": ["jax", "numpy", "torch"]}


def _project_copy(dest: Path) -> Path:
    """This project's code (impls, harness, pyproject) as a fresh repository, one commit."""
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("impls", "harness", "dataparallel"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest)
    (dest / ".gitignore").write_text("__pycache__/\n")
    git(dest, "init", "-q", "-b", "main")
    return dest


@pytest.mark.slow
def test_bench_commits_measures_each_commit_once(tmp_path):
    repo = _project_copy(tmp_path / "project")
    c1 = commit(repo, "one")
    c2 = commit(repo, "two", **{"NOTES.txt": "a second commit"})
    c3 = commit(repo, "three", **{"NOTES.txt": "a third commit"})
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(repo)}

    def bench(spec):
        return subprocess.run(
            [sys.executable, "-m", "harness", "bench", "--commits", spec, "--profile", "quick",
             "--impl", "numpy", "--size", "tiny", "--no-check", "--out", str(results)],
            cwd=repo, env=env, capture_output=True, text=True, timeout=300)

    first = bench(f"{c1}..{c2}")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    second = bench(f"{c1}..{c3}")  # c2 measured already: skipped; c3 measured
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert f"{c2[:10]} two: skipped" in second.stdout
    assert "1 measured, 1 skipped, 0 failed" in second.stdout
    metas = [json.loads((p / "meta.json").read_text()) for p in sorted(results.iterdir())]
    assert [m["machine"]["git"]["commit"] for m in metas] == [c2, c3]
    assert all(m["machine"]["git"]["dirty"] is False for m in metas)
    assert Repo.find(repo).worktrees() == [repo.resolve()]  # every worktree cleaned up
    # A different restriction is not the same measurement: not skipped (but not run here).
    assert commits.measured(results, "quick", {"impl": ["numpy"], "size": ["tiny"]},
                            commits.this_machine()) == {c2: sorted(results.iterdir())[0],
                                                        c3: sorted(results.iterdir())[1]}
    assert commits.measured(results, "quick", {"impl": ["torch"]}, commits.this_machine()) == {}
