"""The `mult-probe` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from repro_core.cli import make_parser, run_main
from repro_core.umbrella import add_reproduce_command, reproduce_package

from mult_probe.__about__ import __version__
from mult_probe.reproduction import quick

__all__ = ["build_parser", "main"]

DESCRIPTION = """Why transformers fail at multi-digit multiplication: implicit chain of thought (ICoT), a running-sum auxiliary loss and linear probes (arXiv 2510.00184).

Package skeleton: the implementation lands with issue #4."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("mult-probe", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_reproduce_command(commands)
    return parser


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("mult-probe", quick, args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
