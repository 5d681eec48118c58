"""What the teacher reads: summary.md and summary.png, from the stored records alone.

    from harness.grade.summary import summary
    text = summary(records, meta, out / "summary.png")   # also writes the plot

The distribution of scores (a table and a histogram), the statuses, and the most common
mistakes: the one-line diagnoses, which carry no problem sizes (score.general), counted and
each with the submissions that made it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.store.files import atomic_write

STATUSES = ("pass", "fail", "error", "timeout", "missing")


def summary(records: list[dict], meta: dict, plot: Path) -> str:
    n = len(records)
    scores = [r["score"] for r in records]
    top = max((r["max_score"] for r in records), default=0.0)
    statuses = Counter(r["status"] for r in records)
    lines = [f"# Grades: {meta['source']}", "",
             f"{n} submissions graded of {meta['submissions']}; `{meta['function']}` "
             f"({meta['task']}, {meta['activation']}), out of {top:g} points.",
             f"Isolation: {meta['isolation']}.", ""]
    if meta.get("isolation_note"):
        lines += [f"Note: {meta['isolation_note']}", ""]
    lines += ["| status | submissions |", "| --- | --- |"]
    lines += [f"| {s} | {statuses[s]} |" for s in STATUSES if statuses[s]]
    if scores:
        ordered = sorted(scores)
        median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
        lines += ["", f"Scores: mean {sum(scores) / n:.2f}, median {median:g}, "
                      f"min {ordered[0]:g}, max {ordered[-1]:g} (of {top:g}).", "",
                  "| score | submissions |", "| --- | --- |"]
        lines += [f"| {s:g} | {c} |" for s, c in sorted(Counter(scores).items(), reverse=True)]
    mistakes = Counter(r["diagnosis"] for r in records if r["diagnosis"])
    if mistakes:
        lines += ["", "## The most common mistakes", "",
                  "| diagnosis | submissions | who |", "| --- | --- | --- |"]
        for diagnosis, count in sorted(mistakes.items(), key=lambda kv: (-kv[1], kv[0]))[:15]:
            who = sorted(r["submission"] for r in records if r["diagnosis"] == diagnosis)
            shown = ", ".join(who[:6]) + (f", ... ({len(who) - 6} more)" if len(who) > 6 else "")
            lines.append(f"| {diagnosis.replace('|', '/')} | {count} | {shown} |")
    lines += ["", "![scores and mistakes](summary.png)", ""]
    _plot(scores, top, mistakes, plot)
    return "\n".join(lines)


def _plot(scores: list[float], top: float, mistakes: Counter, path: Path) -> None:
    import io

    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), width_ratios=(1, 1.4))
    counts = Counter(scores)
    left.bar([str(f"{s:g}") for s in sorted(counts)], [counts[s] for s in sorted(counts)],
             color="#4c72b0")
    left.set_xlabel(f"score (of {top:g})")
    left.set_ylabel("submissions")
    left.set_title("Distribution of scores")
    left.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    common = sorted(mistakes.items(), key=lambda kv: (-kv[1], kv[0]))[:8][::-1]
    right.barh([_short(d) for d, _ in common], [c for _, c in common], color="#dd8452")
    right.set_xlabel("submissions")
    right.set_title("Most common mistakes" if common else "No mistakes")
    right.tick_params(axis="y", labelsize=7)
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."
