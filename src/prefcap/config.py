"""Dataclass configs: typed YAML files (the demo's sizes, `--config` recipes such as configs/clotho.yaml) and
`key=value` overrides from the command line (torchtune-style: explicit fields), and their help for `--help`."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from prefcap.errors import PrefcapError

ConfigT = TypeVar("ConfigT")


def _convert(text: str, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        kind = options[0]
    if typing.get_origin(kind) is typing.Literal:
        choices = [str(choice) for choice in typing.get_args(kind)]
        if text not in choices:
            raise PrefcapError(f"override {key}={text!r}: expected one of {', '.join(choices)}")
        return text
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if kind in (int, float, str):
            return kind(text)
        return _structured(json.loads(text), kind, key)
    except (ValueError, json.JSONDecodeError):
        expected = getattr(kind, "__name__", kind)
        raise PrefcapError(f"override {key}={text!r}: expected a value of type {expected}") from None


def _structured(value: Any, kind: Any, key: str) -> Any:
    """A parsed JSON value in the field's declared shape: a list becomes the tuple the frozen config holds, and
    an object inside it the dataclass the field names (`decodings=[{"mode": "beam"}]` -> (Decoding(...),)), so
    a bad entry is refused here, by name, rather than failing deep inside a run."""
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise PrefcapError(f"override {key}: expected an object with fields of {kind.__name__}, got {value!r}")
        hints = typing.get_type_hints(kind)
        unknown = sorted(set(value) - set(hints))
        if unknown:
            raise PrefcapError(f"override {key}: unknown {kind.__name__} field(s) {', '.join(unknown)}; "
                               f"fields are: {', '.join(sorted(hints))}")
        return kind(**{name: _structured(item, hints[name], key) for name, item in value.items()})
    if typing.get_origin(kind) is tuple:
        if not isinstance(value, list):
            raise PrefcapError(f"override {key}: expected a list, got {value!r}")
        item_kind = typing.get_args(kind)[0]
        return tuple(_structured(item, item_kind, key) for item in value)
    allowed = {float: (int, float), int: (int,), str: (str,), bool: (bool,)}.get(kind)
    if allowed and (not isinstance(value, allowed) or (kind is not bool and isinstance(value, bool))):
        raise PrefcapError(f"override {key}: expected a value of type {kind.__name__}, got {value!r}")
    return value


# Fields renamed because the old name meant something else elsewhere: the old name is refused, naming the new one.
RENAMED_FIELDS = {
    # transformers' generate and TRL use repetition_penalty for a logit factor; here it is a reward subtraction
    "repetition_penalty": "repetition_coef",
}


def refuse_renamed(key: str, names: set[str], where: str) -> None:
    """A renamed field's old name, used where the new one exists, is an error naming the new one."""
    new = RENAMED_FIELDS.get(key)
    if new and key not in names and new in names:
        raise PrefcapError(f"{where}config field {key!r} is now {new!r} (the same meaning, a name that does not clash "
                           f"with transformers' and TRL's {key}): use {new}")


def apply_overrides(config: ConfigT, overrides: list[str]) -> ConfigT:
    """Return a copy of `config` with each `key=value` applied; unknown keys are an error, not a typo ignored."""
    hints = typing.get_type_hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise PrefcapError(f"expected key=value, got {item!r}")
        refuse_renamed(key, names, "")
        if key not in names:
            raise PrefcapError(f"unknown config field {key!r}; fields are: {', '.join(sorted(names))}")
        changes[key] = _convert(value, hints[key], key)
    return dataclasses.replace(config, **changes)


# The sections a recipe file (configs/*.yaml) may hold: one per command that takes a dataclass config.
CONFIG_SECTIONS = ("sft", "reward", "rl", "dpo")


def config_from_file(config: ConfigT, path: str | Path, section: str) -> ConfigT:
    """`config` with the fields one section of a YAML recipe file sets, typed like any recipe (`load_recipe`); the
    command line's `key=value` items are applied after it, so they win."""
    recipe = read_yaml(path)
    if recipe is None:
        return config
    if not isinstance(recipe, dict):
        raise PrefcapError(f"config file {path}: expected a mapping of sections {', '.join(CONFIG_SECTIONS)}")
    unknown = sorted(set(map(str, recipe)) - set(CONFIG_SECTIONS))
    if unknown:
        raise PrefcapError(f"config file {path}: unknown section(s) {', '.join(unknown)}; "
                           f"sections are: {', '.join(CONFIG_SECTIONS)}")
    fields = recipe.get(section) or {}
    if not isinstance(fields, dict):
        raise PrefcapError(f"config file {path}: section {section!r} must map config fields to values")
    return dataclasses.replace(config, **typed_fields(type(config), fields, f"config file {path}, {section}"))


# ---- typed YAML files: a mapping read straight into a (nested) dataclass ----------------------------------------
# Every value is checked against, and coerced to, the type its field declares: PyYAML reads `1e-4` as the string
# "1e-4" (YAML 1.1 wants `1.0e-4`), so a float field takes a number or a string that parses as one; an int field
# takes an int (or an integral float such as 1.0e3); a list becomes the tuple a frozen config holds; a nested
# mapping becomes the dataclass (or dict) its field names. Unknown keys are refused by name, as are RENAMED_FIELDS.


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, with a one-line error for a missing file or bad YAML."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise PrefcapError(f"config file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise PrefcapError(f"config file {path}: not valid YAML ({error})") from None


def load_recipe(path: str | Path, kind: type[ConfigT]) -> ConfigT:
    """The YAML file at `path` as a `kind` (a dataclass): every field typed, unknown keys refused."""
    return from_mapping(kind, read_yaml(path), str(path))


def from_mapping(kind: type[ConfigT], value: Any, where: str) -> ConfigT:
    """`value` (a mapping of field names) as the dataclass `kind`; `where` names it in errors."""
    return kind(**typed_fields(kind, value, where))


def typed_fields(kind: type, value: Any, where: str) -> dict[str, Any]:
    """`value` (a mapping of field names of the dataclass `kind`) with every value typed as its field declares."""
    if not isinstance(value, dict):
        raise PrefcapError(f"{where}: expected a mapping of {kind.__name__} fields, got {value!r}")
    hints = typing.get_type_hints(kind)
    names = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    for key in value:
        refuse_renamed(key, names, f"{where}: ")
    unknown = sorted(str(key) for key in value if key not in names)
    if unknown:
        raise PrefcapError(f"{where}: unknown {kind.__name__} field(s) {', '.join(unknown)}; "
                           f"fields are: {', '.join(sorted(names))}")
    return {key: _typed(item, hints[key], f"{where}: {key}") for key, item in value.items()}


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


def format_default(value: Any) -> str:
    """A field's default as it would be written in `key=value`: a string bare, a tuple or dataclass as JSON."""
    if value is dataclasses.MISSING:
        return "required"
    if value is None or isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(_jsonable(value))


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def field_help(field: dataclasses.Field) -> str:
    """A config field's one-line help (its `metadata={"help": ...}`); empty when it has none."""
    return str(field.metadata.get("help", ""))


def describe_fields(config_class: type, heading: str | None = None) -> str:
    """Every field of a dataclass config, one entry each: `name (type, default DEFAULT)` and its help on the next
    line, for a command's `--help` epilog (with argparse.RawDescriptionHelpFormatter)."""
    lines = [heading or f"{config_class.__name__} fields (key=value):"]
    for field in dataclasses.fields(config_class):
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
        lines.append(f"  {field.name} ({kind}, default {format_default(field.default)})")
        if field_help(field):
            lines.append(f"      {field_help(field)}")
    return "\n".join(lines)
