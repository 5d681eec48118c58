"""`report`: renders any stored run folder (complete, broken, older schema) from files alone."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from harness import cli
from harness.report import command as report
from harness.report.speed import crossovers
from tests.fixtures.runfolder import write_run
from tests.helpers import ROOT

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
    # The synthetic cost model makes torch eager overtake numpy at size m, and stay ahead.
    assert ("| torch eager cpu | numpy default cpu | m | 1.28x [1.28, 1.28] | 0.515x [0.515, 0.515]"
            " | yes | yes |") in text
    assert "torch eager cpu is slower at xs and s, faster at m, l and xl" in text
    assert "At the smallest size (xs) the fastest is numpy default cpu (4.3 us;" in text
    assert "40 of 40 comparisons are within tolerance" in text
    assert ("torch compile cpu, up to 8 s (at xl, the largest size it ran, repaid against"
            " torch eager cpu after 80 steps)") in text
    assert "On moons (target 0.9), numpy default cpu gets there first, in 0.05 s" in text
    assert "never steps" not in text and "after 1 steps" not in text


def test_gpu_runs_name_the_device_and_the_crossover(full):
    run, text = full
    assert "| cupy default gpu |" in text and "| numpy default cpu |" in text
    assert "Below size s a CPU series is fastest; from s on, a GPU series is" in text
    assert "| GPU | Synthetic H100, driver 550.0, memory 81559 MiB |" in text
    assert "gpu: 50,000.0 GFLOP/s (torch (eager) float32 training step" in text


def test_cpu_only_labels_carry_no_device(tmp_path):
    text = report.render(write_run(tmp_path / "cpu")).read_text()
    assert "| size | jax jit | jax nojit | numpy default |" in text
    assert " cpu |" not in text.split("## Speed")[1].split("## Compile")[0]
    assert "GPU series" not in text


def test_peer_section_says_what_the_peer_shares_with_us(full):
    _, text = full
    peer = text.split("## scikit-learn, the peer\n")[1]
    assert "not held to this project's contract" not in peer
    for fact in ("starts from the shared initialisation", "the same loss", "our `bce`",
                 "no `mse`", "no momentum", "tests/test_peer.py", "input validation included"):
        assert fact in peer, fact
    # The cost model gives sklearn a larger fixed cost per call than numpy: the ratio falls.
    assert "The ratio falls from" in peer and "at xs to" in peer


def test_setup_is_a_short_human_table(full):
    _, text = full
    setup = text.split("## Setup\n")[1].split("\n## ")[0]
    rows = [line for line in setup.splitlines() if line.startswith("| ")]
    assert len(rows) < 25, rows  # the facts and the precision table, not a meta.json dump
    for row in ("| machine | Synthetic CPU @ 3 GHz; 2 cores usable (4 logical, 2 physical);"
                " 16.0 GiB memory |",
                "| libraries | numpy 2.1.0, torch 2.13.0, jax 0.5.0, jaxlib 0.5.0, cupy 13.3.0,"
                " scikit-learn 1.6.0 |",
                "| OPENBLAS_CORETYPE | not set |",
                "| BLAS (NumPy's) | openblas 0.3.27, 2 threads (pthreads, Haswell) |",
                "| git commit | `0123456789ab` (uncommitted changes) |",
                "| training | loss bce, hidden activation sigmoid, learning rate 0.1, dtypes float32 |"):
        assert row in setup, row
    assert "thread budget | 2 threads, pinned to CPUs 0, 1; environment set: OMP_NUM_THREADS" in setup
    assert "a fresh folder per cell" in setup
    assert "None" not in setup and "impl_info" not in setup and "thread_budget." not in setup
    assert "Everything else" in setup and "`meta.json`" in setup


def test_setup_survives_sparse_meta(tmp_path):
    run = write_run(tmp_path / "run")
    (run / "meta.json").write_text('{"schema_version": 1}')  # every fact is missing
    text = report.render(run).read_text()
    assert "could not be rendered" not in text
    setup = text.split("## Setup\n")[1].split("\n## ")[0]
    assert "_No metadata" in setup and "This run holds" in setup


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
    assert "This run folder has schema version 0; this report reads version 2" in text
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


def test_crossovers_find_the_size_where_order_flips_and_judge_it_on_paired_rounds():
    cells = pd.DataFrame({
        "label": ["a"] * 3 + ["b"] * 3, "dtype": "float32", "size": ["s", "m", "l"] * 2,
        "flops_per_step": [1, 10, 100] * 2, "step_median_s": [1, 2, 3, 2, 2.5, 2.9]})
    burst = [1, 1, 1, 4, 1, 1, 1, 1, 1, 1]  # round 3 hits both series alike: pairing cancels it
    rounds = pd.DataFrame([{"label": label, "size": size, "round": r, "value": t * burst[r]}
                           for label, size, t in zip(cells["label"], cells["size"],
                                                     cells["step_median_s"], strict=True)
                           for r in range(10)])
    (found,) = crossovers(cells, rounds).to_dict("records")
    assert (found["faster"], found["than"], found["from_size"]) == ("b", "a", "l")
    assert found["before"] == "1.25x [1.25, 1.25]" and found["upward"] and found["clear"]
    wobble = [1, 1.3, 0.7, 1.2, 0.8, 1.1, 0.9]  # a period of 7: unlike in the other series
    noisy = rounds.assign(value=rounds["value"] * (wobble * 9)[:len(rounds)])
    assert not crossovers(cells, noisy).iloc[0]["clear"]  # the intervals straddle 1
    assert crossovers(cells).iloc[0]["before"] == "-"  # no rounds: no interval, never clear


@pytest.mark.slow
def test_report_never_imports_a_framework(tmp_path):
    run = write_run(tmp_path / "run", gpu=True)
    code = ("import sys; from harness.report.command import render; render(__import__('pathlib').Path("
            f"{str(run)!r})); bad = [m for m in ('torch', 'jax', 'cupy') if m in sys.modules];"
            " assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
