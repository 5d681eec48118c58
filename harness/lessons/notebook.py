"""What docs/teaching.ipynb and docs/teaching.zh.ipynb need beyond the project's own API: the
reference run to load, the speed-ups read honestly, small helpers for the framework cells, and
the build (`make notebook`).

    python -m harness.lessons.notebook          # execute both jupytext sources, write the notebooks
    from harness.lessons.notebook import find_run, speedup_table, read_tta, framework

Every sentence about speed is derived from a run's paired speed-ups and their 95% intervals:
an interval that holds 1 is "no clear difference", never a win (harness/report/tables.py's rule);
the closing section's sentences are harness/lessons/closing.py's. A rebuild whose outputs
differ from the committed notebook only by noise (timings, float64 rounding near 1e-16) leaves
the committed file alone, so `make notebook` keeps the tree clean. Executing needs the test
extra (nbclient, jupytext, ipykernel): imported only by `execute`.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.report.tables import verdict  # the report's rule, one copy
from harness.store import CELLS, META, SCHEMA_VERSION, TTA, read_json

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "docs" / "teaching.py"  # the jupytext "percent" script: the reviewed source
NOTEBOOK = ROOT / "docs" / "teaching.ipynb"  # generated from it, with outputs
SOURCE_ZH = ROOT / "docs" / "teaching.zh.py"  # the Chinese edition, its own source
NOTEBOOK_ZH = ROOT / "docs" / "teaching.zh.ipynb"
BUILDS = ((SOURCE, NOTEBOOK), (SOURCE_ZH, NOTEBOOK_ZH))
RUN_ENV = "BACKPROP_BENCH_RUN"  # a run folder to load instead of the newest reference run


def kernel_python() -> str:
    """The kernel's interpreter, relative to the project when it is the project's own .venv
    (so the committed notebook holds no path of the machine that ran it)."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(ROOT))
    except ValueError:
        return str(exe)


@dataclass(frozen=True)
class Found:
    path: Path | None  # the run folder, or None
    why: str  # where it came from, or why there is none: one sentence for the notebook


def _schema(folder: Path) -> tuple[int | None, str | None]:
    try:
        meta = read_json(folder, META)
        return meta.get("schema_version"), (meta.get("profile") or {}).get("name")
    except (OSError, ValueError, AttributeError):
        return None, None


def find_run(results: Path = ROOT / "results", profile: str = "default", env=None) -> Found:
    """The run folder named by $BACKPROP_BENCH_RUN (any profile), else the newest folder under
    `results` whose meta.json has this code's schema version and the profile `profile`."""
    env = os.environ if env is None else env
    if env.get(RUN_ENV):
        path = Path(env[RUN_ENV])
        schema, name = _schema(path)
        if schema != SCHEMA_VERSION or not (path / CELLS).is_file():
            return Found(None, f"{RUN_ENV}={path} is not a run folder of schema version"
                               f" {SCHEMA_VERSION} with a {CELLS} (schema: {schema}).")
        return Found(path, f"the run folder named by {RUN_ENV}: {path} (profile {name!r}).")
    runs = [p for p in sorted(Path(results).glob("*"), reverse=True)
            if p.is_dir() and (p / CELLS).is_file() and _schema(p) == (SCHEMA_VERSION, profile)]
    if not runs:
        return Found(None, f"no run folder under {Path(results).name}/ has meta.json schema version"
                           f" {SCHEMA_VERSION} and profile {profile!r} yet (`make bench` writes"
                           " one), so this notebook shows no speed-ups; the lessons still run.")
    return Found(runs[0], f"the newest {profile!r} run of schema version {SCHEMA_VERSION}:"
                          f" {runs[0].relative_to(runs[0].parents[1])}.")


def speedup_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (series, size) that ran and has a speed-up over hand-written NumPy: the
    float32 rows when the run has them (the timing dtype), sizes ordered by work per step."""
    ok = cells[(cells["status"] == "ok") & cells["speedup"].notna()]
    if "float32" in set(ok["dtype"]):
        ok = ok[ok["dtype"] == "float32"]
    order = ok.groupby("size")["flops_per_step"].median().sort_values().index.tolist()
    gpu = set(ok["device"]) - {"cpu"}
    t = ok.assign(label=ok["impl"] + " " + ok["mode"] + (" " + ok["device"] if gpu else ""),
                  size_rank=ok["size"].map(order.index))
    t = t.assign(verdict=[verdict(lo, hi) for lo, hi in zip(t["speedup_low"], t["speedup_high"],
                                                            strict=True)])
    cols = ["label", "impl", "mode", "device", "size", "size_rank", "n_samples", "n_features",
            "n_hidden", "n_outputs", "flops_per_step", "step_median_s", "first_call_s", "speedup",
            "speedup_low", "speedup_high", "verdict"]
    t = t.assign(first_call_s=t["first_call_s"] if "first_call_s" in t else float("nan"))
    return t[cols].sort_values(["size_rank", "label"]).reset_index(drop=True)


def read_tta(found: Found) -> pd.DataFrame | None:
    """The run's tta.csv (time to accuracy), or None when the run has none."""
    path = None if found.path is None else found.path / TTA
    return pd.read_csv(path) if path is not None and path.is_file() else None


def framework(name: str):
    """(the module, "") when `name` imports here, else (None, one sentence saying what is
    missing and how to get it). The notebook's framework cells use it and go on either way."""
    import importlib

    try:
        return importlib.import_module(name), ""
    except ImportError as exc:
        return None, (f"{name} is not installed in this kernel ({exc}), so its cells are skipped:"
                      " the light `teach` install has no torch or jax. `pip install -e '.[bench]'`"
                      f" (or `pip install {name}`) brings it; on Colab both are already there.")


def cell_lines(*functions) -> int:
    """Code lines of functions typed into a cell (not blank, not only a comment, not a
    docstring): harness/lessons/cost.py's rule, applied to the notebook's own cells."""
    import inspect
    import textwrap

    from harness.lessons.cost import code_lines

    return sum(len(code_lines(textwrap.dedent(inspect.getsource(f)))) for f in functions)


def versus_numpy(row) -> str:
    """One sentence on one series at one size, as its interval allows."""
    s, lo, hi = row["speedup"], row["speedup_low"], row["speedup_high"]
    v = verdict(lo, hi)
    if v == "faster":
        return (f"{row['label']} is {s:.3g} times as fast as hand-written NumPy"
                f" [95% interval {lo:.3g}, {hi:.3g}]")
    if v == "slower":
        return (f"hand-written NumPy is {1 / s:.3g} times as fast as {row['label']}"
                f" [95% interval {1 / hi:.3g}, {1 / lo:.3g}]")
    return (f"{row['label']} and hand-written NumPy: no clear difference (speed-up {s:.3g},"
            f" interval [{lo:.3g}, {hi:.3g}] holds 1)")


def small_png(path: Path, width: int = 1000, colours: int = 64) -> bytes:
    """A PNG figure shrunk for a committed notebook: at most `width` pixels wide, `colours`
    colours (line plots lose nothing visible; the file is a fraction of the size)."""
    import io

    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.quantize(colours).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# ---- the build: `make notebook` --------------------------------------------------------------
def execute(source: Path = SOURCE, env: dict | None = None, timeout: int = 120):
    """Run the percent script top to bottom in a fresh kernel of *this* interpreter (the native
    ipykernel spec, not whatever `python3` kernel is installed); return the executed notebook.
    Raises nbclient's CellExecutionError on the first cell that raises; `timeout` bounds each
    cell (a hang guard, not a performance claim)."""
    import jupytext
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = jupytext.read(source)
    stable_ids(nb)
    env = dict(os.environ if env is None else env)
    env.pop("MPLBACKEND", None)  # the kernel's own default: inline figures
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = NotebookClient(nb, km=km, timeout=timeout, record_timing=False,
                            resources={"metadata": {"path": str(Path(source).parent)}})
    try:
        client.execute(env=env)
    finally:
        # nbclient shuts the kernel down but leaves its client's zmq sockets to the garbage
        # collector, whose ResourceWarning would surface in whatever code runs next: collect
        # them here, where they are known to be done with.
        del client, km
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    return nb


def stable_ids(nb) -> None:
    """Cell ids from the cells' text (jupytext draws random ones): a rebuild of an unchanged
    cell leaves its id, and the committed notebook's diff, alone."""
    import hashlib

    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        cid = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:12]
        cell.id = cid if cid not in seen else f"{cid}-{i}"
        seen.add(cell.id)


# Noise: what changes from one execution to the next with nothing else changed. Float64
# rounding (an error of 1e-17 one time, 0.0e+00 the next) and the checker's wall-clock seconds.
_TINY = re.compile(r"(?<![\d.])(?:\d\.\d+|\d)e-(?:1[3-9]|[2-9]\d|\d{3})\b|(?<![\d.])0\.0+e[+-]00\b")
_SECONDS = re.compile(r"(\[|\(|, )\d+\.\d s(\]|\)|</p>)")


def _quiet(text: str) -> str:
    return _SECONDS.sub(r"\1#.# s\2", _TINY.sub("~0", text))


def coalesce_streams(nb) -> None:
    """Merge each cell's consecutive outputs to the same stream into one: where a print is cut
    into two outputs depends on when the kernel flushed, which is noise too."""
    for c in nb.cells:
        merged = []
        for o in c.get("outputs", []):
            if merged and o["output_type"] == "stream" == merged[-1]["output_type"] \
                    and o["name"] == merged[-1]["name"]:
                merged[-1]["text"] += o["text"]
            else:
                merged.append(o)
        if "outputs" in c:
            c["outputs"] = merged


def normalized(nb) -> str:
    """The notebook's cells and outputs with the noise masked: equal for two executions that
    differ only by noise."""
    import copy
    import json

    nb = copy.deepcopy(nb)
    coalesce_streams(nb)
    cells = []
    for c in nb.cells:
        outs = []
        for o in c.get("outputs", []):
            o = {k: v for k, v in o.items() if k not in ("execution_count", "metadata")}
            outs.append(_quiet(json.dumps(o, sort_keys=True)))
        cells.append([c.cell_type, c.source, outs])
    return json.dumps(cells)


def write(nb, path: Path = NOTEBOOK) -> bool:
    """Write `nb` to `path` unless the file there differs from it only by noise; True if written."""
    import jupytext
    import nbformat

    if path.is_file():
        try:
            if normalized(nbformat.read(path, as_version=4)) == normalized(nb):
                return False
        except (ValueError, KeyError, nbformat.ValidationError):
            pass  # unreadable: rewrite it
    coalesce_streams(nb)
    jupytext.write(nb, path, fmt="ipynb")
    return True


def main(env=None) -> int:
    """Execute every source and write its notebook; exit 2 (nothing executed) when
    $BACKPROP_BENCH_RUN names no usable run folder."""
    env = os.environ if env is None else env
    found = find_run(env=env)
    if env.get(RUN_ENV) and found.path is None:
        print(f"error: {found.why}", file=sys.stderr)
        return 2
    for source, notebook in BUILDS:
        start = time.perf_counter()
        nb = execute(source, env=dict(env))
        what = "wrote" if write(nb, notebook) else "unchanged (only noise differs):"
        print(f"{what} {notebook.relative_to(ROOT)} ({time.perf_counter() - start:.0f} s,"
              f" kernel {sys.executable})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
