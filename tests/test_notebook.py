"""The teaching notebooks run top to bottom, with and without torch and jax, and `make notebook`
keeps the tree clean.

docs/teaching.py and docs/teaching.zh.py (jupytext "percent" scripts) are executed headless with
nbclient, in a kernel of this interpreter, against a synthetic run folder in tmp, so the test
never depends on what results/ holds. The English one runs with every framework installed; the
Chinese one in a kernel where importing torch and jax fails (the light `teach` install), and a
test below proves its code cells are the English ones but for the cells that render Chinese.
Each cell has a generous timeout (a hang guard); no test asserts a wall-clock time.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from harness.lessons import notebook as nbm
from tests.fixtures.runfolder import write_run
from tests.helpers import ROOT

CELL_TIMEOUT_S = 300  # per cell: only a hang fails it (the slowest cell takes seconds)
# Importing torch or jax fails in a kernel whose PYTHONPATH starts with this folder, as in an
# environment where neither is installed (a ModuleNotFoundError from the import system itself).
NO_FRAMEWORKS = '''import sys


class _NoFrameworks:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "jax", "jaxlib"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoFrameworks())
'''


def outputs(nb) -> list[str]:
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


def pngs(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def no_frameworks_env(tmp_path, env) -> dict:
    block = tmp_path / "no_frameworks"
    block.mkdir()
    (block / "sitecustomize.py").write_text(NO_FRAMEWORKS)
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(block), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("nb") / "run")


@pytest.fixture(scope="module")
def english(run):
    env = {k: v for k, v in os.environ.items() if k != nbm.RUN_ENV} | {nbm.RUN_ENV: str(run)}
    return nbm.execute(nbm.SOURCE, env=env, timeout=CELL_TIMEOUT_S)  # raises on a cell's error


@pytest.fixture(scope="module")
def chinese_without_frameworks(run, tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k != nbm.RUN_ENV} | {nbm.RUN_ENV: str(run)}
    env = no_frameworks_env(tmp_path_factory.mktemp("env"), env)
    return nbm.execute(nbm.SOURCE_ZH, env=env, timeout=CELL_TIMEOUT_S)


def _ran(nb):
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("outputs") is not None for c in code)
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]


@pytest.mark.slow
def test_english_notebook_runs_top_to_bottom(english):
    _ran(english)
    assert outputs(english)[0].strip().startswith(f"kernel: {nbm.kernel_python()}")


@pytest.mark.slow
def test_chinese_notebook_runs_top_to_bottom_without_torch_or_jax(chinese_without_frameworks):
    nb = chinese_without_frameworks
    _ran(nb)
    text = "\n".join(outputs(nb))
    for name in ("torch", "jax"):
        assert f"{name} is not installed in this kernel (No module named '{name}')" in text
        assert f"{name}: not checked here ({name} is not installed)" in text
    assert "numpy by hand mse: worst error" in text and "agrees: True" in text
    assert pngs(nb) == 4  # the graph, the bug figure, the speed-ups, vanishing gradients
    closing = outputs(nb)[-1]
    assert closing.startswith("**每一步的速度**") and "**达到目标精度所需时间**" in closing
    assert "**修改的代价。**" in closing and "17 of 17 bugs caught on every problem" in text


@pytest.mark.slow
def test_english_notebook_follows_the_student_path(english, run):
    text = "\n".join(outputs(english))
    # the article's snippet fails as printed, with the traceback showing its line
    assert "NameError: name 'z' is not defined" in text and "dy_dz = sigmoid_derivative(z)" in text
    assert "dL_dw (5, 2) for weights (2, 1)" in text and "equal: True" in text
    # the element-wise derivation, checked with loops
    assert "sum over n of dZ[n, j] * X[n, i] equals (X.T @ dZ)[i, j]: True" in text
    # the checker through its Python API: the good function passes, the planted bug is named
    assert "ok: True for my_grads, False for my_grads_with_a_bug" in text
    assert "b1: not reduced over the batch" in text
    assert "17 of 17 bugs caught on every problem; 0 false alarms" in text
    assert "A wrong gradient can still make the loss fall" in text or "never falls" in text
    # the frameworks, checked against the hand-written reference in float64
    for name in ("torch", "jax"):
        for loss in ("mse", "bce"):
            assert f"{name:13} {loss}: worst error" in text
    assert "agrees: False" not in text
    # the run folder named by the environment, its table, four figures, the lessons
    assert f"the run folder named by {nbm.RUN_ENV}: {run}" in text
    assert pngs(english) == 4
    assert "| `impls/handwritten.py` | numpy, cupy |" in text and "What it does not show" in text
    closing = outputs(english)[-1]
    assert closing.startswith("**Per step** (steady state, compilation excluded)")
    assert "**Time to accuracy**" in closing and "**The cost of change.**" in closing


def _code_without_comments(source: str) -> str:
    """A code cell's text, comments and blank lines dropped (ast.unparse drops comments)."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return ast.unparse(ast.parse("\n".join(lines)))


def test_the_chinese_code_cells_are_the_english_ones():
    """Only the cells that render sentences may differ (the Chinese ones call harness.lessons.zh):
    so executing the Chinese notebook without frameworks covers the English one's code too."""
    import jupytext

    en, zh = (jupytext.read(p) for p in (nbm.SOURCE, nbm.SOURCE_ZH))
    code = [[_code_without_comments(c.source) for c in nb.cells if c.cell_type == "code"]
            for nb in (en, zh)]
    assert len(code[0]) == len(code[1])
    differ = [(a, b) for a, b in zip(*code, strict=True) if a != b]
    assert len(differ) == 4  # the imports, the bug text, the vanishing text, the closing
    for _, b in differ:
        assert "_zh" in b


@pytest.mark.parametrize("source,notebook", nbm.BUILDS, ids=["en", "zh"])
def test_committed_notebook_is_its_source_executed(source, notebook):
    """docs/teaching*.ipynb is its .py source with outputs: same cells, every code cell run, no
    errors (`make notebook` rewrites it)."""
    import jupytext
    import nbformat

    src = jupytext.read(source)
    nbm.stable_ids(src)
    committed = nbformat.read(notebook, as_version=4)
    nbformat.validate(committed)
    assert [(c.id, c.cell_type, c.source) for c in committed.cells] == \
        [(c.id, c.cell_type, c.source) for c in src.cells], "run `make notebook`"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("outputs") for c in code), "committed without outputs: run `make notebook`"
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert notebook.stat().st_size < 800_000  # outputs of modest size


# ---- `make notebook`: a bad RUN fails, noise leaves the tree clean ---------------------------
def test_a_bad_run_folder_fails_before_anything_runs(tmp_path, monkeypatch, capsys):
    def never(*args, **kwargs):
        raise AssertionError("executed a notebook for a run folder that does not exist")

    monkeypatch.setattr(nbm, "execute", never)
    assert nbm.main(env={nbm.RUN_ENV: str(tmp_path / "nosuch")}) == 2
    assert "is not a run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_make_notebook_with_a_bad_run_exits_non_zero(tmp_path):
    done = subprocess.run(["make", "-s", "notebook", f"RUN={tmp_path / 'nosuch'}",
                           f"PY={sys.executable}"], cwd=ROOT, capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode != 0 and "is not a run folder" in done.stderr


def _with_outputs(texts):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(1)", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=t)]) for t in texts]
    return nb


def test_noise_is_masked_and_a_real_change_is_not():
    a = _with_outputs(["worst error 1.3e-16; agrees: True", "all 50 agree (0.4 s)",
                       "<p>OK</p> my_grads, float64, 0.1 s</p>", "W1 0.0e+00 2.1e-17", "[0.0 s]"])
    b = _with_outputs(["worst error 2.6e-16; agrees: True", "all 50 agree (1.9 s)",
                       "<p>OK</p> my_grads, float64, 2.3 s</p>", "W1 1.1e-16 0.0e+00", "[0.3 s]"])
    assert nbm.normalized(a) == nbm.normalized(b)
    for changed in ("worst error 2.6e-09; agrees: True", "all 51 agree (0.4 s)",
                    "worst error 1.3e-16; agrees: False"):
        c = _with_outputs([changed] + [o.outputs[0].text for o in a.cells[1:]])
        assert nbm.normalized(a) != nbm.normalized(c), changed


def test_a_print_cut_in_two_outputs_is_noise():
    import nbformat

    one, two = _with_outputs(["a\nb\n"]), _with_outputs(["a\n"])
    two.cells[0].outputs.append(nbformat.v4.new_output("stream", name="stdout", text="b\n"))
    assert nbm.normalized(one) == nbm.normalized(two)
    nbm.coalesce_streams(two)
    assert [o.text for o in two.cells[0].outputs] == ["a\nb\n"]


def test_write_leaves_a_file_that_differs_only_by_noise(tmp_path):
    path = tmp_path / "n.ipynb"
    assert nbm.write(_with_outputs(["error 1.3e-16 (0.4 s)"]), path) is True
    before = path.read_bytes()
    assert nbm.write(_with_outputs(["error 3.1e-17 (2.2 s)"]), path) is False
    assert path.read_bytes() == before
    assert nbm.write(_with_outputs(["error 3.1e-07 (2.2 s)"]), path) is True
    assert path.read_bytes() != before


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


def test_the_teach_install_has_no_framework():
    """`pip install -e '.[teach]'` brings Jupyter and no framework; `make setup` brings both."""
    import re

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements):
        return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}

    base, extras = names(project["dependencies"]), project["optional-dependencies"]
    heavy = {"torch", "jax", "jaxlib", "mpi4py", "mpich"}
    assert not (base | names(extras["teach"])) & heavy
    assert heavy - {"jaxlib"} <= names(extras["bench"])
    assert {"notebook", "ipykernel"} <= names(extras["teach"]) and "matplotlib" in base
    assert "-e '.[test,bench]'" in (ROOT / "Makefile").read_text(encoding="utf-8")
