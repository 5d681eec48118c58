"""The network drawn as a computational graph: the forward pass left to right, the gradient
flowing back right to left, each backward edge labelled with the line of impls/handwritten.py
that computes it, each node with its shape.

    from harness.lessons.graph import network_graph
    network_graph(Path("docs/figures"))       # writes network_graph.png, returns its name

`python -m harness lessons` writes the committed docs/figures/network_graph.png.
"""

from __future__ import annotations

from pathlib import Path

FILE = "network_graph.png"

# node -> (x, y, label, shape); the main line at y = 0, parameters and targets above it.
NODES = {
    "X": (0.0, 0.0, "$X$", "(N, F)"),
    "Z1": (2.6, 0.0, "$Z_1$", "(N, H)"),
    "A1": (5.0, 0.0, "$A_1$", "(N, H)"),
    "Z2": (7.6, 0.0, "$Z_2$", "(N, K)"),
    "Y": (10.0, 0.0, "$Y$", "(N, K)"),
    "L": (12.6, 0.0, "$L$", "scalar"),
    "W1": (1.8, 2.0, "$W_1$", "(F, H)"),
    "b1": (3.4, 2.0, "$b_1$", "(H,)"),
    "W2": (6.8, 2.0, "$W_2$", "(H, K)"),
    "b2": (8.4, 2.0, "$b_2$", "(K,)"),
    "T": (12.6, 2.0, "$T$", "(N, K)"),
}
# forward edges: (from, to, what the edge computes, drawn on the main line only)
FORWARD = (("X", "Z1", "@ W1 + b1"), ("Z1", "A1", "sigmoid"), ("A1", "Z2", "@ W2 + b2"),
           ("Z2", "Y", "sigmoid"), ("Y", "L", "loss"), ("W1", "Z1", ""), ("b1", "Z1", ""),
           ("W2", "Z2", ""), ("b2", "Z2", ""), ("T", "L", ""))
# backward edges along the main line: (from, to, the gradient that arrives, its formula)
BACKWARD = (("L", "Y", "dY = (Y - T) / N", "mse; bce: dZ2 = (Y - T) / N"),
            ("Y", "Z2", "dZ2 = dY * Y (1 - Y)", "sigmoid' from the output Y"),
            ("Z2", "A1", "dA1 = dZ2 @ W2.T", "(N,K) @ (K,H)"),
            ("A1", "Z1", "dZ1 = dA1 * A1 (1 - A1)", "sigmoid' from A1"))
# backward edges up to the parameters: (from, to, formula)
TO_PARAMS = (("Z1", "W1", "dW1 = X.T @ dZ1"), ("Z1", "b1", "db1 = sum over N of dZ1"),
             ("Z2", "W2", "dW2 = A1.T @ dZ2"), ("Z2", "b2", "db2 = sum over N of dZ2"))
FORWARD_COLOUR, BACKWARD_COLOUR = "#222222", "#D55E00"


def network_graph(out_dir: Path, name: str = FILE) -> str:
    from matplotlib.patches import FancyArrowPatch

    from harness.report import plots  # the project's figure style and atomic save

    fig, ax = plots.plt.subplots(figsize=(14, 5.6))
    ax.set_xlim(-0.8, 13.6)
    ax.set_ylim(-3.2, 2.9)
    ax.axis("off")

    def arrow(a, b, colour, dy=0.0, rad=0.0, style="-|>", ls="-"):
        (x0, y0), (x1, y1) = NODES[a][:2], NODES[b][:2]
        ax.add_patch(FancyArrowPatch((x0, y0 + dy), (x1, y1 + dy), arrowstyle=style,
                                     mutation_scale=14, color=colour, linestyle=ls,
                                     linewidth=1.6, shrinkA=24, shrinkB=24,
                                     connectionstyle=f"arc3,rad={rad}"))

    for key, (x, y, label, shape) in NODES.items():
        param = key in ("W1", "b1", "W2", "b2")
        ax.text(x, y, label, ha="center", va="center", fontsize=15, zorder=3,
                bbox={"boxstyle": "round,pad=0.45", "fc": "#E8F1FA" if param else "white",
                      "ec": "#0072B2" if param else "#444444", "lw": 1.3})
        ax.text(x, y + (0.55 if y > 0 else -0.5), shape, ha="center", va="center", fontsize=9,
                color="#555555")
    for a, b, what in FORWARD:
        arrow(a, b, FORWARD_COLOUR, dy=0.12 if NODES[a][1] == NODES[b][1] else 0.0)
        if what:
            (x0, _), (x1, _) = NODES[a][:2], NODES[b][:2]
            ax.text((x0 + x1) / 2, 0.42, what, ha="center", fontsize=9, color=FORWARD_COLOUR)
    for a, b, grad, why in BACKWARD:
        arrow(a, b, BACKWARD_COLOUR, dy=-0.12, rad=-0.45, ls="--")
        (x0, _), (x1, _) = NODES[a][:2], NODES[b][:2]
        ax.text((x0 + x1) / 2, -1.55, grad, ha="center", fontsize=9.5, color=BACKWARD_COLOUR)
        ax.text((x0 + x1) / 2, -1.9, why, ha="center", fontsize=8, color="#8a3b00")
    for a, b, _ in TO_PARAMS:
        arrow(a, b, BACKWARD_COLOUR, rad=-0.25, ls="--")
    for i, (_, _, grad) in enumerate(TO_PARAMS):  # the parameter gradients, listed below
        ax.text(0.2 + 3.3 * i, -2.6, grad, fontsize=10, color=BACKWARD_COLOUR, ha="left")
    ax.text(-0.6, -3.1, "black: forward pass (left to right).  orange, dashed: backward pass, the"
            " gradient of L flowing right to left (impls/handwritten.py, line by line).  blue"
            " boxes: parameters.", fontsize=9, color="#333333")
    ax.set_title("The network as a computational graph: forward, and the gradient flowing back",
                 fontsize=13)
    return plots.save(fig, out_dir, name)
