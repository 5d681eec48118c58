"""The teaching notebook runs top to bottom, and says only what its numbers support.

docs/teaching.py (jupytext "percent" script) is executed headless with nbclient, in a kernel
of this interpreter (the project's environment), against a synthetic run folder in tmp, so
the test never depends on what results/ holds. harness/lessons/notebook.py's helpers (which
run folder, the speed-up sentences, the closing section) are tested on tables made here.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from harness.lessons import notebook as nbm
from harness.lessons.cost import cost_of_change
from tests.fixtures.runfolder import write_run
from tests.helpers import ROOT

BUDGET_S = 90  # the whole notebook, kernel start included, on the 2-core development machine


def _outputs(nb) -> list[str]:
    """Every code cell's outputs as text: streams, markdown, plain text, error names."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream":
                out.append(o["text"])
            elif o["output_type"] == "error":
                out.append(f"ERROR {o['ename']}: {o['evalue']}")
            else:
                data = o.get("data", {})
                out.append(data.get("text/markdown") or data.get("text/plain") or "")
    return out


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("nb") / "run")
    env = {k: v for k, v in os.environ.items() if k != nbm.RUN_ENV}
    env[nbm.RUN_ENV] = str(run)
    start = time.perf_counter()
    nb = nbm.execute(env=env, timeout=60)  # raises CellExecutionError on any cell's error
    return nb, time.perf_counter() - start, run


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_in_time(executed):
    nb, seconds, _ = executed
    assert seconds < BUDGET_S, f"the notebook took {seconds:.0f} s (budget {BUDGET_S} s)"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("outputs") is not None for c in code)
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]


@pytest.mark.slow
def test_notebook_kernel_is_the_projects_environment(executed):
    first = _outputs(executed[0])[0]
    assert first.strip().startswith(f"kernel: {nbm.kernel_python()}")  # the test's own python


@pytest.mark.slow
def test_notebook_follows_the_student_path(executed):
    nb, _, run = executed
    text = "\n".join(_outputs(nb))
    # the article's snippet fails as printed, with the traceback showing its line
    assert "NameError: name 'z' is not defined" in text and "dy_dz = sigmoid_derivative(z)" in text
    assert "dL_dw (5, 2) for weights (2, 1)" in text and "equal: True" in text
    # the checker through its Python API: the good function passes, the planted bug is named
    assert "ok: True for my_grads, False for my_grads_with_a_bug" in text
    assert "b1: not reduced over the batch" in text
    assert "17 of 17 bugs caught on every problem; 0 false alarms" in text
    # the run folder named by the environment, its table, two figures, the lessons
    assert f"the run folder named by {nbm.RUN_ENV}: {run}" in text
    pngs = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pngs) == 2
    assert "| `impls/handwritten.py` | numpy, cupy |" in text and "What it does not show" in text
    closing = _outputs(nb)[-1]
    assert closing.startswith("**What the numbers say.** At the smallest size")
    assert "It is not the right tool for** " in closing


def test_committed_notebook_is_its_source_executed():
    """docs/teaching.ipynb is docs/teaching.py with outputs: same cells, every code cell run,
    no errors (`make notebook` rewrites it)."""
    import jupytext
    import nbformat

    source = jupytext.read(nbm.SOURCE)
    nbm.stable_ids(source)
    committed = nbformat.read(nbm.NOTEBOOK, as_version=4)
    nbformat.validate(committed)
    assert [(c.id, c.cell_type, c.source) for c in committed.cells] == \
        [(c.id, c.cell_type, c.source) for c in source.cells], "run `make notebook`"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("outputs") for c in code[:2]), "committed without outputs: run `make notebook`"
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert nbm.NOTEBOOK.stat().st_size < 600_000  # outputs of modest size


# ---- which run folder --------------------------------------------------------------------------
def _meta(path, schema, profile):
    path.mkdir(parents=True)
    (path / "meta.json").write_text(json.dumps({"schema_version": schema,
                                                "profile": {"name": profile}}))
    (path / "cells.csv").write_text("impl\n")
    return path


def test_find_run_takes_the_newest_default_run_of_this_schema(tmp_path):
    _meta(tmp_path / "20260101-000000-default", 2, "default")
    want = _meta(tmp_path / "20260102-000000-default", 2, "default")
    _meta(tmp_path / "20260103-000000-default", 1, "default")  # the old schema
    _meta(tmp_path / "20260104-000000-quick", 2, "quick")
    (tmp_path / "20260105-000000-default").mkdir()  # no meta.json
    found = nbm.find_run(tmp_path, env={})
    assert found.path == want and "20260102-000000-default" in found.why


def test_find_run_says_when_there_is_none(tmp_path):
    _meta(tmp_path / "20260103-000000-default", 1, "default")
    found = nbm.find_run(tmp_path, env={})
    assert found.path is None and "this notebook shows no speed-ups" in found.why


def test_find_run_follows_the_environment(tmp_path):
    run = write_run(tmp_path / "run")
    assert nbm.find_run(tmp_path / "nowhere", env={nbm.RUN_ENV: str(run)}).path == run
    old = write_run(tmp_path / "old", schema_version=1)
    found = nbm.find_run(tmp_path, env={nbm.RUN_ENV: str(old)})
    assert found.path is None and "schema: 1" in found.why


# ---- speed-ups read honestly -------------------------------------------------------------------
SIZES = {"tiny": (64, 2, 8, 1), "mid": (1024, 64, 512, 1), "big": (2048, 256, 2048, 1)}


def _cells(speedups: dict) -> pd.DataFrame:
    """speedups: {(impl, mode, size): (speedup, low, high)}; NumPy rows (1, 1, 1) added."""
    rows = []
    for size in SIZES:
        speedups.setdefault(("numpy", "default", size), (1.0, 1.0, 1.0))
    for (impl, mode, size), (s, lo, hi) in speedups.items():
        n, f, h, k = SIZES[size]
        rows.append({"impl": impl, "mode": mode, "device": "cpu", "dtype": "float32",
                     "size": size, "status": "ok", "n_samples": n, "n_features": f,
                     "n_hidden": h, "n_outputs": k, "flops_per_step": n * f * h + n * h * k,
                     "step_median_s": 1e-3 / s, "speedup": s, "speedup_low": lo,
                     "speedup_high": hi})
    return pd.DataFrame(rows)


def _costs():
    read = {n: (ROOT / "impls" / f).read_text(encoding="utf-8")
            for n, f in (("hand", "handwritten.py"), ("torch", "torch_impl.py"))}
    return cost_of_change(read["hand"]), {"torch": cost_of_change(read["torch"])}


def test_verdict_is_the_reports_rule():
    from harness.report.speed import verdict

    for lo in np.linspace(0.5, 1.5, 11):
        for hi in np.linspace(lo, 2.0, 5):
            assert nbm.verdict(lo, hi) == verdict(lo, hi)


def test_numpy_clearly_fastest_when_small_is_said_so():
    cells = _cells({("torch", "eager", "tiny"): (0.2, 0.15, 0.25),
                    ("torch", "eager", "mid"): (1.5, 1.2, 1.8),
                    ("torch", "eager", "big"): (2.0, 1.7, 2.4)})
    text = nbm.closing(nbm.speedup_table(cells), *_costs(), diagnosis="off by N")
    assert "hand-written NumPy is 5 times as fast as torch eager [95% interval 4, 6.67]" in text
    assert "small networks on a CPU" in text
    assert "speed from size mid on: torch eager is clearly faster" in text
    assert "the article's scale" in text and '"off by N"' in text


def test_an_interval_holding_one_is_no_claim():
    cells = _cells({("torch", "eager", "tiny"): (0.9, 0.7, 1.1),
                    ("torch", "eager", "mid"): (1.3, 0.95, 1.6),
                    ("torch", "eager", "big"): (1.2, 0.9, 1.5)})
    text = nbm.closing(nbm.speedup_table(cells), *_costs())
    assert "no clear difference" in text
    assert "times as fast" not in text and "small networks on a CPU" not in text
    assert "clearly faster" not in text.replace("No framework is clearly faster", "")
    assert "No framework is clearly faster than hand-written NumPy" in text


def test_a_framework_faster_at_the_smallest_size_is_no_case_for_hand_written():
    cells = _cells({("jax", "jit", "tiny"): (1.5, 1.2, 1.9), ("jax", "jit", "big"): (3.0, 2.5, 3.5)})
    text = nbm.closing(nbm.speedup_table(cells), *_costs())
    assert "small networks on a CPU" not in text
    assert "speed, even at the smallest size: jax jit is 1.5 times as fast" in text
    assert "speed from size tiny on: jax jit" in text


def test_no_run_no_speed_claim():
    text = nbm.closing(None, *_costs())
    assert "makes no claim about speed" in text and "times as fast" not in text
    assert "anything you will change" in text  # the cost of change holds without a run


def test_small_png_shrinks(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(16, 8), dpi=100)
    ax.plot(range(10))
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)
    from PIL import Image

    small = tmp_path / "s.png"
    small.write_bytes(nbm.small_png(tmp_path / "f.png", width=500))
    with Image.open(small) as im:
        assert im.width == 500
    assert small.stat().st_size < (tmp_path / "f.png").stat().st_size
