"""The `ponder` command: one subcommand per module of this package, each with its parser and handler."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ponder.errors import PonderError
from ponder.version import __version__

# Each module has `add_parser(subparsers)`; its parser sets `handler`. Imported one by one, so a
# missing optional extra (fastapi for serve) leaves the other commands working.
SUBCOMMAND_MODULES = (
    "generate",
    "serve",
    "chat",
    "batch",
    "bench",
    "eval",
    "train",
    "flywheel",
    "profile",
    "sim",
    "planner",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ponder", description="A reasoning-first LLM inference engine.")
    parser.add_argument("--version", action="version", version=f"ponder {__version__}")
    parser.add_argument("--log-level", default="WARNING")
    subparsers = parser.add_subparsers(dest="command", required=True)
    unavailable = []
    for name in SUBCOMMAND_MODULES:
        try:
            importlib.import_module(f"ponder.cli.{name}").add_parser(subparsers)
        except ImportError as error:
            unavailable.append(f"{name} ({error})")
    if unavailable:
        parser.epilog = "Not available here (install the extra): " + "; ".join(unavailable)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except PonderError as error:
        print(f"ponder {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
