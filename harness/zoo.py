"""`zoo`: real hand-written-backprop bugs, each run through the gradient checker.

    python -m harness zoo            # table: bug, caught, tensor, worst error, diagnosis
    python -m harness zoo --json

Every bug in docs gradcheck.md ("Bugs that a gradient check must catch", 1-11) is a
variant of the hand-written backprop with the signature of a user's function,
f(params, X, T, loss) -> (loss, grads), checked exactly as `check --impl FILE.py:f`
checks yours: against the NumPy float64 reference on problems of several shapes and
seeds. Each variant has a story and its source of inspiration. Exit 0 iff every bug is
caught on every problem it runs on AND the correct function passes everywhere.

Each function below is the whole backward pass, so it can be read against `correct`;
the changed line is marked `# BUG`. The forward pass and loss are shared (`_forward`,
`_loss`): none of these bugs live there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness import gradcheck as gc
from harness.cli import UsageError


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _forward(P, X):
    Z1 = X @ P["W1"] + P["b1"]  # (N, H)
    A1 = sigmoid(Z1)            # (N, H)
    Z2 = A1 @ P["W2"] + P["b2"]  # (N, K)
    Y = sigmoid(Z2)             # (N, K)
    return Z1, A1, Z2, Y


def _loss(Y, Z2, T, loss):
    """The contract's loss: mean over the batch, sum over outputs."""
    if loss == "mse":
        return 0.5 * np.sum((Y - T) ** 2) / len(T)
    return np.sum(np.logaddexp(0, Z2) - T * Z2) / len(T)


def _dZ2(Y, T, loss):
    """Correct dL/dZ2 (N, K): mse through sigmoid', or bce's (Y - T) / N."""
    if loss == "mse":
        return (Y - T) / len(T) * Y * (1 - Y)
    return (Y - T) / len(T)


def correct(P, X, T, loss):
    """The hand-written backprop, right (the same math as impls/handwritten.py)."""
    Z1, A1, Z2, Y = _forward(P, X)
    dZ2 = _dZ2(Y, T, loss)                  # (N, K)
    dW2 = A1.T @ dZ2                        # (H, K)
    db2 = dZ2.sum(axis=0)                   # (K,)
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)  # (N, H)
    dW1 = X.T @ dZ1                         # (F, H)
    db1 = dZ1.sum(axis=0)                   # (H,)
    return _loss(Y, Z2, T, loss), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _grads(X, A1, dZ2, dZ1):
    """The correct reductions, for bugs that live upstream of them."""
    return {"W1": X.T @ dZ1, "b1": dZ1.sum(0), "W2": A1.T @ dZ2, "b2": dZ2.sum(0)}


# ---- 1, 2: the sigmoid derivative ------------------------------------------------------------
def sigmoid_prime_of_z(P, X, T, loss):
    Z1, A1, Z2, Y = _forward(P, X)
    dZ2 = (Y - T) / len(T) * (Z2 * (1 - Z2) if loss == "mse" else 1)  # BUG: z(1-z), z = Z2
    dZ1 = (dZ2 @ P["W2"].T) * Z1 * (1 - Z1)  # BUG: sigmoid' as if the pre-activation were A1
    return _loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)


def sigmoid_derivative(x):  # the article's: it applies sigmoid itself
    return sigmoid(x) * (1 - sigmoid(x))


def sigmoid_prime_twice(P, X, T, loss):
    Z1, A1, Z2, Y = _forward(P, X)
    dZ2 = (Y - T) / len(T) * (sigmoid_derivative(Y) if loss == "mse" else 1)  # BUG: of Y
    dZ1 = (dZ2 @ P["W2"].T) * sigmoid_derivative(A1)  # BUG: A1 is already sigmoid(Z1)
    return _loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)


# ---- 3, 4, 5: reductions and constant factors ------------------------------------------------
def _scaled(factor: Callable[[int, int], float]):
    """A variant whose dZ2 (hence every gradient) is scaled by factor(N, K)."""

    def f(P, X, T, loss):
        Z1, A1, Z2, Y = _forward(P, X)
        dZ2 = _dZ2(Y, T, loss) * factor(*T.shape)  # BUG: the scale of the loss's reduction
        dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
        return _loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)

    return f


def no_batch_mean(P, X, T, loss):
    Z1, A1, Z2, Y = _forward(P, X)
    dZ2 = _dZ2(Y, T, loss) * len(T)         # BUG: no 1/N in the gradient ...
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
    return _loss(Y, Z2, T, loss) * len(T), _grads(X, A1, dZ2, dZ1)  # BUG: ... nor in the loss


def mse_loss_without_half(P, X, T, loss):
    L, G = correct(P, X, T, loss)
    return 2 * L, G  # BUG: reports sum (y-t)^2 / N while the gradient is that of 0.5 (y-t)^2


# ---- 6: bias reductions ----------------------------------------------------------------------
def _bias(reduce: Callable[[np.ndarray], np.ndarray]):
    def f(P, X, T, loss):
        Z1, A1, Z2, Y = _forward(P, X)
        dZ2 = _dZ2(Y, T, loss)
        dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
        G = _grads(X, A1, dZ2, dZ1)
        G["b1"], G["b2"] = reduce(dZ1), reduce(dZ2)  # BUG: see the variant's story
        return _loss(Y, Z2, T, loss), G

    return f


# ---- 7-10 ------------------------------------------------------------------------------------
def bce_shortcut_with_mse(P, X, T, loss):
    Z1, A1, Z2, Y = _forward(P, X)
    dZ2 = (Y - T) / len(T)                  # BUG: cross-entropy's shortcut, used with mse
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
    return _loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)


def transposed_weight_grad(P, X, T, loss):
    L, G = correct(P, X, T, loss)
    Z1, A1, Z2, Y = _forward(P, X)
    dZ1 = (_dZ2(Y, T, loss) @ P["W2"].T) * A1 * (1 - A1)
    G["W1"] = dZ1.T @ X                     # BUG: (H, F), the layout is (F, H)
    return L, G


def deltas_averaged_first(P, X, T, loss):
    Z1, A1, Z2, Y = _forward(P, X)
    dZ2 = _dZ2(Y, T, loss)
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
    G = _grads(X, A1, dZ2, dZ1)
    # BUG: mean input times summed delta: the sum over samples of products is not the product
    # of sums (exact only at N = 1, where there is nothing to average).
    G["W1"] = np.outer(X.mean(axis=0), dZ1.sum(axis=0))
    G["W2"] = np.outer(A1.mean(axis=0), dZ2.sum(axis=0))
    return _loss(Y, Z2, T, loss), G


def sign_flipped(P, X, T, loss):
    Z1, A1, Z2, Y = _forward(P, X)
    dZ2 = -_dZ2(Y, T, loss)                 # BUG: (t - y) where the chain rule gives (y - t)
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
    return _loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)


# ---- 11: the article's own code --------------------------------------------------------------
# Section 5 of the seed article (shared/seed/ beside the project), transcribed verbatim: a
# one-layer network, X (N, 2) -> y = sigmoid(X @ weights + bias).
ARTICLE_SNIPPET = '''\
import numpy as np

def sigmoid(x):
    return 1 / (1 + np.exp(-x))

def sigmoid_derivative(x):
    return sigmoid(x) * (1 - sigmoid(x))

weights = np.random.randn(2, 1)
bias = np.random.randn(1)

def forward_propagation(X):
    z = np.dot(X, weights) + bias
    y = sigmoid(z)
    return y

def back_propagation(X, y, t):
    dL_dy = y - t
    dy_dz = sigmoid_derivative(z)
    dz_dw = X
    dL_dw = dL_dy * dy_dz * dz_dw
    dL_db = dL_dy * dy_dz
    return dL_dw, dL_db

def train(X, t, iterations, learning_rate):
    for i in range(iterations):
        y = forward_propagation(X)
        dL_dw, dL_db = back_propagation(X, y, t)
        weights -= learning_rate * dL_dw
        bias -= learning_rate * dL_db
'''
# Two more problems it has that the zoo does not exercise: `train` assigns to `weights` and
# `bias`, so they are locals there and the first `-=` raises UnboundLocalError; and the
# article computes no loss value at all.


def _article_namespace() -> dict:
    """The snippet's names (sigmoid, weights, forward_propagation, ...), run as printed."""
    state = np.random.get_state()  # the snippet draws from NumPy's global RNG; leave it as found
    ns: dict = {}
    exec(ARTICLE_SNIPPET, ns)
    np.random.set_state(state)
    return ns


def article_as_written(P, X, T, loss):
    """The article's code run as printed, on our output layer (A1 is its X, W2 its weights).

    back_propagation reads `z`, a local of forward_propagation: NameError, every time.
    """
    ns = _article_namespace()
    Z1, A1, Z2, Y = _forward(P, X)
    ns["weights"], ns["bias"] = P["W2"], P["b2"]
    y = ns["forward_propagation"](A1)
    dL_dw, dL_db = ns["back_propagation"](A1, y, T)  # raises NameError: name 'z' is not defined
    return _loss(Y, Z2, T, loss), {"W2": dL_dw, "b2": dL_db}  # never reached


def article_on_its_own_network(n: int = 5, seed: int = 0) -> dict:
    """The snippet on its own one-layer, one-output network, X (n, 2): as printed, then with
    `z` made available (as a global, the smallest change that runs). Returns what happened
    and the shapes: dL_dw comes out (n, 2), one row per sample, for weights of shape (2, 1).
    """
    ns = _article_namespace()
    rng = np.random.default_rng(seed)
    ns["weights"], ns["bias"] = rng.standard_normal((2, 1)), rng.standard_normal(1)
    X, t = rng.standard_normal((n, 2)), rng.random((n, 1))
    y = ns["forward_propagation"](X)
    try:
        ns["back_propagation"](X, y, t)
        as_written = "ran"
    except NameError as exc:
        as_written = f"NameError: {exc}"
    ns["z"] = np.dot(X, ns["weights"]) + ns["bias"]  # the minimal fix: z in scope
    dL_dw, dL_db = ns["back_propagation"](X, y, t)
    return {"X": list(X.shape), "as_written": as_written,
            "dL_dw": list(dL_dw.shape), "weights": list(ns["weights"].shape),
            "dL_db": list(dL_db.shape), "bias": list(ns["bias"].shape)}


def article_z_in_scope(P, X, T, loss):
    """The article's back_propagation with `z` passed in: its per-sample gradients, as written.

    The minimal fix for the NameError is to hand back_propagation the `z` of the forward
    pass. What is left is the article's formula dL_dw = dL_dy * dy_dz * dz_dw: an
    elementwise product, one gradient per sample, never summed over the batch (nor
    divided by N). For the article's one-layer, one-output net that is shape (N, 2)
    where weights is (2, 1). On our two layers we apply the same formula layer by layer,
    writing the per-sample outer product with explicit axes so it runs for K >= 2:
    dW2 (N, H, K) instead of (H, K), db2 (N, K) instead of (K,), and likewise for layer 1.
    dL_dy * dy_dz is taken as the article's y - t times sigmoid'(z) for mse (the article's
    loss, per sample, no 1/N), and as y - t for bce (which the article's FAQ recommends).
    The loss value returned is the contract's: the article computes none.
    """
    Z1, A1, Z2, Y = _forward(P, X)
    dL_dz2 = (Y - T) * (sigmoid_derivative(Z2) if loss == "mse" else 1)  # (N, K), per sample
    dL_dW2 = dL_dz2[:, None, :] * A1[:, :, None]  # (N, H, K)  BUG: never reduced over N
    dL_db2 = dL_dz2                               # (N, K)     BUG: never reduced over N
    dL_dz1 = (dL_dz2 @ P["W2"].T) * sigmoid_derivative(Z1)  # (N, H)
    dL_dW1 = dL_dz1[:, None, :] * X[:, :, None]   # (N, F, H)  BUG: never reduced over N
    dL_db1 = dL_dz1                               # (N, H)     BUG: never reduced over N
    return _loss(Y, Z2, T, loss), {"W1": dL_dW1, "b1": dL_db1, "W2": dL_dW2, "b2": dL_db2}


# ---- the zoo ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bug:
    number: str  # its number in gradcheck.md's list (a letter for variants)
    name: str
    story: str  # one line: what the code does wrong
    source: str  # where this mistake is seen (no invented links)
    function: Callable
    losses: tuple[str, ...] = ("mse", "bce")  # the losses where the mistake changes anything


BUGS = (
    Bug("1", "sigmoid_prime_of_z", "sigmoid' computed as z(1-z) on the pre-activation",
        "a recurring Q&A-site question (sigmoid'(z) written for the output, fed z)",
        sigmoid_prime_of_z),
    Bug("2", "sigmoid_prime_twice", "sigmoid(a)(1-sigmoid(a)) where a is already an activation",
        "the article's sigmoid_derivative, which takes x and applies sigmoid itself",
        sigmoid_prime_twice),
    Bug("3a", "grad_sum_loss_mean", "the loss is a mean over the batch, the gradient a sum",
        "common: the contract calls mean-versus-sum the most common bug in the field",
        _scaled(lambda n, k: n)),
    Bug("3b", "mean_divided_twice", "the batch average divided by N a second time",
        "common in Q&A threads: 1/N in dL/dY and again in dW", _scaled(lambda n, k: 1 / n)),
    Bug("3c", "mean_over_outputs", "gradient of a mean over outputs too, loss sums over outputs",
        "np.mean over every entry in the gradient, the contract's loss sums over outputs",
        _scaled(lambda n, k: 1 / k)),
    Bug("4", "no_batch_mean", "the 1/N of the batch mean forgotten in loss and gradient",
        "CS231n notes (the `dscores /= num_examples` line that is easy to leave out)",
        no_batch_mean),
    Bug("5a", "mse_gradient_of_square", "gradient 2(y-t) of (y-t)^2 used with the 0.5 (y-t)^2 loss",
        "the article's own formula has the 1/2; many derivations drop it",
        _scaled(lambda n, k: 2), losses=("mse",)),
    Bug("5b", "mse_loss_without_half", "loss reported as (y-t)^2, gradient that of 0.5 (y-t)^2",
        "the reverse of 5a: only the loss value shows it", mse_loss_without_half, losses=("mse",)),
    Bug("6a", "bias_not_summed", "bias gradient left per sample: dZ (N, H) instead of (H,)",
        "common Q&A question (the bias broadcasts forward, so it must be summed backward)",
        _bias(lambda dZ: dZ)),
    Bug("6b", "bias_summed_wrong_axis", "bias gradient summed over units (axis=1), not samples",
        "common Q&A question (axis=0 vs axis=1)", _bias(lambda dZ: dZ.sum(axis=1))),
    Bug("6c", "bias_averaged", "bias gradient averaged over the batch, where dZ already has 1/N",
        "common Q&A question (mean where the sum is right)", _bias(lambda dZ: dZ.mean(axis=0))),
    Bug("7", "bce_shortcut_with_mse", "delta = y - t (the cross-entropy shortcut) used with mse",
        "tutorial code that switched losses but kept the shortcut", bce_shortcut_with_mse,
        losses=("mse",)),
    Bug("8", "transposed_weight_grad", "dW1 = dZ1.T @ X: (H, F) for an (F, H) weight",
        "common Q&A question (layout (in, out) vs (out, in))", transposed_weight_grad),
    Bug("9", "deltas_averaged_first", "deltas averaged over the batch before the outer product",
        "common Q&A question (vectorising a per-sample loop)", deltas_averaged_first),
    Bug("10", "sign_flipped", "t - y where the chain rule gives y - t",
        "tutorials use both signs, paired with += or -= in the update", sign_flipped),
    Bug("11a", "article_as_written", "the article's back_propagation reads z, not in scope",
        "the article itself (section 5)", article_as_written),
    Bug("11b", "article_z_in_scope", "the article's code with z passed in: per-sample gradients",
        "the article itself (section 5), minimally fixed", article_z_in_scope),
)

# Several shapes (non-square, K >= 2, N >= 2; one with F == H, where only values show a
# transpose) and seeds: a bug must be caught on every one of them.
SHAPES = ((11, 5, 7, 3), (4, 3, 6, 2), (9, 6, 6, 4), (16, 8, 5, 2))


def problems(seeds: int = 3) -> list[gc.Problem]:
    return [gc.make_problem(*shape, seed=s) for s in range(seeds) for shape in SHAPES]


def run_bug(f: Callable, losses, seeds: int = 3) -> list[gc.Row]:
    """Every row of checking `f` on the zoo's problems."""
    return gc.check_function(f, problems(seeds), losses, impl="zoo", mode=f.__name__)


def summary(bug: Bug, rows: list[gc.Row]) -> dict:
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


def add_arguments(parser) -> None:
    parser.add_argument("--seeds", type=int, default=3, help="seeds per shape (default 3)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead")


def run(args) -> int:
    if args.seeds < 1:
        raise UsageError(f"--seeds must be a positive integer, got {args.seeds}")
    results = [summary(bug, run_bug(bug.function, bug.losses, args.seeds)) for bug in BUGS]
    good = run_bug(correct, ("mse", "bce"), args.seeds)
    false_alarms = [r for r in good if not r.ok]
    ok = all(r["caught"] for r in results) and not false_alarms
    article = article_on_its_own_network()
    if args.json:
        print(json.dumps({"ok": ok, "bugs": results,
                          "correct": {"ok": not false_alarms, "rows": len(good),
                                      "false_alarms": [r.message() for r in false_alarms]},
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
    return 0 if ok else 1
