"""`compare` on synthetic runs: the round is the unit of evidence, a change needs its whole
interval beyond the minimum effect, and every way a run B can be broken is said."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import cli
from harness.report.compare import compare_runs
from harness.store import RunFolder

META = {"machine": {"cpu_model": "CPU X", "host": "h", "versions": {"numpy": "2.0"}},
        "thread_budget": {"threads": 2, "cpus": [0, 1]}}


def _run(root, name: str, cells: dict, meta: dict | None = None) -> RunFolder:
    """A run folder with one cell per size: size -> (status, [value per round]), three
    samples per round around that value."""
    run = RunFolder.create(root / name, "synthetic", meta or META)
    for size, (status, rounds) in cells.items():
        samples = [{"round": r, "position": 0, "sample": i, "seconds_per_step": v * f}
                   for r, v in enumerate(rounds) for i, f in enumerate((0.99, 1.0, 1.01))]
        run.add_cell({"impl": "numpy", "mode": "default", "device": "cpu", "dtype": "float32",
                      "size": size, "status": status,
                      "step_median_s": float(np.median(rounds)) if rounds else None},
                     samples=samples)
    run.flush()
    return RunFolder.open(run.path)  # as compare reads it: strings from CSV


def _rounds(median: float, spread: float, n: int = 10, seed: int = 0) -> list[float]:
    """Round values of one run: lognormal noise of `spread` around `median`."""
    return list(median * np.random.default_rng(seed).lognormal(0, spread, n))


def test_two_runs_drawn_from_one_distribution_raise_no_flag(tmp_path, capsys):
    for trial in range(20):  # A/A many times over: compare must not cry wolf
        a = _run(tmp_path / str(trial), "a", {"tiny": ("ok", _rounds(1e-4, 0.08, seed=trial)),
                                              "large": ("ok", _rounds(0.1, 0.03, seed=50 + trial))})
        b = _run(tmp_path / str(trial), "b", {"tiny": ("ok", _rounds(1e-4, 0.08, seed=99 + trial)),
                                              "large": ("ok", _rounds(0.1, 0.03, seed=9 + trial))})
        assert [c.verdict for c in compare_runs(a, b)] == ["same", "same"], trial
    assert cli.main(["compare", str(a.path), str(b.path)]) == 0
    assert "0 slower, 0 faster, 0 broken, 0 lost" in capsys.readouterr().out


def test_an_injected_30_percent_slowdown_is_flagged(tmp_path, capsys):
    a = _run(tmp_path, "a", {"tiny": ("ok", _rounds(1e-4, 0.05))})
    b = _run(tmp_path, "b", {"tiny": ("ok", _rounds(1.3e-4, 0.05, seed=1))})
    assert cli.main(["compare", str(a.path), str(b.path)]) == 1
    (change,) = compare_runs(a, b)
    assert change.verdict == "slower" and change.ratio.low > 1.1
    assert change.ratio.estimate == pytest.approx(1.3, rel=0.08)
    assert "1 slower" in capsys.readouterr().out
    # The other way round it is an improvement, not a regression.
    assert cli.main(["compare", str(b.path), str(a.path)]) == 0
    assert compare_runs(b, a)[0].verdict == "faster"


def test_a_clear_change_under_the_minimum_effect_is_not_flagged(tmp_path):
    a = _run(tmp_path, "a", {"tiny": ("ok", _rounds(1e-4, 0.002))})
    b = _run(tmp_path, "b", {"tiny": ("ok", _rounds(1.04e-4, 0.002, seed=1))})
    (change,) = compare_runs(a, b)
    assert change.ratio.low > 1 and change.verdict == "same" and "under the minimum" in change.note
    assert compare_runs(a, b, min_effect=0.01)[0].verdict == "slower"


def test_too_few_rounds_are_never_flagged(tmp_path):
    a = _run(tmp_path, "a", {"large": ("ok", [1.0, 1.01, 0.99])})
    b = _run(tmp_path, "b", {"large": ("ok", [2.0, 2.01, 1.99])})
    (change,) = compare_runs(a, b)
    assert change.verdict == "same" and "too few rounds" in change.note


def test_broken_lost_and_missing_cells_are_regressions(tmp_path, capsys):
    ok = ("ok", _rounds(1e-4, 0.02))
    a = _run(tmp_path, "a", {"tiny": ok, "small": ok, "medium": ok, "xl": ok})
    b = _run(tmp_path, "b", {"tiny": ("failed", []), "small": ("unavailable", []),
                             "medium": ("ok", []), "large": ok})
    verdicts = {c.key[-1]: (c.verdict, c.note) for c in compare_runs(a, b)}
    assert verdicts["tiny"][0] == "broken"
    assert verdicts["small"][0] == "lost" and "unavailable" in verdicts["small"][1]
    assert verdicts["medium"] == ("lost", "B has no samples of it")
    assert verdicts["xl"] == ("lost", "only in A")
    assert verdicts["large"] == ("not compared", "only in B")
    assert cli.main(["compare", str(a.path), str(b.path)]) == 1
    assert "1 broken, 3 lost" in capsys.readouterr().out


def test_an_empty_or_header_only_run_b_is_a_finding(tmp_path, capsys):
    a = _run(tmp_path, "a", {"tiny": ("ok", _rounds(1e-4, 0.02))})
    b = _run(tmp_path, "b", {})  # cells.csv holds the header only
    assert cli.main(["compare", str(a.path), str(b.path)]) == 1
    assert "no cells at all" in capsys.readouterr().out


def test_different_machines_threads_and_versions_are_said_first(tmp_path, capsys):
    cells = {"tiny": ("ok", _rounds(1e-4, 0.02))}
    other = {"machine": {"cpu_model": "CPU Y", "host": "h", "versions": {"numpy": "2.1"}},
             "thread_budget": {"threads": 1, "cpus": [0]}}
    a, b = _run(tmp_path, "a", cells), _run(tmp_path, "b", cells, other)
    assert cli.main(["compare", str(a.path), str(b.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    warnings = [line for line in out if line.startswith("warning: the runs differ")]
    assert out[:len(warnings)] == warnings  # before anything else
    text = "\n".join(warnings)
    assert "CPU: 'CPU X' in A, 'CPU Y' in B" in text and "threads: 2 in A, 1 in B" in text
    assert "numpy: 2.0 in A, 2.1 in B" in text


@pytest.mark.parametrize("damage, words", [
    (lambda p: (p / "cells.csv").unlink(), "has no cells.csv"),
    (lambda p: (p / "meta.json").write_text("[1, 2]"), "is not a JSON object"),
    (lambda p: (p / "meta.json").write_text("{broken"), "is not valid JSON"),
    (lambda p: (p / "samples.csv").write_text(
        (p / "samples.csv").read_text().replace("0.0001", "abc", 1)), "is not a number"),
])
def test_an_unreadable_run_b_is_a_one_line_error(tmp_path, capsys, damage, words):
    a = _run(tmp_path, "a", {"tiny": ("ok", [1e-4] * 10)})
    b = _run(tmp_path, "b", {"tiny": ("ok", [1e-4] * 10)})
    damage(b.path)
    assert cli.main(["compare", str(a.path), str(b.path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and words in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["--min-effect", "nan"], ["--min-effect", "-1"],
                                  ["--confidence", "1.5"], ["--confidence", "inf"]])
def test_bad_numbers_exit_2(tmp_path, capsys, argv):
    a = _run(tmp_path, "a", {"tiny": ("ok", [1e-4] * 10)})
    assert cli.main(["compare", str(a.path), str(a.path), *argv]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_bad_paths_exit_2(tmp_path, capsys):
    a = _run(tmp_path, "a", {"tiny": ("ok", [1.0] * 5)})
    assert cli.main(["compare", str(a.path), str(tmp_path / "nope")]) == 2
    assert cli.main(["compare", str(a.path), str(tmp_path)]) == 2  # a folder, not a run
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)
    json.loads((a.path / "meta.json").read_text())  # untouched


# ---- what each run is, and how far apart (issues 18 and 19) --------------------------------------
def test_a_scaling_run_is_named_as_such_with_what_the_other_is(tmp_path, capsys):
    import shutil

    from tests.helpers import ROOT

    scaling = shutil.copytree(ROOT / "results" / "20261127-034346-scaling", tmp_path / "s")
    cells = _run(tmp_path, "a", {"tiny": ("ok", [1e-4] * 10)})
    for argv in ([str(scaling), str(cells.path)], [str(cells.path), str(scaling)]):
        assert cli.main(["compare", *argv]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith("error:") for e in err)
    for line in err:
        assert f"{scaling} is a scaling run (profile scaling)" in line
        assert f"{cells.path} is a cells run" in line
        assert "has no cells.csv" not in line


@pytest.mark.parametrize("b_utc, said", [("2025-01-01T00:30:00+00:00", None),
                                         ("2025-01-03T12:00:00+00:00", "started 2.5 days apart")])
def test_runs_far_apart_in_time_are_said_first(tmp_path, capsys, b_utc, said):
    cells = {"tiny": ("ok", _rounds(1e-4, 0.02))}
    a = _run(tmp_path, "a", cells, {**META, "machine": {**META["machine"],
                                                        "utc": "2025-01-01T00:00:00+00:00"}})
    b = _run(tmp_path, "b", cells, {**META, "machine": {**META["machine"], "utc": b_utc}})
    assert cli.main(["compare", str(a.path), str(b.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    warnings = [line for line in out if line.startswith("warning: the runs differ")]
    assert out[:len(warnings)] == warnings
    assert (said is None and not warnings) or (len(warnings) == 1 and said in warnings[0])
    assert cli.main(["compare", str(a.path), str(b.path), "--format", "markdown"]) == 0
    assert (said in capsys.readouterr().out) if said else True


def test_another_machine_and_another_profile_are_said(tmp_path, capsys):
    cells = {"tiny": ("ok", _rounds(1e-4, 0.02))}
    a = _run(tmp_path, "a", cells, {**META, "profile": {"name": "quick"}})
    b = _run(tmp_path, "b", cells, {**META, "profile": {"name": "default"},
                                    "machine": {**META["machine"], "host": "other"}})
    assert cli.main(["compare", str(a.path), str(b.path)]) == 0
    text = "\n".join(line for line in capsys.readouterr().out.splitlines()
                     if line.startswith("warning:"))
    assert "host: 'h' in A, 'other' in B" in text and "profile: 'quick' in A, 'default' in B" in text


def test_a_machine_that_moved_between_the_runs_is_said_by_its_canary():
    from harness.report.weather import machine_moved

    def meta(*canaries):
        return {"weather": {f"s{i}": {"canary_median_s": c} for i, c in enumerate(canaries)}}

    said = machine_moved(meta(50e-6, 52e-6, 48e-6), meta(35e-6, 34e-6, 36e-6))
    assert len(said) == 1 and "read 50 us in A and 35 us in B (43% apart)" in said[0]
    assert "30 us in A and 40 us in B (33% apart)" in machine_moved(meta(30e-6), meta(40e-6))[0]
    assert machine_moved(meta(50e-6), meta(53e-6)) == []  # within 10%: nothing said
    assert machine_moved({}, meta(40e-6)) == [] and machine_moved({"weather": []}, {}) == []
