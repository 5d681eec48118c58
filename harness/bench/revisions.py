"""Revisions of a git repository, each checked out in a worktree of its own and cleaned up.

    from harness.bench.revisions import Repo
    repo = Repo.find(path)                # the repository holding `path`; UsageError if none
    sha = repo.resolve("HEAD~2")          # the full commit id; UsageError naming a bad revision
    shas = repo.range("A..B")             # commits reachable from B and not from A, oldest first;
                                          # a lone revision "B" is that one commit
    repo.dirty()                          # tracked files with uncommitted changes ([] = clean)
    with repo.checkout(sha) as tree:      # a detached worktree of that commit (a temporary
        ...                               # folder), removed on the way out, even on an error

`bench --commits` (harness/bench/commits.py) runs a benchmark in each; `bench --against REV`
(issue 18) needs the same: a clean tree of any revision, beside the working one, gone afterwards.
Every problem with a revision or a range is a UsageError with one line. `git` itself is run as
a subprocess: there is no library to prefer for a handful of plumbing commands.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError

PREFIX = "backprop-bench-rev-"  # the temporary folders' names start so


class GitError(UsageError):
    """A git command failed (its message is the last line git printed)."""


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        p = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise GitError("git is not installed (needed to check out other revisions)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args)} took over 120 s") from None
    if check and p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise GitError(f"git {args[0]} failed: {last}")
    return p


@dataclass(frozen=True)
class Repo:
    root: Path  # the top of the working tree

    @classmethod
    def find(cls, path) -> Repo:
        p = _git(Path(path), "rev-parse", "--show-toplevel", check=False)
        if p.returncode != 0:
            raise UsageError(f"{path} is not inside a git repository")
        return cls(Path(p.stdout.strip()))

    def resolve(self, rev: str) -> str:
        """The full id of the commit `rev` names."""
        if not rev or rev.startswith("-"):
            raise UsageError(f"{rev!r} is not a revision")
        p = _git(self.root, "rev-parse", "--verify", "--quiet", "--end-of-options",
                 f"{rev}^{{commit}}", check=False)
        if p.returncode != 0:
            raise UsageError(f"{rev!r} names no commit of {self.root}")
        return p.stdout.strip()

    def range(self, spec: str) -> list[str]:
        """'A..B': the commits reachable from B and not from A, oldest first (as `asv run A..B`
        and `git log A..B`); 'B' alone: that one commit. UsageError for a bad or empty range."""
        spec = spec.strip()
        if spec.count("..") > 1 or "..." in spec:
            raise UsageError(f"--commits {spec!r}: give A..B (commits after A up to B) or one"
                             " revision")
        if ".." not in spec:
            return [self.resolve(spec)]
        start, end = spec.split("..")
        if not start or not end:
            raise UsageError(f"--commits {spec!r}: both ends are needed, as in HEAD~3..HEAD")
        a, b = self.resolve(start), self.resolve(end)
        shas = _git(self.root, "rev-list", "--reverse", f"{a}..{b}").stdout.split()
        if not shas:
            raise UsageError(f"--commits {spec!r} holds no commit ({end} is not after {start};"
                             f" the other way round: {end}..{start})")
        return shas

    def dirty(self) -> list[str]:
        """Tracked files with changes not committed (staged or not); results/ does not count."""
        out = _git(self.root, "status", "--porcelain", "--untracked-files=no", "--", ".",
                   ":(exclude)results").stdout
        return [line[3:] for line in out.splitlines() if line.strip()]

    def subject(self, sha: str) -> str:
        return _git(self.root, "log", "-1", "--format=%s", sha).stdout.strip()

    @contextlib.contextmanager
    def checkout(self, rev: str) -> Iterator[Path]:
        """A detached worktree of `rev` in a new temporary folder; removed with git's record of
        it on the way out, whatever happened inside (a worktree git could not remove is
        deleted and its stale record pruned)."""
        sha = self.resolve(rev)
        holder = Path(tempfile.mkdtemp(prefix=PREFIX))
        tree = holder / "tree"
        try:
            _git(self.root, "worktree", "add", "--detach", "--quiet", str(tree), sha)
            yield tree
        finally:
            removed = _git(self.root, "worktree", "remove", "--force", str(tree),
                           check=False).returncode == 0
            shutil.rmtree(holder, ignore_errors=True)
            if not removed and _git(self.root, "worktree", "list", "--porcelain",
                                    check=False).stdout.count(str(tree)):
                _git(self.root, "worktree", "prune", check=False)  # its folder is gone now

    def worktrees(self) -> list[Path]:
        """Every worktree git knows of (the main one first)."""
        out = _git(self.root, "worktree", "list", "--porcelain").stdout
        return [Path(line.split(" ", 1)[1]) for line in out.splitlines()
                if line.startswith("worktree ")]
