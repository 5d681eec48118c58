"""`compare` on synthetic runs: a change needs significance AND a minimum effect."""

from __future__ import annotations

import numpy as np
import pytest

from harness import cli
from harness.report.compare import compare_runs
from harness.store import RunFolder


def _run(root, name: str, cells: dict[str, tuple[str, list[float]]]) -> RunFolder:
    """A run folder holding one cell per size: size -> (status, samples)."""
    run = RunFolder.create(root / name, "synthetic")
    for size, (status, samples) in cells.items():
        run.add_cell({"impl": "numpy", "mode": "default", "device": "cpu", "dtype": "float32",
                      "size": size, "status": status,
                      "step_median_s": float(np.median(samples)) if samples else None},
                     samples=samples)
    run.flush()
    return RunFolder.open(run.path)  # as compare reads it: strings from CSV


def _samples(median: float, spread: float, n: int = 11, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(median * (1 + spread * rng.uniform(-1, 1, n)))


def test_identical_runs_show_no_change(tmp_path, capsys):
    cells = {"tiny": ("ok", _samples(1e-4, 0.02)), "large": ("ok", _samples(0.1, 0.02, seed=1))}
    a, b = _run(tmp_path, "a", cells), _run(tmp_path, "b", cells)
    assert cli.main(["compare", str(a.path), str(b.path)]) == 0
    out = capsys.readouterr().out
    assert "0 regression(s)" in out and "slower" not in out
    assert [c.verdict for c in compare_runs(a, b)] == ["same", "same"]


def test_clearly_slower_is_a_regression(tmp_path, capsys):
    a = _run(tmp_path, "a", {"tiny": ("ok", _samples(1e-4, 0.02))})
    b = _run(tmp_path, "b", {"tiny": ("ok", _samples(1.5e-4, 0.02, seed=1))})
    assert cli.main(["compare", str(a.path), str(b.path)]) == 1
    (change,) = compare_runs(a, b)
    assert change.verdict == "slower" and change.p < 0.01
    assert change.ratio == pytest.approx(1.5, rel=0.05)
    assert "1 regression(s)" in capsys.readouterr().out
    # The other way round it is an improvement, not a regression.
    assert cli.main(["compare", str(b.path), str(a.path)]) == 0
    assert compare_runs(b, a)[0].verdict == "faster"


def test_noisy_small_difference_is_not_flagged(tmp_path):
    # 5% slower in the median, samples spread +-40%: neither significant nor large.
    a = _run(tmp_path, "a", {"tiny": ("ok", _samples(1e-4, 0.4, seed=2))})
    b = _run(tmp_path, "b", {"tiny": ("ok", _samples(1.05e-4, 0.4, seed=3))})
    (change,) = compare_runs(a, b)
    assert change.verdict == "same" and not change.regression


def test_significant_but_below_minimum_effect_is_not_flagged(tmp_path):
    # 3% slower with almost no noise: Mann-Whitney says "different", the effect is too small.
    a = _run(tmp_path, "a", {"tiny": ("ok", _samples(1e-4, 0.001))})
    b = _run(tmp_path, "b", {"tiny": ("ok", _samples(1.03e-4, 0.001, seed=1))})
    (change,) = compare_runs(a, b)
    assert change.p < 0.01 and change.verdict == "same"
    assert compare_runs(a, b, min_effect=0.01)[0].verdict == "slower"


def test_too_few_samples_are_never_flagged(tmp_path):
    a = _run(tmp_path, "a", {"large": ("ok", [1.0, 1.01, 0.99])})
    b = _run(tmp_path, "b", {"large": ("ok", [2.0, 2.01, 1.99])})
    (change,) = compare_runs(a, b)
    assert change.verdict == "same" and "too few samples" in change.note


def test_a_cell_that_broke_is_a_regression_and_missing_cells_are_listed(tmp_path):
    a = _run(tmp_path, "a", {"tiny": ("ok", _samples(1e-4, 0.02)), "small": ("ok", [1.0] * 5)})
    b = _run(tmp_path, "b", {"tiny": ("failed", []), "large": ("ok", [1.0] * 5)})
    verdicts = {c.key[-1]: (c.verdict, c.note) for c in compare_runs(a, b)}
    assert verdicts["tiny"][0] == "broken"
    assert verdicts["small"] == ("not compared", "only in A")
    assert verdicts["large"] == ("not compared", "only in B")
    assert cli.main(["compare", str(a.path), str(b.path)]) == 1


def test_bad_paths_exit_2(tmp_path, capsys):
    a = _run(tmp_path, "a", {"tiny": ("ok", [1.0] * 5)})
    assert cli.main(["compare", str(a.path), str(tmp_path / "nope")]) == 2
    assert cli.main(["compare", str(a.path), str(tmp_path)]) == 2  # a folder, not a run
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)
