"""The report's noise-weather section: what the machine was like while this run measured, and
the precision each size's speed-ups reached, in one short table, so a reader knows whether to
trust the run.

Read from meta.json's `weather` (one entry per size, written by harness/bench/engine.py: the
canary's verdicts, episodes, steal, rounds) and cells.csv's speed-up intervals; a run made
before the weather was recorded says so in one line. `machine_moved` compares two runs'
canaries (compare and stability say when the machine itself ran at another speed).
"""

from __future__ import annotations

import math

from harness.report.load import RunData


def _pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.0%}"


def _ms(x) -> str:
    return "-" if x is None else f"{x * 1e3:.0f} ms"


def _widths(run: RunData, size: str) -> list[float]:
    c = run.cells
    if c is None or not {"speedup", "speedup_low", "speedup_high"} <= set(c.columns):
        return []
    mine = c[(c["size"].astype(str) == size) & (c["status"] == "ok")]
    out = []
    for _, r in mine.iterrows():
        s, lo, hi = r["speedup"], r["speedup_low"], r["speedup_high"]
        if s and s > 0 and lo == lo and hi == hi and not (lo == hi == s == 1.0):
            out.append((hi - lo) / 2 / s)
    return out


def sec_weather(run: RunData) -> str:
    weather = run.meta.get("weather") or {}
    if not weather:
        return ("_This run recorded no noise weather (it was measured before the canary and"
                " the paired rounds of docs/timing.md)._")
    any_size = next(iter(weather.values()))
    target = any_size.get("target")
    head = ("| size | rounds | blocks | slow | discarded | episodes (median, longest) | steal |"
            " others' CPU | speed-ups at the target | widest |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for size, w in weather.items():
        widths = _widths(run, size)
        at = sum(x <= (target or 0.10) for x in widths)
        eps = w.get("episodes")
        eps_text = "-" if eps is None else (f"{eps} ({_ms(w.get('episode_median_s'))},"
                                            f" {_ms(w.get('episode_longest_s'))})" if eps else "0")
        lines.append(f"| {size} | {w.get('rounds', '-')} | {w.get('blocks', '-')} |"
                     f" {_pct(w.get('slow_share', w.get('discarded_share')))} |"
                     f" {_pct(w.get('discarded_share'))} | {eps_text} |"
                     f" {_pct(w.get('steal_share'))} | {_pct(w.get('others_share'))} |"
                     f" {f'{at} of {len(widths)}' if widths else '-'} |"
                     f" {'-' if not widths else f'+-{max(widths):.0%}'} |")
    below = [c for w in weather.values() for c in w.get("below_target") or []]
    limit = any_size.get("canary_limit")
    canary = (f" a block whose canary read over {limit}x its worker's level ran in one of the"
              " machine's slow episodes and was discarded (kept in `blocks.csv`)," if limit else
              " a block whose canary read over 1.3x its worker's level is counted _slow_;"
              " none is discarded (the canary is weather, not a filter: docs/timing.md),")
    text = [f"Each series was timed in blocks next to its baseline's (pairing"
            f" `{any_size.get('pairing', '?')}`), a canary timed beside every block;{canary}"
            f" and rounds went on for the series whose {any_size.get('confidence', 0.95):.0%}"
            f" interval was still wider than +-{target or 0:.0%}. _Episodes_: runs of slow"
            " blocks in time; _steal_: the hypervisor's share of CPU time during the rounds;"
            " _others' CPU_: the share that processes outside this run used meanwhile.", "",
            *lines]
    if below:
        text += ["", f"Not at the target when the rounds ended (budget or round limit):"
                     f" {', '.join(below)}."]
    return "\n".join(text)


MOVED = 0.10  # the canary's readings this far apart: the machine itself moved, said


def _canary(meta: dict) -> float | None:
    """The median over sizes of the canary's median reading (meta.json's weather), seconds."""
    weather = meta.get("weather") if isinstance(meta.get("weather"), dict) else {}
    got = sorted(x for w in weather.values() if isinstance(w, dict)
                 and isinstance(x := w.get("canary_median_s"), (int, float)) and x > 0)
    return got[len(got) // 2] if got else None


def machine_moved(meta_a: dict, meta_b: dict, by: float = MOVED) -> list[str]:
    """A line when the canary (the same fixed kernel beside every block of every run) read
    more than `by` apart in the two runs: the machine itself ran at another speed."""
    ca, cb = _canary(meta_a), _canary(meta_b)
    if ca is None or cb is None or abs(cb / ca - 1) <= by:
        return []
    apart = max(ca, cb) / min(ca, cb) - 1
    return [f"the machine itself moved between the runs: the canary (the same fixed kernel"
            f" beside every block) read {ca * 1e6:.0f} us in A and {cb * 1e6:.0f} us in B"
            f" ({apart:.0%} apart); every step time carries such a move, and not evenly across"
            " workloads; to judge a change on this machine, run both in one run"
            " (bench --against REV)"]
