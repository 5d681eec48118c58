"""The outcome sections: time to accuracy, peak memory, and the scikit-learn peer row.

    from harness.report.outcomes import sec_memory, sec_peer, sec_tta
"""

from __future__ import annotations

import pandas as pd

from harness.measure.stats import fmt_seconds as fmt_s
from harness.report import plots
from harness.report.load import RunData
from harness.report.tables import fmt_mib, label_series, md_table, numpy_baseline, pivot, size_order


def sec_tta(run: RunData) -> str:
    t = run.tta
    if t is None:
        return "_Not measured in this run: there is no `tta.csv`._"
    needed = ["impl", "mode", "dataset", "target", "reached", "seconds"]
    if missing := [c for c in needed if c not in t]:
        return f"_Not shown: `tta.csv` has no {', '.join(missing)} column._"
    t = t.assign(device=t.get("device", "cpu"))
    devices = set(t["device"]) | set(run.devices)
    t = label_series(t, t["dtype"].nunique() if "dtype" in t else 1, devices)
    status = t["status"] if "status" in t else pd.Series("ok", index=t.index)
    t["reached_ok"] = t["reached"].astype(str).str.lower().isin(["true", "1"]) & (status == "ok")
    why = t.get("reason", pd.Series("", index=t.index)).astype(object).fillna("")
    epochs = t.get("epochs", pd.Series(float("nan"), index=t.index))
    t["shown"] = [f"{s:.3g} s" + (f" ({e:.0f} epochs)" if pd.notna(e) else "") if ok
                  else f"not reached ({st}{': ' + w if w else ''})"
                  for ok, s, e, st, w in zip(t["reached_ok"], t["seconds"], epochs, status, why,
                                             strict=True)]
    lines = []
    for dataset, g in t.groupby("dataset"):
        done = g[g["reached_ok"]]
        if done.empty:
            lines.append(f"On {dataset} no series reached the target {g['target'].iloc[0]}.")
            continue
        fast, slow = done.loc[done["seconds"].idxmin()], done.loc[done["seconds"].idxmax()]
        line = (f"On {dataset} (target {g['target'].iloc[0]}), {fast['label']} gets there"
                f" {'first, ' if len(done) > 1 else ''}in {fast['seconds']:.3g} s")
        if len(done) > 1:
            line += f"; {slow['label']} takes {slow['seconds'] / fast['seconds']:.3g}x as long"
        if len(done) > 1 and "epochs" in done and done["epochs"].nunique() == 1:
            line += f"; all needed the same {done['epochs'].iloc[0]:.0f} epochs"
        missed = len(g) - len(done)
        lines.append(line + (f"; {missed} did not reach it." if missed else "."))
    table = t.pivot_table(index="label", columns="dataset", values="shown", aggfunc="first")
    return (" ".join(lines) + " Wall-clock time from the first step, first-call cost included:"
            " what a user waits for.\n\n"
            f"![time to accuracy]({plots.tta(t, run.out)})\n\n"
            + md_table(table.rename_axis(columns=None).reset_index()))


# What each cell's peak_mem_bytes counts, by how it was read (harness/measure/memory.py and
# each session's peak_memory(), impls/). Figures are ranked only among cells whose figures
# count the same thing: on the CPU every cell's is the same kind; on a GPU each framework
# keeps its own counter, and the three are different quantities.
HOST = "host RSS growth"
DEVICE_MEMORY = {
    "torch": ("torch: allocated peak", "the most bytes torch's caching allocator handed to "
              "tensors at once since the session began (torch.cuda.max_memory_allocated: not "
              "its cached reserve, not the CUDA context)"),
    "jax": ("JAX: peak in use", "the most bytes XLA's allocator had in use at once since the "
            "process started (memory_stats()['peak_bytes_in_use'])"),
    "cupy": ("CuPy: pool held", "the bytes CuPy's memory pool holds, blocks in use and freed "
             "blocks it keeps cached alike (total_bytes(): an upper bound on the peak in use)"),
}
HOST_MEANING = ("the process's resident memory (RSS) at its highest over its level right after "
                "setup; for compiled modes it includes the compiler's working memory")


def memory_kind(impl: str, device: str, method) -> tuple[str, str]:
    """(short name, what it counts) of a cell's peak_mem_bytes, from its peak_mem_method (a
    run that did not record it: from its device, as harness/measure/memory.py decides)."""
    method = "" if pd.isna(method) else str(method)
    if method.startswith("host RSS") or (not method and device == "cpu"):
        return HOST, HOST_MEANING
    if method.startswith("session.peak_memory()") or not method:
        return DEVICE_MEMORY.get(impl, (f"{impl}: own counter", f"{impl}'s own device-memory "
                                        "counter (its session's peak_memory())"))
    return method, method


def sec_memory(run: RunData) -> str:
    if why := run.needs("peak_mem_bytes", "flops_per_step"):
        return why
    ok = run.ok[run.ok["peak_mem_bytes"].notna()]
    if ok.empty:
        return "_Not measured: no cell recorded `peak_mem_bytes`._"
    method = ok["peak_mem_method"] if "peak_mem_method" in ok else pd.Series(None, index=ok.index)
    kinds = [memory_kind(i, d, m) for i, d, m in zip(ok["impl"], ok["device"], method,
                                                      strict=True)]
    ok = ok.assign(counts=[k[0] for k in kinds], meaning=[k[1] for k in kinds])
    said = []
    for (device, counts), g in ok.groupby(["device", "counts"], sort=False):
        g = g[g["size"] == size_order(g)[-1]]
        hi, lo = g.loc[g["peak_mem_bytes"].idxmax()], g.loc[g["peak_mem_bytes"].idxmin()]
        if g["label"].nunique() > 1:
            said.append(f"{counts} on the {device} at its largest size ({hi['size']}): "
                        f"{hi['label']} highest, at {fmt_mib(hi['peak_mem_bytes'])}, and"
                        f" {lo['label']} lowest, at {fmt_mib(lo['peak_mem_bytes'])}")
        else:
            said.append(f"{counts} on the {device}: {hi['label']}, "
                        f"{fmt_mib(hi['peak_mem_bytes'])} at {hi['size']}")
    meanings = "; ".join(f"**{c}** is {m}" for c, m in
                         ok[["counts", "meaning"]].drop_duplicates().itertuples(index=False))
    text = ("Peak memory of each timed cell, read in the cell's own worker around its first call"
            " and warm-up steps, before any timed step (nothing traced, so the timing is not"
            f" slowed). What each figure counts: {meanings}. Figures are compared only where they"
            f" count the same thing: {'; '.join(said)}.")
    if ok.groupby("device")["counts"].nunique().max() > 1:
        text += (" The frameworks' own GPU counters are different quantities, so no framework"
                 " is ranked against another on the GPU.")
    if "setup_mem_bytes" in ok and ok["setup_mem_bytes"].notna().any():
        big = ok.loc[ok["setup_mem_bytes"].idxmax()]
        text += (f" Memory taken while setting up (before the steps) is not in these peaks; the"
                 f" most was {fmt_mib(big['setup_mem_bytes'])}, by {big['label']} at size"
                 f" {big['size']} (column `setup_mem_bytes` of `cells.csv`).")
    table = pivot(ok.assign(label=ok["label"] + " (" + ok["counts"] + ")"), "peak_mem_bytes",
                  fmt_mib)
    return text + f"\n\n![memory]({plots.memory(ok, run.out)})\n\n" + md_table(table)


def sec_peer(run: RunData) -> str:
    if why := run.needs("step_median_s"):
        return why
    peer = numpy_baseline(run.ok, "step_median_s")
    peer = peer[peer["impl"] == "sklearn"]
    if peer.empty:
        return ("_No scikit-learn cell ran alongside a numpy cell in this run (it runs on the"
                " CPU, with loss `bce` only)._")
    peer = peer.set_index("size").reindex([s for s in size_order(run.ok) if s in set(peer["size"])])
    ratio = peer["step_median_s"] / peer["step_median_s_numpy"]
    table = pd.DataFrame({"size": peer.index, "sklearn step": peer["step_median_s"].map(fmt_s),
                          "numpy step": peer["step_median_s_numpy"].map(fmt_s),
                          "sklearn / numpy": ratio.map(lambda x: f"{x:.3g}x")})
    text = ("scikit-learn's MLPClassifier is the field's standard NumPy backprop, and here it"
            " does exactly our update: it starts from the shared initialisation (our weights"
            " copied into it), with logistic hidden units, the same loss (its log-loss is our"
            " `bce`; it has no `mse`, so this row exists for `bce` runs only) and the same plain"
            " SGD step (no momentum, no L2 penalty, constant rate). tests/test_peer.py checks that"
            " one of its `partial_fit` steps equals our NumPy `bce` step. What is timed is one"
            " `partial_fit` call, scikit-learn's input validation included: what a user of the"
            f" library pays per step. That costs {ratio.min():.3g}x to {ratio.max():.3g}x the"
            " hand-written NumPy step at the same sizes (above 1 = slower).")
    if len(ratio) > 1 and ratio.iloc[0] > ratio.iloc[-1]:
        text += (f" The ratio falls from {ratio.iloc[0]:.3g}x at {ratio.index[0]} to"
                 f" {ratio.iloc[-1]:.3g}x at {ratio.index[-1]}, as a fixed cost per call would:"
                 " the smaller the problem, the more of a step that cost is.")
    return text + "\n\n" + md_table(table)
