"""The one to_dict / from_dict pair: frozen dataclasses to JSON-ready dicts and back, typed.

    from harness.codec import from_dict, to_dict
    settings = from_dict(RunSettings, json.loads(text))   # nested dataclasses rebuilt
    text = json.dumps(to_dict(settings))

What crosses a process or a file (a job's spec to a benchmark cell, a run's
settings and plan in meta.json) is a frozen dataclass on both sides; this is
the only place that turns one into the other. Field types come from the
annotations: nested dataclasses, `X | None`, `tuple[X, ...]` and scalars.
Unknown keys are an error (a misspelt setting must not be silently dropped);
missing keys take the field's default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(obj) -> dict:
    """A dataclass as plain dicts, lists and scalars (tuples become lists in JSON)."""
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: dict) -> T:
    """Rebuild `cls` (a dataclass) from `to_dict`'s output; ValueError naming a bad key."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    if unknown := sorted(set(data) - names):
        raise ValueError(f"{cls.__name__}: unknown field {unknown[0]!r}")
    return cls(**{k: _value(hints[k], v) for k, v in data.items()})


def _value(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):  # X | None
        kind = next(a for a in args if a is not type(None))
        return _value(kind, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v) for v in value)
        return tuple(_value(a, v) for a, v in zip(args, value, strict=True))
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # JSON writes 1.0 as 1 only if we let it; be lenient on reading
    return value
