"""The `ntk-permute` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from repro_core.cli import make_parser, run_main
from repro_core.umbrella import add_reproduce_command, reproduce_package

from ntk_permute.__about__ import __version__
from ntk_permute.reproduction import quick

__all__ = ["build_parser", "main"]

DESCRIPTION = """Exact learning of permutations by ensembles of two-layer ReLU networks in the NTK regime (arXiv 2502.16763).

Package skeleton: the implementation lands with issue #3."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("ntk-permute", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_reproduce_command(commands)
    return parser


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("ntk-permute", quick, args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
