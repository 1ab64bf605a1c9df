"""`python -m ponder.server serve|chat|batch …`: the server commands without the `ponder` entry."""

from __future__ import annotations

import argparse
import logging
import sys

from ponder.errors import PonderError
from ponder.server.cli import add_batch_parser, add_chat_parser, add_serve_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ponder.server")
    parser.add_argument("--log-level", default="WARNING")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in (add_serve_parser, add_chat_parser, add_batch_parser):
        add(subparsers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except PonderError as error:
        print(f"ponder {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
