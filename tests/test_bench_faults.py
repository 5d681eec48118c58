"""A bench that never lies about what it kept: signals end it with no orphan, a killed bench
is cleaned up by the next, a second writer is refused, a cut-short check and a torn row
are redone, bad numbers are refused before anything is written, and files are readable.

The hanging cells come from tests/fixtures/faulty_impl.py (the `faulty` fixture)."""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cli, process, store
from harness.store import CELLS, RunFolder
from tests.helpers import ROOT, default_sigint
from tests.test_bench import _folders_of, _replan, create

pytestmark = pytest.mark.slow


def _group_alive(pgid: int) -> bool:
    """Does any process of group `pgid` still run (a zombie waiting for init does not)?"""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == pgid and fields[0] != "Z":
            return True
    return False


def _worker_groups(parent: int) -> list[int]:
    """Process groups of harness workers the bench `parent` started (their leaders)."""
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat_file.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"harness.measure" in cmdline:
            out.append(int(stat_file.parent.name))
    return out


def _start_hanging_bench(tmp_path, faulty) -> tuple[subprocess.Popen, RunFolder]:
    folder, _, plan = create(tmp_path, "--time-limit", "120")
    _replan(folder, [dataclasses.replace(plan.cells[0], impl=faulty, mode="hang")])
    proc = subprocess.Popen([sys.executable, "-m", "harness", "bench", "--resume",
                             str(folder.path)], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.time() + 60
    while time.time() < deadline and not _worker_groups(proc.pid):
        time.sleep(0.1)
    groups = _worker_groups(proc.pid)
    assert groups, "the hanging worker never started"
    return proc, folder


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_to_bench_alone_kills_every_child(tmp_path, faulty, sig):
    proc, folder = _start_hanging_bench(tmp_path, faulty)
    groups = _worker_groups(proc.pid)
    proc.send_signal(sig)  # to the parent only, not its group: the children are its to kill
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Traceback" not in err
    assert "--resume" in out + err
    deadline = time.time() + 5
    while time.time() < deadline and any(_group_alive(g) for g in groups):
        time.sleep(0.1)
    assert not any(_group_alive(g) for g in groups), "a worker outlived the bench"
    assert not (folder.path / ".lock").exists()


def test_after_a_sigkill_the_next_bench_cleans_up(tmp_path, faulty):
    proc, _ = _start_hanging_bench(tmp_path, faulty)
    groups = _worker_groups(proc.pid)
    stale = _folders_of(proc.pid)
    assert stale
    proc.kill()  # SIGKILL: nothing in the bench can run
    proc.communicate(timeout=30)
    assert any(_group_alive(g) for g in groups)  # the orphan is there ...
    removed = process.reap_stale()  # ... until the next bench starts
    assert set(map(str, stale)) <= set(removed)
    deadline = time.time() + 10
    while time.time() < deadline and any(_group_alive(g) for g in groups):
        time.sleep(0.1)
    assert not any(_group_alive(g) for g in groups)
    assert not [f for f in stale if f.exists()]


def test_a_second_writer_of_a_run_folder_fails_at_once(tmp_path, faulty, capsys):
    proc, folder = _start_hanging_bench(tmp_path, faulty)
    try:
        assert cli.main(["bench", "--resume", str(folder.path)]) == 2
        assert proc.poll() is None  # at once: the first bench still runs (its cell hangs)
        err = capsys.readouterr().err
        assert "is being written by another bench" in err and err.count("\n") == 1
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_resume_redoes_a_cut_short_check_and_a_torn_row(tmp_path, capsys):
    folder, _, plan = create(tmp_path, "--profile", "quick", "--impl", "numpy")
    (folder.path / "check.json").write_text('{"ok": null, "error": "check timed out (3 s)"}')
    assert cli.main(["bench", "--resume", str(folder.path)]) == 0
    done = RunFolder.open(folder.path)
    assert [c["size"] for c in done.cells] == ["tiny", "small"]
    check = (folder.path / "check.json").read_text()
    assert '"ok": true' in check  # redone, complete
    lines = (folder.path / CELLS).read_text().splitlines()
    (folder.path / CELLS).write_text("\n".join(lines[:-1] + [lines[-1][:25]]) + "\n")  # torn
    torn = RunFolder.open(folder.path)
    assert [c["size"] for c in torn.cells] == ["tiny"] and torn.dropped
    capsys.readouterr()
    assert cli.main(["bench", "--resume", str(folder.path)]) == 0
    assert "dropped cells.csv line 3" in capsys.readouterr().out
    again = RunFolder.open(folder.path)
    assert [(c["size"], c["status"]) for c in again.cells] == [("tiny", "ok"), ("small", "ok")]


@pytest.mark.parametrize("argv, words", [
    (["--time-limit", "nan"], "--time-limit must be a positive number of seconds"),
    (["--time-limit", "inf"], "--time-limit must be a positive number of seconds"),
    (["--time-limit", "0"], "--time-limit must be a positive number of seconds"),
    (["--wall-budget", "nan"], "--wall-budget must be a non-negative number of seconds"),
    (["--wall-budget=-inf"], "--wall-budget must be a non-negative number of seconds"),
    (["--impl", ""], "--impl needs at least one value"),
    (["--size", ","], "--size needs at least one value"),
])
def test_bad_numbers_and_empty_lists_exit_2_before_anything_is_written(tmp_path, capsys, argv,
                                                                        words):
    out = tmp_path / "out"
    assert cli.main(["bench", "--profile", "quick", "--no-check", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and words in err and err.count("\n") == 1
    assert not out.exists()


def test_run_files_are_readable_by_others_and_read_only_folders_are_one_line(
        tmp_path, capsys, monkeypatch, no_png):
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy", "--size", "tiny",
                     "--no-check", "--out", str(tmp_path / "runs")]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    for name in ("meta.json", "cells.csv", "samples.csv", "tta.csv"):
        assert stat.S_IMODE((run / name).stat().st_mode) & 0o044 == 0o044, name
    # A read-only folder, as a user who is not root meets it (root may write anywhere).
    real = store.files.tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if Path(dir).resolve() == run.resolve():
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(store.files.tempfile, "mkstemp", refuse)
    capsys.readouterr()
    assert cli.main(["report", str(run)]) == 2
    assert cli.main(["bench", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith("error: cannot write") for e in err), err
    assert cli.main(["report", str(run), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "report.md").exists()


def test_report_writes_elsewhere_with_out(tmp_path, no_png):
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy", "--size", "tiny",
                     "--no-check", "--out", str(tmp_path / "runs")]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert cli.main(["report", str(run), "--out", str(tmp_path / "elsewhere")]) == 0
    text = (tmp_path / "elsewhere" / "report.md").read_text()
    assert f"# Benchmark report: `{run.name}`" in text
    assert (tmp_path / "elsewhere" / "speed.png").exists() and not (run / "report.md").exists()
