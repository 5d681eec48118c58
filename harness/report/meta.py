"""meta.json as the report may read it: an object whose known entries have their known types.

    from harness.report.meta import clean
    meta, notes = clean(read_json(folder, META))   # {} and one line when it is not an object

A meta.json that is `[]`, or whose `peak` is a list, is one line of the report's notes and is
left out; every section then renders from what is left, as from a run that never wrote it, and
no section meets a list where it reads an object.
"""

from __future__ import annotations

# Top-level entries and the types a bench writes them with (harness/bench/command.py,
# harness/bench/scaling.py, harness/measure/machine.py); others are kept as they are.
TYPES = {"kind": str, "schema_version": int, "profile": dict, "options": dict,
         "settings": dict, "plan": (dict, list), "machine": dict, "thread_budget": dict,
         "peak": dict, "impl_info": dict, "runs": list, "launches": dict, "blas": list,
         "check_seconds": (int, float)}
MACHINE = {"cpus": dict, "versions": dict, "gpus": list, "git": dict, "utc": str, "host": str,
           "cpu_model": str, "python": str, "platform": str, "memory_bytes": (int, float)}
_NAMES = {dict: "an object", list: "a list", str: "text", int: "a number", float: "a number",
          bool: "true or false", type(None): "null"}


def _what(value) -> str:
    return _NAMES.get(type(value), type(value).__name__)


def _expected(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(_NAMES[k] for k in kinds))


def _ok(value, kind) -> bool:
    return isinstance(value, kind) and not (isinstance(value, bool) and bool not in (
        kind if isinstance(kind, tuple) else (kind,)))


def clean(meta) -> tuple[dict, list[str]]:
    """`meta` with every known entry of the wrong type left out, and one line per entry left
    out (one line for the whole file when it is not an object)."""
    if meta is None:
        return {}, []
    if not isinstance(meta, dict):
        return {}, [f"`meta.json` holds {_what(meta)}, not an object: the run's machine,"
                    " settings and plan are unknown, and the sections that need them say so."]
    out, notes = dict(meta), []
    for key, kind in TYPES.items():
        if key in out and out[key] is not None and not _ok(out[key], kind):
            notes.append(f"`meta.json`'s `{key}` is {_what(out.pop(key))}, not"
                         f" {_expected(kind)}: left out.")
    machine = out.get("machine")
    if isinstance(machine, dict):
        machine = dict(machine)
        for key, kind in MACHINE.items():
            if key in machine and machine[key] is not None and not _ok(machine[key], kind):
                notes.append(f"`meta.json`'s `machine.{key}` is {_what(machine.pop(key))},"
                             f" not {_expected(kind)}: left out.")
        out["machine"] = machine
    return out, notes
