"""Check a backprop function from Python, as in a notebook cell: no command line.

    python docs/examples/check_in_python.py      # from the repository root

In Jupyter, `result` on the last line of a cell shows the table (result._repr_html_);
here print() shows it as text. The function below is defined in this script, as it would be
in a cell: the checker forks a process that inherits it, runs it there with a time limit,
and compares what it returns in this process.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: harness

from harness.check.api import check_my_backprop  # noqa: E402


def my_grads(params, X, T, loss):
    """The contract's network, mse only: a sum over the batch where the loss has a mean."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    A1 = 1 / (1 + np.exp(-(X @ W1 + b1)))
    Y = 1 / (1 + np.exp(-(A1 @ W2 + b2)))
    L = 0.5 * np.sum((Y - T) ** 2) / len(X)
    dZ2 = (Y - T) * Y * (1 - Y)                 # BUG: no / len(X)
    dZ1 = dZ2 @ W2.T * A1 * (1 - A1)
    print("shapes:", X.shape, T.shape)         # captured: see result.stdout
    return L, {"W1": X.T @ dZ1, "b1": dZ1.sum(0), "W2": A1.T @ dZ2, "b2": dZ2.sum(0)}


if __name__ == "__main__":
    result = check_my_backprop(my_grads, losses=("mse",))
    print(result)
    print("ok:", result.ok, "| first failure:", result.failures[0].diagnosis)
