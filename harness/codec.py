"""The one to_dict / from_dict pair: frozen dataclasses to JSON-ready dicts and back, typed;
and to_row / from_row: a flat record to a CSV row of text and back.

    from harness.codec import from_dict, to_dict, from_row, to_row
    settings = from_dict(RunSettings, json.loads(text))   # nested dataclasses rebuilt
    text = json.dumps(to_dict(settings))
    row = from_row(CellRow, {"impl": "numpy", "rounds": "10", ...})  # "10" -> 10, "" -> None

What crosses a process or a file (a job's spec to a benchmark cell, a run's
settings and plan in meta.json) is a frozen dataclass on both sides; this is
the only place that turns one into the other. Field types come from the
annotations: nested dataclasses, `X | None`, `tuple[X, ...]` and scalars.
Unknown keys are an error (a misspelt setting must not be silently dropped);
missing keys take the field's default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
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


def to_row(obj) -> dict[str, str]:
    """A flat dataclass as one CSV row of text: floats by repr (no digit lost), NaN and None
    as "", bools as True/False."""
    return {f.name: as_text(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def as_text(value) -> str:
    """A value as the text a CSV cell holds (what to_row writes)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return "" if math.isnan(value) else repr(float(value))
    if type(value).__name__.startswith(("int", "uint")):
        return str(int(value))
    return "" if value is None else str(value)


def from_row(cls: type[T], row: Mapping[str, str], where: str = "") -> T:
    """Rebuild flat dataclass `cls` from a CSV row of text: each column parsed as its field's
    type ("" is None where a field may be None); missing columns take the field's default (or
    None). ValueError naming the column, and `where` (a file and line), for a bad value."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        text = row.get(f.name)
        if text is None:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                values[f.name] = None
            continue
        try:
            values[f.name] = _parse(hints[f.name], text)
        except ValueError:
            raise ValueError(f"{where + ': ' if where else ''}{f.name} {text!r} is not "
                             f"{_describe(hints[f.name])}") from None
    return cls(**values)


def _parse(kind, text: str):
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    optional = origin in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        if text == "":
            return None
        kind = next(a for a in args if a is not type(None))
    if kind is bool:
        if text not in ("True", "False"):
            raise ValueError(text)
        return text == "True"
    if kind is int:
        return int(text)
    if kind is float:
        value = float(text)
        if math.isinf(value):
            raise ValueError(text)
        return value
    return text


def _describe(kind) -> str:
    args = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
    return {bool: "True or False", int: "an integer", float: "a finite number"}.get(
        args[0], "text")
