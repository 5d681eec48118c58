"""Time your own backprop functions against each other, fairly enough for a lab.

    python -m harness.lessons.stopwatch numpy docs/exercises/frameworks.py:torch_grads \\
        docs/exercises/frameworks.py:jax_grads --size 256,16,64,1

Each FUNCTION is FILE.py:NAME with the checker's signature f(params, X, T, loss), or `numpy`:
the project's hand-written reference (impls/handwritten.py). The first one named is the
baseline. Every function gets the same problem (float64, the checker's dtype). Its first call
is timed on its own (it includes compilation, for a jitted function), then a few warm-up
calls, then ROUNDS rounds: each round times every function once, in a new random order, over
enough calls to last a few milliseconds. The speed-up of a function over the baseline is the
median over rounds of the baseline's time over the function's in the same round, with a
distribution-free 95% interval, and "faster" or "slower" follows the report's rule
(harness/report/tables.py): only when the interval lies wholly above or below 1.

What is timed is the whole call, conversions included (NumPy in, whatever it returns out).
On a busy machine the interval widens; it does not lie.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.check.problems import make_problem
from harness.check.user import load_function
from harness.errors import UsageError
from harness.measure.stats import fmt_seconds, median_interval, paired_ratios
from harness.report.tables import verdict
from impls import handwritten
from impls.contract import ContractError

SAMPLE_S = 0.005  # each round's sample of one function lasts at least this long
WARMUP = 3


def reference(params, X, T, loss):
    """The project's hand-written backprop, as a checker-style function."""
    L, G = handwritten.grads(np, params, X, T, loss)
    return float(L), G


@dataclass(frozen=True)
class Timing:
    name: str
    first_call_s: float
    per_call: dict[int, float]  # round -> seconds per call


def load(spec: str) -> Callable:
    return reference if spec == "numpy" else load_function(spec)


def measure(functions: dict[str, Callable], size=(256, 16, 64, 1), rounds: int = 15,
            loss: str = "bce", seed: int = 0, clock=time.perf_counter) -> list[Timing]:
    p = make_problem(*size, seed=seed)
    call = {name: (lambda f=f: f(p.params, p.X, p.T, loss)) for name, f in functions.items()}
    first = {}
    for name, c in call.items():
        t0 = clock()
        c()
        first[name] = clock() - t0
        for _ in range(WARMUP):
            c()
    calls = {}
    for name, c in call.items():  # calls per sample: enough to last SAMPLE_S
        t0 = clock()
        c()
        calls[name] = max(1, int(SAMPLE_S / max(clock() - t0, 1e-9)))
    per_call = {name: {} for name in call}
    order = np.random.default_rng(seed)
    for r in range(rounds):
        for name in order.permutation(list(call)):
            c, k = call[name], calls[name]
            t0 = clock()
            for _ in range(k):
                c()
            per_call[name][r] = (clock() - t0) / k
    return [Timing(name, first[name], per_call[name]) for name in call]


def table(timings: list[Timing]) -> str:
    base = timings[0]
    lines = [f"{'function':48} {'first call':>11} {'per call':>10}  vs {base.name}",
             f"{'':48} {'(compile)':>11} {'(median)':>10}"]
    for t in timings:
        med = float(np.median(list(t.per_call.values())))
        said = "(the baseline)"
        if t is not base:
            i = median_interval(paired_ratios(base.per_call, t.per_call))
            v = verdict(i.low, i.high)
            said = f"({i.confidence:.0%} interval, {i.n} rounds)"
            if v == "slower":  # said as the baseline's advantage, the interval inverted
                said = (f"slower: {base.name} is {1 / i.estimate:.3g}x as fast"
                        f" [{1 / i.high:.3g}, {1 / i.low:.3g}] {said}")
            else:
                said = (f"{'faster' if v == 'faster' else 'no clear difference'}:"
                        f" {i.estimate:.3g}x [{i.low:.3g}, {i.high:.3g}] {said}")
        lines.append(f"{t.name:48} {fmt_seconds(t.first_call_s):>11} {fmt_seconds(med):>10}  {said}")
    lines.append("speed-up: the baseline's time over the function's, round by round (above 1:"
                 " faster than the baseline).")
    return "\n".join(lines)


def _size(text: str) -> tuple[int, ...]:
    try:
        size = tuple(int(v) for v in text.split(","))
    except ValueError:
        size = ()
    if len(size) != 4 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"--size must be N,F,H,K (four positive integers), got {text!r}")
    return size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.lessons.stopwatch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("functions", nargs="+", metavar="FUNCTION",
                        help="FILE.py:NAME, or `numpy` (the hand-written reference);"
                             " the first is the baseline")
    parser.add_argument("--size", type=_size, default=(256, 16, 64, 1), help="N,F,H,K (256,16,64,1)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds (15; at least 6 for a 95%% interval)")
    parser.add_argument("--loss", choices=("mse", "bce"), default="bce")
    args = parser.parse_args(argv)
    try:
        if args.rounds < 2:
            raise UsageError(f"--rounds must be at least 2, got {args.rounds}")
        functions = {spec: load(spec) for spec in dict.fromkeys(args.functions)}
    except (UsageError, ContractError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n, f, h, k = args.size
    print(f"problem N={n}, F={f}, H={h}, K={k}, float64, {args.loss}; {args.rounds} rounds")
    print(table(measure(functions, args.size, args.rounds, args.loss)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
