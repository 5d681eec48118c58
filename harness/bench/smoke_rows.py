"""The smoke's rows and its table (harness/bench/smoke.py runs the smoke).

    row = Row("torch eager gpu", available=True); row.steps["grads"] = (True, "3.1e-08", "")
    print(render(rows, "gpu", seconds))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.measure.spec import Size

SIZE = Size("smoke", 64, 2, 8)  # the article's scale (the profiles' tiny)
STEPS = ("grads", "timed", "memory", "precision")


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


def render(rows: list[Row], device: str, seconds: float) -> str:
    head = ("series", "result", *STEPS, "s", "detail")
    table = []
    for r in rows:
        cells = [r.steps.get(k, (None, "-", ""))[1] for k in STEPS]
        if r.status == "unavailable":
            detail = r.reason
        else:
            failed = [f"{k}: {d}" for k, (ok, _, d) in r.steps.items() if ok is False]
            notes = [d for k, (ok, t, d) in r.steps.items() if t.endswith("*")]
            detail = "; ".join(failed or notes)
        table.append((r.name, r.status, *cells, f"{r.seconds:.1f}", detail))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(t, widths, strict=True)).rstrip()
             for t in (head, *table)]
    counts = {s: sum(r.status == s for r in rows) for s in ("pass", "FAIL", "unavailable")}
    lines.append(f"smoke ({device}, size {SIZE.n_samples} x {SIZE.n_features} -> "
                 f"{SIZE.n_hidden} -> {SIZE.n_outputs}, float32): {counts['pass']} pass, "
                 f"{counts['FAIL']} FAIL, {counts['unavailable']} unavailable in {seconds:.0f} s")
    ran = [r for r in rows if r.status != "unavailable" and not r.name.startswith("peak")]
    lost = [r.name for r in rows if r.status == "unavailable" and not r.name.startswith("peak")]
    if device == "gpu" and ran and lost:
        lines.append(f"note: {ran[0].name} runs here, but {', '.join(lost)} cannot: "
                     f"`make gpu` will have no rows for them")
    return "\n".join(lines)
