"""Typed recipe files: a YAML mapping read straight into a (nested) dataclass.

Every value is checked against, and coerced to, the type its field declares: PyYAML reads `1e-4` as the string
"1e-4" (YAML 1.1 wants `1.0e-4`), so a float field takes a number or a string that parses as one; an int field
takes an int (or an integral float such as 1.0e3); a list becomes the tuple a frozen config holds; a nested
mapping becomes the dataclass (or dict) its field names. Unknown keys are refused by name, as are the renamed
fields config.RENAMED_FIELDS lists.

Base layer: imports only prefcap.errors and prefcap.config. (Beside config.py rather than in it while that
module is being rewritten on another branch; the two can merge later.)
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from prefcap.config import RENAMED_FIELDS
from prefcap.errors import PrefcapError

T = TypeVar("T")


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, with a one-line error for a missing file or bad YAML."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise PrefcapError(f"recipe {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise PrefcapError(f"recipe {path}: not valid YAML ({error})") from None


def load_recipe(path: str | Path, kind: type[T]) -> T:
    """The YAML file at `path` as a `kind` (a dataclass): every field typed, unknown keys refused."""
    return from_mapping(kind, read_yaml(path), str(path))


def from_mapping(kind: type[T], value: Any, where: str) -> T:
    """`value` (a mapping of field names) as the dataclass `kind`; `where` names it in errors."""
    if not isinstance(value, dict):
        raise PrefcapError(f"{where}: expected a mapping of {kind.__name__} fields, got {value!r}")
    hints = typing.get_type_hints(kind)
    names = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    for key in value:
        if key in RENAMED_FIELDS and key not in names and RENAMED_FIELDS[key] in names:
            raise PrefcapError(f"{where}: field {key!r} is now {RENAMED_FIELDS[key]!r}")
    unknown = sorted(str(key) for key in value if key not in names)
    if unknown:
        raise PrefcapError(f"{where}: unknown {kind.__name__} field(s) {', '.join(unknown)}; "
                           f"fields are: {', '.join(sorted(names))}")
    return kind(**{key: _typed(item, hints[key], f"{where}: {key}") for key, item in value.items()})


def _typed(value: Any, kind: Any, where: str) -> Any:
    """`value` as the declared type `kind` (see the module docstring), or a PrefcapError naming `where`."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        errors = []
        for option in options:
            try:
                return _typed(value, option, where)
            except PrefcapError as error:
                errors.append(str(error))
        raise PrefcapError(errors[0])
    if kind is Any:
        return value
    if origin is typing.Literal:
        if value not in typing.get_args(kind):
            raise PrefcapError(f"{where}: expected one of {', '.join(map(repr, typing.get_args(kind)))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(kind):
        return from_mapping(kind, value, where)  # type: ignore[arg-type]
    if origin is tuple or kind is tuple:
        if not isinstance(value, list | tuple):
            raise PrefcapError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
            return tuple(_typed(item, args[0], where) for item in value)
        if args and len(args) != len(value):
            raise PrefcapError(f"{where}: expected {len(args)} items, got {value!r}")
        return tuple(_typed(item, k, where) for item, k in zip(value, args, strict=True)) if args else tuple(value)
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise PrefcapError(f"{where}: expected a mapping, got {value!r}")
        key_kind, item_kind = typing.get_args(kind) or (Any, Any)
        return {_typed(k, key_kind, where): _typed(v, item_kind, f"{where}.{k}") for k, v in value.items()}
    return _scalar(value, kind, where)


def _scalar(value: Any, kind: Any, where: str) -> Any:
    name = getattr(kind, "__name__", str(kind))
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if number.is_integer():
                return int(number)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif isinstance(kind, type):
        if isinstance(value, kind):
            return value
    else:
        return value
    raise PrefcapError(f"{where}: expected a value of type {name}, got {value!r}")
