"""python -m harness bench --commits A..B [--profile P] [restrictions]  -- history over commits.

    python -m harness bench --commits HEAD~5..HEAD --profile quick --impl numpy --size tiny
    python -m harness site --out site      # then see each series across those commits

As `asv run A..B` does: each commit of the range (oldest first) is checked out in a git
worktree of its own (harness/bench/revisions.py) and that commit's own `python -m harness bench`
runs there with the chosen profile and restrictions, writing an ordinary run folder into this
results root (--out): its meta.json records the commit, as every run's does. A commit already
measured on this machine (same CPU, GPUs and host) with the same profile and restrictions, by
a finished run of a clean tree, is skipped, and the run that measured it is named.

The working tree must be clean: a range is read from the repository's commits, and a working
tree with uncommitted changes would make `HEAD` name something other than what you see. A
commit whose bench fails (an old commit without an option, a crash) is reported and the others
still run. Exit 0 when every commit was measured or skipped, 1 when one failed, 2 for a bad
range, a dirty tree or bad options (one line, before anything runs).
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

from harness.bench import profiles
from harness.bench.revisions import Repo
from harness.errors import UsageError
from harness.measure import machine
from harness.process import REPO
from harness.report.multi import machine_label
from harness.report.tables import dig
from harness.store import META, read_json

RESTRICTIONS = ("impl", "mode", "device", "dtype", "size")
PASSED = {"threads": "--threads", "time_limit": "--time-limit", "wall_budget": "--wall-budget"}
FLAGS = {"no_check": "--no-check", "report": "--report"}


def this_machine() -> str:
    """This machine's label, as the site and `report` label runs (GPU or CPU, and host)."""
    return machine_label({"machine": {"host": platform.node(), "cpu_model": machine.cpu_model(),
                                      "gpus": machine.gpus()}})


def restrictions(options: dict) -> dict:
    """--impl numpy,torch --impl jax -> {"impl": ["jax", "numpy", "torch"]}; None left out."""
    out = {}
    for name in RESTRICTIONS:
        values = options.get(name)
        if values:
            out[name] = sorted({v.strip() for item in values for v in str(item).split(",")
                                if v.strip()})
    return out


def measured(root: Path, profile: str, wanted: dict, label: str) -> dict[str, Path]:
    """{commit: run folder} of the finished runs under `root` of a clean tree, on the machine
    `label`, with `profile` and the restrictions `wanted`."""
    found = {}
    for path in sorted(root.iterdir()) if root.is_dir() else ():
        try:
            meta = read_json(path, META)
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict):
            continue
        name = dig(meta, "profile.name") if isinstance(meta.get("profile"), dict) \
            else meta.get("profile")
        runs = meta.get("runs") if isinstance(meta.get("runs"), list) else []
        finished = bool(runs) and isinstance(runs[-1], dict) and "finished_utc" in runs[-1] \
            and not runs[-1].get("not_started")
        commit = dig(meta, "machine.git.commit")
        if (name == profile and finished and commit and not dig(meta, "machine.git.dirty")
                and machine_label(meta) == label
                and restrictions(meta.get("options") or {}) == wanted):
            found.setdefault(str(commit), path)
    return found


def child_args(args) -> list[str]:
    """The bench options to pass on to each commit's own bench."""
    argv = ["--profile", args.profile]
    for name in RESTRICTIONS:
        for value in getattr(args, name) or ():
            argv += [f"--{name}", value]
    for name, flag in PASSED.items():
        if getattr(args, name, None) is not None:
            argv += [flag, str(getattr(args, name))]
    return argv + [flag for name, flag in FLAGS.items() if getattr(args, name, False)]


def run_commits(args, repo_path: Path = REPO) -> int:
    if args.resume:
        raise UsageError("--commits runs new benchmarks; it cannot --resume one")
    if args.profile != "scaling":
        profiles.get(args.profile)  # an unknown profile: one line now, not one per commit
    repo = Repo.find(repo_path)
    if dirt := repo.dirty():
        raise UsageError(f"the working tree of {repo.root} has uncommitted changes"
                         f" ({len(dirt)} file{'s' if len(dirt) > 1 else ''}, e.g. {dirt[0]}): commit or stash"
                         " them first")
    shas = repo.range(args.commits)
    root = Path(args.out).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot write there ({exc.strerror})") from None
    label, wanted = this_machine(), restrictions(vars(args))
    done = measured(root, args.profile, wanted, label)
    print(f"bench --commits {args.commits}: {len(shas)} commit{'s' if len(shas) > 1 else ''},"
          f" profile {args.profile},"
          f" on {label}, into {root}")
    outcome = []
    for i, sha in enumerate(shas, start=1):
        title = f"[{i}/{len(shas)}] {sha[:10]} {repo.subject(sha)}"
        if sha in done:
            print(f"{title}: skipped, measured on this machine with this profile in {done[sha]}")
            outcome.append((sha, "skipped", done[sha]))
            continue
        print(f"{title}: bench in a worktree", flush=True)
        outcome.append((sha, *_bench_at(repo, sha, args, root)))
    failed = [o for o in outcome if o[1] == "failed"]
    print(f"bench --commits: {sum(o[1] == 'measured' for o in outcome)} measured,"
          f" {sum(o[1] == 'skipped' for o in outcome)} skipped, {len(failed)} failed")
    for sha, _, why in failed:
        print(f"  failed: {sha[:10]}: {why}")
    return 1 if failed else 0


def _bench_at(repo: Repo, sha: str, args, root: Path) -> tuple[str, object]:
    """Run that commit's bench in a worktree of it; ('measured', run folder) or ('failed', why)."""
    before = {p for p in root.iterdir() if p.is_dir()}
    with repo.checkout(sha) as tree:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        argv = [sys.executable, "-m", "harness", "bench", *child_args(args), "--out", str(root)]
        child = subprocess.Popen(argv, cwd=tree, env=env)
        try:
            rc = child.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the child too: let it kill its own children
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            raise
    new = sorted(p for p in root.iterdir() if p.is_dir() and p not in before)
    if rc != 0:
        return "failed", (f"its bench exited with {rc} (its message above)"
                          + (f"; it left {', '.join(p.name for p in new)}" if new else ""))
    if len(new) != 1:
        return "failed", f"its bench wrote {len(new)} run folders, not one"
    try:
        commit = dig(read_json(new[0], META), "machine.git.commit")
    except (OSError, ValueError) as exc:
        return "failed", f"{new[0]}: meta.json unreadable ({exc})"
    if commit != sha:
        return "failed", f"{new[0]} records commit {commit!r}, not {sha}"
    return "measured", new[0]
