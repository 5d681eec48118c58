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
# # 手写反向传播：推导、检查，并与自动微分实测比较
#
# [backprop-bench](../README.md) 的教学路线，一个从头运行到尾的笔记本，适合一次 90 分钟的实验课
# （English: [`teaching.ipynb`](teaching.ipynb)）。本项目源自一篇中文反向传播教程；下文的
# “文章第 N 节”都指那篇文章：
#
# 0. 文章第 5 节的代码：原样运行会出错，然后修好；文章的符号与代码的对应；
# 1. 两层网络的梯度：逐元素推导、画成计算图、数值检查；
# 2. 你自己的反向传播函数，由项目的检查器检查（再故意埋一个错误，看它被抓住）；
# 3. 错误动物园（bug zoo），以及其中两个错误对训练的影响；
# 4. 同一个网络，用约 10 行 torch 和约 10 行 jax 写成，并与手写版本比对；
# 5. 一次基准测试的结果：相对手写 NumPy 的加速比及其区间；
# 6. 修改的代价与梯度消失；
# 7. 什么时候仍然应该手写反向传播——全部由上面的数字算出。
#
# **练习**在每一节的末尾。每个练习都写明：你要写的文件、在可见问题上检查它的命令
# （`python -m harness check --impl 文件.py:函数名`），以及老师如何评分：`python -m harness grade`
# 用你看不到的形状和随机种子做同样的检查（教师指南：[`grading.md`](grading.md)）。练习文件在
# [`exercises/`](exercises/)，修改前请先复制一份。
#
# **运行方式。** 课堂用的轻量安装就够了：`pip install -e '.[teach]'`（NumPy、matplotlib、Jupyter；
# 不含 torch 和 jax），然后 `jupyter lab`。没有 torch 或 jax 时，框架相关的单元格会说明缺少什么，
# 笔记本继续运行。Colab 和 Windows 的做法、以及每一步的命令行版本见
# [`teaching.zh.md`](teaching.zh.md)。`make notebook` 会原地重新执行本笔记本；它的源文件是
# [`teaching.zh.py`](teaching.zh.py)（jupytext “percent” 格式），`tests/test_notebook.py` 会运行它。
#
# 本内核的一条规则：第 4 节之前不要使用 JAX。检查器在 fork 出的子进程里运行单元格中定义的函数，
# 而父进程一旦运行过 JAX，子进程中的 JAX 就会卡死。
#
# ### 术语表
#
# | 中文 | English | 在本项目中 |
# | --- | --- | --- |
# | 反向传播 | backpropagation | `impls/handwritten.py` 的 `grads` |
# | 前向传播 | forward pass | `forward`：`Z1, A1, Z2, Y` |
# | 链式法则 | chain rule | 每一行反向代码都是它的一次应用 |
# | 计算图 | computational graph | 第 1 节的图 |
# | 损失函数 | loss function | `mse`（均方误差）、`bce`（二元交叉熵） |
# | 激活函数 | activation function | sigmoid、tanh、relu |
# | 梯度下降 | gradient descent | `p := p - lr * dL/dp` |
# | 学习率 | learning rate | `lr` |
# | 权重、偏置 | weight, bias | `W1, W2`、`b1, b2` |
# | 批量、小批量 | batch, minibatch | N 行；`batch_size` |
# | 广播 | broadcasting | 偏置加到 N 行上，所以梯度要对 N 行求和 |
# | 转置 | transpose | `X.T @ dZ` |
# | 有限差分 | finite differences | 数值梯度检查 |
# | 自动微分 | automatic differentiation (autograd) | torch 的 `backward`、jax 的 `grad` |
# | 即时编译 | just-in-time compilation (jit) | `jax.jit`、`torch.compile` |
# | 梯度消失、梯度爆炸 | vanishing / exploding gradients | 第 6 节；文章第 8 节 |

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
from harness.lessons.bug_training import bug_figure, train_with_bugs
from harness.lessons.closing import facts
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
from harness.lessons.vanishing import SCALES, gradient_history, vanishing_figure
from harness.lessons.zh import bug_text_zh, closing_zh, vanishing_text_zh
from impls import contract, handwritten

pd.set_option("display.max_colwidth", None)
_figures = tempfile.TemporaryDirectory(prefix="teaching-figures-")  # 内核结束时删除
FIGURES = Path(_figures.name)
CAN_FORK = "fork" in multiprocessing.get_all_start_methods()  # Windows 上没有 fork：见第 2 节
print(f"kernel: {kernel_python()}")  # 项目的 .venv，或你选的解释器

# %% [markdown]
# ## 0. 起点：文章第 5 节的代码
#
# 文章第 5 节（“项目实践：代码实例和详细解释说明”）给出了一个单层 sigmoid 网络的 NumPy 代码；
# 项目原样保存了它（`harness.check.article.ARTICLE_SNIPPET`）：

# %%
print(ARTICLE_SNIPPET)

# %% [markdown]
# 原样运行，用 5 个样本、文章的 2 个输入。`back_propagation` 读取 `z`，而 `z` 是
# `forward_propagation` 的局部变量：

# %%
ARTICLE = "<the article, section 5>"  # 给回溯信息用的文件名，这样能显示文章的代码行
linecache.cache[ARTICLE] = (len(ARTICLE_SNIPPET), None, ARTICLE_SNIPPET.splitlines(True), ARTICLE)
article = {}
exec(compile(ARTICLE_SNIPPET, ARTICLE, "exec"), article)

rng = np.random.default_rng(0)
article["weights"], article["bias"] = rng.standard_normal((2, 1)), rng.standard_normal(1)
X_a, t_a = rng.standard_normal((5, 2)), rng.random((5, 1))  # N=5 个样本，2 个输入，1 个输出
y_a = article["forward_propagation"](X_a)
try:
    article["back_propagation"](X_a, y_a, t_a)
except NameError as error:  # 从文章自己的代码行开始的回溯
    traceback.print_exception(type(error), error, error.__traceback__.tb_next)

# %% [markdown]
# 最小的修复是让 `z` 可见。现在它能运行了，却暴露出第二个错误：`dL_dw` **每个样本一行**，形状
# (5, 2)，而权重的形状是 (2, 1)。逐元素乘积 `dL_dy * dy_dz * dz_dw` 从未对批量求和，所以
# `weights -= learning_rate * dL_dw` 连广播都做不到。

# %%
article["z"] = X_a @ article["weights"] + article["bias"]  # 修复：让 z 可见
dL_dw, dL_db = article["back_propagation"](X_a, y_a, t_a)
print(f"dL_dw {dL_dw.shape} for weights {article['weights'].shape}; "
      f"dL_db {dL_db.shape} for bias {article['bias'].shape}")
print("per-sample gradients (one row each):\n", dL_dw)

# %% [markdown]
# 对整个批量求和的损失，其梯度是这些行的**和**，也就是一个矩阵乘法：`X.T @ delta`，其中
# `delta = dL/dz`（每个样本一行），sigmoid 的导数用它的输出 `y` 写成 `y * (1 - y)`：

# %%
delta = (y_a - t_a) * y_a * (1 - y_a)  # 每个样本的 dL/dz：(5, 1)
dw = X_a.T @ delta                     # (2, 1)：与权重同形
print("X.T @ delta:", dw.ravel(), "  the per-sample rows, summed:", dL_dw.sum(axis=0))
print("equal:", np.allclose(dw.ravel(), dL_dw.sum(axis=0)))

# %% [markdown]
# ### 从文章的符号到代码的名字
#
# 文章第 4 节写的是一个神经元；代码写的是 N 个样本组成的批量、两层网络。同一个量，并排对照：
#
# | 文章（第 4、5 节） | 含义 | 代码（`impls/handwritten.py`） | 形状 |
# | --- | --- | --- | --- |
# | $x$、`X` | 节点的输入 | `X`（第 1 层）、`A1`（第 2 层） | (N, F)、(N, H) |
# | $w$、`weights` | 权重 | `W1`、`W2` | (F, H)、(H, K) |
# | $b$、`bias` | 偏置 | `b1`、`b2` | (H,)、(K,) |
# | `z`（只在代码里） | 激活前的值 $w x + b$ | `Z1`、`Z2` | (N, H)、(N, K) |
# | $y = \sigma(z)$ | 输出 | `A1`（隐藏层）、`Y`（输出层） | (N, H)、(N, K) |
# | $t$ | 目标值 | `T` | (N, K) |
# | $L = \frac{1}{2}(y - t)^2$ | 单个样本的损失 | `mse`：$\frac{1}{N}\sum_{n,k} \frac{1}{2}(Y - T)^2$ | 标量 |
# | $\sigma'(\cdot) = \sigma(\cdot)(1 - \sigma(\cdot))$ | sigmoid 的斜率 | `Y * (1 - Y)`，用输出写 | 同 `Y` |
# | $\frac{\partial L}{\partial w}$ | 梯度 | `dW2 = A1.T @ dZ2`（对批量求和） | 同 `W2` |
# | $\eta$ | 学习率 | `lr` | 标量 |
#
# **文章的笔误。** 第 4 节写道 $\frac{\partial L}{\partial w} = (y - t) \cdot \sigma'(x) \cdot x$：
# sigmoid 的导数取在输入 $x$ 处。链式法则要求取在 sigmoid 自己的输入 $z = w x + b$ 处：
# $(y - t)\,\sigma'(z)\,x$；又因为 $\sigma'(z) = y(1 - y)$，代码根本不需要 $z$。文章的代码确实写了
# `sigmoid_derivative(z)`，变量是对的，但 `z` 在那里并不存在（上面的 `NameError`）；而诱人的修法
# `sigmoid_derivative(y)` 会把 sigmoid 用两次（动物园的第 2 号错误）。
#
# ### 练习 0
#
# 0.1. 运行上面的单元格之前，先预测文章代码的哪一行最先出错、为什么。
# 0.2. 用文章的符号写出单个样本的 $\frac{\partial L}{\partial b}$，再用代码的名字写出整个批量的：
# 为什么 `db2` 是对各行求和？（作为 2.2 的一部分检查和评分。）

# %% [markdown]
# ## 1. 推导两层网络的梯度
#
# 项目的网络，用 `impls/handwritten.py` 的名字（`@` 矩阵乘法，`*` 逐元素乘，N 批量大小，F 输入数，
# H 隐藏单元数，K 输出数）：
#
#     Z1 = X @ W1 + b1        # (N, H)     X (N, F), W1 (F, H), b1 (H,)
#     A1 = sigmoid(Z1)        # (N, H)
#     Z2 = A1 @ W2 + b2       # (N, K)     W2 (H, K), b2 (K,)
#     Y  = sigmoid(Z2)        # (N, K)     T (N, K)：目标值，在 [0, 1] 内
#     L  = (1/N) * sum((Y - T)**2) / 2     # 对批量取平均，对输出求和
#
# 反向传播从右往左走的计算图；每条橙色的边就是一行代码（文章第 3.3 节：“首先计算输出层的梯度，
# 然后逐层向前计算”）：

# %%
display(Image(data=small_png(FIGURES / network_graph(FIGURES))))

# %% [markdown]
# **为什么 `dW = X.T @ dZ`：逐元素推导。** 记 `dZ` 为 $\partial L / \partial Z$，形状 (N, H)，与 `Z`
# 相同。`Z = X @ W + b` 的一个元素是 $Z_{nj} = \sum_i X_{ni} W_{ij} + b_j$，所以
# $\partial Z_{nj} / \partial W_{ij} = X_{ni}$；$W_{ij}$ 通过每一个样本 $n$（只通过第 $j$ 列）影响损失。
# 链式法则把它们全部加起来：
#
# $$\frac{\partial L}{\partial W_{ij}} = \sum_{n=1}^{N} \frac{\partial L}{\partial Z_{nj}}\, X_{ni}
#   = \sum_n (X^T)_{in}\, dZ_{nj} = (X^T dZ)_{ij}, \qquad (F, N) @ (N, H) \to (F, H).$$
#
# 对批量的求和就在矩阵乘法**里面**：所以 `X.T @ dZ` 与权重同形，而文章的逐元素乘积（每个样本一行）
# 不是。同理，对每个 $n$ 都有 $\partial Z_{nj} / \partial b_j = 1$，所以
# $\partial L / \partial b_j = \sum_n dZ_{nj}$（`dZ.sum(axis=0)`，形状 (H,)）；而
# $\partial Z_{nj}/\partial X_{ni} = W_{ij}$ 给出 $\partial L / \partial X_{ni} = \sum_j dZ_{nj} W_{ij}
# = (dZ\, W^T)_{ni}$：这就是把梯度穿过一层传回去的规则（`dA1 = dZ2 @ W2.T`）。用循环逐个元素验证：

# %%
p = make_problem(11, 5, 7, 3, seed=0)  # N=11 个样本，F=5 个输入，H=7 个隐藏单元，K=3 个输出
P, X, T = p.params, p.X, p.T
N = len(X)
dZ_any = np.random.default_rng(1).standard_normal((N, 7))  # 任意一个 (N, H) 形状的 dL/dZ1
loops = np.zeros((5, 7))
for i in range(5):          # F
    for j in range(7):      # H
        loops[i, j] = sum(dZ_any[n, j] * X[n, i] for n in range(N))  # 对批量求和
print("sum over n of dZ[n, j] * X[n, i] equals (X.T @ dZ)[i, j]:", np.allclose(loops, X.T @ dZ_any))

# %% [markdown]
# **为什么交叉熵的梯度化简成 `Y - T`。** 对每个元素，$y = \sigma(z)$，
# $\ell = -[t \log y + (1 - t)\log(1 - y)]$，于是 $\partial \ell / \partial y = -t/y + (1-t)/(1-y)
# = (y - t) / (y (1 - y))$；sigmoid 贡献 $\partial y/\partial z = y(1 - y)$。两者相乘得 $y - t$：
# sigmoid 的斜率被约掉了。再加上批量平均，`dZ2 = (Y - T) / N`。（代码从 `Z2` 计算损失，写成
# $\mathrm{softplus}(z) - t z$，它的导数直接就是 $\sigma(z) - t$，而且永远不会取 log(0)。）文章第 9 节
# 的问答也建议二分类用交叉熵。对均方误差则没有约分：`dZ2 = (Y - T) / N * Y * (1 - Y)`。
#
# **有限差分检查。** 把一个参数 $\theta$ 推动 $\pm h$，看损失怎么变：
# $\frac{\partial L}{\partial \theta} \approx \frac{L(\theta + h) - L(\theta - h)}{2h}$。它的误差是来自
# 曲率的 $O(h^2)$，加上来自舍入的约 $\varepsilon_{64}/h$（$\varepsilon_{64} \approx 2 \times 10^{-16}$）；
# $h = 10^{-6}$ 时两者都很小——这也是为什么它只在 float64 下做。下面是完整的反向传播，
# 每次撤销一行前向代码：

# %%
def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


Z1 = X @ P["W1"] + P["b1"]
A1 = sigmoid(Z1)
Z2 = A1 @ P["W2"] + P["b2"]
Y = sigmoid(Z2)
L = 0.5 * np.sum((Y - T) ** 2) / N

dY = (Y - T) / N                 # 0.5 (Y - T)^2 的导数，以及平均值的 1/N
dZ2 = dY * Y * (1 - Y)           # sigmoid'(Z2) = Y (1 - Y)，用输出 Y 写
dW2 = A1.T @ dZ2                 # Z2 = A1 @ W2：权重梯度对批量求和
db2 = dZ2.sum(axis=0)            # b2 被广播到 N 行：梯度对这些行求和
dA1 = dZ2 @ P["W2"].T            # 同一个矩阵乘法，对它的输入求导
dZ1 = dA1 * A1 * (1 - A1)        # sigmoid'(Z1) = A1 (1 - A1)
dW1 = X.T @ dZ1
db1 = dZ1.sum(axis=0)
mine = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
for name, g in mine.items():
    print(f"d{name} {str(g.shape):8} for {name} {P[name].shape}")

# %% [markdown]
# 对不对？用中心有限差分（`harness.check.problems.finite_differences`）检查，再与项目的
# `impls/handwritten.py`（每个基准测试都运行的代码）比较：

# %%
fd = finite_differences(P, X, T, "mse")
_, theirs = handwritten.grads(np, P, X, T, "mse")
rows = [{"tensor": k, "worst |mine - finite differences|": np.abs(mine[k] - fd[k]).max(),
         "worst |mine - handwritten.py|": np.abs(mine[k] - theirs[k]).max(),
         "largest |gradient|": np.abs(mine[k]).max()} for k in mine]
pd.DataFrame(rows).set_index("tensor").map("{:.1e}".format)

# %% [markdown]
# 有限差分的吻合程度约为 1e-10（它自身的截断和舍入误差）；与手写代码的差别只有 float64 的舍入。
# 对批量的两次求和——`X.T @` 和 `.sum(axis=0)`——正是文章代码漏掉的。
#
# ### 练习 1
#
# 1.1. 推导隐藏层为 tanh 和 relu 时的 `dZ1`，用该层的**输出** `A1` 表示（代码手里有的就是它）：
# $\tanh' = 1 - \tanh^2$，$\mathrm{relu}'(z) = [z > 0]$。
# 1.2. 自己在纸上推导交叉熵的 `dZ2`，并说明 $1/N$ 从哪里来。
# 1.3. 为什么有限差分检查必须用 float64？估计 float32（$\varepsilon_{32} \approx 10^{-7}$）下
# $h = 10^{-6}$ 和 $h = 10^{-3}$ 时的误差。
#
# 检查（通过推导写成的代码）：练习 2.2 加 `--activation tanh` 和 `--activation relu`。评分：同一个
# 函数，隐藏的问题，全部激活函数。

# %% [markdown]
# ## 2. 写你自己的反向传播，并检查它
#
# 检查器的约定：`f(params, X, T, loss) -> (loss, grads)`，`loss` 是 `"mse"` 或 `"bce"`，`params` 和
# `grads` 是按上面布局的字典 `W1, b1, W2, b2`。这是一个写在单元格里的例子：

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
    return np.sum(np.logaddexp(0, Z2) - T * Z2) / N, (Y - T) / N  # bce，从 Z2 计算：没有 log(0)


def my_grads(params, X, T, loss):
    A1, Z2, Y = forward(params, X)
    L, dZ2 = loss_and_dZ2(Z2, Y, T, loss)
    dZ1 = (dZ2 @ params["W2"].T) * A1 * (1 - A1)
    return L, {"W1": X.T @ dZ1, "b1": dZ1.sum(axis=0), "W2": A1.T @ dZ2, "b2": dZ2.sum(axis=0)}


# 没有 fork 的平台（Windows）上，单元格里定义的函数无法进入独立的进程：改为检查保存在文件里的
# 同一个函数（见 teaching.zh.md 的 “Windows”）。
good = check_my_backprop(my_grads if CAN_FORK else f"{ROOT}/docs/examples/my_backprop.py:grads")
display(good)

# %% [markdown]
# 检查器在独立的进程里、有时间限制地运行你的函数，用 float64 在几个小问题上与参考实现比较，
# 容差是梯度尺度的 1e-10。现在在一行里埋下文章的第二个错误：隐藏层偏置的梯度没有对样本求和：

# %%
def my_grads_with_a_bug(params, X, T, loss):
    A1, Z2, Y = forward(params, X)
    L, dZ2 = loss_and_dZ2(Z2, Y, T, loss)
    dZ1 = (dZ2 @ params["W2"].T) * A1 * (1 - A1)
    return L, {"W1": X.T @ dZ1, "b1": dZ1, "W2": A1.T @ dZ2, "b2": dZ2.sum(axis=0)}  # 错误：b1


bad = check_my_backprop(my_grads_with_a_bug if CAN_FORK
                        else f"{ROOT}/docs/examples/my_backprop.py:grads_with_a_bug")
display(bad)
print(f"ok: {good.ok} for my_grads, {bad.ok} for my_grads_with_a_bug; the first failure:")
print(bad.failures[0].message())

# %% [markdown]
# 检查器的诊断是英文的：上面说 b1 “not reduced over the batch”（没有对批量求和），并指出对批量求和后
# 就对了。`result.ok`、`result.failures` 和 `result.to_frame()`（一个 DataFrame）都可以在代码里用。
#
# ### 练习 2
#
# 在骨架文件的副本里做，从仓库根目录：`cp docs/exercises/backprop.py my_backprop.py`。它的
# `grads(params, X, T, loss, activation="sigmoid")` 里有编号的 TODO。
#
# 2.1. 对未改动的副本运行检查：`python -m harness check --impl my_backprop.py:grads`。每个还没做的
# TODO 是一行 `not implemented: TODO n: ...`，返回 `None` 的梯度是 `W2: not computed (None)`：没有
# 回溯信息。
# 2.2. 完成 TODO，直到命令以 `check: all ... comparisons agree` 结束；然后加上 `--activation tanh` 和
# `--activation relu`（检查器会把 `activation=` 传给接受它的函数）。tanh 分支若沿用 sigmoid 的导数，
# 会失败并给出诊断。
# 2.3. 更新步与训练循环：`cp docs/exercises/step.py my_step.py`，然后
# `python -m harness check --impl my_step.py:step --task step`（一步更新，`f(params, X, T, loss, lr)
# -> 新参数`）和 `python -m harness check --impl my_step.py:train --task train`（按约定的顺序分小批量
# 训练若干轮，`-> (params, history)`），与约定的训练轨迹比较。
#
# 在笔记本里同样的检查是 `check_my_backprop("my_backprop.py:grads", activation="tanh")` 和
# `check_my_backprop("my_step.py:step", task="step")`：文件里的函数在新的解释器中运行，任何平台都行。
# 评分：老师收齐文件后运行 `python -m harness grade SUBMISSIONS --out DIR`，用你看不到的形状和种子。

# %% [markdown]
# ## 3. 错误动物园
#
# 十七个真实的手写反向传播错误（`harness/check/bugs.py`；文章自己的两个是 11a 和 11b），每个都用
# 同一个检查器在 4 种形状 × 3 个种子上运行。只有每次都被抓住才算抓住；正确的代码不能有一次误报。

# %%
zoo = pd.DataFrame([summary(bug, run_bug(bug.function, bug.losses, seeds=3)) for bug in BUGS])
false_alarms = [r for r in run_bug(my_grads, contract.LOSSES, seeds=3) if not r.ok]
print(f"{zoo['caught'].sum()} of {len(zoo)} bugs caught on every problem; {len(false_alarms)} false"
      " alarms on my_grads")
zoo["worst error"] = [f"{e:.2e}" if pd.notna(e) else "-" for e in zoo["worst_error"]]
zoo[["number", "name", "caught", "tensor", "worst error", "diagnosis"]].set_index("number")

# %% [markdown]
# 第 1、2、7、9 号错误只说 “wrong values”（数值错误）：没有简单的倍数能解释它们，所以它们能在代码里
# 存活多年。错误对**训练**有什么影响？正确的梯度，对比动物园里的符号翻转（10）和“损失取平均、梯度
# 却求和”（3a：每个梯度都大了 N 倍），从同一个起点、用同样的方式训练
# （`harness/lessons/bug_training.py`）：

# %%
runs = train_with_bugs()
display(Image(data=small_png(FIGURES / bug_figure(runs, FIGURES))))
display(Markdown(bug_text_zh(runs)))

# %% [markdown]
# ### 练习 3
#
# 3.1. `cp docs/exercises/fix_the_bugs.py my_fix.py`，运行 `python -m harness check --impl
# my_fix.py:grads`。它含有动物园里的两个错误。读诊断，找到那两行，改正，直到检查通过。
# 3.2. 从表中挑一个错误，写进上面的 `my_grads`，运行之前先预测检查器的诊断。
#
# 评分：`my_fix.py`，用隐藏的问题，同 2.2。

# %% [markdown]
# ## 4. 用自动微分写同一个网络：约 10 行 torch、约 10 行 jax
#
# 自动微分替你写反向传播：你只写前向和损失，然后要梯度（文章第 7 节：框架“无需手动实现反向传播
# 算法”）。函数签名与 `my_grads` 相同，所以同样的检查都适用。框架没有安装时（`teach` 安装两个都
# 没有），单元格会说明，笔记本继续运行。

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
        L = (-F.logsigmoid(-Z2) - T * Z2).sum() / len(X)  # softplus(Z2) - T Z2，数值稳定
    L.backward()  # 自动微分：所有梯度存入 P[k].grad
    return L.item(), {k: p.grad.numpy() for k, p in P.items()}


# %%
jax, jax_missing = framework("jax")
print(jax_missing or f"jax {jax.__version__}")


def jax_grads(params, X, T, loss):
    import jax
    jax.config.update("jax_enable_x64", True)  # 否则 JAX 会用 float32 计算 float64
    jnp = jax.numpy

    def L(P):
        Z2 = jax.nn.sigmoid(X @ P["W1"] + P["b1"]) @ P["W2"] + P["b2"]
        if loss == "mse":
            return 0.5 * jnp.sum((jax.nn.sigmoid(Z2) - T) ** 2) / len(X)
        return jnp.sum(jax.nn.softplus(Z2) - T * Z2) / len(X)
    value, G = jax.value_and_grad(L)(params)  # 自动微分：损失和所有梯度
    return float(value), {k: np.asarray(g) for k, g in G.items()}


# %% [markdown]
# 在第 1 节的问题上、用 float64、两种损失，与手写参考实现比较：四个张量中最差的误差，相对于梯度
# 最大的元素（检查器的容差是 1e-10）。

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
# ### 练习 4
#
# 4.1. `cp docs/exercises/frameworks.py my_frameworks.py`，不看上面，自己写 `torch_grads`：
# `python -m harness check --impl my_frameworks.py:torch_grads`。
# 4.2. 同样写 `jax_grads`：`python -m harness check --impl my_frameworks.py:jax_grads`（文件里的函数
# 在新的解释器里运行，所以 JAX 没有问题）。
# 4.3. 与手写参考实现比较用时，分别在小规模和较大规模上：
# `python -m harness.lessons.stopwatch numpy my_frameworks.py:torch_grads
# my_frameworks.py:jax_grads --size 64,2,8,1`，然后 `--size 1024,64,512,1`。它打印每个函数的第一次
# 调用（含编译）以及相对第一个函数的加速比和 95% 区间：只有区间整体高于 1 才算“更快”。每个规模上
# 谁最快？jit 编译过的函数要调用多少次才能赚回第一次调用的时间？
#
# 需要 torch 和 jax（`pip install -e '.[bench]'`，或用 Colab）。评分：4.1 和 4.2 用隐藏的问题；用时
# 由你报告（它取决于机器）。

# %% [markdown]
# ## 5. 框架带来了什么：一次基准测试的结果
#
# `make bench` 在一系列规模上、以交错的轮次为每个实现计时，并把结果存入 `results/` 下的文件夹。
# `cells.csv` 每行是一个（实现、模式、设备、数据类型、规模）。`speedup` 是各轮中 NumPy 每步时间与该
# 序列每步时间之比的中位数（大于 1：比手写 NumPy 快），`speedup_low`/`speedup_high` 是它的 95% 区间。
# **区间包含 1 就是没有明显差别**，不管中位数是多少。

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
# 同样的数字画成图：每个序列一条线，误差棒是 95% 区间，虚线 1 是手写 NumPy。跨过它的误差棒就是
# 没有明显差别。

# %%
if table is None:
    print("No run loaded: nothing to plot.")
else:
    import matplotlib.pyplot as plt

    colours = {"numpy": "#0072B2", "torch": "#D55E00", "jax": "#009E73", "cupy": "#CC79A7",
               "sklearn": "#7F7F7F"}  # 与报告相同的颜色（harness/report/plots.py）
    sizes = list(dict.fromkeys(table["size"]))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = table[table["impl"] != "numpy"].groupby("label")
    for i, (label, g) in enumerate(series):
        x = g["size_rank"] + 0.06 * (i - (len(series) - 1) / 2)  # 错开，误差棒并排
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
# 逐个序列的文字说明（英文，由区间得出：`harness.lessons.notebook.versus_numpy`）：

# %%
if table is None:
    print("No run loaded: nothing to say about speed.")
else:
    for _, row in table[table["impl"] != "numpy"].iterrows():
        print(f"size {row['size']}: {versus_numpy(row)}")

# %% [markdown]
# ### 练习 5
#
# 5.1. 自己跑一次短的基准测试：`python -m harness bench --profile quick --report`（需要 `bench`
# 安装），然后 `python -m harness report results/<它的文件夹>`。它的结论哪些与上面的参考运行一致，
# 哪些不一致？为什么可能不同？
# 5.2. 在参考运行的 `report.md` 里找到 *Compile cost* 一节：在最小规模上，jax jit 要运行多少步
# 才能赚回编译时间？
#
# 检查：报告自己的句子。不评分：这是阅读练习。

# %% [markdown]
# ## 6. 在本代码库上实测的两课（`python -m harness lessons`）
#
# **修改的代价。** 隐藏层激活函数可以是 sigmoid、tanh 或 relu。用 Python 的 `ast` 读取项目自己的源码，
# 数出加入这个选项给每个实现带来的代价：只数这个选项新增的行（sigmoid 自己的分支原本就有），以及
# 其中手写的导数（每条规则见 `harness/lessons/cost.py`；表格是英文的）：

# %%
display(Markdown(cost_table()))
costs = {rel: cost_of_change((ROOT / rel).read_text(encoding="utf-8")) for rel, _ in FILES}

# %% [markdown]
# **梯度消失**（文章第 8 节和第 9 节都提到）。用每种激活函数、在两种输入尺度上训练网络，记录每层的
# 梯度范数，以及隐藏层激活函数让多少梯度通过（`harness/lessons/vanishing.py`，全批量，每次 400 步）：

# %%
histories = {(act, scale): gradient_history(act, scale)
             for scale in SCALES for act in contract.ACTIVATIONS}
figure = vanishing_figure(histories, FIGURES)
display(Image(data=small_png(FIGURES / figure)))
display(Markdown(vanishing_text_zh(histories)))

# %% [markdown]
# ### 练习 6
#
# 6.1. 在你的 `my_backprop.py` 和 `torch_grads` 里加入 leaky relu（$z > 0$ 时为 $z$，否则 $0.01 z$）。
# 数一数各用了几行，其中哪些需要你推导。
# 6.2. 用 `lr=1.0` 重新运行 `gradient_history("sigmoid", 10.0)`：损失还会下降吗？
#
# 检查：用第 1 节的有限差分单元格检查 6.1 的导数（检查器只认识 sigmoid、tanh 和 relu）。不评分。

# %% [markdown]
# ## 7. 什么时候仍然应该手写反向传播？
#
# 下面每一句话都由上面的数字算出（`harness/lessons/closing.py` 的事实，`harness/lessons/zh.py` 的
# 中文）：运行结果的加速比及其区间、第一次调用和达到目标精度所需时间、数出来的修改代价、第 4 节
# 单元格的行数，以及检查器对埋下的错误说了什么。数字不支持的话一句也不说。

# %%
said = bad.failures[0].diagnosis if bad.failures else ""
display(Markdown(closing_zh(facts(table, read_tta(found), costs, why_longer(), lines), diagnosis=said)))

# %% [markdown]
# 接下来：每一步的命令行在 [`docs/teaching.zh.md`](teaching.zh.md)；一次运行的完整基准报告是
# `python -m harness report results/<run>`（它的 `report.md` 还有内存、编译代价、达到目标精度所需
# 时间和机器峰值占比）；README 解释了计时如何做到公平。
