"""`report RUN_A RUN_B ... --out DIR`: one report from runs of different machines, each run's
figures kept inside it (harness/report/multi.py), on synthetic run folders."""

from __future__ import annotations

import pandas as pd
import pytest

from harness import cli
from harness.report import multi
from tests.fixtures.runfolder import write_run

GPU_BOX = {"host": "gpu-box", "cpu_model": "Other CPU 16-core", "python": "3.12.3",
           "gpus": [{"name": "Synthetic H100", "driver": "550.0", "memory": "81559 MiB"}],
           "cpus": {"logical": 16, "usable": 16, "physical": 16}}


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    cpu = write_run(root / "cpu-run")
    gpu = write_run(root / "gpu-run", gpu=True, machine=GPU_BOX)
    out = root / "both"
    assert cli.main(["report", str(cpu), str(gpu), "--out", str(out)]) == 0
    return cpu, gpu, out, (out / "report.md").read_text()


def test_runs_are_labelled_by_machine_and_their_facts_sit_side_by_side(two):
    _, _, _, text = two
    cpu, gpu = "Synthetic CPU @ 3 GHz on synthetic", "Synthetic H100 on gpu-box"
    assert f"| fact | {cpu} | {gpu} |" in text
    for row in ("| GPU | none | Synthetic H100, 81559 MiB, 550.0 |",
                "| Python | 3.11.2 | 3.12.3 |",
                "| CPU | Synthetic CPU @ 3 GHz; 2 usable | Other CPU 16-core; 16 usable |",
                "| matmul peak, GFLOP/s (best round) | cpu: 60 | cpu: 60; gpu: 50,000 |",
                "| cupy | - | 13.3.0 |", "| threads per cell | 2 | 2 |"):
        assert row in text, row
    assert f"| {gpu} | cupy default gpu |" in text and f"| {cpu} | numpy default cpu |" in text


def test_speed_ups_are_each_runs_own_and_no_time_is_divided_across_machines(two):
    cpu, gpu, _, text = two
    cells = {run: pd.read_csv(run / "cells.csv") for run in (cpu, gpu)}
    for run, label in ((cpu, "Synthetic CPU @ 3 GHz on synthetic"),
                       (gpu, "Synthetic H100 on gpu-box")):
        c = cells[run]
        for impl, mode, device in (("torch", "eager", "cpu"), ("jax", "jit", "cpu")):
            row = c[(c["impl"] == impl) & (c["mode"] == mode) & (c["device"] == device)
                    & (c["size"] == "xl")].iloc[0]
            line = next(ln for ln in text.splitlines()
                        if ln.startswith(f"| {label} | {impl} {mode} {device} |"))
            assert line.rstrip(" |").endswith(f"({row['speedup']:.2f}x)"), line
    c = cells[gpu]
    jit = c[(c["impl"] == "jax") & (c["device"] == "gpu") & (c["size"] == "xl")].iloc[0]
    assert f"({jit['speedup']:.2f}x)" in text  # against numpy on the GPU machine's own CPU
    assert "no figure here is a ratio across machines" in text
    assert "| xl | torch compile cpu, 802 ms | jax jit gpu, 4.03 ms |" in text


def test_one_panel_per_machine(two):
    _, _, out, text = two
    assert "![step time per machine](speed_by_machine.png)" in text
    assert (out / "speed_by_machine.png").stat().st_size > 20_000


def test_several_runs_need_out_and_one_run_renders_as_before(tmp_path, capsys, no_png):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b", gpu=True, machine=GPU_BOX)
    assert cli.main(["report", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--out DIR" in err and err.count("\n") == 1
    assert not (a / "report.md").exists() and not (b / "report.md").exists()
    assert cli.main(["report", str(a), str(a), "--out", str(tmp_path / "o")]) == 2
    assert "named twice" in capsys.readouterr().err
    assert cli.main(["report", str(a), "--out", str(tmp_path / "one")]) == 0
    assert "## Speed" in (tmp_path / "one" / "report.md").read_text()


def test_same_machine_twice_broken_runs_and_clashing_sizes_are_said(tmp_path, no_png):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", files=("meta.json",))  # the same machine, no cells.csv
    c = write_run(tmp_path / "c", gpu=True, machine=GPU_BOX)
    cells = pd.read_csv(c / "cells.csv")
    cells.loc[cells["size"] == "xs", "n_hidden"] = 16  # "xs" is another shape in run c
    cells.to_csv(c / "cells.csv", index=False)
    text = multi.render([a, b, c], tmp_path / "out").read_text()
    assert "**Synthetic CPU @ 3 GHz on synthetic (a)**" in text
    assert "**Synthetic CPU @ 3 GHz on synthetic (b)**" in text
    assert "`cells.csv` is missing from this run folder." in text
    assert "_No step time from Synthetic CPU @ 3 GHz on synthetic (b):" in text
    assert "| xs (32x2->8->1) |" in text and "| xs (32x2->16->1) |" in text


def test_compare_says_first_that_the_runs_come_from_different_machines(two, capsys):
    cpu, gpu, _, _ = two
    cli.main(["compare", str(cpu), str(gpu)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("warning: the runs differ: CPU: 'Synthetic CPU @ 3 GHz' in A,"
                               " 'Other CPU 16-core' in B")
    assert any(ln.startswith("warning: the runs differ: GPUs:") for ln in lines[:6])
