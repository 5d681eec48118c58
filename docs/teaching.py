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
# The teaching path of [backprop-bench](../README.md) as a notebook that runs top to bottom, a
# 90-minute lab (中文版: [`teaching.zh.ipynb`](teaching.zh.ipynb)):
#
# 0. the article's snippet, failing as printed, then repaired; its symbols mapped to the code's;
# 1. the two-layer gradients, derived element by element, drawn as a graph, checked;
# 2. your own backprop function, checked by the project's checker (and a planted bug, caught);
# 3. the bug zoo, and what two of its bugs do to training;
# 4. the same network in ~10 lines of torch and of jax, checked against the hand-written one;
# 5. a benchmark run, loaded with pandas: speed-ups over hand-written NumPy, with intervals;
# 6. the cost of change and vanishing gradients;
# 7. when hand-written backprop is still the right tool, and when it is not, from these numbers.
#
# **Exercises** close every section. Each names the file you write, the command that checks it
# on problems you can see (`python -m harness check --impl FILE.py:FUNCTION`), and how your
# teacher grades it: `python -m harness grade` runs the same checks on hidden shapes and seeds
# you never see (the teacher's guide: [`grading.md`](grading.md)). The exercise files are in
# [`exercises/`](exercises/): copy one before you edit it.
#
# **Running it.** The light install for a class is enough: `pip install -e '.[teach]'` (NumPy,
# matplotlib, Jupyter; no torch, no jax), then `jupyter lab`. Without torch or jax the framework
# cells say what is missing and the notebook goes on. Colab and Windows routes, and the
# command-line version of every step: [`teaching.md`](teaching.md). `make notebook` re-executes
# this notebook in place; its source, reviewed in diffs, is [`teaching.py`](teaching.py)
# (jupytext, "percent" format), and `tests/test_notebook.py` runs it with and without torch and
# jax. `BACKPROP_BENCH_RUN=path/to/run` (or `make notebook RUN=path/to/run`) loads another run.
#
# One rule for this kernel: no JAX before section 4. The checker runs a function typed into a
# cell in a forked process, and JAX hangs in a forked child once it has run in the parent.

# %%
import linecache
import multiprocessing
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Image, Markdown, display

from harness.check.api import check_my_backprop
from harness.check.article import ARTICLE_SNIPPET
from harness.check.problems import finite_differences, make_problem
from harness.check.zoo import BUGS, run_bug, summary
from harness.lessons.bug_training import bug_figure, bug_text, train_with_bugs
from harness.lessons.closing import closing, facts
from harness.lessons.cost import FILES, ROOT, cost_of_change, cost_table, why_longer
from harness.lessons.graph import network_graph
from harness.lessons.notebook import (
    cell_lines,
    find_run,
    framework,
    kernel_python,
    read_tta,
    small_png,
    speedup_table,
    versus_numpy,
)
from harness.lessons.vanishing import SCALES, gradient_history, vanishing_figure, vanishing_text
from impls import contract, handwritten

pd.set_option("display.max_colwidth", None)
_figures = tempfile.TemporaryDirectory(prefix="teaching-figures-")  # removed when the kernel ends
FIGURES = Path(_figures.name)
CAN_FORK = "fork" in multiprocessing.get_all_start_methods()  # not on Windows: see section 2
print(f"kernel: {kernel_python()}")  # the project's .venv, or the interpreter you chose

# %% [markdown]
# ## 0. Where this project started: an article's snippet
#
# The project grew from a Chinese-language backprop tutorial. Its section 5 ("项目实践：代码实例和
# 详细解释说明") gives this NumPy code for a one-layer sigmoid network; the project keeps it
# verbatim (`harness.check.article.ARTICLE_SNIPPET`):

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
# ### From the article's symbols to the code's
#
# The article (section 4) writes one neuron; the code writes a batch of N samples through two
# layers. The same quantities, side by side:
#
# | article (section 4, 5) | what it is | code (`impls/handwritten.py`) | shape |
# | --- | --- | --- | --- |
# | $x$, `X` | a node's input | `X` (layer 1), `A1` (layer 2) | (N, F), (N, H) |
# | $w$, `weights` | weights | `W1`, `W2` | (F, H), (H, K) |
# | $b$, `bias` | bias | `b1`, `b2` | (H,), (K,) |
# | `z` (code only) | pre-activation $w x + b$ | `Z1`, `Z2` | (N, H), (N, K) |
# | $y = \sigma(z)$ | the output | `A1` (hidden), `Y` (output) | (N, H), (N, K) |
# | $t$ | the target | `T` | (N, K) |
# | $L = \frac{1}{2}(y - t)^2$ | one sample's loss | `mse`: $\frac{1}{N}\sum \frac{1}{2}(Y - T)^2$ | scalar |
# | $\sigma' = \sigma(1 - \sigma)$ | the sigmoid's slope | `Y * (1 - Y)`, from the output | like `Y` |
# | $\frac{\partial L}{\partial w}$ | the gradient | `dW2 = A1.T @ dZ2` (summed over the batch) | like `W2` |
# | $\eta$ | the learning rate | `lr` | scalar |
#
# **The article's slip.** Section 4 writes
# $\frac{\partial L}{\partial w} = (y - t) \cdot \sigma'(x) \cdot x$: the sigmoid's derivative
# at $x$, the input. The chain rule puts it at $z = w x + b$, the sigmoid's own input:
# $(y - t)\,\sigma'(z)\,x$, and since $\sigma'(z) = y(1 - y)$ the code needs no $z$ at all. The
# article's code does write `sigmoid_derivative(z)`, the right variable, but where `z` does not
# exist (the `NameError` above), and its tempting repair `sigmoid_derivative(y)` applies the
# sigmoid twice (the zoo's bug 2).
#
# ### Exercises 0
#
# 0.1. Before running the cells above, predict which line of the snippet fails first and why.
# 0.2. Write $\frac{\partial L}{\partial b}$ for one sample in the article's symbols, then for the
# batch in the code's: why is `db2` a sum over rows? (Checked, and graded, as part of 2.2.)

# %% [markdown]
# ## 1. Derive the two-layer gradients
#
# The project's network, in the names of `impls/handwritten.py` (`@` a matrix product, `*`
# elementwise, N the batch size, F inputs, H hidden units, K outputs):
#
#     Z1 = X @ W1 + b1        # (N, H)     X (N, F), W1 (F, H), b1 (H,)
#     A1 = sigmoid(Z1)        # (N, H)
#     Z2 = A1 @ W2 + b2       # (N, K)     W2 (H, K), b2 (K,)
#     Y  = sigmoid(Z2)        # (N, K)     T (N, K): the targets, in [0, 1]
#     L  = (1/N) * sum((Y - T)**2) / 2     # mean over the batch, sum over the outputs
#
# The graph the backward pass walks, right to left; each orange edge is one line of code:

# %%
display(Image(data=small_png(FIGURES / network_graph(FIGURES))))

# %% [markdown]
# **Why `dW = X.T @ dZ`, element by element.** Write `dZ` for $\partial L / \partial Z$, an
# (N, H) array like `Z`. One entry of `Z = X @ W + b` is
# $Z_{nj} = \sum_i X_{ni} W_{ij} + b_j$, so $\partial Z_{nj} / \partial W_{ij} = X_{ni}$, and
# $W_{ij}$ reaches the loss through every sample $n$ (through column $j$ only). The chain rule
# sums over all of them:
#
# $$\frac{\partial L}{\partial W_{ij}} = \sum_{n=1}^{N} \frac{\partial L}{\partial Z_{nj}}\, X_{ni}
#   = \sum_n (X^T)_{in}\, dZ_{nj} = (X^T dZ)_{ij}, \qquad (F, N) @ (N, H) \to (F, H).$$
#
# The sum over the batch is *inside* the matrix product: that is why `X.T @ dZ` has the weight's
# shape, and why the article's elementwise product (one row per sample) does not. Likewise
# $\partial Z_{nj} / \partial b_j = 1$ for every $n$, so $\partial L / \partial b_j =
# \sum_n dZ_{nj}$ (`dZ.sum(axis=0)`, shape (H,)), and $\partial Z_{nj}/\partial X_{ni} = W_{ij}$
# gives $\partial L / \partial X_{ni} = \sum_j dZ_{nj} W_{ij} = (dZ\, W^T)_{ni}$: the rule that
# carries the gradient back through a layer (`dA1 = dZ2 @ W2.T`). Checked with loops, the formula
# written out one entry at a time:

# %%
p = make_problem(11, 5, 7, 3, seed=0)  # N=11 samples, F=5 inputs, H=7 hidden units, K=3 outputs
P, X, T = p.params, p.X, p.T
N = len(X)
dZ_any = np.random.default_rng(1).standard_normal((N, 7))  # any dL/dZ1 of shape (N, H)
loops = np.zeros((5, 7))
for i in range(5):          # F
    for j in range(7):      # H
        loops[i, j] = sum(dZ_any[n, j] * X[n, i] for n in range(N))  # sum over the batch
print("sum over n of dZ[n, j] * X[n, i] equals (X.T @ dZ)[i, j]:", np.allclose(loops, X.T @ dZ_any))

# %% [markdown]
# **Why BCE's gradient collapses to `Y - T`.** Per entry, with $y = \sigma(z)$,
# $\ell = -[t \log y + (1 - t)\log(1 - y)]$, so $\partial \ell / \partial y = -t/y + (1-t)/(1-y)
# = (y - t) / (y (1 - y))$, and the sigmoid contributes $\partial y/\partial z = y(1 - y)$. The
# product is $y - t$: the sigmoid's slope cancels. With the batch mean, `dZ2 = (Y - T) / N`. (The
# code computes the loss from `Z2` as $\mathrm{softplus}(z) - t z$, whose derivative is
# $\sigma(z) - t$ directly, and which never takes the log of 0.) For MSE nothing cancels:
# `dZ2 = (Y - T) / N * Y * (1 - Y)`.
#
# **The finite-difference check.** Nudge one parameter $\theta$ by $\pm h$ and watch the loss:
# $\frac{\partial L}{\partial \theta} \approx \frac{L(\theta + h) - L(\theta - h)}{2h}$. Its
# error is $O(h^2)$ from the curvature plus about $\varepsilon_{64}/h$ from rounding
# ($\varepsilon_{64} \approx 2 \times 10^{-16}$); with $h = 10^{-6}$ both are small, which is why
# it is a float64-only check. Now the whole backward pass, one forward line at a time:

# %%
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
# Is it right? Central finite differences (`harness.check.problems.finite_differences`), and the
# project's `impls/handwritten.py`, the code every benchmark runs:

# %%
fd = finite_differences(P, X, T, "mse")
_, theirs = handwritten.grads(np, P, X, T, "mse")
rows = [{"tensor": k, "worst |mine - finite differences|": np.abs(mine[k] - fd[k]).max(),
         "worst |mine - handwritten.py|": np.abs(mine[k] - theirs[k]).max(),
         "largest |gradient|": np.abs(mine[k]).max()} for k in mine]
pd.DataFrame(rows).set_index("tensor").map("{:.1e}".format)

# %% [markdown]
# Finite differences agree to about 1e-10 (their own truncation and rounding error); the
# hand-written code to float64 rounding. The two sums over the batch, `X.T @` and
# `.sum(axis=0)`, are exactly what the article's snippet leaves out.
#
# ### Exercises 1
#
# 1.1. Derive `dZ1` for a tanh hidden layer and for relu, in terms of the layer's *output* `A1`
# (as the code has it): $\tanh' = 1 - \tanh^2$, $\mathrm{relu}'(z) = [z > 0]$.
# 1.2. Derive `dZ2` for BCE yourself, on paper, and say where the $1/N$ comes from.
# 1.3. Why must the finite-difference check run in float64? Estimate its error at $h = 10^{-6}$
# and at $h = 10^{-3}$ in float32 ($\varepsilon_{32} \approx 10^{-7}$).
#
# Check (your derivation, through its code): exercise 2.2 with `--activation tanh` and
# `--activation relu`. Graded: the same function, hidden problems, every activation.

# %% [markdown]
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


# Where there is no fork (Windows), a function typed into a cell cannot reach a process of its
# own: the same function saved in a file is checked instead (teaching.md, "Windows").
good = check_my_backprop(my_grads if CAN_FORK else f"{ROOT}/docs/examples/my_backprop.py:grads")
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


bad = check_my_backprop(my_grads_with_a_bug if CAN_FORK
                        else f"{ROOT}/docs/examples/my_backprop.py:grads_with_a_bug")
display(bad)
print(f"ok: {good.ok} for my_grads, {bad.ok} for my_grads_with_a_bug; the first failure:")
print(bad.failures[0].message())

# %% [markdown]
# `result.ok`, `result.failures` and `result.to_frame()` (a DataFrame) are there to use in code.
#
# ### Exercises 2
#
# Work in a copy of the skeleton, from the repository root:
# `cp docs/exercises/backprop.py my_backprop.py`. Its `grads(params, X, T, loss,
# activation="sigmoid")` has numbered TODOs.
#
# 2.1. Run the check on the untouched copy:
# `python -m harness check --impl my_backprop.py:grads`. Each TODO you have not done is one line,
# `not implemented: TODO n: ...`, and a gradient you return as `None` is `W2: not computed
# (None)`: no traceback.
# 2.2. Fill in the TODOs until that command ends with `check: all ... comparisons agree`, then
# pass `--activation tanh` and `--activation relu` (the checker hands `activation=` to a function
# that accepts it). A tanh branch that reuses the sigmoid's derivative fails with a diagnosis.
# 2.3. The update and the training loop: `cp docs/exercises/step.py my_step.py`, then
# `python -m harness check --impl my_step.py:step --task step` (one update, `f(params, X, T, loss,
# lr) -> new params`) and `python -m harness check --impl my_step.py:train --task train` (epochs
# of minibatches in the contract's order, `-> (params, history)`), checked against the
# contract's trajectory.
#
# In a notebook the same checks are `check_my_backprop("my_backprop.py:grads",
# activation="tanh")` and `check_my_backprop("my_step.py:step", task="step")`: a file's function
# runs in a fresh interpreter, on every platform. Graded: your teacher collects the files and
# runs `python -m harness grade SUBMISSIONS --out DIR`, with shapes and seeds you never see.

# %% [markdown]
# ## 3. Meet the zoo
#
# Seventeen real hand-written-backprop bugs (`harness/check/bugs.py`; the article's own two are
# 11a and 11b), each run through the same checker on 4 shapes x 3 seeds. A bug is caught only
# if every run catches it; the correct code must raise no false alarm.

# %%
zoo = pd.DataFrame([summary(bug, run_bug(bug.function, bug.losses, seeds=3)) for bug in BUGS])
false_alarms = [r for r in run_bug(my_grads, contract.LOSSES, seeds=3) if not r.ok]
print(f"{zoo['caught'].sum()} of {len(zoo)} bugs caught on every problem; {len(false_alarms)} false"
      " alarms on my_grads")
zoo["worst error"] = [f"{e:.2e}" if pd.notna(e) else "-" for e in zoo["worst_error"]]
zoo[["number", "name", "caught", "tensor", "worst error", "diagnosis"]].set_index("number")

# %% [markdown]
# Bugs 1, 2, 7 and 9 say only "wrong values": no simple factor explains them, which is why they
# survive in code for years. What do bugs do to *training*? The correct gradient against the
# zoo's sign flip (10) and its sum where the loss has a mean (3a: every gradient N times too
# large), each trained the same way from the same start (`harness/lessons/bug_training.py`):

# %%
runs = train_with_bugs()
display(Image(data=small_png(FIGURES / bug_figure(runs, FIGURES))))
display(Markdown(bug_text(runs)))

# %% [markdown]
# ### Exercises 3
#
# 3.1. `cp docs/exercises/fix_the_bugs.py my_fix.py` and run
# `python -m harness check --impl my_fix.py:grads`. It holds two of the zoo's bugs. Read the
# diagnoses, find the two lines, fix them, and run the check until it agrees.
# 3.2. Pick a bug from the table, write it into `my_grads` above, and predict the checker's
# diagnosis before you run the cell.
#
# Graded: `my_fix.py` with the hidden problems, like 2.2.

# %% [markdown]
# ## 4. The same network with autograd: ~10 lines of torch, ~10 of jax
#
# Autograd writes the backward pass for you: you write the forward pass and the loss, and ask
# for gradients. The same function signature as `my_grads`, so the same checks apply. Each cell
# says so if its framework is not installed (the `teach` install has neither) and the notebook
# goes on.

# %%
torch, torch_missing = framework("torch")
print(torch_missing or f"torch {torch.__version__}")


def torch_grads(params, X, T, loss):
    import torch
    import torch.nn.functional as F
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    X, T = torch.as_tensor(X), torch.as_tensor(T)
    Z2 = torch.sigmoid(X @ P["W1"] + P["b1"]) @ P["W2"] + P["b2"]
    if loss == "mse":
        L = 0.5 * ((torch.sigmoid(Z2) - T) ** 2).sum() / len(X)
    else:
        L = (-F.logsigmoid(-Z2) - T * Z2).sum() / len(X)  # softplus(Z2) - T Z2, stably
    L.backward()  # autograd: every gradient, into P[k].grad
    return L.item(), {k: p.grad.numpy() for k, p in P.items()}


# %%
jax, jax_missing = framework("jax")
print(jax_missing or f"jax {jax.__version__}")


def jax_grads(params, X, T, loss):
    import jax
    jax.config.update("jax_enable_x64", True)  # else JAX computes float64 in float32
    jnp = jax.numpy

    def L(P):
        Z2 = jax.nn.sigmoid(X @ P["W1"] + P["b1"]) @ P["W2"] + P["b2"]
        if loss == "mse":
            return 0.5 * jnp.sum((jax.nn.sigmoid(Z2) - T) ** 2) / len(X)
        return jnp.sum(jax.nn.softplus(Z2) - T * Z2) / len(X)
    value, G = jax.value_and_grad(L)(params)  # autograd: the loss and every gradient
    return float(value), {k: np.asarray(g) for k, g in G.items()}


# %% [markdown]
# Checked against the hand-written reference on the problem of section 1, in float64, for both
# losses: the worst error over the four tensors, relative to the gradient's largest entry (the
# checker's tolerance is 1e-10).

# %%
for name, f, lib in (("numpy by hand", my_grads, np), ("torch", torch_grads, torch),
                     ("jax", jax_grads, jax)):
    if lib is None:
        print(f"{name}: not checked here ({name} is not installed)")
        continue
    for loss in contract.LOSSES:
        _, G = f(P, X, T, loss)
        _, ref = handwritten.grads(np, P, X, T, loss)
        worst = max(np.abs(G[k] - ref[k]).max() / np.abs(ref[k]).max() for k in ref)
        print(f"{name:13} {loss}: worst error {worst:.1e}; agrees: {worst < 1e-10}")
lines = {"by hand": cell_lines(my_grads, forward, loss_and_dZ2, sigmoid),
         "in torch": cell_lines(torch_grads), "in jax": cell_lines(jax_grads)}
print("code lines, network and gradients:", ", ".join(f"{n} {k}" for k, n in lines.items()))

# %% [markdown]
# ### Exercises 4
#
# 4.1. `cp docs/exercises/frameworks.py my_frameworks.py` and write `torch_grads` without
# looking above: `python -m harness check --impl my_frameworks.py:torch_grads`.
# 4.2. The same for `jax_grads`: `python -m harness check --impl my_frameworks.py:jax_grads`
# (a file's function runs in a fresh interpreter, so JAX is safe there).
# 4.3. Time them against the hand-written reference, at a small and a larger size:
# `python -m harness.lessons.stopwatch numpy my_frameworks.py:torch_grads
# my_frameworks.py:jax_grads --size 64,2,8,1`, then `--size 1024,64,512,1`. It prints each
# function's first call (compilation included) and its speed-up over the first function named
# with a 95% interval: "faster" only when the interval lies above 1. Which is fastest at each
# size, and after how many calls does a jitted function repay its first call?
#
# Needs torch and jax (`pip install -e '.[bench]'`, or Colab). Graded: 4.1 and 4.2 with the
# hidden problems; the timing is yours to report (it depends on the machine).

# %% [markdown]
# ## 5. What frameworks buy you: a benchmark run, loaded with pandas
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
    fig.savefig(FIGURES / "speedups.png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    display(Image(data=small_png(FIGURES / "speedups.png")))

# %% [markdown]
# In words, series by series, read from the intervals (`harness.lessons.notebook.versus_numpy`):

# %%
if table is None:
    print("No run loaded: nothing to say about speed.")
else:
    for _, row in table[table["impl"] != "numpy"].iterrows():
        print(f"size {row['size']}: {versus_numpy(row)}")

# %% [markdown]
# ### Exercises 5
#
# 5.1. Run a short benchmark yourself: `python -m harness bench --profile quick --report`
# (needs the `bench` install), then `python -m harness report results/<its folder>`. Which of
# its verdicts agree with the reference run's above, and which do not? Why may they differ?
# 5.2. In the reference run's `report.md`, find the *Compile cost* section: how many steps must
# jax jit run before its compilation is repaid at the smallest size?
#
# Check: the report's own sentences. Not graded: a reading exercise.

# %% [markdown]
# ## 6. Two lessons, measured on this code base (`python -m harness lessons`)
#
# **The cost of change.** The hidden activation can be sigmoid, tanh or relu. Reading the
# project's own source with Python's `ast`, this counts what adding that option cost each
# implementation: only the lines the option added (sigmoid's own branch was there before), and
# of those, the derivatives written by hand (`harness/lessons/cost.py` states every rule):

# %%
display(Markdown(cost_table()))
costs = {rel: cost_of_change((ROOT / rel).read_text(encoding="utf-8")) for rel, _ in FILES}

# %% [markdown]
# **Vanishing gradients.** Train the network with each activation on inputs at two scales and
# record the per-layer gradient norms and how much gradient the hidden activation lets through
# (`harness/lessons/vanishing.py`, full batch, 400 steps each):

# %%
histories = {(act, scale): gradient_history(act, scale)
             for scale in SCALES for act in contract.ACTIVATIONS}
figure = vanishing_figure(histories, FIGURES)
display(Image(data=small_png(FIGURES / figure)))
display(Markdown(vanishing_text(histories, figure).split("\n\n", 1)[1]))

# %% [markdown]
# ### Exercises 6
#
# 6.1. Add leaky relu ($z$ for $z > 0$, $0.01 z$ otherwise) to your `my_backprop.py` and to
# your `torch_grads`. Count the lines each took, and which of them you had to derive.
# 6.2. Rerun `gradient_history("sigmoid", 10.0)` with `lr=1.0`: does the loss still fall?
#
# Check: 6.1's derivative with the finite-difference cell of section 1 (the checker knows only
# sigmoid, tanh and relu). Not graded.

# %% [markdown]
# ## 7. When is hand-written backprop still the right tool?
#
# Every sentence below is computed from the numbers above (`harness/lessons/closing.py`): the
# run's speed-ups and their intervals, its first calls and time to accuracy, the counted cost of
# change, the line counts of the cells of section 4, and what the checker said about the planted
# bug. A claim the numbers do not support is not made.

# %%
said = bad.failures[0].diagnosis if bad.failures else ""
display(Markdown(closing(facts(table, read_tta(found), costs, why_longer(), lines), diagnosis=said)))

# %% [markdown]
# Where to go from here: the command lines for every step are in
# [`docs/teaching.md`](teaching.md); the full benchmark report of a run is
# `python -m harness report results/<run>` (its `report.md` also has memory, compile cost, time
# to accuracy and the share of the machine's peak); and the README explains how the timing is
# made fair.
