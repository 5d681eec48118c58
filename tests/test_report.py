"""`report`: renders any stored run folder (complete, broken, older schema) from files alone."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pandas as pd
import pytest

from harness import cli
from harness.report import command as report
from harness.report.speed import crossovers
from impls import contract
from tests.fixtures.runfolder import GPU_SERIES, PEAK, SERIES, SIZES, write_run
from tests.helpers import ROOT

SECTIONS = [title for title, _ in report.SECTIONS]
PNGS = ("speed.png", "speedup.png", "curves.png", "tta.png", "memory.png")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The complete GPU run, rendered once, in a fresh interpreter: (run, report.md's text,
    the frameworks that render imported). One render serves every test that reads it and
    test_report_never_imports_a_framework, which needs a fresh interpreter anyway."""
    run = write_run(tmp_path_factory.mktemp("runs") / "full", gpu=True)
    code = ("import sys; from harness.report.command import render; render(__import__('pathlib').Path("
            f"{str(run)!r})); print(','.join(m for m in ('torch', 'jax', 'cupy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120,
                         capture_output=True, text=True)
    imported = [m for m in out.stdout.strip().split(",") if m]
    return run, (run / "report.md").read_text(), imported


@pytest.fixture(scope="module")
def full(rendered):
    run, text, _ = rendered
    return run, text


def test_complete_run_has_every_section_and_plot(full):
    run, text = full
    for title in SECTIONS:
        assert f"## {title}\n" in text
    assert "could not be rendered" not in text and "Not shown" not in text
    for name in PNGS:
        assert (run / name).stat().st_size > 10_000, name
        assert f"]({name})" in text
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temp files left


# ---- reading the report as data: its sections, tables and figures -------------------------------
def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def tables(body: str) -> list[list[dict]]:
    """Every markdown table of a section, as rows of {column: cell}."""
    out, lines = [], body.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            head = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("| "):
                    break
                rows.append(dict(zip(head, (c.strip() for c in row.strip("|").split("|")),
                                     strict=True)))
            out.append(rows)
    return out


def figures(cell: str) -> list[float]:
    """The numbers in a table cell: '1.28x [1.25, 1.31]' -> [1.28, 1.25, 1.31]."""
    return [float(x.replace(",", "")) for x in re.findall(r"-?\d[\d,]*\.?\d*(?:e[-+]?\d+)?", cell)]


def seconds(cell: str) -> float:
    """The first time in a cell, in seconds: '4.3 us [4.17 us, 4.43 us]' -> 4.3e-06."""
    value, unit = re.match(r"([\d.]+) (ns|us|ms|s)\b", cell).groups()
    return float(value) * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def step(impl, mode, device, size) -> float:
    """The fixture's cost model: the step time it wrote for a cell."""
    overhead, rate, _, _ = {**SERIES, **GPU_SERIES}[(impl, mode, device)]
    return overhead + contract.flops_per_step(*SIZES[size]) / rate


def test_readings_come_from_the_numbers(full):
    _, text = full
    speed = section(text, "Speed")
    times, ratios, cross = tables(speed)
    # The step-time table holds the cost model's times (to the 3 digits shown).
    for row in times:
        for label in ("numpy default cpu", "torch eager cpu", "jax jit gpu"):
            impl, mode, device = label.split()
            assert seconds(row[label]) == pytest.approx(step(impl, mode, device, row["size"]),
                                                        rel=5e-3), (label, row["size"])
    # Speed-ups over numpy, and where torch eager is clearly faster (the interval above 1).
    for row in ratios:
        x, lo, hi = figures(row["torch eager cpu"])
        expected = step("numpy", "default", "cpu", row["size"]) / step("torch", "eager", "cpu",
                                                                       row["size"])
        assert x == pytest.approx(expected, rel=5e-3) and lo < x < hi
        assert (lo > 1) == (row["size"] in ("m", "l", "xl")) and (hi < 1) == (row["size"] in
                                                                              ("xs", "s"))
    # The crossover: torch eager overtakes numpy at m, clearly, and stays ahead.
    (found,) = [r for r in cross if (r["series"], r["overtakes"]) == ("torch eager cpu",
                                                                      "numpy default cpu")]
    assert found["at size"] == "m" and found["stays ahead"] == found["clear"] == "yes"
    assert figures(found["time ratio before"])[0] == pytest.approx(
        step("torch", "eager", "cpu", "s") / step("numpy", "default", "cpu", "s"), rel=5e-3)
    assert figures(found["time ratio at"])[0] == pytest.approx(
        step("torch", "eager", "cpu", "m") / step("numpy", "default", "cpu", "m"), rel=5e-3)
    # The fastest at the smallest size is the table's minimum.
    xs = times[0]
    fastest = min((k for k in xs if k != "size"), key=lambda k: seconds(xs[k]))
    assert f"the fastest is {fastest} (" in speed and fastest == "numpy default cpu"
    # Gradient agreement: every comparison of the check, none failing.
    (groups,) = tables(section(text, "Gradient agreement"))
    assert sum(int(r["checks"]) for r in groups) == 40 and {r["failing"] for r in groups} == {"0"}
    # Compile cost: torch compile's 8 s first call repaid against eager after 8 / (t_e - t_c).
    compile_rows = tables(section(text, "Compile cost"))[0]
    (tc,) = [r for r in compile_rows if r["label"] == "torch compile cpu"]
    extra, steps_ = figures(tc["xl"])
    saved = step("torch", "eager", "cpu", "xl") - step("torch", "compile", "cpu", "xl")
    assert extra == 8 and steps_ == math.ceil((8.0 - 0.05) / saved)
    # Time to accuracy: the table holds the stored times; the one named first is the fastest.
    tta = section(text, "Time to accuracy")
    (table,) = tables(tta)
    moons = {r["label"]: figures(r["moons"]) for r in table}
    assert moons == {"jax jit cpu": [0.9, 120], "numpy default cpu": [0.05, 120],
                     "torch eager cpu": [0.4, 120]}
    assert re.search(r"On moons \(target 0\.9\), numpy default cpu gets there first", tta)
    assert "never steps" not in text and "after 1 steps" not in text


def test_gpu_runs_name_the_device_and_the_crossover(full):
    run, text = full
    times = tables(section(text, "Speed"))[0]
    assert {"cupy default gpu", "numpy default cpu"} <= set(times[0])
    fastest = {r["size"]: min((k for k in r if k != "size" and r[k] != "-"),
                              key=lambda k: seconds(r[k])) for r in times}
    first_gpu = next(size for size in SIZES if fastest[size].endswith("gpu"))
    assert first_gpu == "s" and fastest["xs"].endswith("cpu")
    assert re.search(rf"from {first_gpu} on, a GPU series is", section(text, "Speed"))
    facts = {r[""]: r["value"] for r in tables(section(text, "Setup"))[0]}
    assert facts["GPU"] == "Synthetic H100, driver 550.0, memory 81559 MiB"
    gpu_peak = facts["measured matmul peak"].split("gpu:")[1]
    assert figures(gpu_peak)[0] == PEAK["gpu"] / 1e9


def test_cpu_only_labels_carry_no_device(tmp_path, no_png):
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
    setup = section(text, "Setup")
    facts = {r[""]: r["value"] for r in tables(setup)[0]}
    assert len(facts) < 25  # the facts, not a meta.json dump
    assert facts["machine"].startswith("Synthetic CPU @ 3 GHz")
    assert figures(facts["machine"]) == [3, 2, 4, 2, 16.0]  # GHz, usable, logical, physical, GiB
    assert facts["libraries"].split(", ") == ["numpy 2.1.0", "torch 2.13.0", "jax 0.5.0",
                                              "jaxlib 0.5.0", "cupy 13.3.0", "scikit-learn 1.6.0"]
    assert facts["OPENBLAS_CORETYPE"] == "not set"
    blas = facts["BLAS (NumPy's)"]
    assert "openblas 0.3.27" in blas and re.search(r"(\d+) threads", blas)[1] == "2"
    assert facts["git commit"].startswith("`0123456789ab`")
    assert "uncommitted" in facts["git commit"]
    assert "loss bce" in facts["training"] and figures(facts["training"]) == [0.1, 32]
    budget = facts["thread budget"]
    assert figures(budget)[:3] == [2, 0, 1] and "OMP_NUM_THREADS" in budget
    assert "fresh folder per cell" in budget
    assert "None" not in setup and "impl_info" not in setup and "thread_budget." not in setup
    assert "`meta.json`" in setup


def test_setup_survives_sparse_meta(tmp_path, no_png):
    run = write_run(tmp_path / "run")
    (run / "meta.json").write_text('{"schema_version": 1}')  # every fact is missing
    text = report.render(run).read_text()
    assert "could not be rendered" not in text
    setup = text.split("## Setup\n")[1].split("\n## ")[0]
    assert "_No metadata" in setup and "This run holds" in setup


def test_failed_and_unavailable_cells_are_listed_with_reasons(tmp_path, no_png):
    run = write_run(tmp_path / "broken", broken=True)
    text = report.render(run).read_text()
    not_run = section(text, "Cells that did not run")
    bad, unchecked = tables(not_run)
    assert sorted(r["status"] for r in bad) == ["failed", "timeout", "unavailable"]
    assert figures(not_run.strip().split("\n")[0])[:2] == [3, 29]  # 3 of the 29 cells
    assert {r["reason"] for r in bad} == {"RuntimeError: out of memory", "cell exceeded 600 s",
                                          "cupy is not installed"}
    assert unchecked == [{"impl": "cupy", "mode": "default", "device": "gpu",
                          "reason": "no CUDA device"}]
    assert "off by a factor N (mean vs sum)" in section(text, "Gradient agreement")
    assert "could not be rendered" not in text


def test_older_schema_renders_and_says_what_it_cannot_show(tmp_path, no_png):
    run = write_run(tmp_path / "old", schema_version=0, files=("meta.json", "cells.csv"),
                    drop_columns=("first_call_s", "peak_fraction", "peak_mem_bytes", "status"))
    text = report.render(run).read_text()
    notes = text.split("> **What this report cannot show.**", 1)[1].split("\n\n", 1)[0]
    assert figures(notes.splitlines()[1])[:2] == [0, 2]  # this run's version, the report's
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
def test_report_never_imports_a_framework(rendered):
    _, _, bad = rendered  # what a fresh interpreter had imported once its render was done
    assert not bad, bad
