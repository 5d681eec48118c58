"""`lessons`: the cost-of-change counts come from source; vanishing gradients, robust facts only."""

from __future__ import annotations

import numpy as np
import pytest

from harness import cli
from harness.lessons import bug_training, cost, stopwatch, vanishing
from harness.lessons import command as lessons_command
from tests.helpers import ROOT

# A hand-written backward pass in the style of impls/handwritten.py, small enough to count by eye.
HANDWRITTEN = '''
def act_backward(A, activation):
    """dA/dZ from A."""
    if activation == "sigmoid":
        return A * (1 - A)
    if activation == "tanh":
        return 1 - A * A
    return (A > 0) * 1.0


def grads(X, T, W1, W2, activation):
    A1 = forward(X, W1, activation)
    # dW1 = X.T @ dZ1   (a comment, not code)
    dZ2 = (Y - T) / N
    dW2 = A1.T @ dZ2
    db2 = dZ2.sum(axis=0)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * act_backward(A1, activation)
    dW1 = X.T @ dZ1
    return dW1, dW2
'''

AUTOGRAD = '''
import torch

ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def grads(P, X, T, activation):
    L = loss(P, X, T, ACT[activation])
    L.backward()
    dW1 = P["W1"].grad
    return dW1
'''


def test_counts_on_a_synthetic_handwritten_source():
    c = cost.cost_of_change(HANDWRITTEN)
    # returns of act_backward (3) + dZ2, dW2, db2, dA1, dZ1, dW1 (6); the comment is not code
    assert len(c.gradient) == 9
    assert len(c.derivative) == 5  # 3 act_backward branches + dZ2 + dZ1
    assert len(c.option) == 5 and len(c.option_backward) == 5  # two ifs (2 lines each) + relu
    assert c.autograd == ()


def test_only_the_lines_the_option_added_count():
    """sigmoid's own branch was there before the option: not counted as added."""
    c = cost.cost_of_change(HANDWRITTEN)
    # the two `if` lines, the tanh return and the relu fall-through; not `return A * (1 - A)`
    assert len(c.added) == 4 and len(c.added_derivative) == 2
    lines = HANDWRITTEN.splitlines()
    assert not [n for n in c.added if "A * (1 - A)" in lines[n - 1]]
    assert len(cost.cost_of_change(AUTOGRAD).added) == 1  # the lookup table names tanh and relu


def test_real_handwritten_option_added_five_derivatives():
    """Issue 22: 14 derivative lines in the file, 8 of them the option's, 5 added beyond sigmoid."""
    c = cost.cost_of_change((ROOT / "impls/handwritten.py").read_text())
    assert len(set(c.derivative) & set(c.option)) == 8 and len(c.added_derivative) == 5
    for rel in ("impls/torch_impl.py", "impls/jax_impl.py"):
        t = cost.cost_of_change((ROOT / rel).read_text())
        assert t.added_derivative == () and len(t.added) == 5  # elif, tanh, else, relu, header


def test_maths_and_plumbing():
    math, plumbing = cost.math_lines(AUTOGRAD)
    assert len(math) == 5 and len(plumbing) == 2  # grads' body; the import and the table
    split = cost.why_longer()
    assert split["numpy"]["math"] > split["torch"]["math"]  # derivatives by hand
    assert split["torch"]["plumbing"] > split["numpy"]["plumbing"]  # devices, modes, sessions


def test_adding_an_activation_branch_changes_the_counts():
    before = cost.cost_of_change(HANDWRITTEN)
    grown = HANDWRITTEN.replace(
        '    return (A > 0) * 1.0',
        '    if activation == "softsign":\n        return 1 / (1 + abs(A)) ** 2\n'
        '    return (A > 0) * 1.0')
    after = cost.cost_of_change(grown)
    assert len(after.derivative) == len(before.derivative) + 1
    assert len(after.gradient) == len(before.gradient) + 1
    assert len(after.option) == len(before.option) + 2
    assert len(after.added) == len(before.added) + 2
    assert len(after.added_derivative) == len(before.added_derivative) + 1


def test_autograd_source_has_no_hand_written_derivatives():
    c = cost.cost_of_change(AUTOGRAD)
    assert c.gradient == () and c.derivative == ()  # `dW1 = P["W1"].grad` is a fetch
    assert len(c.autograd) == 1
    assert len(c.option) == 1  # the lookup table naming tanh and relu


@pytest.mark.parametrize("rel", ["impls/torch_impl.py", "impls/jax_impl.py"])
def test_real_autograd_files_write_no_derivatives(rel):
    c = cost.cost_of_change((ROOT / rel).read_text())
    assert c.gradient == () and c.derivative == () and len(c.autograd) >= 1


def test_real_handwritten_file_counts_its_derivatives():
    c = cost.cost_of_change((ROOT / "impls/handwritten.py").read_text())
    assert len(c.derivative) >= 3 + 2  # one per activation branch, plus the dZ lines
    assert len(c.gradient) > len(c.derivative) and c.autograd == ()
    assert "| `impls/handwritten.py` | numpy, cupy |" in cost.cost_table()


def test_saturated_sigmoid_lets_less_gradient_through():
    h = {(a, s): vanishing.gradient_history(a, s, steps=20)
         for a in ("sigmoid", "relu") for s in (1.0, 10.0)}
    assert np.all(h["sigmoid", 1.0]["gate"] <= 0.25)  # sigmoid' never exceeds 1/4
    assert h["sigmoid", 10.0]["gate"].mean() < 0.5 * h["sigmoid", 1.0]["gate"].mean()
    assert abs(h["relu", 10.0]["gate"].mean() - h["relu", 1.0]["gate"].mean()) < 0.1
    assert h["sigmoid", 10.0]["dW1"][0] < h["relu", 10.0]["dW1"][0]
    for run in h.values():
        assert run["loss"][-1] < run["loss"][0]


def test_write_is_deterministic(tmp_path):
    first = lessons_command.write(tmp_path / "a", steps=30)
    second = lessons_command.write(tmp_path / "b", steps=30)
    assert first.read_text() == second.read_text()
    assert (tmp_path / "a" / "vanishing_gradients.png").stat().st_size > 10_000
    assert "## Vanishing gradients, shown" in first.read_text()


def test_bad_arguments_exit_2(tmp_path):
    assert cli.main(["lessons", "--out", str(tmp_path), "--steps", "0"]) == 2


def test_bugs_train_worse_than_the_correct_gradient():
    runs = bug_training.train_with_bugs(steps=60)
    good, flip = runs["correct"], runs["bug 10: sign_flipped"]
    big = runs["bug 3a: grad_sum_loss_mean"]
    assert good["loss"][-1] < good["loss"][0] and flip["loss"][-1] > flip["loss"][0]
    assert np.median(big["loss"][-20:]) > 2 * good["loss"][-1]
    text = bug_training.bug_text(runs)
    assert f"falls from {good['loss'][0]:.3f} to {good['loss'][-1]:.3f}" in text
    assert "sign_flipped the loss never falls below its start" in text


class FakeClock:
    """Time advances only when a timed function runs: each costs its own fixed seconds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def function(self, *seconds):
        """Each call costs the next of `seconds`, cyclically."""
        calls = iter(range(10**9))

        def f(params, X, T, loss):
            self.now += seconds[next(calls) % len(seconds)]
        return f


def test_stopwatch_says_faster_only_by_the_reports_rule():
    clock = FakeClock()
    fns = {"base": clock.function(2e-3), "quick": clock.function(1e-3),
           "same": clock.function(2e-3), "slow": clock.function(8e-3)}
    timings = stopwatch.measure(fns, size=(8, 3, 4, 2), rounds=8, clock=clock)
    text = stopwatch.table(timings)
    assert "faster: 2x [2, 2]" in text
    assert "no clear difference: 1x [1, 1]" in text
    assert "slower: base is 4x as fast [4, 4]" in text


def test_stopwatch_usage_errors_exit_2(tmp_path, capsys):
    assert stopwatch.main(["numpy", str(tmp_path / "nosuch.py") + ":f"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert stopwatch.main(["numpy", "--rounds", "1"]) == 2
    with pytest.raises(SystemExit):
        stopwatch.main(["numpy", "--size", "1,2,3"])


def test_the_docs_show_the_counts_this_code_has():
    """README.md, docs/teaching.md and docs/figures/lessons.md quote the cost table and its
    figures: they must be what cost.py counts in this tree (rerun `python -m harness lessons`)."""
    table = cost.cost_table().split("\n\n")[0]
    hand = cost.cost_of_change((ROOT / "impls/handwritten.py").read_text())
    split = cost.why_longer()
    for doc in ("README.md", "docs/teaching.md", "docs/figures/lessons.md"):
        assert table in (ROOT / doc).read_text(encoding="utf-8"), doc
    for doc in ("README.md", "docs/teaching.md"):
        text = " ".join((ROOT / doc).read_text(encoding="utf-8").split())
        assert f"{len(hand.added)} lines" in text and f"{len(hand.added_derivative)} of them" in text
        for figure in (split["torch"]["math"], split["jax"]["math"], split["numpy"]["math"],
                       split["torch"]["plumbing"], split["jax"]["plumbing"],
                       split["numpy"]["plumbing"]):
            assert str(figure) in text, (doc, figure)


def test_stopwatch_a_median_above_one_is_no_claim_when_the_interval_holds_one():
    clock = FakeClock()  # 10 ms a call: one call per sample, so each round sees one cost
    fns = {"base": clock.function(10e-3), "noisy": clock.function(9.5e-3, 9.5e-3, 11e-3)}
    timings = stopwatch.measure(fns, size=(8, 3, 4, 2), rounds=9, clock=clock)
    ratios = [timings[0].per_call[r] / timings[1].per_call[r] for r in range(9)]
    assert np.median(ratios) > 1 and min(ratios) < 1  # the median alone would say "faster"
    assert "noisy" in (text := stopwatch.table(timings)) and "no clear difference" in text
