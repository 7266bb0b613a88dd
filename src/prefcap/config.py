"""Dataclass configs and `key=value` overrides from the command line (torchtune-style: explicit fields)."""

from __future__ import annotations

import dataclasses
import json
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


def apply_overrides(config: ConfigT, overrides: list[str]) -> ConfigT:
    """Return a copy of `config` with each `key=value` applied; unknown keys are an error, not a typo ignored."""
    hints = typing.get_type_hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise PrefcapError(f"expected key=value, got {item!r}")
        if key in RENAMED_FIELDS and key not in names and RENAMED_FIELDS[key] in names:
            raise PrefcapError(f"config field {key!r} is now {RENAMED_FIELDS[key]!r} (the same meaning, a name that "
                               f"does not clash with transformers' and TRL's {key}): use {RENAMED_FIELDS[key]}=...")
        if key not in names:
            raise PrefcapError(f"unknown config field {key!r}; fields are: {', '.join(sorted(names))}")
        changes[key] = _convert(value, hints[key], key)
    return dataclasses.replace(config, **changes)


# The sections a recipe file (configs/*.yaml) may hold: one per command that takes a dataclass config.
CONFIG_SECTIONS = ("sft", "reward", "rl", "dpo")


def file_overrides(path: str | Path, section: str) -> list[str]:
    """One section of a YAML recipe file as `key=value` items, so a file and the command line share one code path
    (and the command line, applied after it, wins)."""
    try:
        recipe = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise PrefcapError(f"config file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise PrefcapError(f"config file {path}: not valid YAML ({error})") from None
    if recipe is None:
        return []
    if not isinstance(recipe, dict):
        raise PrefcapError(f"config file {path}: expected a mapping of sections {', '.join(CONFIG_SECTIONS)}")
    unknown = sorted(set(map(str, recipe)) - set(CONFIG_SECTIONS))
    if unknown:
        raise PrefcapError(f"config file {path}: unknown section(s) {', '.join(unknown)}; "
                           f"sections are: {', '.join(CONFIG_SECTIONS)}")
    fields = recipe.get(section) or {}
    if not isinstance(fields, dict):
        raise PrefcapError(f"config file {path}: section {section!r} must map config fields to values")
    return [f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in fields.items()]


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
