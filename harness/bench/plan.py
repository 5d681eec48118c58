"""A benchmark's plan: the cells and time-to-accuracy runs of a profile, restricted by the
command line. Stored typed in meta.json (`plan`), so `--resume` runs exactly what is missing.

    from harness.bench.plan import plan
    p = plan(profiles.get("quick"), runnable(), impls=["numpy"], sizes=["tiny"])
    [str(c) for c in p.cells]       # ['numpy/default cpu float32 tiny']
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.bench.profiles import Entry, Profile
from harness.measure.spec import Cell, TtaGoal
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
         devices=None, dtypes=None, sizes=None) -> Plan:
    """The cells and time-to-accuracy runs of `profile`, restricted by the command line.

    `known` maps every runnable implementation name to its modes (the registry plus
    the peer row). Restrictions select from the profile; an implementation or mode
    the profile does not list is added when asked for by name (e.g. `--mode
    reduce-overhead` on the default profile). An explicit `--size` overrides the
    profile's per-entry size subsets. Cells are ordered by size first (smallest first,
    or largest first where the profile says so), so all frameworks at one size run back
    to back and their ratio is measured close in time.
    Raises ContractError (one line, exit 2 on the command line) for an unknown name
    or an empty selection.
    """
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
