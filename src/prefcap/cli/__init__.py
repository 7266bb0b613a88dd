"""The `prefcap` command. `--flags` name inputs and outputs; trailing `key=value` items override config fields
(each command's `--help` lists them with their type, default and meaning).

Any user-facing error ends the process with one line on stderr and exit status 2, never a traceback. The
commands' parsers and handlers live by group: data (data and captioners), prefs (preference collection), train
(reward model, RL, DPO) and evaluate (eval, report, demo); common holds what they share.
"""

from __future__ import annotations

import argparse
import sys

from prefcap import __version__
from prefcap.cli import data, evaluate, prefs, train
from prefcap.cli.common import Parser
from prefcap.cli.prefs import exposure_warning
from prefcap.errors import PrefcapError

__all__ = ["build_parser", "exposure_warning", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="prefcap", description="Align audio captioning with human preferences.")
    parser.add_argument("--version", action="version", version=f"prefcap {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (data, prefs, train, evaluate):
        group.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        # argparse binds `key=value` positionals only where they first appear; collect the later ones too
        args, extra = parser.parse_known_args(argv)
        unknown = [item for item in extra if item.startswith("-") or "=" not in item or not hasattr(args, "overrides")]
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        if extra:
            args.overrides = [*args.overrides, *extra]
        args.run(args)
    except PrefcapError as error:
        print(f"prefcap: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path that cannot be read or written (a folder where a file goes, a full disk, ...)
        where = error.filename2 or error.filename or ""  # os.replace(tmp, path): the path the user named is the 2nd
        print(f"prefcap: error: {error.strerror or error}: {where}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prefcap: interrupted", file=sys.stderr)
        return 130
    return 0
