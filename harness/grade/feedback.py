"""What a student reads: feedback/<submission>.md, and the same as Gradescope's results.json.

    from harness.grade.feedback import markdown, gradescope
    markdown(record, rubric)      # what was checked, what failed, the diagnosis, a hint
    gradescope(record, rubric)    # {"score", "output", "tests": [...]}: Gradescope's format

Both are built from the stored record (harness/grade/folder.py) alone. A hidden problem's
failure is a general line (score.general: no shapes, no sizes, no expected values); a visible
problem's names its worst entry, as `check --impl` would show the student anyway.
"""

from __future__ import annotations

from harness.grade.rubric import LABELS, Rubric

# The most telling words of a diagnosis -> what to look at (first match wins).
HINTS = (
    ("not implemented", "Finish the TODO it names, then run the check again."),
    ("not computed (None)", "Return an array for every parameter: W1, b1, W2 and b2."),
    ("no function", "Name the function as the assignment says, at the top level of the file."),
    ("derivative", "The activation's derivative must be the one of the activation the forward "
                   "pass used, written with its output A."),
    ("sign flipped", "dL/dY is Y - T, not T - Y; and an update subtracts lr times the gradient."),
    ("factor of N", "The loss is a mean over the N rows: its gradient carries the 1/N once "
                    "(a sum over the batch without it is N times too large)."),
    ("factor of 1/N", "The 1/N of the mean is applied twice somewhere."),
    ("factor of K", "The loss sums over the K outputs; it does not average over them."),
    ("factor of 2", "The contract's MSE is 0.5 (Y - T)^2: its derivative in Y is (Y - T)."),
    ("factor of 0.5", "The contract's MSE is 0.5 (Y - T)^2: its derivative in Y is (Y - T)."),
    ("not reduced over the batch", "Sum the per-row gradients over the batch (axis 0), as "
                                   "the matrix product X.T @ dZ does for the weights."),
    ("wrong axis", "A bias gradient sums dZ over the rows: dZ.sum(axis=0)."),
    ("transposed", "dW = inputs.T @ dZ has the parameter's own shape (in, out)."),
    ("wrong shape", "Each gradient has exactly its parameter's shape."),
    ("file order", "Draw each epoch's minibatches with batch_order(N, batch_size, seed, epoch)."),
    ("history", "history[e] is the mean of epoch e's batch losses, each taken before its "
                "update."),
    ("time limit", "An endless loop, or work far larger than these small problems need."),
    ("MemoryError", "It ran out of memory: these problems need a few kilobytes."),
    ("File too large", "It printed more than 64 MB: print less (or nothing)."),
    ("cell", "Run the notebook top to bottom in a fresh kernel (Kernel > Restart & Run All): "
             "it must run without errors."),
    ("raised", "Run the check yourself (below) to see the error on the checker's inputs."),
    ("exited", "Do not call sys.exit(), exit() or os._exit(): return your answer."),
    ("signal", "Do not send signals to other processes."),
)
DEFAULT_HINT = ("Compare each line of your backward pass with the forward line it undoes "
                "(docs/teaching.md derives every one).")


def hint(diagnosis: str) -> str:
    return next((h for words, h in HINTS if words in diagnosis), DEFAULT_HINT)


def _test_name(t: dict) -> str:
    return f"{LABELS[t['family']]} ({'hidden' if t['hidden'] else 'visible'} problems)"


def _self_check(record: dict, rubric: Rubric) -> str:
    file = record.get("file") or "YOUR_FILE.py"
    task = f" --task {rubric.task}" if rubric.task != "grads" else ""
    act = f" --activation {rubric.activation}" if rubric.activation != "sigmoid" else ""
    return f"python -m harness check --impl {file}:{record['function']}{task}{act}"


def markdown(record: dict, rubric: Rubric) -> str:
    """feedback/<submission>.md."""
    lines = [f"# Feedback: {record['submission']}", "",
             f"**Score: {record['score']:g} / {record['max_score']:g}** (status: "
             f"{record['status']})", ""]
    if record["file"]:
        lines.append(f"Checked `{record['function']}` in `{record['file']}` ({rubric.task}, "
                     f"{rubric.activation}) on the visible problems you can run yourself and on "
                     "hidden problems whose shapes and seeds you do not see, for both losses.")
    if record["diagnosis"]:
        lines += ["", f"**Diagnosis:** {record['diagnosis']}", "",
                  f"**Hint:** {hint(record['diagnosis'])}"]
    lines += ["", "| check | problems | points | result |", "| --- | --- | --- | --- |"]
    for t in record["tests"]:
        lines.append(f"| {LABELS[t['family']]} | {'hidden' if t['hidden'] else 'visible'} | "
                     f"{t['score']:g} / {t['max_score']:g} | "
                     f"{'ok' if t['score'] == t['max_score'] else 'FAIL'} |")
    failed = [t for t in record["tests"] if t["score"] != t["max_score"] and t["failures"]]
    if failed:
        lines += ["", "## What failed", ""]
        for t in failed:
            lines.append(f"- {_test_name(t)}:")
            lines += [f"  - {f}" for f in t["failures"]]
    lines += ["", "## Check it yourself", "", "```", _self_check(record, rubric), "```", ""]
    return "\n".join(lines)


def gradescope(record: dict, rubric: Rubric) -> dict:
    """results.json in Gradescope's autograder format (score, output, tests)."""
    tests = []
    for t in record["tests"]:
        output = "ok" if t["score"] == t["max_score"] else "\n".join(t["failures"]) or "failed"
        tests.append({"name": _test_name(t), "score": t["score"], "max_score": t["max_score"],
                      "output": output, "visibility": rubric.hidden_visibility if t["hidden"]
                      else "visible"})
    output = [f"status: {record['status']}"]
    if record["diagnosis"]:
        output += [f"diagnosis: {record['diagnosis']}", f"hint: {hint(record['diagnosis'])}"]
    output.append(f"check it yourself: {_self_check(record, rubric)}")
    return {"score": record["score"], "output": "\n".join(output), "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests}
