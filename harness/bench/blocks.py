"""blocks.csv: every block a run timed, kept or discarded, with the canary beside it: the
evidence behind the run's weather and its pairs, and what docs/timing.md's estimator
comparison was computed from.

    log = BlockLog(folder)          # reads the rows a resumed run already has
    log.add(walked.records, walked.flags, walk="tiny")   # one walk's blocks; file rewritten

One row per block: the key, `walk` (the size whose rounds it belongs to), `round`,
`position` (its place in the round), `at_s` (seconds from the walk's start), `seconds_per_step`
(the block's value: the median of its samples), `samples`, `canary_before_s`,
`canary_after_s`, `settle_s` and `discarded` (the canary read slow: harness/measure/weather.py).
samples.csv holds the kept blocks' samples only, which every statistic rests on. A resumed
run keeps the rows of the sizes whose cells it has (cells.csv is the commit record).
"""

from __future__ import annotations

from harness.store import CellKey, RunFolder
from harness.store.files import read_csv

BLOCKS = "blocks.csv"
BLOCK_COLUMNS = (*CellKey._fields, "walk", "round", "position", "at_s", "seconds_per_step",
                 "samples", "canary_before_s", "canary_after_s", "settle_s", "discarded")


def block_rows(records, flags: dict, walk: str) -> list[dict]:
    rows = []
    for b in records:
        canary = list(b.canary) + [None, None]
        rows.append({**CellKey(b.key.impl, b.key.mode, b.key.device, b.key.dtype,
                               b.key.size)._asdict(), "walk": walk, "round": b.round,
                     "position": b.position, "at_s": _fmt(b.at), "seconds_per_step": b.value,
                     "samples": len(b.samples), "canary_before_s": _fmt(canary[0]),
                     "canary_after_s": _fmt(canary[1]), "settle_s": _fmt(b.settle_s),
                     "discarded": bool(flags.get(id(b)))})
    return rows


def _fmt(x):
    return "" if x is None else repr(float(x))


class BlockLog:
    def __init__(self, folder: RunFolder):
        self.folder = folder
        done = {c["size"] for c in folder.cells}
        try:
            rows = read_csv(folder.path / BLOCKS)
        except (OSError, ValueError):
            rows = []
        self.rows = [r for r in rows if r.get("walk") in done]

    def add(self, records, flags: dict, walk: str) -> None:
        self.rows += block_rows(records, flags, walk)
        self.folder.write_table(BLOCKS, BLOCK_COLUMNS, self.rows)
