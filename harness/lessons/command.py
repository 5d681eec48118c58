"""python -m harness lessons [--out docs/figures]  -- three lessons, measured on this code base.

1. The cost of change. The hidden activation option (sigmoid, tanh, relu) is
   implemented by hand in impls/handwritten.py and with autograd in
   impls/torch_impl.py and impls/jax_impl.py. Reading their real source with
   `ast`, this counts what each needed: hand-written gradient lines,
   derivatives written by hand, and lines that exist only for the option.
2. What data parallelism cost each implementation. Reading the data-parallel
   engines in dataparallel/ the same way, this counts each engine's code lines,
   the collectives written by hand, the shard and reduction bookkeeping lines,
   the lines using the framework's distribution API, and its launch code; what
   all engines share has rows of its own.
3. Vanishing gradients. Train the network with each activation on inputs at
   two scales and record ||dW1||, ||dW2|| and how much gradient the hidden
   activation lets through, per step.
4. The teaching figures: the network as a computational graph with the gradient
   flowing back, and training under two zoo bugs against the correct code.

Writes OUT/lessons.md (a snippet docs/teaching.md links to),
OUT/vanishing_gradients.png, OUT/network_graph.png and OUT/bug_training.png;
prints the two counted tables. Deterministic: same code and seed, same files.
The counting is harness/lessons/cost.py and harness/lessons/parallel_cost.py,
the training harness/lessons/vanishing.py and bug_training.py, the drawing
harness/lessons/graph.py.
"""

from __future__ import annotations

from pathlib import Path

from harness import options
from harness.lessons.bug_training import bug_figure, bug_text, train_with_bugs
from harness.lessons.cost import ROOT, cost_table
from harness.lessons.graph import network_graph
from harness.lessons.parallel_cost import parallel_table
from harness.lessons.vanishing import SCALES, gradient_history, vanishing_figure, vanishing_text
from harness.store import atomic_write
from impls import contract


def write(out_dir: Path, steps: int = 400) -> Path:
    """Write lessons.md and its figures into `out_dir`; return lessons.md's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    histories = {(act, scale): gradient_history(act, scale, steps)
                 for scale in SCALES for act in contract.ACTIVATIONS}
    figure = vanishing_figure(histories, out_dir)
    runs = train_with_bugs()
    graph, bugs = network_graph(out_dir), bug_figure(runs, out_dir)
    text = ("<!-- written by `python -m harness lessons`; do not edit by hand -->\n\n"
            "## The cost of change: the activation option, by hand and by autograd\n\n"
            f"{cost_table()}\n\n## What data parallelism cost each implementation\n\n"
            f"{parallel_table()}\n\n## Vanishing gradients, shown\n\n"
            f"{vanishing_text(histories, figure)}\n\n"
            f"## The network as a computational graph\n\n![the network and its gradients]({graph})"
            f"\n\n## What two zoo bugs do to training\n\n![training under two bugs]({bugs})\n\n"
            f"{bug_text(runs)}\n")
    path = out_dir / "lessons.md"
    atomic_write(path, text)
    return path


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures",
                        help="folder for lessons.md and the figure (default: docs/figures)")
    parser.add_argument("--steps", type=int, default=400, help="training steps per run (400)")


def main(args) -> int:
    options.integer("--steps", args.steps)
    options.out_folder("--out", args.out)
    print(cost_table())
    print(f"\n{parallel_table()}")
    print(f"\nwrote {write(args.out, args.steps)}")
    return 0
