# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Backprop by hand, checked, and measured against autograd
#
# The teaching path of [backprop-bench](../README.md) as a notebook that runs top to bottom:
#
# 0. the article's snippet, failing as printed, then repaired;
# 1. the two-layer gradients, derived line by line;
# 2. your own backprop function, checked by the project's checker (and a planted bug, caught);
# 3. the bug zoo;
# 4. a benchmark run, loaded with pandas: speed-ups over hand-written NumPy, with intervals;
# 5. the cost of change and vanishing gradients;
# 6. when hand-written backprop is still the right tool, and when it is not, from these numbers.
#
# **Prefer the command line?** Every step has one: [`docs/teaching.md`](teaching.md) is the same
# path as commands (`python -m harness check --impl FILE.py:FUNCTION`, `python -m harness zoo`,
# `python -m harness lessons`, `python -m harness bench`, `python -m harness report RUN`).
#
# **Running it.** The kernel must be the project's environment: after `make setup`, start
# Jupyter from it (`.venv/bin/pip install jupyterlab && .venv/bin/jupyter lab`), or register it
# with `.venv/bin/python -m ipykernel install --user --name backprop-bench`. `make notebook`
# re-executes this notebook and rewrites it in place; its source, reviewed in diffs, is the
# plain-text script [`teaching.py`](teaching.py) beside it (jupytext, "percent" format), and
# `tests/test_notebook.py` runs it on every `make test`. A run folder other than the newest
# committed reference run can be loaded by setting `BACKPROP_BENCH_RUN=path/to/run` before
# starting Jupyter (`make notebook RUN=path/to/run`).
#
# One rule for this kernel: no JAX before section 2. The checker runs your function in a forked
# process, and JAX hangs in a forked child once it has run in the parent (NumPy and torch do not).

# %%
import linecache
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Image, Markdown, display

from harness.check.api import check_my_backprop
from harness.check.article import ARTICLE_SNIPPET
from harness.check.problems import finite_differences, make_problem
from harness.check.zoo import BUGS, run_bug, summary
from harness.lessons.cost import ROOT, cost_of_change, cost_table
from harness.lessons.notebook import (
    closing,
    find_run,
    kernel_python,
    small_png,
    speedup_table,
    versus_numpy,
)
from harness.lessons.vanishing import SCALES, gradient_history, vanishing_figure, vanishing_text
from impls import contract, handwritten

pd.set_option("display.max_colwidth", None)
print(f"kernel: {kernel_python()}")  # the project's .venv, or the interpreter you chose

# %% [markdown]
# ## 0. Where this project started: an article's snippet
#
# The project grew from a Chinese-language backprop tutorial. Its section 5 gives this NumPy
# code for a one-layer sigmoid network; the project keeps it verbatim
# (`harness.check.article.ARTICLE_SNIPPET`):

# %%
print(ARTICLE_SNIPPET)

# %% [markdown]
# Run it as printed, on five samples with the article's two inputs. `back_propagation` reads
# `z`, but `z` is a local variable of `forward_propagation`:

# %%
ARTICLE = "<the article, section 5>"  # a file name for the traceback, so it shows the lines
linecache.cache[ARTICLE] = (len(ARTICLE_SNIPPET), None, ARTICLE_SNIPPET.splitlines(True), ARTICLE)
article = {}
exec(compile(ARTICLE_SNIPPET, ARTICLE, "exec"), article)

rng = np.random.default_rng(0)
article["weights"], article["bias"] = rng.standard_normal((2, 1)), rng.standard_normal(1)
X_a, t_a = rng.standard_normal((5, 2)), rng.random((5, 1))  # N=5 samples, 2 inputs, 1 output
y_a = article["forward_propagation"](X_a)
try:
    article["back_propagation"](X_a, y_a, t_a)
except NameError as error:  # the traceback from the article's own lines on
    traceback.print_exception(type(error), error, error.__traceback__.tb_next)

# %% [markdown]
# The smallest repair is to make `z` visible. Now it runs, and shows the second bug: `dL_dw` has
# one row **per sample**, shape (5, 2), for weights of shape (2, 1). The elementwise product
# `dL_dy * dy_dz * dz_dw` never sums over the batch, so `weights -= learning_rate * dL_dw`
# cannot even broadcast.

# %%
article["z"] = X_a @ article["weights"] + article["bias"]  # the repair: z in scope
dL_dw, dL_db = article["back_propagation"](X_a, y_a, t_a)
print(f"dL_dw {dL_dw.shape} for weights {article['weights'].shape}; "
      f"dL_db {dL_db.shape} for bias {article['bias'].shape}")
print("per-sample gradients (one row each):\n", dL_dw)

# %% [markdown]
# The gradient of a loss summed over the batch is the **sum** of those rows, which is a matrix
# product: `X.T @ delta`, with `delta = dL/dz` per sample and the sigmoid's derivative written
# from its output `y`, as `y * (1 - y)`:

# %%
delta = (y_a - t_a) * y_a * (1 - y_a)  # dL/dz for each sample: (5, 1)
dw = X_a.T @ delta                     # (2, 1): the shape of the weights
print("X.T @ delta:", dw.ravel(), "  the per-sample rows, summed:", dL_dw.sum(axis=0))
print("equal:", np.allclose(dw.ravel(), dL_dw.sum(axis=0)))

# %% [markdown]
# ## 1. Derive the two-layer gradients
#
# The project's network, in the names of `impls/handwritten.py` (`@` a matrix product, `*`
# elementwise, N the batch size):
#
#     Z1 = X @ W1 + b1        # (N, H)     X (N, F), W1 (F, H), b1 (H,)
#     A1 = sigmoid(Z1)        # (N, H)
#     Z2 = A1 @ W2 + b2       # (N, K)     W2 (H, K), b2 (K,)
#     Y  = sigmoid(Z2)        # (N, K)     T (N, K): the targets, in [0, 1]
#     L  = (1/N) * sum((Y - T)**2) / 2     # mean over the batch, sum over the outputs
#
# Go backwards one forward line at a time; each gradient has the shape of what it is the
# gradient of. A problem with N, F, H, K all different lets no transpose or missing sum hide:

# %%
p = make_problem(11, 5, 7, 3, seed=0)  # N=11 samples, F=5 inputs, H=7 hidden units, K=3 outputs
P, X, T = p.params, p.X, p.T
N = len(X)


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


Z1 = X @ P["W1"] + P["b1"]
A1 = sigmoid(Z1)
Z2 = A1 @ P["W2"] + P["b2"]
Y = sigmoid(Z2)
L = 0.5 * np.sum((Y - T) ** 2) / N

dY = (Y - T) / N                 # derivative of 0.5 (Y - T)^2, and the 1/N of the mean
dZ2 = dY * Y * (1 - Y)           # sigmoid'(Z2) = Y (1 - Y), from the output Y
dW2 = A1.T @ dZ2                 # Z2 = A1 @ W2: the weight gradient sums over the batch
db2 = dZ2.sum(axis=0)            # b2 was broadcast over N rows: its gradient sums over them
dA1 = dZ2 @ P["W2"].T            # the same matmul, differentiated by its input
dZ1 = dA1 * A1 * (1 - A1)        # sigmoid'(Z1) = A1 (1 - A1)
dW1 = X.T @ dZ1
db1 = dZ1.sum(axis=0)
mine = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
for name, g in mine.items():
    print(f"d{name} {str(g.shape):8} for {name} {P[name].shape}")

# %% [markdown]
# Is it right? Nudge each parameter by ±h and watch the loss (central finite differences,
# `harness.check.problems.finite_differences`); and compare with the project's
# `impls/handwritten.py`, the code every benchmark runs:

# %%
fd = finite_differences(P, X, T, "mse")
_, theirs = handwritten.grads(np, P, X, T, "mse")
rows = [{"tensor": k, "worst |mine - finite differences|": np.abs(mine[k] - fd[k]).max(),
         "worst |mine - handwritten.py|": np.abs(mine[k] - theirs[k]).max(),
         "largest |gradient|": np.abs(mine[k]).max()} for k in mine]
pd.DataFrame(rows).set_index("tensor").map("{:.1e}".format)

# %% [markdown]
# Finite differences agree to about 1e-9 (their own truncation error); the hand-written code to
# float64 rounding. For binary cross-entropy the sigmoid's derivative cancels against the
# loss's, and `dZ2 = (Y - T) / N` directly. The two sums over the batch, `X.T @` and
# `.sum(axis=0)`, are exactly what the article's snippet leaves out.
#
# ## 2. Write your own backprop, and check it
#
# The checker's contract: `f(params, X, T, loss) -> (loss, grads)`, `loss` is `"mse"` or
# `"bce"`, `params` and `grads` are dicts `W1, b1, W2, b2` in the layout above. Here is one,
# written in a cell:

# %%
def forward(params, X):
    Z1 = X @ params["W1"] + params["b1"]
    A1 = sigmoid(Z1)
    Z2 = A1 @ params["W2"] + params["b2"]
    return A1, Z2, sigmoid(Z2)


def loss_and_dZ2(Z2, Y, T, loss):
    N = len(T)
    if loss == "mse":
        return 0.5 * np.sum((Y - T) ** 2) / N, (Y - T) / N * Y * (1 - Y)
    return np.sum(np.logaddexp(0, Z2) - T * Z2) / N, (Y - T) / N  # bce, from Z2: no log(0)


def my_grads(params, X, T, loss):
    A1, Z2, Y = forward(params, X)
    L, dZ2 = loss_and_dZ2(Z2, Y, T, loss)
    dZ1 = (dZ2 @ params["W2"].T) * A1 * (1 - A1)
    return L, {"W1": X.T @ dZ1, "b1": dZ1.sum(axis=0), "W2": A1.T @ dZ2, "b2": dZ2.sum(axis=0)}


good = check_my_backprop(my_grads)
display(good)

# %% [markdown]
# It runs your function in a process of its own, with a time limit, on several small problems
# in float64, and compares with the reference at a tolerance of 1e-10 of the gradient's scale.
# Now plant the article's second bug in one line, the hidden bias's gradient left per sample:

# %%
def my_grads_with_a_bug(params, X, T, loss):
    A1, Z2, Y = forward(params, X)
    L, dZ2 = loss_and_dZ2(Z2, Y, T, loss)
    dZ1 = (dZ2 @ params["W2"].T) * A1 * (1 - A1)
    return L, {"W1": X.T @ dZ1, "b1": dZ1, "W2": A1.T @ dZ2, "b2": dZ2.sum(axis=0)}  # BUG: b1


bad = check_my_backprop(my_grads_with_a_bug)
display(bad)
print(f"ok: {good.ok} for my_grads, {bad.ok} for my_grads_with_a_bug; the first failure:")
print(bad.failures[0].message())

# %% [markdown]
# `result.ok`, `result.failures` and `result.to_frame()` (a DataFrame) are there to use in code.
# The same check from the command line: `python -m harness check --impl my_backprop.py:grads`.
#
# ## 3. Meet the zoo
#
# Seventeen real hand-written-backprop bugs (`harness/check/bugs.py`; the article's own two are
# 11a and 11b), each run through the same checker on 4 shapes x 3 seeds. A bug is caught only
# if every run catches it; the correct code must raise no false alarm.

# %%
start = time.perf_counter()
zoo = pd.DataFrame([summary(bug, run_bug(bug.function, bug.losses, seeds=3)) for bug in BUGS])
false_alarms = [r for r in run_bug(my_grads, contract.LOSSES, seeds=3) if not r.ok]
print(f"{zoo['caught'].sum()} of {len(zoo)} bugs caught on every problem; {len(false_alarms)} false"
      f" alarms on my_grads ({time.perf_counter() - start:.1f} s)")
zoo["worst error"] = [f"{e:.2e}" if pd.notna(e) else "-" for e in zoo["worst_error"]]
zoo[["number", "name", "caught", "tensor", "worst error", "diagnosis"]].set_index("number")

# %% [markdown]
# Bugs 1, 2, 7 and 9 say only "wrong values": no simple factor explains them, which is why they
# survive in code for years. Exercise: put one into `my_grads` above and predict the diagnosis.
#
# ## 4. What frameworks buy you: a benchmark run, loaded with pandas
#
# `make bench` times every implementation over a sweep of sizes, in interleaved rounds, and
# stores a run folder under `results/`. `cells.csv` has one row per (implementation, mode,
# device, dtype, size). `speedup` is the median over rounds of NumPy's step time over the
# series' in the same round (above 1: faster than hand-written NumPy), and
# `speedup_low`/`speedup_high` its 95% interval. **An interval that holds 1 is no clear
# difference**, whatever the median says.

# %%
found = find_run()
print("run:", found.why)
cells = table = None
if found.path is not None:
    cells = pd.read_csv(found.path / "cells.csv")
    table = speedup_table(cells)
    print(f"{len(cells)} cells; {len(table)} with a speed-up over hand-written NumPy")
    shown = table.assign(shown=[f"{s:.3g} [{lo:.3g}, {hi:.3g}]" + (" ≈" if v == "no clear difference" else "")
                                for s, lo, hi, v in table[["speedup", "speedup_low", "speedup_high",
                                                           "verdict"]].itertuples(index=False)])
    display(shown.pivot(index="label", columns="size", values="shown")[
        list(dict.fromkeys(table["size"]))].fillna("-"))

# %% [markdown]
# The same numbers as a figure: one line per series, its 95% interval as error bars, the dotted
# line at 1 is hand-written NumPy. A bar that crosses it is no clear difference.

# %%
if table is None:
    print("No run loaded: nothing to plot.")
else:
    import matplotlib.pyplot as plt

    colours = {"numpy": "#0072B2", "torch": "#D55E00", "jax": "#009E73", "cupy": "#CC79A7",
               "sklearn": "#7F7F7F"}  # the report's colours (harness/report/plots.py)
    sizes = list(dict.fromkeys(table["size"]))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = table[table["impl"] != "numpy"].groupby("label")
    for i, (label, g) in enumerate(series):
        x = g["size_rank"] + 0.06 * (i - (len(series) - 1) / 2)  # offsets: bars side by side
        ax.errorbar(x, g["speedup"], yerr=[g["speedup"] - g["speedup_low"],
                                           g["speedup_high"] - g["speedup"]],
                    label=label, capsize=3, marker="o", color=colours.get(g["impl"].iloc[0]),
                    linestyle="--" if g["mode"].iloc[0] in ("compile", "jit") else "-")
    ax.axhline(1, color="black", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(sizes)), [f"{s}\nH={table[table['size'] == s]['n_hidden'].iloc[0]}"
                                      for s in sizes])
    ax.set(xlabel="problem size (work per step grows to the right)",
           ylabel="speed-up over hand-written NumPy (x)",
           title="Above 1: faster than hand-written NumPy (95% intervals, paired by round)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    plt.show()

# %% [markdown]
# In words, series by series, read from the intervals (`harness.lessons.notebook.versus_numpy`):

# %%
if table is None:
    print("No run loaded: nothing to say about speed.")
else:
    for _, row in table[table["impl"] != "numpy"].iterrows():
        print(f"size {row['size']}: {versus_numpy(row)}")

# %% [markdown]
# ## 5. Two lessons, measured on this code base (`python -m harness lessons`)
#
# **The cost of change.** The hidden activation can be sigmoid, tanh or relu. Reading the
# project's own source with Python's `ast`, this counts what adding that option cost each
# implementation (`harness/lessons/cost.py` states every counting rule):

# %%
display(Markdown(cost_table()))
by_hand = cost_of_change((ROOT / "impls" / "handwritten.py").read_text(encoding="utf-8"))
autograd = {name: cost_of_change((ROOT / "impls" / f"{name}_impl.py").read_text(encoding="utf-8"))
            for name in ("torch", "jax")}

# %% [markdown]
# **Vanishing gradients.** Train the network with each activation on inputs at two scales and
# record the per-layer gradient norms and how much gradient the hidden activation lets through
# (`harness/lessons/vanishing.py`, full batch, 400 steps each):

# %%
histories = {(act, scale): gradient_history(act, scale)
             for scale in SCALES for act in contract.ACTIVATIONS}
with tempfile.TemporaryDirectory() as tmp:
    figure = vanishing_figure(histories, Path(tmp))
    display(Image(data=small_png(Path(tmp) / figure)))
display(Markdown(vanishing_text(histories, figure).split("\n\n", 1)[1]))

# %% [markdown]
# ## 6. When is hand-written backprop still the right tool?
#
# Every sentence below is computed from the numbers above (`harness.lessons.notebook.closing`):
# the run's speed-ups and their intervals, the counted cost of change, and what the checker said
# about the planted bug. A claim the numbers do not support is not made.

# %%
said = bad.failures[0].diagnosis if bad.failures else ""
display(Markdown(closing(table, by_hand, autograd, diagnosis=said)))

# %% [markdown]
# Where to go from here: the command lines for every step are in
# [`docs/teaching.md`](teaching.md); the full benchmark report of a run is
# `python -m harness report results/<run>` (its `report.md` also has memory, compile cost, time
# to accuracy and the share of the machine's peak); and the README explains how the timing is
# made fair.
