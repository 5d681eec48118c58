"""A report says exactly what its files support (issue 19): rows it could not read are counted
and named, a run that did not finish says so first (and what it lacks), an interval carries
the coverage its rounds give it and no verdict comes from too few, a figure above what is
physically expected is flagged with the run's own numbers, a run being written is refused,
and a meta.json of the wrong shape is one line. The runs are copies of the committed reference
runs (results/), damaged the way the issue found them; tests read numbers and structure."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from harness import cli
from harness.report import command as report
from harness.store import RunFolder
from tests.fixtures.runfolder import write_run
from tests.helpers import ROOT

SCALING_RUN = ROOT / "results" / "20261127-034346-scaling"
DEFAULT_RUN = ROOT / "results" / "20261127-034137-default"
HOW_TO_READ = "_How to read this report"


def copy(run, tmp_path):
    out = tmp_path / run.name
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("report.md", "*.png"))
    return out


def head(text: str) -> str:
    """What a report says before its how-to-read paragraph: its first lines."""
    return text.split(HOW_TO_READ, 1)[0]


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def planned(run) -> int:
    return len(json.loads((run / "meta.json").read_text())["plan"]["cells"] if (
        run / "cells.csv").exists() else json.loads((run / "meta.json").read_text())["plan"])


def cut(path, whole: int) -> None:
    """Keep the header and `whole` rows, then half of the next row, as a killed writer would."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1 + whole]) + "\n" + lines[1 + whole][:len(lines[1 + whole]) // 2])


def rows_table(body: str) -> list[dict]:
    """The first markdown table of a section, as rows of {column: cell}."""
    lines = [line for line in body.splitlines() if line.startswith("|")]
    cols = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(cols, (c.strip() for c in line.strip("|").split("|")), strict=True))
            for line in lines[2:]]


# ---- rows that cannot be read, runs that did not finish ------------------------------------------
def test_a_cells_table_cut_mid_row_names_the_row_and_the_cells_it_lacks(tmp_path):
    run = copy(DEFAULT_RUN, tmp_path)
    cut(run / "cells.csv", 7)
    text = report.render(run).read_text()
    first = head(text)
    assert "`cells.csv` line 9" in first  # the torn row, by its line (header = line 1)
    missing, of = map(int, re.search(r"(\d+) of (\d+) planned cells have no row", first).groups())
    assert of == planned(run) and missing == of - 7
    assert "bench --resume" in first
    assert not re.search(r"All \d+ cells ran", text)
    assert f"{missing} of {of} planned cells have no row" in section(text, "Cells that did not run")


def test_a_scaling_table_cut_mid_row_says_every_configuration_it_lacks(tmp_path):
    run = copy(SCALING_RUN, tmp_path)
    cut(run / "scaling.csv", 5)
    torn = pd.read_csv(SCALING_RUN / "scaling.csv").iloc[5]
    text = report.render(run).read_text()
    first = head(text)
    assert "`scaling.csv` line 7" in first and "1 row could not be read" in first
    missing, of = map(int, re.search(r"(\d+) of (\d+) planned configurations have no row",
                                     first).groups())
    assert of == planned(run) == 14 and missing == 14 - 5
    assert "Every planned configuration ran" not in text
    phases = rows_table(section(text, "Where the step time goes"))
    assert len(phases) == 5 and not any(r["engine"].startswith(f"{torn['impl']}/{torn['mode']} "
                                                               f"({torn['launch']})")
                                        and r["W"] == str(torn["workers"]) for r in phases)


def test_a_scaling_run_stopped_after_two_rounds_draws_no_verdict(tmp_path):
    run = copy(SCALING_RUN, tmp_path)
    rows = pd.read_csv(run / "scaling.csv").assign(rounds=2)
    rows.to_csv(run / "scaling.csv", index=False)
    text = report.render(run).read_text()
    assert re.search(r"after 2 of the 6 planned rounds", head(text))
    assert "95%" not in text
    speed = section(text, "Speed-up against workers")
    tables = [rows_table(part) for part in speed.split("**")[1:] if "| engine" in part]
    assert tables and all(r["covers"] == "50%" for t in tables for r in t)
    assert not re.search(r"is (faster|slower|no clear difference) at W", speed)
    judged = re.findall(r"Not judged[^:]*: (.*?)\.\n", speed + "\n")
    assert judged and all(line.count("at W = 2") == 4 for line in judged)


def test_a_run_stopped_before_its_end_says_so_first_and_what_it_lacks(tmp_path):
    run = copy(DEFAULT_RUN, tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    del meta["runs"][-1]["finished_utc"]
    (run / "meta.json").write_text(json.dumps(meta))
    cells = pd.read_csv(run / "cells.csv")
    cells[cells["size"] != "large"].to_csv(run / "cells.csv", index=False)
    first = head(report.render(run).read_text())
    assert "stopped before its end" in first and "every cell of size large" in first
    n = int((cells["size"] == "large").sum())
    assert f"{n} of {len(cells)} planned cells have no row" in first


# ---- intervals and their coverage ----------------------------------------------------------------
def test_coverage_is_what_the_rounds_give():
    from harness.report import coverage  # new with issue 19: imported here, so the rest runs

    assert coverage.coverage(2) == 0.5 and coverage.label(2) == "50%"
    assert coverage.coverage(5) == 1 - 2 / 32 and coverage.label(5) == "93.8%"
    assert coverage.coverage(6) >= 0.95 and coverage.coverage(4) < 0.9
    assert coverage.fewest() == 5
    assert coverage.judge(1.2, 1.5, 4) == coverage.TOO_FEW
    assert coverage.judge(1.2, 1.5, 5) == "faster" and coverage.judge(0.5, 0.9, 10) == "slower"
    assert coverage.judge(0.9, 1.2, 10) == "no clear difference"


@pytest.mark.parametrize("rounds, label, judged", [(10, "97.9%", True), (5, "93.8%", True),
                                                   (3, "75%", False)])
def test_a_cells_report_labels_its_intervals_and_judges_only_from_enough_rounds(
        tmp_path, rounds, label, judged):
    run = write_run(tmp_path / "run")
    cells = pd.read_csv(run / "cells.csv").assign(rounds=rounds)
    cells.to_csv(run / "cells.csv", index=False)
    speed = section(report.render(run).read_text(), "Speed")
    assert f"covering {label} from {rounds} rounds" in speed and "95%" not in speed
    shown = re.findall(r"\| ([\d.]+x \[[\d.]+x, [\d.]+x\][^|]*)\|", speed)
    assert shown
    marked = [s for s in shown if s.rstrip().endswith("?")]
    if judged:
        assert not marked and "faster at" in speed
    else:  # every series but the baseline is unjudged; no word of faster or slower
        assert len(marked) == len(shown) - 5 and "not judged (too few rounds)" in speed
        assert not re.search(r"is (faster|slower) at [a-z]", speed)


# ---- figures outside what is physically expected -------------------------------------------------
def test_an_efficiency_above_100_percent_is_flagged_with_the_phases(tmp_path):
    run = copy(SCALING_RUN, tmp_path)
    rows = pd.read_csv(run / "scaling.csv")
    large = rows["size"] == "large"
    one = large & (rows["impl"] == "jax") & (rows["workers"] == 1)
    two = large & (rows["launch"] == "devices")
    rows.loc[one, "compute_s"] = 0.130
    rows.loc[two, ["speedup", "speedup_low", "speedup_high", "efficiency", "compute_s"]] = \
        [2.29, 2.10, 2.40, 2.29 / 2, 0.047]
    rows.to_csv(run / "scaling.csv", index=False)
    speed = section(report.render(run).read_text(), "Speed-up against workers")
    flagged = [r for part in speed.split("**")[1:] if "| engine" in part
               for r in rows_table(part) if "(!)" in r["efficiency"]]
    assert [(r["engine"], r["W"]) for r in flagged] == [("jax/jit (devices)", "2")]
    item = re.search(r"- \*\*jax/jit \(devices\) at large, W = 2.*", speed).group(0)
    assert "130 ms" in item and "47 ms" in item
    assert f"{0.130 / (2 * 0.047):.2f}x slower" in item  # per sample, from the run's own phases
    assert "its whole interval lies above ideal" in item


def test_a_share_of_peak_above_100_percent_is_flagged_with_its_rate(tmp_path):
    run = write_run(tmp_path / "run")
    cells = pd.read_csv(run / "cells.csv")
    at = (cells["impl"] == "torch") & (cells["mode"] == "eager") & (cells["size"] == "xl")
    cells.loc[at, "peak_fraction"] = 1.25
    cells.to_csv(run / "cells.csv", index=False)
    text = section(report.render(run).read_text(),
                   "Share of the machine's peak, and per-call overhead")
    assert re.search(r"\| xl \|.*125% \(!\)", text)
    gflops = cells.loc[at, "gflops"].iloc[0]
    assert "Above 100% of peak" in text and f"{gflops:.4g} GFLOP/s" in text


# ---- a run being written, a meta.json of the wrong shape -----------------------------------------
def test_a_run_being_written_is_refused_in_one_line(tmp_path, capsys):
    run = copy(DEFAULT_RUN, tmp_path)
    with RunFolder(run).lock():
        assert cli.main(["report", str(run)]) == 2
        assert cli.main(["compare", str(DEFAULT_RUN), str(run)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith("error:") and "still being written" in e
                                 for e in err)
    assert not (run / "report.md").exists()
    (run / ".lock").write_text("12345")  # left by a bench killed with SIGKILL: held by no one
    assert cli.main(["report", str(run)]) == 0


@pytest.mark.parametrize("meta, said", [
    ([], "holds a list, not an object"),
    ({"kind": "scaling", "machine": [], "launches": [1], "peak": []},
     "`meta.json`'s `launches` is a list, not an object"),
])
def test_a_scaling_meta_of_the_wrong_shape_is_one_line(tmp_path, meta, said):
    run = copy(SCALING_RUN, tmp_path)
    (run / "meta.json").write_text(json.dumps(meta))
    text = report.render(run).read_text()
    assert text.startswith("# Scaling report") and said in text
    assert "could not be rendered" not in text and "Error" not in text


def test_a_cells_meta_of_the_wrong_shape_is_one_line(tmp_path):
    run = write_run(tmp_path / "run")
    meta = json.loads((run / "meta.json").read_text())
    meta.update(peak=[], runs={}, machine={**meta["machine"], "versions": [], "gpus": {}})
    (run / "meta.json").write_text(json.dumps(meta))
    text = report.render(run).read_text()
    for key in ("peak", "runs", "machine.versions", "machine.gpus"):
        assert f"`meta.json`'s `{key}` is" in text
    assert "could not be rendered" not in text
