"""Run folders: schema, atomic writes, never overwriting, and resuming an interrupted run."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import re

import pytest

from harness import cli, store
from harness.bench import command as bench
from harness.bench.rows import cell_row
from harness.codec import from_row, to_row
from harness.measure.records import Block, Key, Outcome, Sample
from harness.store import (
    CELL_COLUMNS,
    SAMPLE_COLUMNS,
    TTA_COLUMNS,
    CellKey,
    CellRow,
    RunFolder,
    ScalingKey,
    ScalingRow,
)

NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def _samples(*values) -> list[dict]:
    return [{"round": i, "position": 0, "sample": 0, "seconds_per_step": v}
            for i, v in enumerate(values)]


def _row(**kw) -> dict:
    base = {"impl": "numpy", "mode": "default", "device": "cpu", "dtype": "float32",
            "size": "tiny", "status": "ok", "step_median_s": 1e-4}
    return {**base, **kw}


def test_run_folder_schema(tmp_path, root):
    run = RunFolder.create(tmp_path, "quick", {"note": "x"}, now=NOW)
    assert run.path.name == "20250102-030405-quick"
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta["schema_version"] == store.SCHEMA_VERSION and meta["note"] == "x"
    for name, cols in (("cells.csv", CELL_COLUMNS), ("samples.csv", SAMPLE_COLUMNS),
                       ("tta.csv", TTA_COLUMNS)):
        assert (run.path / name).read_text().splitlines() == [",".join(cols)]
    # docs/architecture.md's cells.csv columns come first, in its order (additions after).
    doc = (root / "docs" / "architecture.md").read_text()
    listed = re.search(r"`cells.csv` columns: `(.*?)`", doc, re.S).group(1)
    documented = [c.split("(")[0].strip() for c in listed.split(",")]  # "status (ok|...)"
    assert list(CELL_COLUMNS[: len(documented)]) == documented


def test_values_round_trip_with_full_precision(tmp_path):
    run = RunFolder.create(tmp_path, "quick", now=NOW)
    run.add_cell(_row(step_median_s=1 / 3, noisy=False, reason=None), samples=_samples(0.1, 1 / 7))
    run.flush()
    back = RunFolder.open(run.path)
    assert float(back.cells[0]["step_median_s"]) == 1 / 3  # repr: no digits lost
    assert back.cells[0]["reason"] == "" and back.cells[0]["noisy"] == "False"
    assert [float(s["seconds_per_step"]) for s in back.samples] == [0.1, 1 / 7]
    with pytest.raises(ValueError, match="status"):
        run.add_cell(_row(status="weird"))


def test_never_overwrites_an_existing_run(tmp_path):
    first = RunFolder.create(tmp_path, "quick", now=NOW)
    first.add_cell(_row())
    first.flush()
    second = RunFolder.create(tmp_path, "quick", now=NOW)
    third = RunFolder.create(tmp_path, "quick", now=NOW)
    assert [second.path.name, third.path.name] == ["20250102-030405-quick-2",
                                                   "20250102-030405-quick-3"]
    assert len(RunFolder.open(first.path).cells) == 1  # untouched


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "cells.csv"
    store.atomic_write(target, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.atomic_write(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cells.csv"]  # no temporary left behind


def test_load_rejects_non_runs_and_drops_uncommitted_samples(tmp_path):
    with pytest.raises(ValueError, match="not a run folder"):
        RunFolder.open(tmp_path)
    run = RunFolder.create(tmp_path, "quick", now=NOW)
    run.add_cell(_row(), samples=_samples(1.0, 2.0))
    run.flush()
    # Interrupted between samples.csv and cells.csv: samples of a cell with no row.
    orphan = {**{c: "x" for c in CellKey._fields}, "round": 0, "position": 0, "sample": 0,
              "seconds_per_step": 9.0}
    store.atomic_write(run.path / "samples.csv",
                         store.csv_text(SAMPLE_COLUMNS, run.samples + [orphan]))
    assert len(RunFolder.open(run.path).samples) == 2
    (run.path / "meta.json").write_text(json.dumps({"schema_version": 999}))
    with pytest.raises(ValueError, match="schema_version"):
        RunFolder.open(run.path)


def _args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.slow
def test_resume_runs_only_the_missing_cells(tmp_path, capsys):
    args = _args(["--profile", "quick", "--impl", "numpy", "--no-check", "--out", str(tmp_path)])
    run, settings, plan = bench.create(args)
    first, second = plan.cells  # quick: tiny and small
    # An interrupted run: the first cell finished (a sentinel value marks it), nothing else.
    row = dataclasses.replace(cell_row(first, settings, Outcome("ok")), step_median_s=123.0)
    run.add_cell(row, samples=_samples(123.0))
    run.flush()
    assert cli.main(["bench", "--resume", str(run.path)]) == 0
    done = RunFolder.open(run.path)
    assert [(c["size"], c["status"]) for c in done.cells] == [("tiny", "ok"), ("small", "ok")]
    assert done.cells[0]["step_median_s"] == "123.0"  # not re-run
    assert {s["size"] for s in done.samples} == {"tiny", "small"}
    assert len(done.tta) == 1 and done.meta["runs"][-1]["resume"] is True
    assert "cpu" in done.meta["peak"]  # measured by the resumed run, which needed it
    # Resuming a complete run runs nothing and changes nothing.
    before = (run.path / "cells.csv").read_text()
    assert cli.main(["bench", "--resume", str(run.path)]) == 0
    assert (run.path / "cells.csv").read_text() == before
    assert "(0 cells, 0 time-to-accuracy runs)" in capsys.readouterr().out


def test_rows_are_typed_on_the_way_in_and_out(tmp_path):
    """A CellRow and its Block records in, the same typed row out; a value that does not parse
    as its column's type drops its row, naming the line, the column and the value."""
    row = CellRow("torch", "eager", "cpu", "float32", "tiny", n_samples=64, status="ok",
                  step_median_s=1 / 3, noisy=True, rounds=10, speedup=None)
    assert from_row(CellRow, to_row(row)) == row
    run = RunFolder.create(tmp_path, "quick", now=NOW)
    blocks = [Block(Key("torch", "eager", "cpu", "float32", "tiny"), r, 1,
                    (Sample(1e-3 * (r + 1)), Sample(2e-3))) for r in range(2)]
    run.add_cell(row, blocks)
    run.flush()
    back = RunFolder.open(run.path)
    assert back.rows() == [row]
    assert [(s["round"], s["position"], s["sample"]) for s in back.samples] == [
        ("0", "1", "0"), ("0", "1", "1"), ("1", "1", "0"), ("1", "1", "1")]
    text = (run.path / "cells.csv").read_text().replace(",10,", ",ten,")
    (run.path / "cells.csv").write_text(text)
    broken = RunFolder.open(run.path)
    assert broken.cells == [] and broken.samples == []
    assert broken.dropped == ["cells.csv line 2: rounds 'ten' is not an integer; its cell will "
                              "be rerun"]
    with pytest.raises(ValueError, match="status 'weird' is not one of ok, failed"):
        CellRow("numpy", "default", "cpu", "float32", "tiny", status="weird")


def test_scaling_keys_and_rows_carry_workers_as_a_number():
    row = ScalingRow("jax", "jit", "devices", "cpu", "float32", "tiny", 2, status="ok",
                     speedup=1.5, cores="0,1")
    text = to_row(row)
    assert text["workers"] == "2" and from_row(ScalingRow, text) == row
    assert ScalingKey.of(text).workers == 2 and ScalingKey.of(text) == ScalingKey.of(row)


def test_the_kind_of_a_run_is_what_its_meta_says(tmp_path):
    """Never guessed from which files exist: a folder with scaling.csv and no kind is a cells
    run; one whose meta says scaling is refused by RunFolder.open, which names it."""
    assert store.kind_of({}) == "cells" and store.kind_of({"kind": "scaling"}) == "scaling"
    with pytest.raises(ValueError, match="kind 'nonsense'"):
        store.kind_of({"kind": "nonsense"})
    cells = RunFolder.create(tmp_path, "quick", now=NOW)
    (cells.path / "scaling.csv").write_text("impl\n")
    assert store.folder_kind(cells.path) == "cells"
    scaling = RunFolder.create(tmp_path, "scaling", {"kind": "scaling"}, now=NOW,
                               bench_tables=False)
    assert store.folder_kind(scaling.path) == "scaling"
    with pytest.raises(ValueError, match="is a scaling run .meta.json's kind.: it has no cells.csv"):
        RunFolder.open(scaling.path)
