"""The wall-clock budget of one `bench` invocation: time left, and job timeouts capped by it.

    budget = Budget(330.0)          # the gpu profile's: `make gpu` must end in minutes
    if budget.can_start(): launch(job, env, budget.timeout(time_limit))

No job starts once the budget is spent; a running one is killed when it runs out
(a "timeout" row that says why); jobs never started stay missing, for --resume.
"""

from __future__ import annotations

import math
import time

MIN_START_S = 5.0  # under a wall budget, no job starts with less time than this left


class Budget:
    def __init__(self, seconds: float | None, start: float | None = None,
                 min_start_s: float = MIN_START_S):
        self.seconds = seconds  # None: unbounded
        self.end = None if seconds is None else (start or time.time()) + seconds
        self.min_start_s = min_start_s

    def left(self) -> float:
        return math.inf if self.end is None else self.end - time.time()

    def can_start(self) -> bool:
        return self.left() >= self.min_start_s

    def timeout(self, limit: float) -> float:
        return max(1.0, min(limit, self.left()))


NO_BUDGET = Budget(None)
