"""`python -m harness grade`: its parts (rubric, submissions, scoring, feedback) and its folder
(resume, the lock, determinism), on small classes made here.

    .venv/bin/pytest tests/test_grade.py

The example class (docs/examples/class/) is tests/test_grade_class.py; the hostile
submissions are tests/test_grade_hostile.py.
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile

import pytest

from harness import cli
from harness.errors import UsageError
from harness.grade import rubric as rubrics
from harness.grade import score, submissions
from harness.grade.command import parse_size
from tests.helpers import ROOT

CLASS = ROOT / "docs" / "examples" / "class"
FAST = ("alice_numpy.py", "dave_sum.py", "erin_sign.py", "grace_bias.py", "ivan_renamed.py")


def grade(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["grade", *map(str, argv)])
    return code, capsys.readouterr().err


def rows(out) -> dict[str, dict]:
    with open(out / "grades.csv", newline="") as f:
        return {r["submission"]: r for r in csv.DictReader(f)}


def without_seconds(out) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows(out).values()]


@pytest.fixture
def small(tmp_path):
    """Five quick .py submissions of the example class."""
    folder = tmp_path / "class"
    folder.mkdir()
    for name in FAST:
        shutil.copy(CLASS / name, folder / name)
    return folder


# ---- the rubric ---------------------------------------------------------------------------------
def test_the_default_rubric_loads_and_a_file_overrides_only_what_it_names(tmp_path):
    default = rubrics.load(None)
    assert default.task == "grads" and default.points["W1"] == 2 and default.max_score == 11
    path = tmp_path / "r.toml"
    path.write_text("[points]\nW1 = 5\nfloat32 = 0\n[problems]\nhidden_seed = 7\n")
    mine = rubrics.load(path)
    assert mine.points["W1"] == 5 and "float32" not in mine.points and mine.hidden_seed == 7
    assert mine.points["b1"] == default.points["b1"] and mine.task == "grads"


@pytest.mark.parametrize("text, words", [
    ("task = 'fly'", "task must be one of grads, step, train"),
    ("colour = 1", "unknown field 'colour'"),
    ("[points]\nW3 = 1", "unknown field [points] 'W3'"),
    ("[points]\nW1 = -1", "[points] W1 must be a non-negative number"),
    ("[points]\nW1 = true", "[points] W1 must be a non-negative number"),
    ("timeout = 0", "timeout must be a positive number"),
    ("[problems]\nhidden_shapes = [[5, 5, 5, 5]]", "hides bugs"),
    ("[problems]\nhidden_shapes = [[1, 3, 4, 5]]", "hides bugs"),
    ("[problems]\nhidden_shapes = [[4, 3]]", "must be a list of [N, F, H, K]"),
    ("[problems]\nhidden_shapes = []", "visible_share must be 1"),
    ("[problems]\nvisible_share = 1.5", "must be at most 1"),
    ("[problems]\nhidden_visibility = 'never'", "hidden_visibility must be one of"),
    ("function = 'not a name'", "function must be a Python name"),
    ("[points\n", "not valid TOML"),
])
def test_a_bad_rubric_is_one_line_naming_the_field(tmp_path, text, words):
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=words.replace("[", r"\[").replace("]", r"\]")):
        rubrics.load(path)


def test_every_family_is_scored_on_visible_and_hidden_problems():
    jobs, parts = score.plan(rubrics.load(None))
    groups = {(p.group, p.hidden) for p in parts}
    assert groups == {(g, h) for g in ("main", "trajectory", "float32") for h in (False, True)}
    hidden = [j for j, p in zip(jobs, parts, strict=True) if p.hidden]
    assert hidden and all(j.name.startswith("hidden ") for j in hidden)
    assert {j.problem.shape for j in hidden} == {(13, 6, 9, 4), (6, 2, 5, 7)}


# ---- submissions ----------------------------------------------------------------------------
def test_entries_are_files_notebooks_and_folders_named_without_extension(tmp_path):
    (tmp_path / "amy.py").write_text("def grads(P, X, T, loss): pass\n")
    (tmp_path / "amy.ipynb").write_text("{}")
    (tmp_path / "ben").mkdir()
    (tmp_path / "ben" / "util.py").write_text("x = 1\n")
    (tmp_path / "ben" / "main.py").write_text("def grads(P, X, T, loss): pass\n")
    (tmp_path / "cy").mkdir()
    (tmp_path / "cy" / "a.py").write_text("x = 1\n")
    (tmp_path / "cy" / "b.py").write_text("y = 1\n")
    (tmp_path / "dee").mkdir()
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "notes.txt").write_text("not a submission")
    found = {s.name: s for s in submissions.find(tmp_path, "grads")}
    assert set(found) == {"amy", "amy.py", "ben", "cy", "dee"}  # the first in order keeps "amy"
    assert found["ben"].file.name == "main.py" and found["ben"].readable.name == "ben"
    assert found["cy"].file is None and "several files" in found["cy"].problem
    assert found["dee"].file is None and found["dee"].missing


def test_a_zip_is_unpacked_and_an_unsafe_one_refused(tmp_path):
    good = tmp_path / "class.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.write(CLASS / "alice_numpy.py", "class/alice_numpy.py")
    folder = submissions.unpack(good, tmp_path / "out")
    assert [s.name for s in submissions.find(folder, "grads")] == ["alice_numpy"]
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../escape.py", "x = 1\n")
    with pytest.raises(UsageError, match="unsafe member"):
        submissions.unpack(bad, tmp_path / "out2")
    assert not (tmp_path / "escape.py").exists()


def test_sizes_and_names():
    assert parse_size("2G") == 2 * 2**30 and parse_size("512M") == 512 * 2**20
    assert parse_size("0") == 0 and parse_size("1.5GiB") == int(1.5 * 2**30)
    for bad in ("lots", "-1G", "1K"):
        with pytest.raises(UsageError):
            parse_size(bad)
    assert submissions.safe_name("Zoë Smith/../x") == "Zo__Smith_.._x"


def test_a_general_diagnosis_reveals_no_size():
    text = ("not reduced over the batch: shape (13, 9), expected (9,) (one gradient per "
            "sample); summed over the batch it is off by a factor of N=13 (a sum ...)")
    general = score.general(text)
    assert "13" not in general and "9" not in general and "factor of N (a sum" in general
    assert score.general("off by a factor of 1/N=1/13 (x)") == "off by a factor of 1/N (x)"


# ---- the command ----------------------------------------------------------------------------
def test_a_small_class_is_graded_into_every_file(small, tmp_path, capsys):
    out = tmp_path / "grades"
    code, err = grade(capsys, small, "--out", out)
    assert code == 0, err
    got = rows(out)
    assert {r: got[r]["status"] for r in got} == {
        "alice_numpy": "pass", "dave_sum": "fail", "erin_sign": "fail", "grace_bias": "fail",
        "ivan_renamed": "missing"}
    assert got["alice_numpy"]["score"] == got["alice_numpy"]["max_score"] == "11.0"
    # dave and erin: the loss and the shapes are right; grace: the loss, W1 and W2
    assert [(got[n]["score"], got[n]["checks_passed"]) for n in ("dave_sum", "erin_sign",
                                                                   "grace_bias")] == \
        [("2.0", "4"), ("2.0", "4"), ("5.0", "6")]
    assert "factor of N" in got["dave_sum"]["diagnosis"]
    assert got["ivan_renamed"]["diagnosis"] == "ivan_renamed.py has no function 'grads'"
    for name in got:
        feedback = (out / "feedback" / f"{name}.md").read_text()
        assert f"# Feedback: {name}" in feedback
        gs = json.loads((out / "gradescope" / name / "results.json").read_text())
        assert gs["score"] == float(got[name]["score"])
        assert sum(t["max_score"] for t in gs["tests"]) == float(got[name]["max_score"])
        assert {t["visibility"] for t in gs["tests"]} == {"visible", "after_published"}
    summary = (out / "summary.md").read_text()
    assert "| pass | 1 |" in summary and "| fail | 3 |" in summary and "summary.png" in summary
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_feedback_never_shows_a_hidden_problem(small, tmp_path, capsys):
    out = tmp_path / "grades"
    assert grade(capsys, small, "--out", out)[0] == 0
    texts = [p.read_text() for p in (out / "feedback").glob("*.md")]
    texts += [p.read_text() for p in (out / "gradescope").rglob("results.json")]
    texts.append((out / "grades.csv").read_text())
    for text in texts:
        for shape in ("F6-H9-K4-N13", "F2-H5-K7-N6", "(13, 6)", "(6, 9)", "N=13", "N=6"):
            assert shape not in text
        assert "hidden problems" not in text or "expected" not in "".join(
            line for line in text.splitlines() if "hidden problems" in line)


def test_the_same_class_gives_the_same_grades_and_a_rerun_is_refused(small, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert grade(capsys, small, "--out", a, "--jobs", "2")[0] == 0
    assert grade(capsys, small, "--out", b, "--jobs", "1")[0] == 0
    assert without_seconds(a) == without_seconds(b)
    assert (a / "feedback" / "dave_sum.md").read_text() == (b / "feedback" / "dave_sum.md").read_text()
    code, err = grade(capsys, small, "--out", a)
    assert code == 2 and "exists and is not empty (--resume finishes it" in err


def test_resume_grades_only_what_is_missing(small, tmp_path, capsys):
    out = tmp_path / "grades"
    assert grade(capsys, small, "--out", out)[0] == 0
    before = without_seconds(out)
    (out / "records" / "dave_sum.json").unlink()
    code, err = grade(capsys, small, "--out", out, "--resume")
    assert code == 0 and "(4 already graded)" in err and "[1/1] dave_sum" in err
    assert without_seconds(out) == before
    (tmp_path / "other.toml").write_text("[points]\nW1 = 7\n")
    code, err = grade(capsys, small, "--out", out, "--resume", "--rubric", tmp_path / "other.toml")
    assert code == 2 and "another rubric" in err


def test_a_second_grade_into_a_locked_folder_is_refused(small, tmp_path, capsys):
    import fcntl

    out = tmp_path / "grades"
    out.mkdir()
    with open(out / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write("4242")
        f.flush()
        code, err = grade(capsys, small, "--out", out)
    assert code == 2 and "being written by another grade (pid 4242)" in err


@pytest.mark.parametrize("argv, words", [
    (["{nowhere}", "--out", "{out}"], "no such folder or .zip"),
    (["{small}", "--out", "{out}", "--jobs", "0"], "--jobs must be a positive integer"),
    (["{small}", "--out", "{out}", "--timeout", "0"], "--timeout must be a positive number"),
    (["{small}", "--out", "{out}", "--memory", "lots"], "--memory must be a size"),
    (["{small}", "--out", "{out}", "--function", "9x"], "--function must be a Python name"),
    (["{small}", "--out", "{out}", "--resume"], "holds no grades to resume"),
    (["{small}", "--out", "{out}", "--isolation", "none"], "invalid choice"),
    (["{small}"], "the following arguments are required: --out"),
])
def test_usage_errors_are_one_line_exit_2(small, tmp_path, capsys, argv, words):
    argv = [a.format(small=small, out=tmp_path / "o", nowhere=tmp_path / "nowhere")
            for a in argv]
    code, err = grade(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and words in err, err


def test_a_zip_of_the_class_grades_as_the_folder_does(small, tmp_path, capsys):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(small.iterdir()):
            z.write(path, f"class/{path.name}")
    assert grade(capsys, archive, "--out", tmp_path / "z")[0] == 0
    assert grade(capsys, small, "--out", tmp_path / "f")[0] == 0
    assert without_seconds(tmp_path / "z") == without_seconds(tmp_path / "f")
