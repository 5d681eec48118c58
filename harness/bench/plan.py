"""A benchmark's plan: the cells and time-to-accuracy runs of a profile, restricted by the
command line. Stored typed in meta.json (`plan`), so `--resume` runs exactly what is missing.

    from harness.bench.plan import plan
    p = plan(profiles.get("quick"), runnable(), impls=["numpy"], sizes=["tiny"])
    [str(c) for c in p.cells]       # ['numpy/default cpu float32 tiny']

One plan for every kind of run: a scaling profile's cells are its configurations (an engine at
W workers, `Cell.workers` and `Cell.launch` set), the GPU ones (W = 1, 2, 4, ... up to the GPUs
nvidia-smi lists) through the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataparallel.engines import launch_label
from harness.bench.profile import Entry, Profile
from harness.errors import UsageError
from harness.measure.spec import Cell, Series, TtaGoal
from harness.store import TtaKey
from impls.contract import DEVICES, DTYPES, ContractError


@dataclass(frozen=True)
class Plan:
    cells: tuple[Cell, ...]  # in the order they run
    tta: tuple[TtaGoal, ...]

    def devices(self) -> set[str]:
        return {c.device for c in self.cells} | {g.device for g in self.tta}


def _check(kind: str, given, allowed) -> None:
    bad = [g for g in given if g not in allowed]
    if bad:
        raise ContractError(f"unknown {kind} {bad[0]!r}; expected one of {', '.join(allowed)}")


def plan(profile: Profile, known: dict[str, tuple[str, ...]], impls=None, modes=None,
         devices=None, dtypes=None, sizes=None, gpu_count: int = 0) -> Plan:
    """The cells and time-to-accuracy runs of `profile`, restricted by the command line.

    `known` maps every runnable implementation name to its modes (the registry plus
    the peer row). Restrictions select from the profile; an implementation or mode
    the profile does not list is added when asked for by name (e.g. `--mode
    reduce-overhead` on the default profile). An explicit `--size` overrides the
    profile's per-entry size subsets. Cells are ordered by size first, in the order the
    profile lists its sizes (reversed where it says largest_first; the gpu profile lists
    tiny first, then huge, large, medium), so all frameworks at one size run back to back
    and their ratio is measured close in time.
    Raises ContractError (one line, exit 2 on the command line) for an unknown name
    or an empty selection.
    """
    if profile.kind == "scaling":
        return Plan(scaling_cells(profile, impls, sizes, devices, gpu_count), ())
    size_names = tuple(z.name for z in profile.sizes)
    _check("implementation", impls or (), tuple(known))
    _check("device", devices or (), DEVICES)
    _check("dtype", dtypes or (), DTYPES)
    _check("size", sizes or (), size_names)

    names = list(impls) if impls else list(dict.fromkeys(e.impl for e in profile.entries))
    if modes:
        _check("mode", modes, tuple(sorted({m for n in names if n in known for m in known[n]})))

    def select(entries: tuple[Entry, ...], add: bool) -> list[Entry]:
        chosen = [e for e in entries if e.impl in names and e.impl in known
                  and (not modes or e.mode in modes)]
        for name in names if add else ():  # asked for by name but not in the profile
            listed = {e.mode for e in entries if e.impl == name}
            wanted = modes if modes else (() if listed else known[name])
            chosen += [Entry(name, m) for m in wanted if m in known[name] and m not in listed]
        return chosen

    entries = select(profile.entries, add=True)

    def cells_of(e: Entry):
        devs = [d for d in (e.devices or devices or profile.devices)
                if not devices or d in devices]
        return [(d, t) for d in devs for t in (dtypes or profile.dtypes)]

    cells = tuple(Cell(e.impl, e.mode, d, t, z)
                  for z in (profile.sizes[::-1] if profile.largest_first else profile.sizes)
                  if not sizes or z.name in sizes
                  for e in entries if sizes or e.sizes is None or z.name in e.sizes
                  for d, t in cells_of(e))
    if not cells:
        raise ContractError(f"no cells match these options in profile {profile.name!r}")
    tta = tuple(TtaGoal(e.impl, e.mode, d, t, goal)
                for goal in profile.tta for e in select(profile.tta_entries, add=False)
                for d, t in cells_of(e))
    return Plan(cells, tta)


def scaling_cells(profile: Profile, impls, sizes, devices, gpu_count: int) -> tuple[Cell, ...]:
    """A scaling profile's configurations: each entry at each W on each device and size. GPUs
    only where some are listed (or asked for: then every row says why it cannot run); W on a
    GPU is 1, 2, 4, ... up to their count. One W = 1 configuration per engine (jax's two
    launches share their one-process baseline)."""
    for flag, given, allowed in (("--impl", impls, {e.impl for e in profile.entries}),
                                 ("--size", sizes, set(profile.all_sizes())),
                                 ("--device", devices, set(profile.devices))):
        if bad := sorted(set(given or ()) - allowed):
            raise UsageError(f"{flag} {bad[0]!r} is not in the {profile.name} profile; "
                             f"expected one of {', '.join(sorted(allowed))}")
    cells = {}
    for device in devices or profile.devices:
        if device == "gpu" and gpu_count == 0 and not devices:
            continue  # no GPU here: the CPU part only (meta.json records that none was seen)
        counts = profile.workers if device == "cpu" else \
            tuple(2 ** i for i in range(gpu_count.bit_length())) or (1,)
        for size in profile.sizes_on(device):
            if sizes and size.name not in sizes:
                continue
            for e in profile.entries:
                if impls and e.impl not in impls:
                    continue
                for w in counts:
                    for dtype in profile.dtypes:
                        cell = Cell(e.impl, e.mode, device, dtype, size,
                                    launch_label(e.impl, w, e.launch), w)
                        cells.setdefault(cell, None)
    if not cells:
        raise UsageError(f"the {profile.name} profile has nothing to run with these options")
    return tuple(cells)


def by_size(cells: list[Cell]) -> list[list[Cell]]:
    groups: dict[str, list[Cell]] = {}
    for cell in cells:  # the plan's order: the profile's order of sizes
        groups.setdefault(cell.size.name, []).append(cell)
    return list(groups.values())


def size_seed(group: list[Cell]) -> int:
    """A fixed seed per size: the round orders are reproducible, and recorded anyway."""
    return sum(ord(ch) for ch in group[0].size.name)


def tta_key(goal: TtaGoal) -> TtaKey:
    return TtaKey(goal.impl, goal.mode, goal.device, goal.dtype, goal.tta.dataset)


def series_of(cells, goals) -> set[Series]:
    return {c.series for c in cells} | {g.series for g in goals}
