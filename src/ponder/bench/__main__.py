"""`python -m ponder.bench [flags | compare A.json B.json]`: `ponder bench` standalone."""

from __future__ import annotations

import argparse
import sys

from ponder.bench.cli import add_bench_parser, run_bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ponder")
    add_bench_parser(parser.add_subparsers(dest="command", required=True))
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["bench"]:  # `python -m ponder.bench --flags` reads as `ponder bench --flags`
        args.insert(0, "bench")
    return run_bench(parser.parse_args(args))


if __name__ == "__main__":
    sys.exit(main())
