"""`grade` against hostile submissions: each gets a verdict of its own and changes nothing for
any other; nothing outlives the grade, whether it ends, is interrupted or gets SIGTERM.

    .venv/bin/pytest tests/test_grade_hostile.py

The grade runs as a real `python -m harness grade` process: a submission that signals what
it can see must never reach this test runner. Submissions that attack the filesystem or other
processes are run under bubblewrap only (the "process" isolation says it cannot stop them);
where bubblewrap does not work here, those tests are skipped with its reason.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from harness.check import isolation
from tests.helpers import ROOT

CLASS = ROOT / "docs" / "examples" / "class"
TOKEN = "600.0419"  # the daemons' `sleep` argument: how this test finds them
BWRAP, WHY_NOT = isolation.bwrap_status()
REQUIRED = os.environ.get("BACKPROP_REQUIRE_BWRAP") == "1"  # .ci/run sets it once installed
needs_bwrap = pytest.mark.skipif(not BWRAP and not REQUIRED, reason=f"bubblewrap: {WHY_NOT}")


def test_bubblewrap_works_where_it_is_required():
    """CI installs bubblewrap: then it must work (else the bwrap tests would silently skip)."""
    if not REQUIRED:
        pytest.skip("BACKPROP_REQUIRE_BWRAP is not set (only .ci/run sets it)")
    assert BWRAP, f"bubblewrap is installed but does not work here: {WHY_NOT}"

# Submissions that are safe to run without bubblewrap, and their verdicts.
SAFE = {
    "daemon": (f'''
        def grads(P, X, T, loss):
            subprocess.Popen(["sleep", "{TOKEN}"], start_new_session=True)
            return correct(P, X, T, loss)
        ''', "pass", ""),
    "memory": ('''
        def grads(P, X, T, loss):
            import numpy as np
            return np.ones((50_000, 50_000)), {}  # 20 GB
        ''', "fail", "raised MemoryError"),
    "prints": ('''
        def grads(P, X, T, loss):
            line = "x" * 1_000_000
            for _ in range(80):
                print(line)
            return correct(P, X, T, loss)
        ''', "fail", "File too large"),  # Python ignores SIGXFSZ: its write raises
    "exits": ('''
        def grads(P, X, T, loss):
            sys.exit(0)
        ''', "error", "exited with code 0 with 0 of"),
    "hangs": ('''
        def grads(P, X, T, loss):
            time.sleep(3600)
        ''', "timeout", "stopped at the time limit of 15 s"),
}
# Submissions only bubblewrap can stop.
WALLED = {
    "reads": ('''
        def grads(P, X, T, loss):  # a classmate's answer, by its path next to this file
            ns = {}
            here = os.path.dirname(os.path.abspath(__file__))
            exec(open(os.path.join(os.path.dirname(here), "alice.py")).read(), ns)
            return ns["grads"](P, X, T, loss)
        ''', "fail", "raised FileNotFoundError"),
    "writes": ('''
        def grads(P, X, T, loss):  # spoil a classmate's file, then answer right
            here = os.path.dirname(os.path.abspath(__file__))
            try:
                with open(os.path.join(os.path.dirname(here), "alice.py"), "w") as f:
                    f.write("def grads(P, X, T, loss):\\n    return 0, {}\\n")
            except OSError:
                pass
            return correct(P, X, T, loss)
        ''', "pass", ""),
    "kills": ('''
        def grads(P, X, T, loss):  # every process it can see, except itself
            for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
                if pid != os.getpid():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            return correct(P, X, T, loss)
        ''', "error", ""),
}
PRELUDE = "import os, signal, subprocess, sys, time\nfrom alice_copy import correct\n"


def make_class(folder, hostile: dict) -> None:
    """alice (correct), dave (a bug), and the hostile ones: each a folder holding its file and
    a private copy of alice's code (so that it can answer right without reading alice)."""
    folder.mkdir()
    shutil.copy(CLASS / "alice_numpy.py", folder / "alice.py")
    shutil.copy(CLASS / "dave_sum.py", folder / "dave.py")
    for name, (code, _, _) in hostile.items():
        (folder / name).mkdir()
        (folder / name / "alice_copy.py").write_text(
            (CLASS / "alice_numpy.py").read_text().replace("def grads(", "def correct("))
        (folder / name / "submission.py").write_text(PRELUDE + textwrap.dedent(code))


def grade(folder, out, *extra, timeout=900) -> tuple[int, dict, str]:
    result = subprocess.run([sys.executable, "-m", "harness", "grade", str(folder), "--out",
                             str(out), "--timeout", "15", "--memory", "1G", *extra], cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout)  # hang guard
    rows = {}
    if (out / "grades.csv").exists():
        with open(out / "grades.csv", newline="") as f:
            rows = {r["submission"]: r for r in csv.DictReader(f)}
    return result.returncode, rows, result.stderr


def daemons() -> list:
    return [p for p in psutil.process_iter(["cmdline"]) if TOKEN in (p.info["cmdline"] or [])]


def same(row: dict, alone: dict) -> bool:
    return {k: v for k, v in row.items() if k != "seconds"} == \
        {k: v for k, v in alone.items() if k != "seconds"}


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """alice and dave graded without any hostile classmate."""
    folder = tmp_path_factory.mktemp("alone") / "class"
    make_class(folder, {})
    code, rows, err = grade(folder, folder.parent / "out")
    assert code == 0, err
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("walls", ["process", pytest.param("bwrap", marks=needs_bwrap)])
def test_each_hostile_submission_gets_its_own_verdict(tmp_path, alone, walls):
    hostile = dict(SAFE, **(WALLED if walls == "bwrap" else {}))
    folder = tmp_path / "class"
    make_class(folder, hostile)
    alice_before = (folder / "alice.py").read_text()
    code, rows, err = grade(folder, tmp_path / "out", "--isolation", walls, "--jobs", "2")
    assert code == 0, err
    assert f"isolation: {walls}" in err
    for name, (_, status, words) in hostile.items():
        assert rows[name]["status"] == status, (name, rows[name])
        assert words in rows[name]["diagnosis"], (name, rows[name]["diagnosis"])
    assert same(rows["alice"], alone["alice"]) and same(rows["dave"], alone["dave"])
    assert (folder / "alice.py").read_text() == alice_before
    assert not daemons(), "a submission's process outlived the grade"
    if walls == "process":
        assert "NOT walled off" in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_grade_keeps_what_it_finished_and_leaves_nothing(tmp_path, sig, code):
    folder = tmp_path / "class"
    make_class(folder, {"hangs": SAFE["hangs"], "hangs_too": SAFE["hangs"]})
    for name in ("hangs", "hangs_too"):  # a daemon each, then the hang
        path = folder / name / "submission.py"
        path.write_text(path.read_text().replace(
            "    time.sleep(3600)",
            f'    subprocess.Popen(["sleep", "{TOKEN}"], start_new_session=True)\n'
            "    time.sleep(3600)"))
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-m", "harness", "grade", str(folder), "--out",
                             str(out), "--jobs", "2", "--timeout", "600"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # a hang guard: both hang within seconds
        while len(daemons()) < 2 or not (out / "records" / "alice.json").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == code, err
    finally:
        proc.kill()
        proc.communicate()
    assert not daemons(), "a submission's process outlived the interrupted grade"
    with open(out / "grades.csv", newline="") as f:
        finished = {r["submission"]: r["status"] for r in csv.DictReader(f)}
    assert finished["alice"] == "pass" and "hangs" not in finished
    assert not (out / ".lock").exists() and list(tmp.iterdir()) == []
