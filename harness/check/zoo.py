"""`zoo`: real hand-written-backprop bugs, each run through the gradient checker.

    python -m harness zoo            # table: bug, caught, tensor, worst error, diagnosis
    python -m harness zoo --json

Every bug a gradient check must catch (the README's "The bug zoo", numbered 1-11) is
a variant of the hand-written backprop (harness/check/bugs.py, harness/check/article.py)
with the signature of a user's function, f(params, X, T, loss) -> (loss, grads),
checked exactly as `check --impl FILE.py:f` checks yours: against the NumPy float64
reference on problems of several shapes and seeds. Each variant has a story and its
source of inspiration. Exit 0 iff every bug is caught on every problem it runs on AND
the correct function passes everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from harness import options
from harness.check import bugs, dp_bugs
from harness.check.agreement import Row
from harness.check.article import (
    ARTICLE_SNIPPET,
    article_as_written,
    article_on_its_own_network,
    article_z_in_scope,
)
from harness.check.problems import Problem, make_problem
from harness.check.user import check_function


@dataclass(frozen=True)
class Bug:
    number: str  # its number in the README's list of bugs to catch (a letter for variants)
    name: str
    story: str  # one line: what the code does wrong
    source: str  # where this mistake is seen (no invented links)
    function: Callable
    losses: tuple[str, ...] = ("mse", "bce")  # the losses where the mistake changes anything


BUGS = (
    Bug("1", "sigmoid_prime_of_z", "sigmoid' computed as z(1-z) on the pre-activation",
        "a recurring Q&A-site question (sigmoid'(z) written for the output, fed z)",
        bugs.sigmoid_prime_of_z),
    Bug("2", "sigmoid_prime_twice", "sigmoid(a)(1-sigmoid(a)) where a is already an activation",
        "the article's sigmoid_derivative, which takes x and applies sigmoid itself",
        bugs.sigmoid_prime_twice),
    Bug("3a", "grad_sum_loss_mean", "the loss is a mean over the batch, the gradient a sum",
        "common: the contract calls mean-versus-sum the most common bug in the field",
        bugs.scaled(lambda n, k: n)),
    Bug("3b", "mean_divided_twice", "the batch average divided by N a second time",
        "common in Q&A threads: 1/N in dL/dY and again in dW", bugs.scaled(lambda n, k: 1 / n)),
    Bug("3c", "mean_over_outputs", "gradient of a mean over outputs too, loss sums over outputs",
        "np.mean over every entry in the gradient, the contract's loss sums over outputs",
        bugs.scaled(lambda n, k: 1 / k)),
    Bug("4", "no_batch_mean", "the 1/N of the batch mean forgotten in loss and gradient",
        "CS231n notes (the `dscores /= num_examples` line that is easy to leave out)",
        bugs.no_batch_mean),
    Bug("5a", "mse_gradient_of_square", "gradient 2(y-t) of (y-t)^2 used with the 0.5 (y-t)^2 loss",
        "the article's own formula has the 1/2; many derivations drop it",
        bugs.scaled(lambda n, k: 2), losses=("mse",)),
    Bug("5b", "mse_loss_without_half", "loss reported as (y-t)^2, gradient that of 0.5 (y-t)^2",
        "the reverse of 5a: only the loss value shows it", bugs.mse_loss_without_half, losses=("mse",)),
    Bug("6a", "bias_not_summed", "bias gradient left per sample: dZ (N, H) instead of (H,)",
        "common Q&A question (the bias broadcasts forward, so it must be summed backward)",
        bugs.bias_reduced(lambda dZ: dZ)),
    Bug("6b", "bias_summed_wrong_axis", "bias gradient summed over units (axis=1), not samples",
        "common Q&A question (axis=0 vs axis=1)", bugs.bias_reduced(lambda dZ: dZ.sum(axis=1))),
    Bug("6c", "bias_averaged", "bias gradient averaged over the batch, where dZ already has 1/N",
        "common Q&A question (mean where the sum is right)", bugs.bias_reduced(lambda dZ: dZ.mean(axis=0))),
    Bug("7", "bce_shortcut_with_mse", "delta = y - t (the cross-entropy shortcut) used with mse",
        "tutorial code that switched losses but kept the shortcut", bugs.bce_shortcut_with_mse,
        losses=("mse",)),
    Bug("8", "transposed_weight_grad", "dW1 = dZ1.T @ X: (H, F) for an (F, H) weight",
        "common Q&A question (layout (in, out) vs (out, in))", bugs.transposed_weight_grad),
    Bug("9", "deltas_averaged_first", "deltas averaged over the batch before the outer product",
        "common Q&A question (vectorising a per-sample loop)", bugs.deltas_averaged_first),
    Bug("10", "sign_flipped", "t - y where the chain rule gives y - t",
        "tutorials use both signs, paired with += or -= in the update", bugs.sign_flipped),
    Bug("11a", "article_as_written", "the article's back_propagation reads z, not in scope",
        "the article itself (section 5)", article_as_written),
    Bug("11b", "article_z_in_scope", "the article's code with z passed in: per-sample gradients",
        "the article itself (section 5), minimally fixed", article_z_in_scope),
)

# The data-parallel bugs (harness/check/dp_bugs.py): W = 2 simulated workers, each on its
# contiguous shard; checked on N NOT divisible by W, in float64 (two of them are exact on equal
# shards, and the error of averaging local means shrinks as 1/N: below float32's tolerance by
# N ~ 10^4). (e') is numerically exact: only the engines' row audit catches it.
DP_SOURCE = "issue 11's prototype (/work/proto11/FINDINGS.md, section 5), measured there"
DP_BUGS = (
    Bug("a", "mean_of_local_means", "each worker's local mean averaged: sum g_r / W",
        "the classic one: DistributedDataParallel averages (sum / W), right on equal shards only",
        dp_bugs.dp_variant("a")),
    Bug("b", "sum_not_divided", "the all-reduced sum of local means, never divided by W",
        "an all_reduce(SUM) whose 'average' step was forgotten", dp_bugs.dp_variant("b")),
    Bug("c", "partial_allreduce", "only W1 and W2 all-reduced; each worker keeps its b1, b2",
        "a parameter list built by hand that misses the biases", dp_bugs.dp_variant("c")),
    Bug("d", "params_allreduced", "local steps, then the parameters all-reduced (SUM)",
        "all-reducing the model instead of its gradients", dp_bugs.dp_variant("d")),
    Bug("d'", "params_averaged", "local steps, then the parameters averaged: (a) again",
        "model averaging mistaken for gradient averaging", dp_bugs.dp_variant("d_avg")),
    Bug("e", "whole_batch", "every worker reads the whole batch (weight = rows read / n)",
        "a sampler or shard index never applied", dp_bugs.dp_variant("e")),
    Bug("e'", "whole_batch_planned", "every worker reads the whole batch, weights from the plan",
        "the same, where the weights come from the shard plan: the numbers are exact",
        dp_bugs.dp_variant("e_planned")),
)
DP_SHAPES = ((13, 5, 7, 3), (11, 3, 6, 2), (9, 6, 6, 4), (15, 8, 5, 2))  # N odd: 7+6, 6+5, ...
DP_BUG_KINDS = dict(zip([b.name for b in DP_BUGS], ("a", "b", "c", "d", "d_avg", "e", "e_planned"),
                        strict=True))

# Several shapes (non-square, K >= 2, N >= 2; one with F == H, where only values show a
# transpose) and seeds: a bug must be caught on every one of them.
SHAPES = ((11, 5, 7, 3), (4, 3, 6, 2), (9, 6, 6, 4), (16, 8, 5, 2))


def problems(seeds: int = 3) -> list[Problem]:
    return [make_problem(*shape, seed=s) for s in range(seeds) for shape in SHAPES]


def run_bug(f: Callable, losses, seeds: int = 3) -> list[Row]:
    """Every row of checking `f` on the zoo's problems."""
    return check_function(f, problems(seeds), losses, impl="zoo", mode=f.__name__)


def summary(bug: Bug, rows: list[Row]) -> dict:
    """Caught iff every (problem, loss) run has a failing row; the first problem's most telling
    failing row names the tensor, worst error and diagnosis."""
    runs: dict = {}
    for r in rows:
        runs.setdefault((r.problem, r.loss), []).append(r)
    caught = sum(any(not r.ok for r in part) for part in runs.values())
    first = next(iter(runs.values()))
    failing = [r for r in first if not r.ok]
    show = failing[0] if failing else first[0]
    return {"number": bug.number, "name": bug.name, "story": bug.story, "source": bug.source,
            "caught": caught == len(runs), "runs": len(runs), "runs_caught": caught,
            "tensor": show.tensor, "worst_error": show.to_json()["worst_error"],
            "diagnosis": show.diagnosis, "message": show.message()}


def dp_problems(seeds: int = 3, equal: bool = False) -> list[Problem]:
    """The DP table's problems: N not divisible by W (or, `equal`, N + 1: equal shards)."""
    return [make_problem(n + equal, f, h, k, seed=s) for s in range(seeds)
            for n, f, h, k in DP_SHAPES]


def dp_summary(bug: Bug, seeds: int = 3) -> dict:
    """Caught iff every (problem, loss) run has a failing row or fails the engines' audit (rows
    read, replica drift); the diagnosis is data-parallel-aware (dp_bugs.diagnose_dp)."""
    kind = DP_BUG_KINDS.get(bug.name)

    def caught_runs(problems):
        rows = check_function(bug.function, problems, bug.losses, impl="zoo-dp", mode=bug.name)
        runs = {}
        for r in rows:
            runs.setdefault((r.problem, r.loss), []).append(r)
        hits = [any(not r.ok for r in part) or not _audit_ok(p, loss, kind)
                for p in problems for loss in bug.losses
                for part in [runs[(p.name, loss)]]]
        return sum(hits), len(hits), runs

    caught, n_runs, runs = caught_runs(dp_problems(seeds))
    equal, n_equal, _ = caught_runs(dp_problems(seeds, equal=True))
    p, loss = dp_problems(1)[0], bug.losses[0]
    first = runs[(p.name, loss)]
    failing = [r for r in first if not r.ok]
    show = max(failing, key=lambda r: (r.tensor != "loss", r.worst_error or 0.0)) if failing else None
    _, G = bug.function(p.params, p.X, p.T, loss)
    diagnosis = dp_bugs.diagnose_dp(p.params, p.X, p.T, loss, G) or (show.diagnosis if show else "")
    a = dp_bugs.audit(p.params, p.X, p.T, loss, bug=kind)
    if not a["rows_ok"]:
        diagnosis = ("exact numbers; " if show is None else diagnosis + "; ") + (
            f"row audit: the workers read {a['rows']} rows of a batch of {a['n']}")
    if a["replica_drift"] > 0:
        diagnosis += f"; the workers' parameters drift apart (up to {a['replica_drift']:.1e})"
    return {"number": bug.number, "name": bug.name, "story": bug.story, "source": bug.source,
            "caught": caught == n_runs, "runs": n_runs, "runs_caught": caught,
            "equal_shards_caught": equal, "equal_shards_runs": n_equal,
            "tensor": show.tensor if show else "(rows)",
            "worst_error": show.to_json()["worst_error"] if show else None,
            "diagnosis": diagnosis}


def _audit_ok(p: Problem, loss: str, kind: str | None) -> bool:
    a = dp_bugs.audit(p.params, p.X, p.T, loss, bug=kind)
    return a["rows_ok"] and a["replica_drift"] == 0


def add_arguments(parser) -> None:
    parser.add_argument("--seeds", type=int, default=3, help="seeds per shape (default 3)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead")


def main(args) -> int:
    options.integer("--seeds", args.seeds)
    results = [summary(bug, run_bug(bug.function, bug.losses, args.seeds)) for bug in BUGS]
    good = run_bug(bugs.correct, ("mse", "bce"), args.seeds)
    false_alarms = [r for r in good if not r.ok]
    dp = [dp_summary(bug, args.seeds) for bug in DP_BUGS]
    dp_good = dp_summary(Bug("-", "correct", "", "", dp_bugs.dp_variant(None)), args.seeds)
    dp_ok = all(r["caught"] for r in dp) and dp_good["runs_caught"] == 0 == dp_good[
        "equal_shards_caught"]
    ok = all(r["caught"] for r in results) and not false_alarms and dp_ok
    article = article_on_its_own_network()
    if args.json:
        print(json.dumps({"ok": ok, "bugs": results,
                          "correct": {"ok": not false_alarms, "rows": len(good),
                                      "false_alarms": [r.message() for r in false_alarms]},
                          "dp_bugs": dp, "dp_correct": {"ok": dp_good["runs_caught"] == 0,
                                                        "runs": dp_good["runs"] * 2,
                                                        "false_alarms": dp_good["runs_caught"]
                                                        + dp_good["equal_shards_caught"]},
                          "article_snippet": ARTICLE_SNIPPET, "article": article},
                         indent=1))
        return 0 if ok else 1
    print(f"{'bug':<4} {'name':<24} {'caught':<8} {'tensor':<7} {'worst error':>11}  diagnosis")
    for r in results:
        caught = "yes" if r["caught"] else f"NO {r['runs_caught']}/{r['runs']}"
        err = "-" if r["worst_error"] is None else f"{r['worst_error']:.2e}"
        print(f"{r['number']:<4} {r['name']:<24} {caught:<8} {r['tensor']:<7} {err:>11}  "
              f"{r['diagnosis']}")
    a = article
    print(f"article, section 5, on its own one-layer net with X {tuple(a['X'])}: as printed "
          f"-> {a['as_written']}; with z in scope -> dL_dw {tuple(a['dL_dw'])} for weights "
          f"{tuple(a['weights'])}, dL_db {tuple(a['dL_db'])} for bias {tuple(a['bias'])}:"
          " one gradient per sample, never summed")
    n_runs = len({(r.problem, r.loss) for r in good})
    print(f"correct implementation: {len(false_alarms)} false alarms on {n_runs} problem-loss runs"
          f" ({len(good)} comparisons)")
    print(f"zoo: {sum(r['caught'] for r in results)} of {len(results)} bugs caught on every "
          f"problem ({len(SHAPES)} shapes x {args.seeds} seeds)" + ("" if ok else "; NOT OK"))
    _print_dp(dp, dp_good, args.seeds)
    return 0 if ok else 1


def _print_dp(dp: list[dict], good: dict, seeds: int) -> None:
    W = dp_bugs.WORKERS
    print(f"\ndata-parallel bugs: {W} simulated workers, float64, N not divisible by W "
          f"(N = {', '.join(str(s[0]) for s in DP_SHAPES)}); 'N%W=0': caught with equal shards")
    print(f"{'bug':<4} {'name':<22} {'caught':<8} {'N%W=0':<7} {'tensor':<8} {'worst error':>11}"
          "  diagnosis")
    for r in dp:
        caught = "yes" if r["caught"] else f"NO {r['runs_caught']}/{r['runs']}"
        eq = r["equal_shards_caught"]
        equal = "yes" if eq == r["equal_shards_runs"] else "missed" if eq == 0 else f"{eq}/{r['runs']}"
        err = "-" if r["worst_error"] is None else f"{r['worst_error']:.2e}"
        print(f"{r['number']:<4} {r['name']:<22} {caught:<8} {equal:<7} {r['tensor']:<8} "
              f"{err:>11}  {r['diagnosis']}")
    false = good["runs_caught"] + good["equal_shards_caught"]
    print(f"correct data-parallel reduction: {false} false alarms on {good['runs'] * 2} "
          "problem-loss runs (N odd and even)")
    print(f"zoo: {sum(r['caught'] for r in dp)} of {len(dp)} data-parallel bugs caught on every "
          f"problem ({len(DP_SHAPES)} shapes x {seeds} seeds)")
