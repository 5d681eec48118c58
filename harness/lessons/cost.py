"""The cost of change, counted from the source with `ast`: what adding the hidden activation
option (sigmoid, tanh, relu) cost each implementation.

    from harness.lessons.cost import cost_table
    print(cost_table())      # markdown table + the line numbers each count is made of

The option is implemented by hand in impls/handwritten.py and with autograd in
impls/torch_impl.py and impls/jax_impl.py. Reading their real source, this counts
hand-written gradient lines, derivatives written by hand, lines that exist only for
the option, and calls to a framework's autograd. Every rule is syntactic, so a
sceptic can re-count by hand.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from impls import contract

ROOT = Path(__file__).resolve().parents[2]
# (file, the implementations that run it). cupy_impl.py and numpy_impl.py only wrap
# handwritten.py, so their gradients are handwritten.py's.
FILES = (("impls/handwritten.py", "numpy, cupy"), ("impls/torch_impl.py", "torch"),
         ("impls/jax_impl.py", "jax"))

# ---- the counting rules -----------------------------------------------------------------
# A gradient is named like the math: d<Capital> (dZ2, dW1, dA1, dY) or a bias's db<digits>
# (db1), as in handwritten.py. `dtype`, `data`, `device` are not gradients.
GRAD_NAME = re.compile(r"^d(?:[A-Z]\w*|b\d*)$")
# Of those, the targets that go *through a nonlinearity* (the output sigmoid, the loss, the
# hidden activation): writing them needs a derivative rule. dW, db and dA lines are the
# mechanical rules of a matmul and a broadcast.
DERIVATIVE_NAME = re.compile(r"^d[ZY]\w*$")
# A function whose name says it returns a derivative (act_backward, sigmoid_derivative,
# a custom autograd Function's backward).
DERIVATIVE_FUNC = re.compile(r"backward|derivative", re.IGNORECASE)
# Calls that ask a framework for gradients: loss.backward(), torch.autograd.grad,
# jax.grad, jax.value_and_grad, jax.vjp.
AUTOGRAD_CALLS = {"backward", "grad", "value_and_grad", "vjp", "jacrev", "jacfwd"}
DEFAULT = contract.ACTIVATIONS[0]  # sigmoid: the network had it before the option existed
OPTIONS = set(contract.ACTIVATIONS) - {DEFAULT}  # the non-default choices: tanh, relu
# The network's mathematics: module-level functions with these names (forward, loss, gradients,
# the update, and the activation and loss pieces they use). Every other code line of an
# implementation file (imports, availability, devices, compile modes, sessions, threads, run
# info) is plumbing.
MATH_FUNC = re.compile(r"^(?:_?act_\w+|sigmoid|softplus|forward|loss_fn|grads|step)$")
# Each implementation as it runs, by file: its mathematics and its plumbing may be two files.
RUNS = {"numpy": ("impls/handwritten.py", "impls/numpy_impl.py"), "torch": ("impls/torch_impl.py",),
        "jax": ("impls/jax_impl.py",)}


@dataclass(frozen=True)
class Cost:
    """Line numbers (1-based) in one source file, by rule; the counts are their lengths."""

    code: tuple[int, ...]  # lines holding code: not blank, not only a comment, not a docstring
    gradient: tuple[int, ...]  # hand-written gradient lines (rules a and b below)
    derivative: tuple[int, ...]  # of those, derivatives of a nonlinearity written by hand
    option: tuple[int, ...]  # lines that exist only for the activation option
    option_backward: tuple[int, ...]  # of those, in the backward pass (gradient lines or
    #                                   inside a derivative function)
    autograd: tuple[int, ...]  # lines that call a framework's autograd
    added: tuple[int, ...] = ()  # option lines that the option added: all but the default's
    #                              (sigmoid's) own branch, which the network needed before
    added_derivative: tuple[int, ...] = ()  # of those, derivatives written by hand


def _lines(node: ast.AST) -> set[int]:
    return set(range(node.lineno, node.end_lineno + 1))


def _names_activation(node: ast.AST) -> bool:
    """Does an expression read the option: the name `activation` or a string 'tanh'/'relu'/...?"""
    return any((isinstance(n, ast.Name) and n.id == "activation")
               or (isinstance(n, ast.Attribute) and n.attr == "activation")
               or (isinstance(n, ast.Constant) and n.value in contract.ACTIVATIONS)
               for n in ast.walk(node))


def _assigned_names(stmt: ast.stmt) -> list[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return [n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)]


def code_lines(source: str, tree: ast.Module | None = None) -> set[int]:
    """Lines holding code: not blank, not only a comment, not a docstring (1-based)."""
    tree = ast.parse(source) if tree is None else tree
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    for node in ast.walk(tree):  # docstrings are strings, but not code
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            lines -= _lines(first)
    return lines


def cost_of_change(source: str) -> Cost:
    """Apply the counting rules to one Python source. Every rule is syntactic, so a sceptic
    can re-count by hand:

    (a) gradient: an assignment to a gradient name (dZ2, db1) whose value does arithmetic (a binary
        operator) or reads another gradient, e.g. `dW2 = A1.T @ dZ2`, `db2 = dZ2.sum(axis=0)`;
        fetching a framework's result (`dW1 = W1.grad`, `dW1 = G["W1"]`) does neither and
        does not count;
        an in-place write counts the same way: an augmented assignment to a gradient name
        (`dA1 *= D`), or a call writing `out=` a gradient name (`xp.matmul(dZ2, W2.T, out=dA1)`);
    (b) gradient: inside a function named *backward* or *derivative*, a `return` with a value,
        an augmented assignment, or a call statement (an in-place `xp.subtract(1, A, out=D)`):
        each activation branch of act_backward is one hand-written derivative;
    derivative: (b), plus (a) whose target is dZ* or dY*;
    option: every line of an `if` whose test reads `activation` or compares with an
        activation's name (its elif/else included), the statement right after such an `if`
        when all its branches return (the fall-through default, `return xp.maximum(Z, 0)`),
        and any other statement holding the string 'tanh' or 'relu' (a lookup table);
    added: the option lines outside the default's own branch (the body of an `if` testing
        `activation == "sigmoid"`): what tanh and relu added to a network that had sigmoid;
    autograd: a line calling .backward(), grad(), value_and_grad(), vjp(), jacrev(), jacfwd().
    """
    tree = ast.parse(source)
    gradient, derivative, option, autograd, backward = set(), set(), set(), set(), set()
    default: set[int] = set()
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef) and DERIVATIVE_FUNC.search(func.name):
            backward |= _lines(func)
            for ret in ast.walk(func):
                if (isinstance(ret, ast.Return) and ret.value is not None) \
                        or isinstance(ret, ast.AugAssign) \
                        or (isinstance(ret, ast.Expr) and isinstance(ret.value, ast.Call)
                            and not isinstance(ret.value, ast.Constant)):
                    gradient |= _lines(ret)
                    derivative |= _lines(ret)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            names = [n for n in _assigned_names(node) if GRAD_NAME.match(n)]
            computed = any(isinstance(n, ast.BinOp)
                           or (isinstance(n, ast.Name) and GRAD_NAME.match(n.id))
                           for n in ast.walk(node.value))
            if names and (computed or isinstance(node, ast.AugAssign)):
                gradient |= _lines(node)
                if any(DERIVATIVE_NAME.match(n) for n in names):
                    derivative |= _lines(node)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and any(
                kw.arg == "out" and isinstance(kw.value, ast.Name) and GRAD_NAME.match(kw.value.id)
                for kw in node.value.keywords):
            gradient |= _lines(node)  # an in-place write of a gradient: xp.matmul(..., out=dA1)
            if DERIVATIVE_NAME.match(next(kw.value.id for kw in node.value.keywords
                                          if kw.arg == "out")):
                derivative |= _lines(node)
        if isinstance(node, ast.Call):
            f = node.func
            if (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")) in AUTOGRAD_CALLS:
                autograd.add(node.lineno)
        for block in (getattr(node, "body", None), getattr(node, "orelse", None)):
            if not isinstance(block, list):
                continue
            for i, stmt in enumerate(block):
                nxt = block[i + 1] if i + 1 < len(block) else None
                if isinstance(stmt, ast.If) and _names_activation(stmt.test):
                    option |= _lines(stmt)
                    if _is_default(stmt.test):  # sigmoid's branch: there before the option
                        default |= set().union(*(_lines(b) for b in stmt.body))
                    returns = isinstance(stmt.body[-1], ast.Return) and not stmt.orelse
                    if nxt is not None and returns:
                        option |= _lines(nxt)
    for node in ast.walk(tree):  # lookup tables: {"tanh": ..., "relu": ...}
        compound = (ast.If, ast.FunctionDef, ast.ClassDef, ast.For, ast.While, ast.With)
        if isinstance(node, ast.stmt) and not isinstance(node, compound):
            if any(isinstance(n, ast.Constant) and n.value in OPTIONS for n in ast.walk(node)):
                option |= _lines(node)
    code = code_lines(source, tree)
    added = option - default
    sets = (code, gradient, derivative, option, option & (gradient | backward), autograd, added,
            added & derivative)
    return Cost(*(tuple(sorted(s & code)) for s in sets))


def _is_default(test: ast.AST) -> bool:
    """`activation == "sigmoid"`: the test of the default's own branch."""
    return (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and any(isinstance(n, ast.Constant) and n.value == DEFAULT
                    for n in (test.left, *test.comparators)))


def math_lines(source: str) -> tuple[set[int], set[int]]:
    """(the network's mathematics, plumbing): the code lines inside module-level functions
    whose name MATH_FUNC matches, and every other code line (imports included)."""
    tree = ast.parse(source)
    code = code_lines(source, tree)
    math = set().union(*(_lines(f) for f in tree.body
                         if isinstance(f, ast.FunctionDef) and MATH_FUNC.match(f.name))) & code
    return math, code - math


def why_longer(root: Path = ROOT, runs=RUNS) -> dict[str, dict[str, int]]:
    """{implementation: {"math": lines, "plumbing": lines}} over the files it runs as."""
    out = {}
    for name, files in runs.items():
        split = [math_lines((Path(root) / f).read_text(encoding="utf-8")) for f in files]
        out[name] = {"math": sum(len(m) for m, _ in split),
                     "plumbing": sum(len(p) for _, p in split)}
    return out


def spans(lines) -> str:
    """1,2,3,7 -> '1-3, 7' (so the table's reader can find the lines)."""
    out, start = [], None
    for i, n in enumerate(lines):
        start = n if start is None else start
        if i + 1 == len(lines) or lines[i + 1] != n + 1:
            out.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(out) or "none"


def cost_table(root: Path = ROOT, files=FILES) -> str:
    """The cost-of-change table (markdown) for the files that exist, and a line listing."""
    rows = ["| file | runs as | code lines: maths + plumbing | gradient lines by hand"
            " | derivatives by hand | lines the activation option added (derivatives by hand)"
            " | autograd calls |", "|" + " --- |" * 7]
    where = []
    for rel, used_by in files:
        source = (Path(root) / rel).read_text(encoding="utf-8")
        c, (math, plumbing) = cost_of_change(source), math_lines(source)
        rows.append(f"| `{rel}` | {used_by} | {len(c.code)}: {len(math)} + {len(plumbing)} |"
                    f" {len(c.gradient)} | {len(c.derivative)} | {len(c.added)}"
                    f" ({len(c.added_derivative)}) | {len(c.autograd)} |")
        where.append(f"- `{rel}`: gradient lines {spans(c.gradient)}; derivatives"
                     f" {spans(c.derivative)}; added by the activation option {spans(c.added)}"
                     f" (sigmoid's own branches, there before the option, are not counted;"
                     f" every option line: {spans(c.option)}); autograd {spans(c.autograd)};"
                     f" maths {spans(sorted(math))}.")
    return "\n".join(rows) + "\n\nWhich lines (so you can check the counts):\n\n" + "\n".join(where)
