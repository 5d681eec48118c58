"""Every command's options are checked before any work, by harness/options.py's rules, with one
message per rule whichever command breaks it; --out never overwrites an input's files and never
crashes on an existing path (issue 19, item 2)."""

from __future__ import annotations

import re
import shutil

import pytest

from harness import cli
from harness.errors import UsageError
from tests.fixtures.runfolder import write_run
from tests.helpers import ROOT

DEFAULT_RUN = ROOT / "results" / "20261127-034137-default"
SCALING_RUN = ROOT / "results" / "20261127-034346-scaling"


# ---- the rules ------------------------------------------------------------------------------------
def _options():
    from harness import options  # new with issue 19: imported here, so the rest runs before it

    return options


@pytest.mark.parametrize("call, message", [
    (lambda: _options().seconds("--t", 0), "--t must be a positive number of seconds, got 0"),
    (lambda: _options().seconds("--t", float("nan")), "--t must be a positive number of seconds"),
    (lambda: _options().seconds("--t", float("inf")), "--t must be a positive number of seconds"),
    (lambda: _options().seconds("--t", True), "--t must be a positive number of seconds"),
    (lambda: _options().seconds("--b", -1.0, zero="no limit"),
     "--b must be a non-negative number of seconds (0: no limit), got -1"),
    (lambda: _options().integer("--n", 0), "--n must be a positive integer, got 0"),
    (lambda: _options().integer("--n", 3, high=2, why="usable CPUs"),
     "--n must be an integer from 1 to 2 (usable CPUs), got 3"),
    (lambda: _options().non_negative("--m", -0.1), "--m must be a finite, non-negative number"),
    (lambda: _options().non_negative("--m", float("nan")), "--m must be a finite, non-negative"),
    (lambda: _options().probability("--c", 1.0), "--c must be a number between 0 and 1"),
    (lambda: _options().probability("--c", 0), "--c must be a number between 0 and 1"),
    (lambda: _options().values("--impl", []), "--impl needs at least one value"),
    (lambda: _options().name("--function", "9x"), "--function must be a Python name"),
])
def test_each_rule_has_one_message(call, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        call()


def test_the_rules_let_good_values_through(tmp_path):
    options = _options()
    assert options.seconds("--t", None) is None and options.seconds("--t", 0.5) == 0.5
    assert options.seconds("--b", 0, zero="no limit") == 0
    assert options.integer("--n", 2, high=2) == 2 and options.non_negative("--m", 0) == 0
    assert options.probability("--c", 0.99) == 0.99 and options.values("--x", None) is None
    assert options.out_folder("--out", tmp_path / "new") == tmp_path / "new"
    run = write_run(tmp_path / "run")
    assert options.out_folder("--out", run, inputs=[run], markers=("meta.json",), own=run)


# ---- every command: the same rule, the same message, exit 2, before any work ----------------------
def _argv(argv, tmp_path):
    run = tmp_path / "run"
    if not run.exists():
        write_run(run)
        (tmp_path / "a-file").write_text("not a folder")
        (tmp_path / "class").mkdir()
    return [a.format(run=run, file=tmp_path / "a-file", cls=tmp_path / "class", tmp=tmp_path)
            for a in argv]


RULES = {  # the message of each rule, as every command says it
    "seconds": r"^error: (--\S+) must be a positive number of seconds, got \S+$",
    "integer": r"^error: (--\S+) must be a positive integer, got -?\d+$",
    "non-negative": r"^error: (--\S+) must be a finite, non-negative number, got \S+$",
    "file": r"^error: (--out) \S+ is a file, not a folder$",
}
CASES = [
    ("seconds", ["check", "--impl", "x.py:f", "--timeout", "0"]),
    ("seconds", ["check", "--timeout", "nan"]),
    ("seconds", ["grade", "{cls}", "--out", "{tmp}/g", "--timeout", "-1"]),
    ("seconds", ["bench", "--time-limit", "inf"]),
    ("seconds", ["stability", "--time-limit", "0"]),
    ("seconds", ["smoke", "--budget", "nan"]),
    ("integer", ["grade", "{cls}", "--out", "{tmp}/g", "--jobs", "0"]),
    ("integer", ["zoo", "--seeds", "0"]),
    ("integer", ["lessons", "--steps", "-3"]),
    ("non-negative", ["compare", "{run}", "{run}", "--min-effect", "-1"]),
    ("non-negative", ["stability", "--min-effect", "-1"]),
    ("non-negative", ["stability", "--min-effect", "nan"]),
    ("file", ["report", "{run}", "--out", "{file}"]),
    ("file", ["report", "{run}", "{run}2", "--out", "{file}"]),
    ("file", ["bench", "--out", "{file}"]),
    ("file", ["stability", "--out", "{file}"]),
    ("file", ["site", "--out", "{file}"]),
    ("file", ["lessons", "--out", "{file}"]),
    ("file", ["grade", "{cls}", "--out", "{file}"]),
]


@pytest.fixture
def no_work(monkeypatch):
    """Any benchmark, check, grade or report started fails the test: options come first."""
    from harness.bench import command as bench
    from harness.report import command as report

    def started(*a, **k):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(bench, "create", started)
    monkeypatch.setattr(bench, "resume", started)
    monkeypatch.setattr(report, "render", started)


@pytest.mark.parametrize("rule, argv", CASES, ids=[" ".join(a[:1] + a[-2:]) for _, a in CASES])
def test_a_broken_rule_reads_the_same_in_every_command(rule, argv, tmp_path, capsys, no_work):
    argv = _argv(argv, tmp_path)
    if argv[0] == "report" and argv[2].endswith("run2"):  # two runs: the second a copy
        shutil.copytree(argv[1], argv[2])
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.rstrip("\n")
    assert "\n" not in err and re.match(RULES[rule], err), err
    flag = re.match(RULES[rule], err).group(1)
    assert flag in argv
    assert "---- run A" not in captured.out  # stability: no benchmark started


# ---- --out never overwrites an input's files -------------------------------------------------------
def _report_text(run):
    return (run / "report.md").read_text() if (run / "report.md").exists() else None


@pytest.mark.parametrize("where", ["the second run", "inside the first run", "another run"])
def test_report_out_never_writes_into_a_run_folder_not_its_own(tmp_path, capsys, where):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    (b / "report.md").write_text("b's own report\n")
    argv = {"the second run": ["report", str(a), str(b), "--out", str(b)],
            "inside the first run": ["report", str(a), str(b), "--out", str(a / "merged")],
            "another run": ["report", str(a), "--out", str(b)]}[where]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and err.count("\n") == 1
    assert (b / "report.md").read_text() == "b's own report\n"
    assert not (a / "merged").exists() and not (a / "report.md").exists()


def test_report_out_is_its_own_folder_or_a_new_one(tmp_path, capsys, no_png):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    assert cli.main(["report", str(a), "--out", str(a)]) == 0  # its own report, as by default
    assert cli.main(["report", str(a), str(b), "--out", str(tmp_path / "both")]) == 0
    assert cli.main(["report", str(a), str(b), "--out", str(tmp_path / "both")]) == 0  # again
    assert (tmp_path / "both" / "report.md").exists() and not (b / "report.md").exists()


def test_bench_out_is_a_results_root_never_a_run(tmp_path, capsys, no_work):
    run = shutil.copytree(DEFAULT_RUN, tmp_path / "run")
    assert cli.main(["bench", "--out", str(run)]) == 2
    assert "is a run folder of its own" in capsys.readouterr().err


def test_grade_out_is_not_inside_the_submissions(tmp_path, capsys):
    (tmp_path / "class").mkdir()
    assert cli.main(["grade", str(tmp_path / "class"), "--out",
                     str(tmp_path / "class" / "grades")]) == 2
    assert "an input of this command" in capsys.readouterr().err
    assert not (tmp_path / "class" / "grades").exists()


def test_stability_refuses_what_it_cannot_do_before_running(tmp_path, capsys, no_work):
    assert cli.main(["stability", "--commits", "HEAD~1..HEAD"]) == 2
    assert cli.main(["stability", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [e.split(";")[1].strip() for e in err] == ["--commits does not apply",
                                                       "--resume does not apply"]


@pytest.mark.parametrize("argv, message", [
    (["bench", "--threads", "99"], "--threads must be an integer from 1 to"),
    (["bench", "--threads", "0"], "--threads must be an integer from 1 to"),
    (["bench", "--wall-budget", "-1"], "--wall-budget must be a non-negative number of seconds"),
    (["bench", "--impl", ","], "--impl needs at least one value"),
    (["compare", "{run}", "{run}", "--confidence", "1"], "--confidence must be a number between"),
    (["grade", "{cls}", "--out", "{tmp}/g", "--function", "not a name"],
     "--function must be a Python name"),
])
def test_other_rules_are_checked_before_any_work(argv, message, tmp_path, capsys, no_work):
    assert cli.main(_argv(argv, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
