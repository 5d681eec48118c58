"""Noise weather: which blocks ran inside one of the machine's slow episodes, and what the
machine was like while a run measured (episodes, their length, blocks discarded, steal).

    flags = disturbed(blocks, limit=1.3)      # {id(block): True} where its canary read slow
    kept = [b for b in blocks if not flags[id(b)]]
    summary = weather(blocks, flags, steal_share)   # meta.json's weather of one size

A block is disturbed when the canary timed in its worker just before or just after it
(harness/measure/canary.py) read over `limit` times that worker's canary level: the 25th
percentile of its readings in this run (a low quantile: an episode makes readings slower,
never faster). Such a block is discarded, never rescaled; the adaptive rounds sample another
(harness/bench/schedules.py) and the discarded blocks stay in blocks.csv with the flag.
An episode is a run of disturbed blocks in time order, with no undisturbed block between;
its length runs from its first disturbed block's start to the start of the next block that
was not disturbed. Steal is the hypervisor's share of CPU time while the blocks ran
(/proc/stat), others' the share that processes outside the run used (load that a lock did not
keep out). Pure functions, no clock; `cpu_jiffies` reads /proc.
"""

from __future__ import annotations

import math

import numpy as np

LEVEL_QUANTILE = 25  # a worker's canary level: this percentile of its readings
SLOW = 1.3  # a block whose canary read over this x its level is "slow" in the weather


def levels(blocks) -> dict:
    """{key: the canary level of that key's worker} over the blocks that carry a canary."""
    by: dict = {}
    for b in blocks:
        by.setdefault(b.key, []).extend(c for c in b.canary if c and math.isfinite(c))
    return {k: float(np.percentile(v, LEVEL_QUANTILE)) for k, v in by.items() if v}


def disturbed(blocks, limit: float | None) -> dict[int, bool]:
    """{id(block): whether its canary read over `limit` x its worker's level}; with no limit
    (the canary switched off) or no canary reading, never."""
    level = levels(blocks) if limit else {}
    return {id(b): bool(limit and b.key in level and any(c > limit * level[b.key]
                                                         for c in b.canary))
            for b in blocks}


def episodes(blocks, flags: dict[int, bool]) -> list[float]:
    """The length in seconds of each episode (a run of disturbed blocks in time order)."""
    timed = sorted((b for b in blocks if b.at is not None), key=lambda b: b.at)
    out, start = [], None
    for b in timed:
        if flags.get(id(b)) and start is None:
            start = b.at
        elif not flags.get(id(b)) and start is not None:
            out.append(b.at - start)
            start = None
    if start is not None and timed:  # still on at the last block: up to its start
        out.append(max(timed[-1].at - start, 0.0))
    return out


def weather(blocks, flags: dict[int, bool], steal: float | None = None,
            slow: dict[int, bool] | None = None) -> dict:
    """One size's weather, as meta.json records it (the engine adds others_share). `flags`:
    the blocks discarded; `slow`: the blocks whose canary read slow (episodes are runs of
    these), the discarded ones where not given."""
    n = len(blocks)
    slow = flags if slow is None else slow
    bad = sum(bool(flags.get(id(b))) for b in blocks)
    slows = sum(bool(slow.get(id(b))) for b in blocks)
    lengths = episodes(blocks, slow)
    canaries = [c for b in blocks for c in b.canary]
    out = {"blocks": n, "discarded": bad, "discarded_share": bad / n if n else None,
           "slow": slows, "slow_share": slows / n if n else None,
           "episodes": len(lengths),
           "episode_median_s": float(np.median(lengths)) if lengths else None,
           "episode_longest_s": max(lengths) if lengths else None,
           "canary_median_s": float(np.median(canaries)) if canaries else None,
           "steal_share": steal}
    if canaries:
        lv = levels(blocks)
        spread = [c / lv[b.key] for b in blocks for c in b.canary if b.key in lv]
        out["canary_p90_over_level"] = float(np.percentile(spread, 90)) if spread else None
    return out


def cpu_jiffies(pids=()) -> dict | None:
    """Jiffies so far: the machine's steal, busy and total time over all CPUs (/proc/stat),
    and the CPU time of processes `pids` (this run's: the parent and its workers, threads
    included); None without /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    own = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            own += int(parts[11]) + int(parts[12])
        except (OSError, ValueError, IndexError):
            continue
    return {"steal": fields[7] if len(fields) > 7 else 0, "busy": sum(fields) - idle,
            "total": sum(fields), "own": own}


def shares(before: dict | None, after: dict | None) -> dict:
    """Between two cpu_jiffies() readings: the hypervisor's share of CPU time (steal) and
    the share other processes than the run's used (others: load the exclusive lock did not
    keep out)."""
    if before is None or after is None or after["total"] <= before["total"]:
        return {"steal_share": None, "others_share": None}
    total = after["total"] - before["total"]
    steal = after["steal"] - before["steal"]
    others = (after["busy"] - before["busy"]) - steal - (after["own"] - before["own"])
    return {"steal_share": steal / total, "others_share": max(others, 0) / total}
