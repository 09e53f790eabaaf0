"""The `bt2-compat` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from repro_core.cli import make_parser, run_main
from repro_core.umbrella import add_reproduce_command, reproduce_package

from bt2_compat.__about__ import __version__
from bt2_compat.reproduction import quick

__all__ = ["build_parser", "main"]

DESCRIPTION = """BT^2: backward-compatible embedding training with an orthonormal basis transformation (arXiv 2211.03989).

Package skeleton: the implementation lands with issue #6."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("bt2-compat", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_reproduce_command(commands)
    return parser


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("bt2-compat", quick, args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
