"""Dataclass configs: typed YAML files (the demo's sizes, `--config` recipes such as configs/clotho.yaml) and
`key=value` overrides from the command line (torchtune-style: explicit fields), and their help for `--help`.

Both routes type a value the same way (`_typed`): it is checked against, and coerced to, the type its field
declares. PyYAML reads `1e-4` as the string "1e-4" (YAML 1.1 wants `1.0e-4`) and the command line gives strings
only, so a float field takes a number or a string that parses as one; an int field an int, an integral float
(1.0e3) or a string of one; a bool field true/false (or yes/no, 1/0 as text); a list becomes the tuple a frozen
config holds; a mapping becomes the dataclass (or dict) its field names. A nested config's fields are set with
dotted keys (`reward_terms.clap_coef=3`) or a nested mapping, merged into its current values. Unknown keys are
refused by name, as are RENAMED_FIELDS and fields that moved into a nested config (the error names the new key).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from prefcap.errors import PrefcapError

ConfigT = TypeVar("ConfigT")

# Fields renamed because the old name meant something else elsewhere: the old name is refused, naming the new one.
RENAMED_FIELDS = {
    # transformers' generate and TRL use repetition_penalty for a logit factor; here it is a reward subtraction
    "repetition_penalty": "repetition_coef",
}
# Fields that moved into a nested config are named by the config that held them: its class attribute
# `moved_into` lists the nested fields (RLConfig: ("reward_terms",)) whose fields were once its own, and the flat
# key is refused, naming the dotted one.

# The sections a recipe file (configs/*.yaml) may hold: one per command that takes a dataclass config.
CONFIG_SECTIONS = ("sft", "reward", "rl", "dpo")


# ---- keys ----------------------------------------------------------------------------------------------------------


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    """The declared type of every field of the dataclass `kind`."""
    names = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    return {name: hint for name, hint in typing.get_type_hints(kind).items() if name in names}


def _check_key(kind: type, key: str, where: str) -> None:
    """Refuse a key that is not a field of the dataclass `kind`: by its new key when it was renamed or moved
    into a nested config, else with the list of fields."""
    hints = _hints(kind)
    if key in hints:
        return
    new = RENAMED_FIELDS.get(key, key)
    moved = [f"{nested}.{new}" for nested in getattr(kind, "moved_into", ()) if new in _hints(hints[nested])]
    path = new if new != key and new in hints else next(iter(moved), None)
    if path:
        why = (f"the same meaning, a name that does not clash with transformers' and TRL's {key}"
               if key in RENAMED_FIELDS else f"a field of the nested {path.split('.')[0]}")
        how = (f"set it as {path}=VALUE on the command line, or under '{path.split('.')[0]}:' in a YAML file"
               if "." in path else f"use {path}")
        raise PrefcapError(f"{where}{kind.__name__} field {key!r} is now {path!r} ({why}): {how}")
    raise PrefcapError(f"{where}unknown {kind.__name__} field {key!r}; fields are: {', '.join(sorted(hints))}")


# ---- key=value overrides -------------------------------------------------------------------------------------------


def apply_overrides(config: ConfigT, overrides: list[str]) -> ConfigT:
    """Return a copy of `config` with each `key=value` (or `nested.key=value`) applied at once; unknown keys are an
    error, not a typo ignored."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise PrefcapError(f"expected key=value, got {item!r}")
        *parents, leaf = key.split(".")
        node, kind = tree, type(config)
        for part in parents:
            _check_key(kind, part, f"override {key}: ")
            kind = _hints(kind)[part]
            if not dataclasses.is_dataclass(kind):
                raise PrefcapError(f"override {key}: {part} is not a nested config")
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PrefcapError(f"override {key}: {part} is also given whole ({node!r}); give one or the other")
        _check_key(kind, leaf, f"override {key}: ")
        value = _from_text(text, _hints(kind)[leaf], key)
        nested = dataclasses.is_dataclass(_hints(kind)[leaf])
        if nested and isinstance(value, dict) and isinstance(node.get(leaf), dict):
            node[leaf].update(value)  # reward_terms.min_words=5 'reward_terms={"clap_coef": 1}': both hold
        else:
            node[leaf] = value
    return merged(config, tree, "override")


def _from_text(text: str, kind: Any, key: str) -> Any:
    """A command-line value as `_typed` takes it: None for none/null where the field allows it, JSON for a
    structured field (a list, a mapping, a dataclass), the text itself otherwise."""
    union = typing.get_origin(kind) in (typing.Union, types.UnionType)
    options = [k for k in typing.get_args(kind) if k is not type(None)] if union else [kind]
    if union and type(None) in typing.get_args(kind) and text.lower() in ("none", "null"):
        return None
    if any(typing.get_origin(k) in (tuple, dict) or k in (tuple, dict) or dataclasses.is_dataclass(k)
           for k in options):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise PrefcapError(f"override {key}: expected JSON ({error.msg}), got {text!r}") from None
    return text


# ---- YAML recipe files ---------------------------------------------------------------------------------------------


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, with a one-line error for a missing file or bad YAML."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise PrefcapError(f"config file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise PrefcapError(f"config file {path}: not valid YAML ({error})") from None


def config_from_file(config: ConfigT, path: str | Path, section: str) -> ConfigT:
    """`config` with the fields one section of a YAML recipe file sets; the command line's `key=value` items are
    applied after it, so they win."""
    recipe = read_yaml(path)
    if recipe is None:
        return config
    if not isinstance(recipe, dict):
        raise PrefcapError(f"config file {path}: expected a mapping of sections {', '.join(CONFIG_SECTIONS)}")
    unknown = sorted(set(map(str, recipe)) - set(CONFIG_SECTIONS))
    if unknown:
        raise PrefcapError(f"config file {path}: unknown section(s) {', '.join(unknown)}; "
                           f"sections are: {', '.join(CONFIG_SECTIONS)}")
    return merged(config, recipe.get(section) or {}, f"config file {path}, {section}")


def load_recipe(path: str | Path, kind: type[ConfigT]) -> ConfigT:
    """The YAML file at `path` as a `kind` (a dataclass): every field typed, unknown keys refused."""
    return from_mapping(kind, read_yaml(path), str(path))


# ---- typing values: `source` names where a value came from (a file, "override"), `key` its dotted key ----------


def merged(config: ConfigT, value: Any, source: str, key: str = "") -> ConfigT:
    """`config` with the fields of the mapping `value` set, each typed as declared; a nested config given a
    mapping keeps the fields that the mapping leaves out."""
    kind = type(config)
    changes = {}
    for name, item in _checked_mapping(kind, value, source, key).items():
        current = getattr(config, name)
        if dataclasses.is_dataclass(current) and (isinstance(item, dict) or item is None):
            # a YAML section whose lines are all commented out reads as null: it changes nothing
            changes[name] = merged(current, item or {}, source, f"{key}{name}.")
        else:
            changes[name] = _typed(item, _hints(kind)[name], source, f"{key}{name}")
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]


def from_mapping(kind: type[ConfigT], value: Any, source: str, key: str = "") -> ConfigT:
    """`value` (a mapping of field names) as a new dataclass `kind`, its missing fields at their defaults."""
    hints = _hints(kind)
    fields = {name: _typed(item, hints[name], source, f"{key}{name}")
              for name, item in _checked_mapping(kind, value, source, key).items()}
    try:
        return kind(**fields)
    except TypeError as error:  # a required field left out (here or in a nested config's defaults)
        raise PrefcapError(f"{_at(source, key)}: {error}") from None


def _at(source: str, key: str) -> str:
    """Where a value is, for an error message: `config file x.yaml, rl: reward_terms.clap_coef`."""
    key = key.rstrip(".")
    return f"{source}: {key}" if key else source


def _checked_mapping(kind: type, value: Any, source: str, key: str) -> dict:
    if not isinstance(value, dict):
        raise PrefcapError(f"{_at(source, key)}: expected a mapping of {kind.__name__} fields, got {value!r}")
    for name in value:
        _check_key(kind, name, f"{_at(source, key)}: ")
    return value


def _typed(value: Any, kind: Any, source: str, key: str) -> Any:
    """`value` as the declared type `kind` (see the module docstring), or a PrefcapError naming where it is."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        errors = []
        for option in (k for k in typing.get_args(kind) if k is not type(None)):
            try:
                return _typed(value, option, source, key)
            except PrefcapError as error:
                errors.append(str(error))
        raise PrefcapError(errors[0])
    if kind is Any:
        return value
    if origin is typing.Literal:
        if value not in typing.get_args(kind):
            raise PrefcapError(f"{_at(source, key)}: expected one of {', '.join(map(str, typing.get_args(kind)))}, "
                               f"got {value!r}")
        return value
    if dataclasses.is_dataclass(kind):  # null (all lines commented out): the defaults
        return from_mapping(kind, {} if value is None else value, source, f"{key}.")  # type: ignore[arg-type]
    if origin is tuple or kind is tuple:
        return _typed_tuple(value, kind, source, key)
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise PrefcapError(f"{_at(source, key)}: expected a mapping, got {value!r}")
        key_kind, item_kind = typing.get_args(kind) or (Any, Any)
        return {_typed(k, key_kind, source, key): _typed(v, item_kind, source, f"{key}.{k}") for k, v in value.items()}
    return _scalar(value, kind, _at(source, key))


def _typed_tuple(value: Any, kind: Any, source: str, key: str) -> tuple:
    if not isinstance(value, list | tuple):
        raise PrefcapError(f"{_at(source, key)}: expected a list, got {value!r}")
    args = typing.get_args(kind)
    if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
        return tuple(_typed(item, args[0], source, key) for item in value)
    if args and len(args) != len(value):
        raise PrefcapError(f"{_at(source, key)}: expected {len(args)} items, got {value!r}")
    return tuple(_typed(item, k, source, key) for item, k in zip(value, args, strict=True)) if args else tuple(value)


BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _scalar(value: Any, kind: Any, where: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in BOOL_WORDS:
            return BOOL_WORDS[value.lower()]
    elif kind is float:
        number = _number(value)
        if number is not None:
            return number
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)  # exact, however many digits (a seed)
        number = _number(value)
        if number is not None and number.is_integer():
            return int(number)
    elif isinstance(kind, type):
        if isinstance(value, kind):
            return value
    else:
        return value
    raise PrefcapError(f"{where}: expected a value of type {getattr(kind, '__name__', kind)}, got {value!r}")


def _number(value: Any) -> float | None:
    """A number, or a string that parses as one, as a float; None for anything else (booleans included)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return None


# ---- help ----------------------------------------------------------------------------------------------------------


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


def _field_default(field: dataclasses.Field) -> Any:
    """A field's default value (made by its default_factory where it has one); MISSING for a required field."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def describe_fields(config_class: type, heading: str | None = None) -> str:
    """Every field of a dataclass config, one entry each: `name (type, default DEFAULT)` and its help on the next
    line, for a command's `--help` epilog (with argparse.RawDescriptionHelpFormatter); a nested config's fields
    under dotted keys, after a line that says what the nested config is."""
    return "\n".join([heading or f"{config_class.__name__} fields (key=value):", *_field_lines(config_class, "")])


def _field_lines(config_class: type, prefix: str) -> list[str]:
    lines = []
    for field in dataclasses.fields(config_class):  # type: ignore[arg-type]
        kind = _hints(config_class)[field.name]
        if dataclasses.is_dataclass(kind):
            lines.append(f"  {prefix}{field.name}.* ({kind.__name__}): {field_help(field)}")
            lines += _field_lines(kind, f"{prefix}{field.name}.")  # type: ignore[arg-type]
            continue
        name = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
        lines.append(f"  {prefix}{field.name} ({name}, default {format_default(_field_default(field))})")
        if field_help(field):
            lines.append(f"      {field_help(field)}")
    return lines
