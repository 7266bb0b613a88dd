"""What every command's parser and handler shares: the one-line-error parser, argument types, `--db`,
`--config` and the `key=value` config fields (listed, with their help, in the command's `--help`)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

from prefcap.config import ConfigT, apply_overrides, config_from_file, describe_fields
from prefcap.errors import PrefcapError


class Parser(argparse.ArgumentParser):
    """Errors are one line, not usage + message; a command with a config lists its fields in `--help`."""

    config_class: str | None = None  # "module:Class", imported only when the help is shown

    def error(self, message: str) -> None:
        raise PrefcapError(f"{message} (see '{self.prog} --help')")

    def format_help(self) -> str:
        if self.config_class:
            module, _, name = self.config_class.partition(":")
            self.epilog = describe_fields(getattr(importlib.import_module(module), name),
                                          f"config fields ({name}; key=value items set them):")
            self.formatter_class = argparse.RawDescriptionHelpFormatter
        return super().format_help()


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], refused by argparse (one line, exit 2) otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high if high is not None else '...'}],"
                                             f" got {value}")
        return value

    return parse


SEED, COUNT, PORT = int_in(0, 2**32 - 1), int_in(1), int_in(1, 65535)


def add_config_fields(command: argparse.ArgumentParser, config_class: str, section: str | None = None,
                      what: str = "config fields (listed below)") -> None:
    """The trailing `key=value` items of `config_class` ("module:Class"), their list in `--help`, and with a
    `section`, `--config FILE` (that section of a YAML recipe)."""
    command.config_class = config_class
    command.add_argument("overrides", nargs="*", metavar="key=value", help=what)
    if section:
        command.add_argument("--config", type=Path, help=f"YAML recipe (configs/*.yaml): its '{section}' section "
                             "sets config fields; key=value items still win")


def configured(config: ConfigT, args: argparse.Namespace, section: str) -> ConfigT:
    """`config` with the `--config` file's section for this command, then the command line's `key=value` items."""
    if args.config:
        config = config_from_file(config, args.config, section)
    return apply_overrides(config, args.overrides)


def with_db(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("--db", required=True, help="judgment store: a run folder, .sqlite file or SQLAlchemy URL")
    return command


def open_store(args: argparse.Namespace, create: bool = False):
    from prefcap.prefs.store import Store

    return Store.at(args.db, create=create)


def need_file(path: Path, what: str) -> None:
    """Refuse a missing path, or a folder where a file goes, before anything slow starts."""
    if not path.exists():
        raise PrefcapError(f"{path}: no such {what}")
    if not path.is_file():
        raise PrefcapError(f"{path}: a folder, not a {what}")


def need_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise PrefcapError(f"{path}: no such {what}")
    if not path.is_dir():
        raise PrefcapError(f"{path}: a file, not a {what}")
