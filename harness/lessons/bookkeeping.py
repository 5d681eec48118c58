"""Which lines of a data-parallel engine exist only for sharding: found by following the shard
plan through the code's calls and bindings, never by how a variable is spelt.

    from harness.lessons.bookkeeping import sharding_lines
    sharding_lines(ast.parse(source), aliases, plan="dataparallel.plan")   # {line, ...}

The rule (harness/lessons/parallel_cost.py's docstring states it for the reader):
  source          a use of the plan (`plan.my_rows`, a name imported from it), or a call to a
                  sharding helper: a function of the same file whose body uses the plan;
  sharded value   what a counted statement binds (a name in its function, `self.x` in its
                  class, a loop's target), when its value is derived: every call in it is to the
                  plan, a helper, `len`, a method of a sharded value, or has a source among its
                  arguments (an array sized by the plan); a computation on a shard is data;
  counted         a statement (a simple one, or the header of if / for / while / with) that
                  holds a source or reads a sharded value, unless its value is a call into the
                  implementations' own math (a function of impls/: the gradient itself); and
                  every line of a sharding helper.
Names are scoped as Python scopes them (a function's locals, a class's `self.` attributes), and
the bindings are followed to a fixed point, in whatever order the statements come.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

HEADER = {ast.If: ("test",), ast.While: ("test",), ast.For: ("target", "iter"), ast.With: ("items",)}
SIZE_BUILTINS = {"len"}
IMPLS = "impls."  # the implementations' own math


@dataclass
class Statement:
    lines: set[int]
    parts: list[ast.AST]  # what is read (the whole statement, or a compound's header)
    targets: list[ast.AST]  # what it binds
    value: ast.AST | None  # the expression bound (or returned, or tested)
    scope: int  # id of its function (or the module), for local names
    owner: int  # id of its class (or the module), for `self.` attributes


def _statements(tree: ast.Module):
    out = []

    def visit(node, scope, owner):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, id(child), owner)
                continue
            if isinstance(child, ast.ClassDef):
                visit(child, id(child), id(child))
                continue
            if type(child) in HEADER:
                parts = [getattr(child, f) for f in HEADER[type(child)]]
                parts = [x for p in parts for x in (p if isinstance(p, list) else [p])]
                targets = ([child.target] if isinstance(child, ast.For) else
                           [i.optional_vars for i in getattr(child, "items", []) if i.optional_vars])
                value = (child.iter if isinstance(child, ast.For) else child.test
                         if isinstance(child, (ast.If, ast.While)) else child.items[0].context_expr)
                out.append(Statement(set(range(child.lineno, child.body[0].lineno)), parts,
                                     targets, value, scope, owner))
            elif isinstance(child, ast.stmt) and not hasattr(child, "body"):
                targets = (child.targets if isinstance(child, ast.Assign) else
                           [child.target] if isinstance(child, (ast.AugAssign, ast.AnnAssign))
                           else [])
                out.append(Statement(set(range(child.lineno, child.end_lineno + 1)), [child],
                                     targets, getattr(child, "value", None), scope, owner))
            visit(child, scope, owner)

    visit(tree, id(tree), id(tree))
    return out


def _key(node: ast.AST, st: Statement):
    """The binding a name or `self.x` refers to, or None."""
    if isinstance(node, ast.Name):
        return (st.scope, node.id)
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "self"):
        return (st.owner, "self." + node.attr)
    return None


def _bound(targets, st: Statement) -> set:
    keys = set()
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, (ast.Name, ast.Attribute)) and isinstance(n.ctx, ast.Store):
                if (k := _key(n, st)) is not None:
                    keys.add(k)
    return keys


def sharding_lines(tree: ast.Module, aliases: dict[str, str], plan: str) -> set[int]:
    """The lines of `tree` that exist only for sharding (the module's rule)."""
    def uses_plan(node) -> bool:
        """A name bound by an import to the plan module, or to something in it."""
        return _imports_from(node, plan) or any(
            isinstance(n, ast.Name) and (aliases.get(n.id) == plan
                                         or aliases.get(n.id, "").startswith(plan + "."))
            for n in ast.walk(node))

    helpers = {f.name for f in tree.body
               if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and uses_plan(f)}

    def is_source_call(call: ast.Call) -> bool:
        f = call.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        return name in helpers or uses_plan(f)

    def source(node) -> bool:
        return uses_plan(node) or any(isinstance(n, ast.Call) and is_source_call(n)
                                      for n in ast.walk(node))

    statements, sharded = _statements(tree), set()

    def reads(node, st) -> bool:
        return any(_key(n, st) in sharded for n in ast.walk(node)
                   if isinstance(n, (ast.Name, ast.Attribute)) and not isinstance(n.ctx, ast.Store))

    def math_call(value) -> bool:
        if not isinstance(value, ast.Call):
            return False
        root = value.func
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and aliases.get(root.id, "").startswith(IMPLS)

    def derived(value, st) -> bool:
        for call in (n for n in ast.walk(value) if isinstance(n, ast.Call)):
            f = call.func
            if is_source_call(call) or (isinstance(f, ast.Name) and f.id in SIZE_BUILTINS):
                continue
            if isinstance(f, ast.Attribute) and (reads(f.value, st) or source(f.value)):
                continue  # a method of a sharded value
            if any(source(a) for a in [*call.args, *(k.value for k in call.keywords)]):
                continue  # sized by the plan
            return False
        return True

    counted: set[int] = set()
    while True:
        before = (len(sharded), len(counted))
        for i, st in enumerate(statements):
            if math_call(st.value):
                continue
            if any(source(p) for p in st.parts) or any(reads(p, st) for p in st.parts) \
                    or any(reads(t, st) for t in st.targets):
                counted.add(i)
                if st.value is None or derived(st.value, st):
                    sharded |= _bound(st.targets, st)
        if (len(sharded), len(counted)) == before:
            break
    return {n for i in counted for n in statements[i].lines}


def _imports_from(node, plan: str) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == plan
