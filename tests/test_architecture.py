"""The structure itself: no import circles, and data flowing one way through the stages
(contract -> config/data -> impls -> check/measure -> store -> report/lessons -> bench -> cli).

Read from the source with `ast`, every import counts, also those inside functions (a lazy
import is still a dependency); only `if TYPE_CHECKING:` imports, which never run, do not.
"""

from __future__ import annotations

import ast

import pytest

from tests.helpers import ROOT

# Stage of each module, by the longest matching prefix; a module may import its own stage
# or an earlier one, never a later one.
STAGES = {
    "impls.contract": 0,
    "harness.errors": 1, "harness.codec": 1, "harness.data": 1, "harness.config": 1,
    "impls": 2,
    "harness.check": 3, "harness.measure": 3,
    "harness.store": 4,
    "harness.report": 5, "harness.lessons": 5, "harness.grade": 5,
    "harness.bench": 6,
    "harness.cli": 7, "harness.__main__": 7, "harness": 7,
}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for package in ("impls", "harness"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = ast.parse(path.read_text(encoding="utf-8"))
    return out


MODULES = _modules()


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    return skip


def imports(name: str) -> set[str]:
    """The project modules `name` imports. `from P import m` of a submodule m counts as P.m
    only: that every submodule also runs its package's __init__ is Python's, not a design
    choice (import-linter counts it the same way)."""
    tree, found = MODULES[name], set()
    skip = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(MODULES)
            found |= subs if len(subs) == len(node.names) else subs | {node.module}
    return {m for m in found if m in MODULES and m != name}


def stage(name: str) -> int:
    return STAGES[max((p for p in STAGES if name == p or name.startswith(p + ".")), key=len)]


def test_every_module_has_a_stage():
    assert MODULES and all(stage(m) is not None for m in MODULES)


def test_no_import_circles():
    graph = {m: imports(m) for m in MODULES}
    # Tarjan's strongly connected components: any with more than one module is a circle.
    index, low, on, stack, circles, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                circles.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == [], f"import circles: {circles}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_data_flows_one_way(name):
    later = sorted(m for m in imports(name) if stage(m) > stage(name))
    assert later == [], f"{name} (stage {stage(name)}) imports later stages: {later}"


def test_implementations_never_import_the_harness():
    for name in MODULES:
        if name.startswith("impls"):
            assert not [m for m in imports(name) if m.startswith("harness")], name


def test_the_harness_never_imports_a_framework():
    frameworks = ("torch", "jax", "jaxlib", "cupy")
    for name, tree in MODULES.items():
        if not name.startswith("harness"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) \
                    else [node.module or ""]
                assert not [m for m in mods if m.split(".")[0] in frameworks], name
