"""What docs/teaching.ipynb needs beyond the project's own API: the reference run to load, the
speed-ups read honestly, the closing section's sentences, and the build (`make notebook`).

    python -m harness.lessons.notebook          # execute docs/teaching.py, write docs/teaching.ipynb
    from harness.lessons.notebook import find_run, speedup_table, closing

Every sentence about speed is derived from a run's paired speed-ups and their 95% intervals:
an interval that holds 1 is "no clear difference", never a win (harness/report/speed.py's rule).
Executing needs the test extra (nbclient, jupytext, ipykernel): imported only by `execute`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.report.tables import verdict  # the report's rule, one copy
from harness.store import CELLS, META, SCHEMA_VERSION, read_json

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "docs" / "teaching.py"  # the jupytext "percent" script: the reviewed source
NOTEBOOK = ROOT / "docs" / "teaching.ipynb"  # generated from it, with outputs
RUN_ENV = "BACKPROP_BENCH_RUN"  # a run folder to load instead of the newest reference run
FRAMEWORKS = ("torch", "jax", "cupy")  # autograd; numpy is by hand, sklearn the peer row


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
            "n_hidden", "n_outputs", "flops_per_step", "step_median_s", "speedup", "speedup_low",
            "speedup_high", "verdict"]
    return t[cols].sort_values(["size_rank", "label"]).reset_index(drop=True)


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


def _size(rows: pd.DataFrame) -> str:
    r = rows.iloc[0]
    return (f"{r['size']} (N={r['n_samples']}, F={r['n_features']}, H={r['n_hidden']},"
            f" K={r['n_outputs']})")


def clearly_faster_from(table: pd.DataFrame) -> dict[str, str]:
    """For each framework series: the smallest size from which it is clearly faster than NumPy
    at that size and at every larger size where it ran (series for which there is none: absent)."""
    out = {}
    for label, g in table[table["impl"].isin(FRAMEWORKS)].groupby("label"):
        g = g.sort_values("size_rank")
        faster = (g["verdict"] == "faster").tolist()
        for i in range(len(g)):
            if all(faster[i:]):
                out[label] = g.iloc[i]["size"]
                break
    return out


def _speed(table: pd.DataFrame | None) -> tuple[list[str], list[str], list[str]]:
    """(what the numbers say, reasons for writing by hand, reasons against), all from `table`."""
    if table is None or table.empty:
        return (["No run was loaded, so this section makes no claim about speed."], [], [])
    frame = table[table["impl"].isin(FRAMEWORKS)]
    if frame.empty:
        return (["The run has no framework series beside hand-written NumPy: no claim about"
                 " speed."], [], [])
    said, by_hand, not_by_hand = [], [], []
    small, large = frame["size_rank"].min(), frame["size_rank"].max()
    at_small = frame[frame["size_rank"] == small]
    scale = ", the article's scale (2 inputs)" if at_small["n_features"].iloc[0] == 2 else ""
    said.append(f"At the smallest size{scale}, {_size(at_small)}: "
                + "; ".join(versus_numpy(r) for _, r in at_small.iterrows()) + ".")
    if (at_small["verdict"] == "slower").all():
        by_hand.append(f"small networks on a CPU, trained step by step: at size {_size(at_small)}"
                       " hand-written NumPy is clearly faster than every framework measured (a"
                       " framework's per-call overhead is larger than the arithmetic)")
    elif (at_small["verdict"] == "faster").any():
        best = at_small.loc[at_small["speedup"].idxmax()]
        not_by_hand.append(f"speed, even at the smallest size: {versus_numpy(best)}")
    if large != small:
        at_large = frame[frame["size_rank"] == large]
        said.append(f"At the largest size, {_size(at_large)}: "
                    + "; ".join(versus_numpy(r) for _, r in at_large.iterrows()) + ".")
    largest = frame.loc[frame["size_rank"] == large, "size"].iloc[0]
    if start := clearly_faster_from(table):
        not_by_hand += [f"speed at size {size}, the largest measured: {label} is clearly faster"
                        " than hand-written NumPy there" if size == largest else
                        f"speed from size {size} on: {label} is clearly faster than hand-written"
                        " NumPy there and at every larger size measured"
                        for label, size in start.items()]
    elif large != small:
        said.append("No framework is clearly faster than hand-written NumPy at every size from"
                    " some size on, in this run: here speed is not the argument against writing"
                    " backprop by hand.")
    return said, by_hand, not_by_hand


def closing(table: pd.DataFrame | None, by_hand, autograd: dict, diagnosis: str = "") -> str:
    """The closing section (markdown). `by_hand`: harness.lessons.cost's Cost of
    impls/handwritten.py; `autograd`: {name: Cost} of the framework files; `diagnosis`: what
    the checker said about the planted bug ("" when it said nothing)."""
    said, for_hand, against = _speed(table)
    most = max((len(c.derivative) for c in autograd.values()), default=0)
    hand_d, hand_opt = len(by_hand.derivative), len(by_hand.option_backward)
    if hand_d > most:
        against.append(f"anything you will change: the activation option alone cost {hand_d}"
                       f" hand-written derivative lines ({hand_opt} activation lines in the"
                       f" backward pass) in impls/handwritten.py, and {most} in "
                       + " and ".join(sorted(autograd)) + ", where autograd derives them")
    if diagnosis:
        for_hand.append("learning what autograd does: you derive each line, and a gradient"
                        f" checker tells you what you got wrong (here: \"{diagnosis}\")")
    parts = ["**What the numbers say.** " + " ".join(said)]
    if for_hand:
        parts.append("**Hand-written backprop is still the right tool for** "
                     + "; ".join(for_hand) + ".")
    if against:
        parts.append("**It is not the right tool for** " + "; ".join(against) + ".")
    return "\n\n".join(parts)


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
    Raises nbclient's CellExecutionError on the first cell that raises."""
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
    client.execute(env=env)
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


def write(nb, path: Path = NOTEBOOK) -> None:
    import jupytext

    jupytext.write(nb, path, fmt="ipynb")


def main() -> int:
    start = time.perf_counter()
    nb = execute()
    write(nb)
    print(f"wrote {NOTEBOOK.relative_to(ROOT)} ({time.perf_counter() - start:.0f} s,"
          f" kernel {sys.executable})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
