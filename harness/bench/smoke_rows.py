"""The smoke's rows and its table (harness/bench/smoke.py runs the smoke).

    row = Row("torch eager gpu", available=True); row.steps["grads"] = (True, "3.1e-08", "")
    row.steps.update(record_steps(series, final.info, compile_threads_bound=8))
    print(render(rows, "gpu", seconds))

A step is (ok, short text, detail): ok False is a FAIL; a passing step whose text is "warn" (or
ends in "*") has its detail shown. The checks of a cell's read-back record
(harness/measure/gpu_checks.py, of_record) are steps named by the check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.measure import gpu_checks
from harness.measure.cell import TF32_SANITY
from harness.measure.spec import Series, Size

SIZE = Size("smoke", 64, 2, 8)  # the article's scale (the profiles' tiny)
STEPS = ("grads", "timed", "memory", "precision")
# of_record's other checks: a column of the table where some row has them
RECORD = ("device", "dispatch", "CUDA graphs", "compile threads")
BEFORE = "before the run"  # the row of gpu_checks.before_run


@dataclass
class Row:
    name: str  # "torch eager gpu", or "peak gpu"
    available: bool | None = None  # None: never found out (the process failed first)
    reason: str = ""
    steps: dict = field(default_factory=dict)  # step -> (ok: bool | None, short text, detail)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        if any(ok is False for ok, _, _ in self.steps.values()):
            return "FAIL"
        return "unavailable" if self.available is False else "pass"

    def to_json(self) -> dict:
        return {"series": self.name, "status": self.status, "reason": self.reason,
                "seconds": round(self.seconds, 2),
                "steps": {k: {"ok": ok, "text": t, "detail": d}
                          for k, (ok, t, d) in self.steps.items()}}


def before_row(found: list) -> tuple[Row, dict[str, str]]:
    """gpu_checks.before_run's findings as the smoke's first row, and {series: why} for the
    series a finding rules out (its compiled modes without Triton's toolchain: "unavailable"
    with that reason, no process started). A failing finding about the machine (an exclusive
    compute mode, another process on the GPU) fails the row: no process is started at all."""
    fails = gpu_checks.failing(found)
    ruled_out = {f.series: f"{BEFORE}: {f.check}: {f.text}" for f in fails if f.series}
    said = "; ".join(f.line() for f in found)
    row = Row(BEFORE, available=True)
    if any(not f.series for f in fails):
        row.steps["checks"] = (False, "FAIL", said + "; nothing was started")
    elif found:
        row.steps["checks"] = (True, "warn", said)
    else:
        row.steps["checks"] = (True, "ok", "")
        row.reason = "nothing found that would waste the run"
    return row, ruled_out


def record_steps(series: Series, info: dict, compile_threads_bound: int | None) -> dict:
    """Every check gpu_checks.of_record makes of a cell's info(), as a step named by it: FAIL
    for a failing finding, "warn" for a warning, else what was read back."""
    found = gpu_checks.of_record(series, info, compile_threads_bound)
    steps = {}
    for check in gpu_checks.checks_of(series, info, compile_threads_bound):
        mine = [f for f in found if f.check == check]
        if any(f.severity == "fail" for f in mine):
            steps[check] = (False, "FAIL", "; ".join(f.text for f in mine))
        elif mine:
            steps[check] = (True, "warn", "; ".join(f.text for f in mine))
        else:
            steps[check] = (True, *_read_back(check, info))
    return steps


def _read_back(check: str, info: dict) -> tuple[str, str]:
    """(short text, detail) of a check that passed: what the record says."""
    if check == "precision":
        return "tf32" if info.get("tf32") else "highest", str(info.get("matmul_precision"))
    if check == "device":
        return "gpu", f"device {info.get('device')}" + (
            f", backend {info['backend']}" if "backend" in info else "")
    if check == "dispatch":
        return str(info.get("cpu_dispatch")), str(info.get("cpu_dispatch_evidence", ""))
    if check == "CUDA graphs":
        return "0 skips", "inductor skipped no CUDA graph"
    return str(info.get("compile_threads")), str(info.get("compile_threads_from", ""))


def memory_step(series: Series, ready) -> tuple:
    """The memory record of a worker that ran (its Ready): on a GPU, its session's counter."""
    mem, method = ready.peak_mem_bytes, str(ready.peak_mem_method or "")
    gpu = series.device != "cpu"
    ok = isinstance(mem, int) and (mem > 0 if gpu else mem >= 0) and (
        method.startswith("session.peak_memory()") or not gpu)
    return ((True, f"{mem / 2**20:.1f} MiB", method) if ok else
            (False, "FAIL", f"peak_mem_bytes {mem!r} ({method or 'none'})"))


def grads_step(g: dict) -> tuple:
    """The grads process's answer (harness/measure/cell.py, job_grads) as a step."""
    if g.get("error"):
        return False, "FAIL", g["error"]
    worst = g.get("worst_error")
    text = "-" if worst is None else f"{worst:.1e}"
    if g.get("timing_only"):
        note = (f"timing-only (TF32): not held to float32's tolerance; sanity bound "
                f"{TF32_SANITY:g}")
        return g["ok"], text + "*", note
    return g["ok"], text, f"tolerance {g.get('tolerance'):g}"


def render(rows: list[Row], device: str, seconds: float) -> str:
    columns = (*STEPS, *(k for k in RECORD if any(k in r.steps for r in rows)))
    head = ("series", "result", *columns, "s", "detail")
    table = []
    for r in rows:
        cells = [r.steps.get(k, (None, "-", ""))[1] for k in columns]
        if r.status == "unavailable":
            detail = r.reason
        else:
            failed = [f"{k}: {d}" for k, (ok, _, d) in r.steps.items() if ok is False]
            notes = [d for k, (ok, t, d) in r.steps.items() if t.endswith("*") or t == "warn"]
            detail = "; ".join(failed or notes) or r.reason
        table.append((r.name, r.status, *cells, f"{r.seconds:.1f}", detail))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(t, widths, strict=True)).rstrip()
             for t in (head, *table)]
    counted = [r for r in rows if r.name != BEFORE]  # the series and the peaks
    counts = {s: sum(r.status == s for r in counted) for s in ("pass", "FAIL", "unavailable")}
    lines.append(f"smoke ({device}, size {SIZE.n_samples} x {SIZE.n_features} -> "
                 f"{SIZE.n_hidden} -> {SIZE.n_outputs}, float32): {counts['pass']} pass, "
                 f"{counts['FAIL']} FAIL, {counts['unavailable']} unavailable in {seconds:.0f} s")
    series = [r for r in counted if not r.name.startswith("peak")]
    ran = [r for r in series if r.status != "unavailable"]
    lost = [r.name for r in series if r.status == "unavailable"]
    if device == "gpu" and ran and lost:
        lines.append(f"note: {ran[0].name} runs here, but {', '.join(lost)} cannot: "
                     f"`make gpu` will have no rows for them")
    return "\n".join(lines)
