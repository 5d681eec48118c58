"""The structure itself: no import circles, between modules or between the parts of the house,
and data flowing one way through the stages:

    contract -> errors, codec, process, data, config -> the implementations (impls/) ->
    the data-parallel engines (dataparallel/) -> the registry (impls/__init__.py) ->
    check, measure -> store -> report, lessons -> bench -> cli

Read from the source with `ast`, every import counts, also those inside functions (a lazy
import is still a dependency); only `if TYPE_CHECKING:` imports, which never run, do not.
Every module must be named below, by itself or by its package: a new file is placed on purpose.
"""

from __future__ import annotations

import ast

import pytest

from tests.helpers import ROOT

# The parts of the house and their stage: a module may import its own stage or an earlier one,
# never a later one. A name ending in "." is a package (every module in it); any other name is
# exactly one module.
STAGES = {
    "impls.contract": 0,
    "harness.errors": 1, "harness.options": 1, "harness.codec": 1, "harness.process.": 1, "harness.data": 1,
    "harness.config": 1,
    # the exhibit: the math of each implementation, and what they share
    "impls.base": 2, "impls.handwritten": 2, "impls.numpy_impl": 2, "impls.torch_impl": 2,
    "impls.jax_impl": 2, "impls.cupy_impl": 2, "impls.readback": 2,
    "dataparallel.": 3,  # the engines depend on the implementations, never the reverse
    "impls": 4,  # the registry: the public API; it loads the engines into impls.base's hook
    "harness.check.": 5, "harness.measure.": 5,
    "harness.store.": 6,
    "harness.report.": 7, "harness.lessons.": 7, "harness.site.": 7,
    "harness.grade.": 7,
    "harness.bench.": 8,
    "harness.cli": 9, "harness.__main__": 9, "harness": 9,
}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for package in ("impls", "dataparallel", "harness"):
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


def imports(name: str, modules: dict = MODULES) -> set[str]:
    """The project modules `name` imports. `from P import m` of a submodule m counts as P.m
    only: that every submodule also runs its package's __init__ is Python's, not a design
    choice (import-linter counts it the same way)."""
    tree, found = modules[name], set()
    skip = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
            found |= subs if len(subs) == len(node.names) else subs | {node.module}
    return {m for m in found if m in modules and m != name}


def part(name: str, stages: dict = STAGES) -> str | None:
    """The entry of STAGES that names module `name` (itself, or its package), or None."""
    if name in stages:
        return name
    packages = [p for p in stages if p.endswith(".") and (name + ".").startswith(p)]
    return max(packages, key=len) if packages else None


def stage(name: str) -> int:
    return STAGES[part(name)]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components: every one with more than one node is a circle."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]

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
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                found.append(sorted(scc))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def part_graph(modules: dict, stages: dict) -> dict[str, set[str]]:
    """The imports between parts of the house (a package counts as one part)."""
    graph: dict[str, set[str]] = {part(m, stages): set() for m in modules}
    for m in modules:
        graph[part(m, stages)] |= {part(i, stages) for i in imports(m, modules)} - {part(m, stages)}
    return graph


def test_every_module_is_placed():
    unplaced = sorted(m for m in MODULES if part(m) is None)
    assert unplaced == [], f"modules with no place in STAGES: {unplaced}"


def test_no_import_circles_between_modules():
    assert circles({m: imports(m) for m in MODULES}) == []


def test_no_import_circles_between_the_parts_of_the_house():
    assert circles(part_graph(MODULES, STAGES)) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_data_flows_one_way(name):
    later = sorted(m for m in imports(name) if stage(m) > stage(name))
    assert later == [], f"{name} (stage {stage(name)}) imports later stages: {later}"


def test_the_exhibit_imports_only_the_exhibit():
    """impls/ (but the registry) reads on its own: no harness, no data-parallel engines."""
    for name in MODULES:
        if name.startswith("impls.") and name in STAGES:
            outside = [m for m in imports(name) if not m.startswith("impls.")]
            assert outside == [], f"{name} imports {outside}"


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


# ---- the rules above catch what they are for -------------------------------------------------
def _fake(sources: dict[str, str]) -> dict[str, ast.Module]:
    return {name: ast.parse(src) for name, src in sources.items()}


# The layout this project had before dataparallel/: the engines inside impls/ (one part,
# impls.parallel), impls.base importing them lazily, and they importing torch_impl and base.
BEFORE = _fake({
    "impls.contract": "",
    "impls.base": "def train():\n    from impls import parallel\n",
    "impls.torch_impl": "from impls.base import Implementation\n",
    "impls.parallel": "from impls.parallel import engines\n",
    "impls.parallel.engines": "from impls import contract\n",
    "impls.parallel.torch_dist": "from impls import torch_impl\nfrom impls.parallel import plan\n",
    "impls.parallel.plan": "from impls import contract\n",
})


def test_the_circle_this_project_had_is_caught():
    """No module-level circle, yet impls.base -> impls.parallel -> torch_impl -> impls.base."""
    assert circles({m: imports(m, BEFORE) for m in BEFORE}) == []
    stages = {"impls.contract": 0, "impls.base": 2, "impls.torch_impl": 2, "impls.parallel.": 3}
    assert circles(part_graph(BEFORE, stages)) == [["impls.base", "impls.parallel.",
                                                    "impls.torch_impl"]]
    later = [m for m in imports("impls.base", BEFORE) if stages[part(m, stages)] > 2]
    assert later == ["impls.parallel"]  # and base imports a later stage: test_data_flows_one_way


def test_an_unplaced_module_is_caught():
    assert part("harness.newthing") is None and part("impls.newfile") is None
    assert part("harness.bench.newthing") == "harness.bench."
