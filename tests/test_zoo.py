"""The bug zoo: every bug caught on every shape and seed, no false alarm on correct code.

    .venv/bin/pytest tests/test_zoo.py
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import cli
from harness.check import article, bugs, dp_bugs, zoo
from harness.check.problems import make_problem
from harness.check.user import check_function

NUMBERS = [re.match(r"\d+", b.number).group() for b in zoo.BUGS]


def test_every_listed_bug_is_in_the_zoo():
    assert sorted(set(NUMBERS), key=int) == [str(i) for i in range(1, 12)]  # the README's list, 1-11
    for bug in zoo.BUGS:
        assert bug.story and bug.source and "http" not in bug.source


@pytest.mark.parametrize("bug", zoo.BUGS, ids=[b.name for b in zoo.BUGS])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bug_is_caught_on_every_shape_and_seed(bug, dtype):
    rows = check_function(bug.function, zoo.problems(seeds=3), bug.losses, dtype=dtype,
                             impl="zoo", mode=bug.name)
    runs: dict = {}
    for r in rows:
        runs.setdefault((r.problem, r.loss), []).append(r.ok)
    missed = [run for run, oks in runs.items() if all(oks)]
    assert len(runs) == len(zoo.SHAPES) * 3 * len(bug.losses) and not missed


@pytest.mark.parametrize("name, tensor, words", [
    ("grad_sum_loss_mean", "W1", "off by a factor of N=11"),
    ("mean_over_outputs", "W1", "off by a factor of 1/K=1/3"),
    ("no_batch_mean", "loss", "off by a factor of N=11"),
    ("mse_gradient_of_square", "W1", "off by a factor of 2"),
    ("bias_not_summed", "b1", "not reduced over the batch: shape (11, 7), expected (7,)"),
    ("bias_summed_wrong_axis", "b1", "reduced over the wrong axis"),
    ("transposed_weight_grad", "W1", "transposed: shape (7, 5), expected (5, 7)"),
    ("sign_flipped", "W1", "sign flipped"),
    ("article_as_written", "(call)", "raised NameError: name 'z' is not defined"),
    ("article_z_in_scope", "W1", "not reduced over the batch: shape (11, 5, 7)"),
])
def test_diagnosis_names_the_kind_of_error(name, tensor, words):
    bug = next(b for b in zoo.BUGS if b.name == name)
    s = zoo.summary(bug, zoo.run_bug(bug.function, bug.losses, seeds=1))
    assert s["tensor"] == tensor and words in s["diagnosis"], s


def test_transpose_is_caught_by_values_when_the_shape_is_square():
    p = make_problem(9, 6, 6, 4, seed=0)  # F == H: the shape check cannot see it
    rows = check_function(bugs.transposed_weight_grad, [p], ("mse",), impl="zoo", mode="t")
    (bad,) = [r for r in rows if not r.ok]
    assert bad.tensor == "W1" and bad.diagnosis.startswith("transposed (a square shape")


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(st.integers(1, 20), st.integers(1, 9), st.integers(1, 9),
                       st.integers(1, 5)),
       seed=st.integers(0, 100_000), dtype=st.sampled_from(["float64", "float32"]))
def test_correct_function_raises_no_false_alarm(shape, seed, dtype):
    rows = check_function(bugs.correct, [make_problem(*shape, seed=seed)], dtype=dtype,
                             impl="zoo", mode="correct")
    assert all(r.ok for r in rows), [r.message() for r in rows if not r.ok]


def test_article_snippet_as_printed_and_minimally_fixed():
    compile(article.ARTICLE_SNIPPET, "article", "exec")  # a faithful transcription still parses
    assert "dy_dz = sigmoid_derivative(z)" in article.ARTICLE_SNIPPET
    state = np.random.get_state()
    a = article.article_on_its_own_network(n=5)
    assert np.array_equal(np.random.get_state()[1], state[1])  # global RNG left as found
    assert a["as_written"] == "NameError: name 'z' is not defined"
    assert a["dL_dw"] == [5, 2] and a["weights"] == [2, 1]  # (N, F) where (F, 1) is needed
    assert a["dL_db"] == [5, 1] and a["bias"] == [1]


def test_zoo_command_passes_and_prints_json(capsys):
    assert cli.main(["zoo", "--seeds", "1"]) == 0
    table = capsys.readouterr().out
    assert "17 of 17 bugs caught" in table and "0 false alarms" in table
    assert cli.main(["zoo", "--seeds", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and all(b["caught"] for b in report["bugs"])
    assert report["correct"]["false_alarms"] == []


def test_zoo_rejects_bad_seeds(capsys):
    assert cli.main(["zoo", "--seeds", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --seeds")


# ---- the data-parallel bugs (harness/check/dp_bugs.py), the zoo's second table ----------------
@pytest.mark.parametrize("bug", zoo.DP_BUGS, ids=[b.name for b in zoo.DP_BUGS])
def test_every_data_parallel_bug_is_caught_on_unequal_shards(bug):
    s = zoo.dp_summary(bug, seeds=3)
    assert s["caught"] and s["runs"] == len(zoo.DP_SHAPES) * 3 * 2


def test_averaging_local_means_is_invisible_on_equal_shards():
    """Why the problems need N not divisible by W: on equal shards (a) and (d') are exact."""
    for name in ("mean_of_local_means", "params_averaged"):
        s = zoo.dp_summary(next(b for b in zoo.DP_BUGS if b.name == name), seeds=1)
        assert s["caught"] and s["equal_shards_caught"] == 0


@pytest.mark.parametrize("name, tensor, words", [
    ("mean_of_local_means", "W1", "average of the workers' local means (sum g_r / W): shards of 7+6"),
    ("sum_not_divided", "b2", "sum of the workers' local means (sum g_r): not divided by the world"),
    ("partial_allreduce", "b2", "b1, b2 equal worker 0's own share"),
    ("params_allreduced", "W1", "the PARAMETERS were summed over the workers"),
    ("whole_batch", "W1", "off by a factor of W=2, the number of workers"),
    ("whole_batch_planned", "(rows)", "exact numbers; row audit: the workers read 26 rows of a "
                                      "batch of 13"),
])
def test_data_parallel_diagnosis_names_the_reduction(name, tensor, words):
    s = zoo.dp_summary(next(b for b in zoo.DP_BUGS if b.name == name), seeds=1)
    assert s["tensor"] == tensor and words in s["diagnosis"], s
    assert "(y-t)^2" not in s["diagnosis"]  # the single-process factor-2 story would mislead


def test_the_correct_reduction_raises_no_false_alarm_and_equals_one_process():
    f = dp_bugs.dp_variant(None, workers=3)
    problems = zoo.dp_problems(3) + zoo.dp_problems(3, equal=True)
    rows = check_function(f, problems, impl="zoo-dp", mode="correct")
    assert rows and all(r.ok for r in rows)
    assert all(dp_bugs.audit(p.params, p.X, p.T, "bce", workers=3)["rows_ok"] for p in problems)


def test_zoo_prints_and_reports_both_tables(capsys):
    assert cli.main(["zoo", "--seeds", "1"]) == 0
    table = capsys.readouterr().out
    assert "17 of 17 bugs caught" in table and "7 of 7 data-parallel bugs caught" in table
    assert cli.main(["zoo", "--seeds", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["dp_bugs"]) == 7 and all(b["caught"] for b in report["dp_bugs"])
    assert report["dp_correct"] == {"ok": True, "runs": 16, "false_alarms": 0}
