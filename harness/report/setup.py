"""The report's first sections: the setup (machine, libraries, threads, settings) and the
cells that did not run.

    from harness.report.setup import sec_setup, sec_not_run
"""

from __future__ import annotations

import pandas as pd

from harness.measure.machine import describe_gpu
from harness.report.load import RunData
from harness.report.tables import dig, md_table, size_order
from harness.store import CellKey

# Which implementation a library's version matters to (None: the harness itself uses it).
_LIBRARY_IMPL = {"numpy": None, "torch": "torch", "jax": "jax", "jaxlib": "jax",
                 "cupy": "cupy", "scikit-learn": "sklearn"}


def _blas(meta: dict) -> str | None:
    said = []
    for p in meta.get("blas") or []:  # threadpoolctl's pools, read in the CPU peak's process
        if isinstance(p, dict) and p.get("user_api", "blas") == "blas":
            extra = ", ".join(str(p[k]) for k in ("threading_layer", "architecture") if p.get(k))
            said.append(f"{p.get('internal_api', '?')} {p.get('version', '')},"
                        f" {p.get('num_threads', '?')} threads" + (f" ({extra})" if extra else ""))
    return "; ".join(said) or None


def _thread_budget(meta: dict) -> str | None:
    threads = dig(meta, "thread_budget.threads")
    if threads is None:
        return None
    text = f"{threads} threads"
    if cpus := dig(meta, "thread_budget.cpus"):
        text += f", pinned to CPUs {', '.join(map(str, cpus))}"
    env = dig(meta, "thread_budget.env", default={})
    by_value: dict[str, list[str]] = {}
    for name, value in env.items():
        if value not in (None, ""):
            value = "a fresh folder per cell" if "<fresh dir per cell>" in str(value) else value
            by_value.setdefault(str(value), []).append(name)
    if by_value:
        text += "; environment set: " + "; ".join(f"{', '.join(names)} = {value}"
                                                  for value, names in by_value.items())
    return text


def _peaks(meta: dict) -> str | None:
    said = []
    for device, p in (meta.get("peak") or {}).items():
        if isinstance(p, dict) and p.get("gflops") and p.get("status", "ok") == "ok":
            said.append(f"{device}: {p['gflops']:,.1f} GFLOP/s ({p.get('method', 'method not recorded')})")
        elif isinstance(p, dict):
            said.append(f"{device}: not measured ({p.get('reason') or p.get('status', '?')})")
    return "; ".join(said) or None


def setup_facts(run: RunData) -> pd.DataFrame:
    """The machine and the run's settings, one line each; a fact meta.json lacks is left out."""
    meta, rows = run.meta, []
    model = dig(meta, "machine.cpu_model")
    cpus = dig(meta, "machine.cpus", default={})
    usable = cpus.get("usable") if isinstance(cpus, dict) else None
    if model or usable:
        text = model or "CPU model not recorded"
        if usable:
            more = ", ".join(f"{cpus[k]} {k}" for k in ("logical", "physical")
                             if isinstance(cpus, dict) and cpus.get(k))
            text += f"; {usable} cores usable" + (f" ({more})" if more else "")
        if mem := dig(meta, "machine.memory_bytes"):
            text += f"; {mem / 2**30:.1f} GiB memory"
        rows.append(("machine", text))
    gpus = dig(meta, "machine.gpus")
    if isinstance(gpus, list):
        rows.append(("GPU", " / ".join(describe_gpu(g) for g in gpus if isinstance(g, dict))
                     or "none found"))
    if platform := dig(meta, "machine.platform"):
        host = dig(meta, "machine.host")
        rows.append(("OS", platform + (f" (host `{host}`)" if host else "")))
    if python := dig(meta, "machine.python"):
        rows.append(("Python", python))
    versions = dig(meta, "machine.versions", default={})
    used = set(run.cells["impl"]) if run.cells is not None else None
    libs = [f"{lib} {versions[lib]}" for lib, impl in _LIBRARY_IMPL.items()
            if versions.get(lib) and (impl is None or used is None or impl in used)]
    if libs:
        rows.append(("libraries", ", ".join(libs)))
    if blas := _blas(meta):
        rows.append(("BLAS (NumPy's)", blas))
    machine = meta.get("machine")
    if isinstance(machine, dict) and "OPENBLAS_CORETYPE" in machine:
        rows.append(("OPENBLAS_CORETYPE", machine["OPENBLAS_CORETYPE"] or "not set"))
    if budget := _thread_budget(meta):
        rows.append(("thread budget", budget))
    if peaks := _peaks(meta):
        rows.append(("measured matmul peak", peaks))
    git = dig(meta, "machine.git", default={})
    if isinstance(git, dict) and git.get("commit"):
        dirty = {True: "uncommitted changes", False: "clean"}.get(git.get("dirty"), "dirty unknown")
        rows.append(("git commit", f"`{git['commit'][:12]}` ({dirty})"))
    if utc := dig(meta, "machine.utc"):
        rows.append(("started (UTC)", utc))
    training = [f"{name} {v}" for name, v in (
        ("loss", dig(meta, "settings.loss")),
        ("hidden activation", dig(meta, "settings.activation")),
        ("learning rate", dig(meta, "settings.lr")),
        ("dtypes", ", ".join(dig(meta, "profile.dtypes", default=[])) or None)) if v is not None]
    if training:
        rows.append(("training", ", ".join(training)))
    return pd.DataFrame(rows, columns=["", "value"])


def sec_setup(run: RunData) -> str:
    parts = []
    c = run.cells
    if c is not None:
        def listed(col):
            return ", ".join(map(str, pd.unique(c[col]))) if col in c else "not recorded"

        sizes = size_order(c)
        parts.append(
            f"This run holds {len(c)} cells: {c['label'].nunique()} implementation/mode series"
            f" on {listed('device')}, in {listed('dtype')}, at {len(sizes)} sizes"
            f" ({sizes[0]} to {sizes[-1]}), loss {listed('loss')}, hidden activation"
            f" {listed('activation')}; {int((c['status'] == 'ok').sum())} ran. Each cell is timed"
            " in a fresh process; a median and an IQR are over repeated samples, each of many"
            " steps (raw samples in `samples.csv`).")
    facts = setup_facts(run)
    parts.append(md_table(facts) if len(facts)
                 else "_No metadata: `meta.json` is missing, unreadable or empty._")
    if c is not None and "matmul_precision" in c:
        if c["matmul_precision"].nunique() == 1:
            parts.append(f"Every series ran with matmul precision `{c['matmul_precision'].iloc[0]}`.")
        else:
            prec = c.groupby("label")["matmul_precision"].first().reset_index()
            parts += ["Matmul precision as each series recorded it (TF32 rows are timing-only):",
                      md_table(prec.rename(columns={"label": "series"}))]
    parts.append("Everything else (the profile, the command-line options, each implementation's"
                  " own settings): `meta.json`.")
    return "\n\n".join(parts)



def sec_not_run(run: RunData) -> str:
    parts = [line for line in run.unfinished if "have no row" in line]
    if run.cells is not None:
        bad = run.cells[run.cells["status"] != "ok"]
        if bad.empty and not parts:
            parts.append(f"All {len(run.cells)} cells ran.")
        elif bad.empty:
            parts.append(f"The {len(run.cells)} cells this run holds all ran.")
        else:
            counts = ", ".join(f"{n} {s}" for s, n in bad["status"].value_counts().items())
            parts += [f"{len(bad)} of {len(run.cells)} cells did not produce a time ({counts}); "
                      "they are left out of every table and plot below.", "",
                      md_table(bad.groupby([*CellKey._fields[:-1], "status", "reason"],
                                           sort=False)["size"]
                               .agg(lambda s: ", ".join(map(str, s))).reset_index()
                               .rename(columns={"size": "sizes"}))]
    unavailable = (run.check or {}).get("unavailable") or []
    if unavailable:
        parts += ["", "Not correctness-checked, because unavailable where the check ran:", "",
                  md_table(pd.DataFrame(unavailable))]
    return "\n".join(parts) or "_Nothing to list: no cells.csv and no check.json._"
