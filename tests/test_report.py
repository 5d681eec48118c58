"""`report`: renders any stored run folder (complete, broken, older schema) from files alone."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from harness import cli, report
from tests.conftest import ROOT
from tests.fixtures.runfolder import write_run

SECTIONS = [title for title, _ in report.SECTIONS]
PNGS = ("speed.png", "speedup.png", "curves.png", "tta.png", "memory.png")


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("runs") / "full", gpu=True)
    return run, report.render(run).read_text()


def test_complete_run_has_every_section_and_plot(full):
    run, text = full
    for title in SECTIONS:
        assert f"## {title}\n" in text
    assert "could not be rendered" not in text and "Not shown" not in text
    for name in PNGS:
        assert (run / name).stat().st_size > 10_000, name
        assert f"]({name})" in text
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temp files left


def test_readings_come_from_the_numbers(full):
    _, text = full
    # The synthetic cost model makes torch eager overtake numpy at size m, and nothing else.
    assert "torch eager overtakes numpy default from size m upward" in text
    assert "At the smallest size (xs) the fastest is numpy default" in text
    assert "40 of 40 comparisons are within tolerance" in text
    assert "torch compile up to 8 s (repaid after 80 steps at size xl against torch eager)" in text
    assert "On moons (target 0.9), numpy default gets there first, in 0.05 s" in text


def test_failed_and_unavailable_cells_are_listed_with_reasons(tmp_path):
    run = write_run(tmp_path / "broken", broken=True)
    text = report.render(run).read_text()
    assert "3 of 29 cells did not produce a time (1 failed, 1 timeout, 1 unavailable)" in text
    for reason in ("RuntimeError: out of memory", "cell exceeded 600 s", "cupy is not installed",
                   "no CUDA device", "off by a factor N (mean vs sum)"):
        assert reason in text
    assert "**1 comparisons fail:**" in text
    assert "could not be rendered" not in text


def test_older_schema_renders_and_says_what_it_cannot_show(tmp_path):
    run = write_run(tmp_path / "old", schema_version=0, files=("meta.json", "cells.csv"),
                    drop_columns=("first_call_s", "peak_fraction", "peak_mem_bytes", "status"))
    text = report.render(run).read_text()
    assert "This run folder has schema version 0; this report reads version 1" in text
    assert "no `first_call_s` column (schema version 0)" in text
    assert "no `peak_fraction` column" in text and "no `peak_mem_bytes` column" in text
    assert "_Not measured in this run: there is no `tta.csv`._" in text
    assert "`cells.csv` has no `status` column; assumed 'ok'" in text
    assert "## Speed\n\nSteady step time" in text  # what it can show, it shows


@pytest.mark.parametrize("content", ["", "impl,mode\n", "not,a\ncsv\"\n"])
def test_unreadable_or_empty_tables_do_not_crash(tmp_path, content):
    (tmp_path / "cells.csv").write_text(content)
    (tmp_path / "meta.json").write_text("{broken")
    text = report.render(tmp_path).read_text()
    assert "`meta.json` could not be read" in text
    assert "could not be rendered" not in text


def test_bad_paths_exit_2_with_one_line(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert cli.main(["report", str(tmp_path)]) == 2  # a folder, but not a run folder
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a directory" in err[0] and "not a run folder" in err[1]


def test_crossovers_finds_the_size_where_order_flips():
    cells = pd.DataFrame({
        "label": ["a"] * 3 + ["b"] * 3, "dtype": "float32", "size": ["s", "m", "l"] * 2,
        "flops_per_step": [1, 10, 100] * 2, "step_median_s": [1, 2, 3, 2, 2.5, 2.9],
        "step_iqr_s": [0.01] * 6})
    found = report.crossovers(cells)
    assert found.to_dict("records") == [
        {"faster": "b", "than": "a", "from_size": "l", "upward": True, "within_noise": False}]


@pytest.mark.slow
def test_report_never_imports_a_framework(tmp_path):
    run = write_run(tmp_path / "run", gpu=True)
    code = ("import sys; from harness import report; report.render(__import__('pathlib').Path("
            f"{str(run)!r})); bad = [m for m in ('torch', 'jax', 'cupy') if m in sys.modules];"
            " assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
