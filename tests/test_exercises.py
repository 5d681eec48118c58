"""The exercises in docs/exercises/: every untouched TODO is one line of the checker's output
(no traceback), and the reference solutions (tests/fixtures/solutions/) pass on the visible
problems a student runs and on the hidden ones a teacher grades with.

    .venv/bin/pytest tests/test_exercises.py
"""

from __future__ import annotations

import ast
import shutil

import pytest

from harness import cli
from harness.check import api, sandbox, tasks
from harness.check.problems import hidden_problems, visible_problems
from tests.helpers import ROOT

EXERCISES = ROOT / "docs" / "exercises"
SOLUTIONS = ROOT / "tests" / "fixtures" / "solutions"
# backprop.py's TODOs, in the order grads reaches them: the function each one is.
TODOS = {1: "loss_and_dZ2", 2: "layer_grads", 3: "hidden_delta", 4: "activation_derivative"}


def check(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["check", *map(str, argv)])
    return code, capsys.readouterr().out


def fails(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAIL")]


def solution_source(*names: str) -> str:
    """The solution's functions `names`, as source text."""
    text = (SOLUTIONS / "backprop.py").read_text()
    tree = ast.parse(text)
    return "\n\n".join(ast.get_source_segment(text, node) for node in tree.body
                       if isinstance(node, ast.FunctionDef) and node.name in names)


@pytest.mark.parametrize("todo", sorted(TODOS))
def test_each_untouched_todo_is_one_line_naming_it(tmp_path, capsys, todo):
    """The skeleton with the TODOs before `todo` solved stops at `todo`: one line, no trace."""
    done = [TODOS[k] for k in TODOS if k < todo]
    path = tmp_path / "backprop.py"
    path.write_text((EXERCISES / "backprop.py").read_text() + "\n\n" + solution_source(*done))
    code, out = check(capsys, "--impl", f"{path}:grads")
    assert code == 1 and "Traceback" not in out
    assert len(fails(out)) == 1, out
    assert f"not implemented: TODO {todo}: " in fails(out)[0] and "(on all 6 runs)" in fails(out)[0]


def test_the_skeleton_with_every_todo_done_passes_every_activation(tmp_path):
    path = tmp_path / "backprop.py"
    path.write_text((EXERCISES / "backprop.py").read_text() + "\n\n"
                    + solution_source(*TODOS.values()))
    for activation in ("sigmoid", "tanh", "relu"):
        assert api.check_my_backprop(f"{path}:grads", activation=activation).ok, activation


@pytest.mark.parametrize("spec, task, todo", [
    ("step.py:step", "step", 5),
    ("step.py:train", "train", 6),
    ("frameworks.py:torch_grads", "grads", 7),
    ("frameworks.py:jax_grads", "grads", 8),
])
def test_the_other_skeletons_fail_with_one_line_per_todo(capsys, spec, task, todo):
    code, out = check(capsys, "--impl", EXERCISES / spec, "--task", task, "--loss", "mse")
    assert code == 1 and "Traceback" not in out and len(fails(out)) == 1, out
    assert f"not implemented: TODO {todo}: " in fails(out)[0]


def both(spec: str, task: str = "grads", activation: str = "sigmoid", dtype="float64"):
    """The solution checked on the visible and the hidden problems in one run."""
    jobs = (tasks.plan(task, visible_problems(activation), ("mse", "bce"), dtype, activation)
            + tasks.plan(task, hidden_problems(activation=activation), ("mse", "bce"), dtype,
                         activation, names=["hidden 1", "hidden 2"]))
    result, outcome = api.run_jobs(str(SOLUTIONS / spec), jobs, sandbox.Limits(timeout=120),
                                   spec)
    return result


@pytest.mark.parametrize("spec, task, activation", [
    ("backprop.py:grads", "grads", "sigmoid"),
    ("backprop.py:grads", "grads", "tanh"),
    ("backprop.py:grads", "grads", "relu"),
    ("step.py:step", "step", "tanh"),
    ("step.py:train", "train", "sigmoid"),
    ("fix_the_bugs.py:grads", "grads", "sigmoid"),
])
def test_the_solutions_pass_visible_and_hidden_problems(spec, task, activation):
    result = both(spec, task, activation)
    assert result.ok, str(result)
    assert {r.problem.split("-e")[0] for r in result.rows} >= {"hidden 1", "hidden 2"}


@pytest.mark.slow
@pytest.mark.parametrize("spec, activation", [("frameworks.py:torch_grads", "tanh"),
                                              ("frameworks.py:jax_grads", "relu")])
def test_the_framework_solutions_pass(spec, activation):
    pytest.importorskip(spec.split(":")[1].split("_")[0])
    assert both(spec, activation=activation).ok


def test_a_correct_tanh_function_passes_and_the_sigmoid_derivative_is_named(capsys):
    code, out = check(capsys, "--impl", f"{SOLUTIONS}/backprop.py:grads", "--activation", "tanh")
    assert code == 0, out
    code, out = check(capsys, "--impl", f"{SOLUTIONS}/backprop.py:tanh_with_sigmoid_derivative",
                      "--activation", "tanh")
    assert code == 1 and fails(out)
    assert {line.rsplit("[grad]: ", 1)[1].split(" worst")[0] for line in fails(out)} == {"W1",
                                                                                          "b1"}
    assert all("uses sigmoid's derivative A (1 - A): tanh's is 1 - A^2" in line
               for line in fails(out))


def test_a_function_without_an_activation_parameter_is_a_usage_error(capsys):
    code = cli.main(["check", "--impl", f"{EXERCISES}/fix_the_bugs.py:grads",
                     "--activation", "tanh"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "takes no 'activation' parameter" in err


def test_fix_the_bugs_shows_its_two_bugs_apart(capsys):
    code, out = check(capsys, "--impl", f"{EXERCISES}/fix_the_bugs.py:grads")
    lines = fails(out)
    assert code == 1
    loss = [line for line in lines if "]: loss worst" in line]
    grads = [line for line in lines if "]: loss worst" not in line]
    assert loss and all("off by a factor of N=" in line for line in loss)
    assert grads and all("sign flipped" in line for line in grads)


@pytest.mark.parametrize("spec, task, words", [
    ("step.py:step_uphill", "step", "sign flipped"),
    ("step.py:train_in_file_order", "train", "minibatches taken in file order"),
    ("step.py:train_loss_after", "train", "history[e] is the loss after epoch e's updates"),
])
def test_a_wrong_step_or_loop_is_diagnosed(capsys, spec, task, words):
    code, out = check(capsys, "--impl", SOLUTIONS / spec, "--task", task)
    assert code == 1 and any(words in line for line in fails(out)), out


def test_a_step_that_returns_the_params_unchanged_is_all_zeros(tmp_path, capsys):
    path = tmp_path / "lazy.py"
    path.write_text("def step(params, X, T, loss, lr):\n    return params\n")
    code, out = check(capsys, "--impl", f"{path}:step", "--task", "step", "--loss", "mse")
    assert code == 1 and all("all zeros" in line for line in fails(out))


def test_a_step_file_imports_its_sibling(tmp_path):
    """step.py imports backprop.py from its own folder, as `python step.py` would."""
    for name in ("step.py", "backprop.py"):
        shutil.copy(SOLUTIONS / name, tmp_path / name)
    assert api.check_my_backprop(f"{tmp_path}/step.py:step", task="step").ok
