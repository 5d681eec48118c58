"""The example class (docs/examples/class/, its README lists what each submission is), graded
as a teacher would: every correct one passes, every planted bug fails with its diagnosis, the
broken notebook and the missing function get their own status, and the hostile one an error
of its own that changes nothing else and leaves nothing running.

    .venv/bin/pytest tests/test_grade_class.py
"""

from __future__ import annotations

import csv
import subprocess
import sys

import psutil
import pytest

from harness.check import isolation
from tests.helpers import ROOT

CLASS = ROOT / "docs" / "examples" / "class"
EXPECTED = {  # submission -> (status, words in the diagnosis)
    "alice_numpy": ("pass", ""),
    "bob_torch": ("pass", ""),
    "carol_notebook": ("pass", ""),
    "dave_sum": ("fail", "off by a factor of N (a sum where the contract has a mean"),
    "erin_sign": ("fail", "sign flipped"),
    "frank_transposed": ("fail", "W1: transposed"),
    "grace_bias": ("fail", "b1: not reduced over the batch"),
    "heidi_notebook": ("error", "cell 3 of 4 raised FileNotFoundError: my_data.csv not found"),
    "ivan_renamed": ("missing", "ivan_renamed.py has no function 'grads'"),
    "mallory_hostile": ("error", "lost its guard process"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("class") / "grades"
    result = subprocess.run([sys.executable, "-m", "harness", "grade", str(CLASS), "--out",
                             str(out), "--jobs", "2"], cwd=ROOT, capture_output=True, text=True,
                            timeout=900)  # a hang guard: it takes well under a minute
    assert result.returncode == 0, result.stderr
    with open(out / "grades.csv", newline="") as f:
        return out, {r["submission"]: r for r in csv.DictReader(f)}, result.stderr


@pytest.mark.slow
def test_every_submission_gets_its_verdict(graded):
    _, rows, _ = graded
    assert set(rows) == set(EXPECTED)
    for name, (status, words) in EXPECTED.items():
        assert rows[name]["status"] == status, (name, rows[name])
        assert words in rows[name]["diagnosis"], (name, rows[name]["diagnosis"])
        if status == "pass":
            assert rows[name]["score"] == rows[name]["max_score"] == "11.0"
    assert rows["frank_transposed"]["file"] == "frank_transposed/network.py"


@pytest.mark.slow
def test_the_output_names_its_isolation_and_the_hostile_one_leaves_nothing(graded):
    out, rows, err = graded
    ok, _ = isolation.bwrap_status()
    assert f"isolation: {'bwrap' if ok else 'process'}" in err
    assert isolation.describe("bwrap" if ok else "process") in (out / "summary.md").read_text()
    left = [p for p in psutil.process_iter(["cmdline"]) if "600.0613" in (p.info["cmdline"] or [])]
    assert not left, "mallory's daemon outlived the grade"
    assert rows["mallory_hostile"]["score"] == "0.0" and len(rows) == len(EXPECTED)


@pytest.mark.slow
def test_feedback_names_the_notebook_cell_and_a_hint(graded):
    out, _, _ = graded
    heidi = (out / "feedback" / "heidi_notebook.md").read_text()
    assert "cell 3 of 4 raised FileNotFoundError" in heidi and "Restart & Run All" in heidi
    dave = (out / "feedback" / "dave_sum.md").read_text()
    assert "**Hint:** The loss is a mean over the N rows" in dave
    assert "python -m harness check --impl dave_sum.py:grads" in dave
    summary = (out / "summary.md").read_text()
    assert "| pass | 3 |" in summary and "| fail | 4 |" in summary and "| error | 2 |" in summary
