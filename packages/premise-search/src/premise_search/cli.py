"""The `premise-search` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from repro_core.cli import make_parser, run_main
from repro_core.umbrella import add_reproduce_command, reproduce_package

from premise_search.__about__ import __version__
from premise_search.reproduction import quick

__all__ = ["build_parser", "main"]

DESCRIPTION = """LeanSearch v2: premise retrieval for Lean 4 in standard and reasoning modes (arXiv 2605.13137).

Package skeleton: the implementation lands with issue #7."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("premise-search", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_reproduce_command(commands)
    return parser


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("premise-search", quick, args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
