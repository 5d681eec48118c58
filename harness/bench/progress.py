"""Progress of a sweep: a tqdm bar on a terminal, else one plain line per job (logs, CI).

    progress = Progress(total=len(cells))
    progress.start("numpy/default cpu float32 tiny"); ...; progress.done("ok", 5.8e-5)
"""

from __future__ import annotations

import sys
import time


class Progress:
    """A tqdm bar when tqdm is installed and stderr is a terminal; else a plain line per cell."""

    def __init__(self, total: int):
        self.total, self.i, self.t0, self.bar = total, 0, time.time(), None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm  # optional: the GPU machine may not have it

                self.bar = tqdm(total=total, unit="cell", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def start(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_description(label)
        else:
            print(f"[{self.i + 1}/{self.total}] {label}", end="", flush=True)

    def done(self, status: str, value: float | None, unit: str = "s/step") -> None:
        self.i += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        left = (time.time() - self.t0) / self.i * (self.total - self.i)  # mean cell time so far
        shown = f" {value:.3g} {unit}" if isinstance(value, float) else ""
        print(f": {status}{shown}  (ETA {left:.0f} s)", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
