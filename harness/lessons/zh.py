"""The Chinese edition's computed sentences (docs/teaching.zh.ipynb): the same facts as the
English ones (harness/lessons/closing.py, bug_training.py, vanishing.py), said in Chinese.

    from harness.lessons.zh import closing_zh, bug_text_zh, vanishing_text_zh

Nothing is measured or decided here: every number and every verdict comes from the facts the
English sentences use, so the two editions cannot disagree.
"""

from __future__ import annotations

import numpy as np

from harness.lessons.bug_training import TAIL
from harness.lessons.closing import Facts, about
from harness.lessons.vanishing import SCALES

NAME = "手写 NumPy"
VERDICT = {"faster": "更快", "slower": "更慢", "no clear difference": "无明显差别"}


def _join(items) -> str:
    """'a'、'a 和 b'、'a、b 和 c'."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else "、".join(items[:-1]) + " 和 " + items[-1]


def _who(label: str) -> str:
    return NAME if label.startswith("numpy") else label


def _shown(v) -> str:
    if v.verdict == "slower":
        return f"NumPy 快 {1 / v.speedup:.3g} 倍 [{1 / v.high:.3g}, {1 / v.low:.3g}]"
    return f"{v.speedup:.3g}x [{v.low:.3g}, {v.high:.3g}]"


def speed_zh(f: Facts) -> str:
    if not f.versus:
        return "没有载入含框架数据的运行结果，所以这里不对速度下任何结论。"
    per = []
    for label in dict.fromkeys(v.label for v in f.versus):
        parts = [f"在 {_join(f'{v.size}（{_shown(v)}）' for v in vs)}{VERDICT[kind]}"
                 for kind in VERDICT
                 if (vs := [v for v in f.versus if v.label == label and v.verdict == kind])]
        per.append(f"{label}：" + "；".join(parts))
    text = (f"**每一步的速度**（稳态，不含编译时间），与{NAME} 相比；只有当配对加速比的 95% 区间"
            "整体高于或低于 1 时才说“更快”或“更慢”（与报告相同的规则）。" + "。".join(per) + "。")
    said = [f"在 {_join(f.size_words[s] for s in f.numpy_fastest_at)} 上，{NAME}明显快于所有框架模式"
            ] if f.numpy_fastest_at else []
    said += [f"{label} 从 {size} 起直到最大规模都明显更快" for label, size in f.faster_from.items()]
    if not said:
        said = [f"没有哪个规模上{NAME}明显快于所有框架模式，也没有哪个框架模式从某个规模起直到最大"
                "规模都明显更快：按每一步算，答案取决于规模和模式，而不取决于手写还是自动微分"]
    text += "总之，" + "；".join(said) + "。"
    for r in f.repay:
        text += (f"{r.label} 在 {r.size} 上每一步更快，但它的第一次调用（含编译）用了"
                 f" {r.first_call_s:.3g} 秒，而 NumPy 只用 {r.numpy_first_call_s:.3g} 秒；按每步中位数"
                 f" {r.step_s * 1e6:.3g} 微秒对 {r.numpy_step_s * 1e6:.3g} 微秒，大约"
                 f" {about(r.steps)} 步之后才能赚回来。")
    return text


def reached_zh(f: Facts) -> str:
    if not f.reached:
        return "这次运行没有“达到目标精度所需时间”的文件，所以不谈这一项。"
    out = []
    for r in f.reached:
        (first, t0), rest = r.times[0], r.times[1:]
        line = (f"在 {r.dataset} 上（目标精度 {r.target:g}" + (f"，每个都用了 {r.epochs} 轮"
                                                              if r.epochs else "")
                + f"），{_who(first)} 用时最少，{t0:.3g} 秒"
                + "".join(f"；{_who(lab)} {t:.3g} 秒（{t / t0:.3g} 倍）" for lab, t in rest))
        if r.missed:
            line += f"；{_join(r.missed)} 没有达到"
        out.append(line)
    return ("**达到目标精度所需时间**（从第一步起的挂钟时间，含编译：用户真正等待的时间；每个只测一次，"
            "因此没有区间）：" + "；".join(out) + "。")


def cost_zh(f: Facts) -> str:
    said = [f"{k} 增加了 {n} 行" + (f"，其中 {d} 行是手写的导数" if d else "，没有一行是导数")
            for k, (n, d) in f.costs.items()]
    text = ("**修改的代价。** 在已有 sigmoid 的网络上加入 tanh 和 relu（sigmoid 自己的分支原本就有，"
            "不计）：" + "；".join(said) + "。")
    if f.longer:
        text += ("框架文件更长是另一个原因——“管道代码”：" + "；".join(
            f"{_who(k) if k == 'numpy' else k} 有 {v['math']} 行数学、{v['plumbing']} 行管道代码"
            for k, v in f.longer.items()) + "（规则见 harness/lessons/cost.py：数学指前向、损失、梯度和"
            "更新；管道指可用性检查、设备、编译模式、训练会话、线程和运行信息）。")
    if f.cell_lines:
        names = {"by hand": "手写", "in torch": "torch", "in jax": "jax"}
        text += ("在本笔记本的单元格里，网络连同梯度：" + "，".join(
            f"{names.get(k, k)} {n} 行" for k, n in f.cell_lines.items()) + "。")
    return text


def verdicts_zh(f: Facts, diagnosis: str = "") -> str:
    yes, no = [], []
    if f.numpy_fastest_at:
        yes.append(f"在 CPU 上逐步训练的小网络（规模 {_join(f.numpy_fastest_at)}）")
    if f.by_hand_first:
        yes.append(f"这里的短时训练：算上编译，它在 {_join(r.dataset for r in f.reached)} 上都最先达到目标")
    if diagnosis:
        yes.append(f"学习自动微分在做什么：每一行都由你推导，梯度检查器告诉你错在哪里（这里：“{diagnosis}”）")
    no += [f"从 {s} 起的长时间训练，{label} 每一步都明显更快" for label, s in f.faster_from.items()]
    if f.hand_derivatives:
        no.append(f"任何将来要改的东西：每个新激活函数都是一个要推导、要写、要保证正确的导数（这里有"
                  f" {f.hand_derivatives} 行），而自动微分会替你求导")
    parts = ([f"**手写反向传播仍然适合：** {'；'.join(yes)}。"] if yes else []) + \
            ([f"**它不适合：** {'；'.join(no)}。"] if no else [])
    return "\n\n".join(parts)


def closing_zh(f: Facts, diagnosis: str = "") -> str:
    return "\n\n".join([speed_zh(f), reached_zh(f), cost_zh(f), verdicts_zh(f, diagnosis)])


def bug_text_zh(runs: dict) -> str:
    """harness.lessons.bug_training.bug_text's facts, in Chinese."""
    good = runs["correct"]
    tail = {k: float(np.median(r["loss"][-TAIL:])) for k, r in runs.items()}
    out = [f"梯度正确时，损失从 {good['loss'][0]:.3f} 降到 {good['loss'][-1]:.3f}，训练精度达到"
           f" {good['accuracy'][-1]:.2f}。"]
    fell = []
    for label, r in list(runs.items())[1:]:
        best = np.nanmin(r["loss"])
        how = f"先降到 {best:.3f}，然后" if best < r["loss"][0] else "从未低于起点，"
        if best < r["loss"][0]:
            fell.append(label)
        out.append(f"用 {label} 时，损失{how}最后 {TAIL} 步的中位数是 {tail[label]:.3g}（正确梯度为"
                   f" {tail['correct']:.3g}），精度中位数 {np.median(r['accuracy'][-TAIL:]):.2f}。")
    if fell:
        out.append(f"错误的梯度也能让损失下降一阵（{_join(fell)}），所以损失下降不能证明反向传播正确；"
                   "能证明的是检查器与参考实现的比较。")
    return "".join(out)


def vanishing_text_zh(histories: dict) -> str:
    """The vanishing-gradient facts of harness.lessons.vanishing.vanishing_text, in Chinese."""
    s1, s10 = histories["sigmoid", SCALES[0]], histories["sigmoid", SCALES[-1]]
    r10 = histories["relu", SCALES[-1]]
    stalled = [f"{a} ×{s:g}" for (a, s), h in histories.items() if h["loss"][-1] >= h["loss"][0]]
    g = s1["gate"].mean()
    return (f"从损失到 W1，反向传播要乘上隐藏层激活函数的导数。sigmoid 的导数最大只有 0.25；输入在自然"
            f"尺度时这里平均是 {g:.2f}。把输入乘以 {SCALES[-1]:g}，隐藏单元饱和，平均值降到"
            f" {s10['gate'].mean():.2f}，而 relu 仍是 {r10['gate'].mean():.2f}。两层网络里只有一个"
            "这样的因子，所以这是一个常数倍，而不是梯度消失式的崩溃："
            + ("每次运行的损失都在下降。" if not stalled else f"{_join(stalled)} 的损失没有下降。")
            + f"文章警告的是深度：十层 sigmoid，按这里的平均因子，只能把约 {g:.2f}^10 = {g ** 10:.1g}"
            " 的梯度传回第一层（外推，不是测量）。")
