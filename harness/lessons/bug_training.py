"""What a backprop bug does to training: the correct gradients against two of the zoo's bugs,
the sign flip (10) and the sum where the loss has a mean (3a, every gradient N times too
large), each trained the same way from the same start.

    from harness.lessons.bug_training import train_with_bugs, bug_figure, bug_text
    runs = train_with_bugs()              # {name: {"loss": array, "accuracy": array}}
    bug_figure(runs, Path("docs/figures")); print(bug_text(runs))

Plain gradient descent on moons (bce, full batch), the update p := p - lr * g with g from
each function: the only difference between the runs is the gradient function.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import data
from harness.check import bugs
from harness.check.zoo import BUGS
from harness.report.tables import words
from impls import contract

FILE = "bug_training.png"
SHOWN = ("10", "3a")  # the zoo's numbers: sign_flipped, grad_sum_loss_mean
N, HIDDEN, LR, STEPS, SEED = 200, 8, 0.5, 300, 0
TAIL = 100  # the last steps, summarised by their median


def functions() -> dict:
    """{label: gradient function}: the correct one first, then the zoo's bugs in SHOWN."""
    out = {"correct": bugs.correct}
    for bug in BUGS:
        if bug.number in SHOWN:
            out[f"bug {bug.number}: {bug.name}"] = bug.function
    return out


def train_with_bugs(steps: int = STEPS, lr: float = LR, seed: int = SEED) -> dict:
    """Train with each gradient function; per step the loss (the contract's, computed
    correctly whatever the gradient) and the training accuracy."""
    X, T = data.make("moons", N, seed)
    start = contract.init_params(X.shape[1], HIDDEN, T.shape[1], seed)
    runs = {}
    with np.errstate(over="ignore"):  # exp overflow in sigmoid is harmless (1/inf = 0)
        for label, f in functions().items():
            P = {k: v.copy() for k, v in start.items()}
            loss, acc = np.empty(steps), np.empty(steps)
            for i in range(steps):
                _, _, Z2, Y = bugs.forward(P, X)
                loss[i], acc[i] = bugs.mean_loss(Y, Z2, T, "bce"), data.accuracy(Y, T)
                _, G = f(P, X, T, "bce")
                for k in P:
                    P[k] = P[k] - lr * G[k]
            runs[label] = {"loss": loss, "accuracy": acc}
    return runs


def bug_figure(runs: dict, out_dir: Path, name: str = FILE) -> str:
    from harness.report import plots

    colours = ["#0072B2", "#D55E00", "#CC79A7"]
    fig, axes = plots.plt.subplots(1, 2, figsize=(12, 4.2))
    for (label, run), colour in zip(runs.items(), colours, strict=False):
        axes[0].plot(run["loss"], label=label, color=colour, linewidth=1.6)
        axes[1].plot(run["accuracy"], label=label, color=colour, linewidth=1.6)
    axes[0].set(xlabel="training step", ylabel="loss (bce, computed correctly)", yscale="log",
                title="loss")
    axes[1].set(xlabel="training step", ylabel="training accuracy", ylim=(0, 1),
                title="accuracy")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=9)
    fig.suptitle(f"Training on moons (N={N}, H={HIDDEN}, full batch, lr {LR}) with the correct"
                 " gradient and with two zoo bugs")
    fig.tight_layout()
    return plots.save(fig, out_dir, name)


def bug_text(runs: dict) -> str:
    """What the figure shows, every number read from `runs` (the last 100 steps as a median:
    a run that oscillates has no meaningful last value)."""
    def tail(r, key):
        return float(np.median(r[key][-TAIL:]))

    rows = ["| gradient | first loss | lowest loss | median loss, last 100 steps"
            " | median accuracy, last 100 steps |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {label} | {r['loss'][0]:.3f} | {np.nanmin(r['loss']):.3f} |"
             f" {tail(r, 'loss'):.3g} | {tail(r, 'accuracy'):.2f} |" for label, r in runs.items()]
    good = runs["correct"]
    said = [f"With the correct gradient the loss falls from {good['loss'][0]:.3f} to"
            f" {good['loss'][-1]:.3f} and the training accuracy reaches {good['accuracy'][-1]:.2f}."]
    fell = []
    for label, r in list(runs.items())[1:]:
        best, first = np.nanmin(r["loss"]), r["loss"][0]
        if best < first:
            fell.append(label)
            how = f"falls at first, to {best:.3f}, then"
        else:
            how = "never falls below its start and"
        said.append(f"With {label} the loss {how} has a median of {tail(r, 'loss'):.3g} over the"
                    f" last {TAIL} steps, against {tail(good, 'loss'):.3g} for the correct"
                    f" gradient; the accuracy's median there is {tail(r, 'accuracy'):.2f}.")
    if fell:
        said.append(f"A wrong gradient can still make the loss fall for a while ({words(fell)}),"
                    " so a falling loss is no proof of correct backprop; the checker's comparison"
                    " with the reference is.")
    return " ".join(said) + "\n\n" + "\n".join(rows)
