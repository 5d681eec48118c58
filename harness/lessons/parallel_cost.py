"""What data parallelism cost each implementation, counted from the source with `ast`.

    from harness.lessons.parallel_cost import parallel_table
    print(parallel_table())   # markdown table + the line numbers each count is made of

The engines: dataparallel/numpy_mpi.py (handwritten.py + mpi4py, under mpiexec), torch_dist.py
(torch.distributed, under torchrun), jax_mesh.py (a jit over a Mesh). What all three use
(SHARED: the public calls, the engine table, the launcher's watch of the heartbeats, the task
loop, the shard plan, the run folder) has rows of its own, so that each engine's own cost
shows. Starting and killing processes is harness/process.py's, shared by the whole project
(benchmark workers, the check), so it is no cost of data parallelism and not counted here.
multihost.py and scaling.py (across hosts, the benchmark) are not training and are left out.

The rules, per file. Each is structural: it follows the code's imports, calls and bindings,
never how a local variable is spelt, so renaming one moves no figure (a test does it), and a
sceptic can re-count by hand:

code: not blank, not only a comment, not a docstring (cost.code_lines, as the activation lesson).
collective: a call whose callee (attribute, name, alias resolved) is in COLLECTIVES: MPI's
    (mpi4py), torch.distributed's, JAX's (lax, multihost_utils): a call the programmer wrote
    and placed. Lower-case `reduce`, `gather`, `scatter`, `scan` are left out: NumPy,
    functools and jax.lax name local work so. Each is one of
    barrier: a callee in BARRIERS (moves no data; here only for the timing);
    check: inside a function named `drift` (the replicas' agreement check, the engines'
        protocol: training runs without it);
    in training: any other (here: the all-reduce that makes the local gradients global).
bookkeeping: lines that exist only for sharding the batch and carrying the reduction by hand.
    The shard plan (dataparallel/plan.py: shards, the flat buffer's layout and slots, the row
    audit) is that and nothing else, so every code line of it counts, and elsewhere:
    a source: a use of the plan (an attribute of it, a name imported from it), or a call to a
        sharding helper: a function of the same file whose body uses the plan;
    a sharding helper's every line;
    a sharded value: what a counted statement binds (a name, `self.attribute`, a loop's
        target), unless a call to anything but the plan, a helper, a method of a sharded
        value or `len` makes it (a computation on a shard is not bookkeeping: its result is
        data), or a call whose argument is a source (an array sized by the plan);
    a statement that holds a source or reads a sharded value counts, unless its value is a
        call into the implementations' own math (a function of impls/: the gradient itself).
    Collective lines excluded. Values that only a jitted function's parameters carry (jax's
    row mask inside the loss) are not followed: no rule can follow them without the names.
framework: a statement that names something in DIST_NAMES, a framework's distribution API
    (the MPI world and communicator, torch's process group, its backends, torchrun's RANK /
    WORLD_SIZE, JAX's Mesh, shardings, shard_map, jax.distributed): as an attribute, an
    imported name, a keyword or a string, never a local name. Collective lines excluded.
launch: the engine's code lines in engines.py (availability, command lines): its functions,
    by name (ENGINES' patterns), and in a function an `if name == "<engine>":` block that
    returns; after such blocks, the rest of the function goes to the one engine they leave
    (launch_plan's jax branch). The engines.py row counts what is left.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, fields
from pathlib import Path

from harness.lessons.bookkeeping import sharding_lines
from harness.lessons.cost import ROOT, code_lines, spans

PAR = "dataparallel/"
PLAN = "dataparallel.plan"  # the shard plan: every use of it is sharding
IMPLS = "impls."  # the implementations' own math: calling it is never bookkeeping
# (engine file, runs as, the pattern naming its functions in engines.py)
ENGINES = ((PAR + "numpy_mpi.py", "numpy", r"numpy|mpi"), (PAR + "torch_dist.py", "torch", "torch"),
           (PAR + "jax_mesh.py", "jax", r"jax|xla"))
SHARED = tuple(PAR + f for f in ("__init__.py", "engines.py", "launcher.py", "loop.py", "plan.py",
                                 "rundir.py"))
COLLECTIVES = set(  # MPI (buffer methods capitalised), torch.distributed, jax.lax, multihost_utils
    "Allreduce allreduce Reduce Bcast bcast Barrier barrier Allgather allgather Gather Scatter"
    " Alltoall alltoall Reduce_scatter Scan Exscan Iallreduce Ibcast Ibarrier all_reduce broadcast"
    " all_gather all_gather_into_tensor reduce_scatter reduce_scatter_tensor all_to_all"
    " all_to_all_single monitored_barrier all_gather_object broadcast_object_list psum pmean"
    " pmax pmin ppermute psum_scatter process_allgather broadcast_one_to_all"
    " sync_global_devices".split())
BARRIERS = {"Barrier", "barrier", "Ibarrier", "monitored_barrier", "sync_global_devices"}
CHECK_FUNCS = {"drift"}
DIST_NAMES = set(  # MPI; torch (and jax.distributed); jax
    "mpi4py MPI COMM_WORLD Get_rank Get_size Abort IN_PLACE"
    " distributed init_process_group destroy_process_group get_backend ReduceOp RANK WORLD_SIZE"
    " LOCAL_RANK gloo nccl"
    " sharding Mesh NamedSharding PartitionSpec shard_map in_shardings out_shardings in_specs"
    " out_specs make_array_from_process_local_data pcast process_index process_count"
    " addressable_data addressable_shards multihost_utils"
    " jax_cpu_collectives_implementation".split())
HEADER = {ast.If: ("test",), ast.While: ("test",), ast.For: ("target", "iter"), ast.With: ("items",)}


@dataclass(frozen=True)
class ParallelCost:
    """Line numbers (1-based) in one source file, by rule; the counts are their lengths."""

    code: tuple[int, ...]
    training: tuple[int, ...]  # collectives by hand in training
    barrier: tuple[int, ...]  # barriers by hand
    check: tuple[int, ...]  # collectives by hand in drift(), the replicas' check
    bookkeeping: tuple[int, ...]  # shard and reduction bookkeeping by hand
    framework: tuple[int, ...]  # the framework's distribution API in use

    def restrict(self, keep: set[int]) -> ParallelCost:
        return ParallelCost(*(tuple(n for n in getattr(self, f.name) if n in keep)
                              for f in fields(self)))


def _lines(node: ast.AST) -> set[int]:
    return set(range(node.lineno, node.end_lineno + 1))


def _aliases(tree: ast.Module) -> dict[str, str]:
    """`import torch.distributed as dist`: dist -> torch.distributed;
    `from jax.sharding import PartitionSpec as PS`: PS -> jax.sharding.PartitionSpec."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update({a.asname: a.name for a in node.names if a.asname})
        elif isinstance(node, ast.ImportFrom):
            out.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return out


def _words(node: ast.AST, aliases: dict[str, str]) -> set[str]:
    """Every API name a node spells: imported names (an alias's every dotted part too),
    attributes, keywords, string constants, imported modules and names; never a local name."""
    words = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id in aliases:
            words |= {n.id, *aliases[n.id].split(".")}
        elif isinstance(n, ast.Attribute):
            words.add(n.attr)
        elif isinstance(n, ast.keyword) and n.arg:
            words.add(n.arg)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            words.add(n.value)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            words |= {p for a in n.names for p in a.name.split(".")}
            words |= set((getattr(n, "module", None) or "").split("."))
    return words


def _statements(tree: ast.Module):
    """(lines, nodes) judged for every statement: all of a simple one; the header of an if,
    for, while, with; nothing of a def, class or try."""
    for node in ast.walk(tree):
        if type(node) in HEADER:
            parts = [getattr(node, f) for f in HEADER[type(node)]]
            parts = [x for p in parts for x in (p if isinstance(p, list) else [p])]
            yield set(range(node.lineno, node.body[0].lineno)), parts
        elif isinstance(node, ast.stmt) and not hasattr(node, "body"):
            yield _lines(node), [node]


def collectives(tree: ast.Module) -> list[tuple[int, str, str]]:
    """(line, callee name, enclosing function's name or "") of every collective call."""
    aliases, found = _aliases(tree), []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Call):
                f = child.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                name = aliases.get(name, name).rsplit(".", 1)[-1]
                if name in COLLECTIVES:
                    found.append((child.lineno, name, func))
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, child.name if inner else func)

    visit(tree, "")
    return found


def parallel_cost(source: str, plan_module: bool = False) -> ParallelCost:
    """Apply the module's rules to one Python source (`plan_module`: it is the shard plan)."""
    tree = ast.parse(source)
    aliases, code = _aliases(tree), code_lines(source, tree)
    training, barrier, check, framework = set(), set(), set(), set()
    for line, name, func in collectives(tree):
        (barrier if name in BARRIERS else check if func in CHECK_FUNCS else training).add(line)
    bookkeeping = (code - _import_lines(tree)) if plan_module else \
        sharding_lines(tree, aliases, PLAN)
    for lines, parts in _statements(tree):
        if set().union(*(_words(p, aliases) for p in parts)) & DIST_NAMES:
            framework |= lines
    bookkeeping -= training | barrier | check
    framework -= training | barrier | check
    sets = (code, training, barrier, check, bookkeeping, framework)
    return ParallelCost(*(tuple(sorted(s & code)) for s in sets))


def _import_lines(tree: ast.Module) -> set[int]:
    return {n for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
            for n in _lines(node)}


def launch_lines(source: str) -> dict[str, set[int]]:
    """engines.py's lines of each engine, by the `launch` rule (code or not)."""
    out = {name: set() for _, name, _ in ENGINES}
    for func in ast.parse(source).body:
        if not isinstance(func, ast.FunctionDef):
            continue
        for _, name, pattern in ENGINES:
            if re.search(pattern, func.name):
                out[name] |= _lines(func)
        seen = set()
        for stmt in func.body:
            m = isinstance(stmt, ast.If) and re.fullmatch(r"name == '(\w+)'", ast.unparse(stmt.test))
            if m and m[1] in out and isinstance(stmt.body[-1], ast.Return) and not stmt.orelse:
                seen.add(m[1])
                out[m[1]] |= _lines(stmt)
            elif seen and len(out) - len(seen) == 1:  # after them: the one engine they leave
                out[next(e for e in out if e not in seen)] |= _lines(stmt)
    return out


def measure(root: Path = ROOT) -> tuple[dict, dict, dict]:
    """({engine file: ParallelCost}, {engine file: its code lines in engines.py},
    {shared file: ParallelCost; engines.py's without the engines' lines})."""
    read = {rel: (Path(root) / rel).read_text(encoding="utf-8")
            for rel in (*(e[0] for e in ENGINES), *SHARED)}
    eng_src = read[PAR + "engines.py"]
    eng_code, by_engine = code_lines(eng_src), launch_lines(eng_src)
    launch = {rel: by_engine[name] & eng_code for rel, name, _ in ENGINES}
    engines = {rel: parallel_cost(read[rel]) for rel, _, _ in ENGINES}
    shared = {rel: parallel_cost(read[rel], rel == PAR + "plan.py") for rel in SHARED}
    rest = eng_code - set().union(*launch.values())
    shared[PAR + "engines.py"] = shared[PAR + "engines.py"].restrict(rest)
    return engines, launch, shared


def parallel_table(root: Path = ROOT) -> str:
    """The data-parallel cost table (markdown), a one-line sum, and where each count is."""
    engines, launch, shared = measure(root)
    rows = ["| file | runs as | code lines | collectives by hand: in training / barrier / drift"
            " check | shard and reduction bookkeeping lines | framework distribution-API lines |"
            " its code in engines.py |", "|" + " --- |" * 7]
    listing = []

    def add(label, used_by, c, extra=""):
        rows.append(f"| {label} | {used_by} | {len(c.code)} | {len(c.training)} / {len(c.barrier)}"
                    f" / {len(c.check)} | {len(c.bookkeeping)} | {len(c.framework)} | {extra} |")

    def where(rel, c):
        tree = ast.parse((Path(root) / rel).read_text(encoding="utf-8"))
        calls = [f"{line} {name}" + (f" in {func}()" if func else "")
                 for line, name, func in collectives(tree) if line in c.code]
        return (f"- `{rel}`: collectives {', '.join(calls) or 'none'}; bookkeeping"
                f" {spans(c.bookkeeping)}; framework API {spans(c.framework)}")

    for rel, used_by, _ in ENGINES:
        add(f"`{rel}`", used_by, engines[rel], str(len(launch[rel])))
        listing.append(where(rel, engines[rel]) + f"; engines.py {spans(sorted(launch[rel]))}.")
    for rel in SHARED:
        add(f"`{rel}`", "shared by all engines", shared[rel])
        listing.append(where(rel, shared[rel]) + ".")
    total = ParallelCost(*(tuple(x for c in shared.values() for x in getattr(c, f.name))
                           for f in fields(ParallelCost)))
    add("**shared, total**", "all engines", total)
    own = ", ".join(f"{u} {len(engines[rel].code) + len(launch[rel])}" for rel, u, _ in ENGINES)
    return ("\n".join(rows) + f"\n\nCode lines of each engine's own (its file and its code in"
            f" engines.py): {own}; shared by all three: {len(total.code)}.\n\n"
            "Which lines (so you can check the counts):\n\n" + "\n".join(listing))
