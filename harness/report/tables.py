"""The report's building blocks: series labels, markdown tables, pivots, formatting.

Every table of report.md is a pivot of one stored table (cells.csv, tta.csv or the
check's rows), built with these helpers; none of them reads a file.
"""

from __future__ import annotations

import pandas as pd


def label_series(df: pd.DataFrame, dtypes: int, devices=None) -> pd.DataFrame:
    """Add `label`: 'impl mode', plus the device when the run is not CPU-only, plus the dtype
    when the run mixes dtypes. `devices`: the run's devices (default: this table's)."""
    df = df.copy()
    df["label"] = df["impl"].astype(str) + " " + df["mode"].astype(str)
    if "device" in df:
        devices = set(df["device"]) if devices is None else set(devices)
        if devices - {"cpu"}:
            df["label"] += " " + df["device"].astype(str)
    if dtypes > 1 and "dtype" in df:
        df["label"] += " " + df["dtype"].astype(str)
    return df


def fmt_mib(b) -> str:
    return f"{b / 2**20:,.1f} MiB"


def md_table(df: pd.DataFrame, max_rows: int = 40) -> str:
    """A GitHub markdown table (pandas' to_markdown needs tabulate, which we do not require)."""
    def text(v):
        if isinstance(v, float):
            return "-" if pd.isna(v) else f"{v:.3g}"
        return str(v).replace("|", "/").replace("\n", " ")

    cols = [str(c) for c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    out += ["| " + " | ".join(text(v) for v in row) + " |"
            for row in df.head(max_rows).itertuples(index=False)]
    if len(df) > max_rows:
        out.append(f"\n_... and {len(df) - max_rows} more rows._")
    return "\n".join(out)


def words(items) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def size_order(df: pd.DataFrame) -> list:
    """Sizes from least to most work per step (sizes are labels; FLOPs give their order)."""
    if "flops_per_step" in df:
        return list(df.groupby("size")["flops_per_step"].median().sort_values().index)
    return list(pd.unique(df["size"]))


def pivot(df: pd.DataFrame, values: str, fmt) -> pd.DataFrame:
    """Rows = size (ascending work), columns = series, cells formatted by `fmt`."""
    table = df.pivot_table(index="size", columns="label", values=values, aggfunc="first")
    table = table.reindex([s for s in size_order(df) if s in table.index])
    table = table.map(lambda v: "-" if pd.isna(v) else fmt(v))
    return table.rename_axis(columns=None).reset_index()


BASELINE = ("numpy", "default", "cpu")  # hand-written NumPy, where meta.json names none


def baseline(meta: dict) -> tuple[str, str, str]:
    """(impl, mode, device) of the run's speed-up baseline, as its meta.json's settings say
    (runs written before it was a setting: hand-written NumPy)."""
    b = dig(meta, "settings.baseline")
    if isinstance(b, dict) and all(isinstance(b.get(k), str) for k in ("impl", "mode", "device")):
        return b["impl"], b["mode"], b["device"]
    return BASELINE


def baseline_name(meta: dict) -> str:
    """How the report names the baseline: 'hand-written NumPy', or 'IMPL MODE'."""
    b = baseline(meta)
    return "hand-written NumPy" if b == BASELINE else f"{b[0]} {b[1]}"


def is_baseline(df: pd.DataFrame, base: tuple[str, str, str] = BASELINE) -> pd.Series:
    """Rows of `df` that are the baseline series."""
    return (df["impl"] == base[0]) & (df["mode"] == base[1]) & (df["device"] == base[2])


def numpy_baseline(ok: pd.DataFrame, column: str,
                   base: tuple[str, str, str] = BASELINE) -> pd.DataFrame:
    """Each cell joined with the baseline's value of `column` at its dtype and size (suffix
    _numpy: by default the baseline is hand-written NumPy)."""
    rows = ok[(ok["impl"] == base[0]) & (ok["device"] == base[2])]
    if base != BASELINE:
        rows = rows[rows["mode"] == base[1]]
    rows = rows[["dtype", "size", column]]
    return ok.merge(rows.drop_duplicates(["dtype", "size"]), on=["dtype", "size"],
                    suffixes=("", "_numpy"))


def dig(d, path: str, default=None):
    """d["a"]["b"] for path "a.b" in nested dicts, or `default` where any step is missing."""
    v = d
    for key in path.split("."):
        v = v.get(key) if isinstance(v, dict) else None
    return default if v is None else v


def verdict(low: float, high: float) -> str:
    """faster / slower (than the baseline), or no clear difference (the interval holds 1)."""
    return "faster" if low > 1 else "slower" if high < 1 else "no clear difference"


def with_interval(value: float, low: float, high: float, fmt) -> str:
    """'1.5x [1.2x, 1.9x]'; the value alone where the run has no interval."""
    if pd.isna(low) or pd.isna(high):
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"
