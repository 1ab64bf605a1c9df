"""The `ponder bench` command line: flags -> BenchConfig -> run -> tables, JSON and plots."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ponder.bench.config import (
    DATASETS,
    ENDPOINTS,
    BenchConfig,
    LoadPattern,
    OutputOptions,
    Target,
    Workload,
    parse_rates,
)
from ponder.bench.errors import BenchConfigError, BenchError
from ponder.bench.slo import parse_slo

EXIT_NO_REQUEST_COMPLETED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds `bench` (and `bench compare`) to a CLI; its handler is set as `handler=run_bench`.

    Cheap to call: httpx, numpy and matplotlib are imported only when a benchmark runs.
    """
    parser = subparsers.add_parser(
        "bench",
        help="measure TTFT, TPOT, goodput and reasoning cost of an OpenAI-compatible server",
        description="Benchmark any OpenAI-compatible server (definitions as `vllm bench serve`). "
        "See docs/bench.md.",
    )
    parser.set_defaults(handler=run_bench)
    _add_target_flags(parser.add_argument_group("target"))
    _add_workload_flags(parser.add_argument_group("workload"))
    _add_load_flags(parser.add_argument_group("arrivals and targets"))
    _add_output_flags(parser.add_argument_group("output"))
    commands = parser.add_subparsers(dest="bench_command", metavar="{compare}")
    compare = commands.add_parser("compare", help="print two result files side by side")
    compare.add_argument("results", nargs=2, metavar="RESULT.json")
    compare.add_argument("--labels", nargs=2, metavar="NAME", help="column names (default: labels)")


def _add_target_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--base-url", default="http://127.0.0.1:8000", help="server root URL")
    group.add_argument("--endpoint", choices=ENDPOINTS, default="/v1/chat/completions")
    group.add_argument("--model", help="model name to send (default: first of /v1/models)")
    group.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"), help="default: $OPENAI_API_KEY")
    group.add_argument("--request-timeout", type=float, default=600.0, help="seconds per request")
    group.add_argument("--ignore-eos", action="store_true", help="send ignore_eos (vLLM, ponder)")
    group.add_argument("--extra-body", help="JSON object merged into every request body")


def _add_workload_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--dataset", choices=DATASETS, default="random")
    group.add_argument("--dataset-path", help="ShareGPT JSON or JSONL prompts file")
    group.add_argument("--num-prompts", type=int, default=100, help="requests per rate")
    group.add_argument("--random-input-len", type=int, default=256)
    group.add_argument("--random-output-len", type=int, default=128)
    group.add_argument("--random-range-ratio", type=float, default=0.0)
    group.add_argument(
        "--random-prefix-ratio",
        type=float,
        default=0.0,
        help="shared share of each input",
    )
    group.add_argument("--output-len", type=int, help="max_tokens for every request")
    group.add_argument("--num-turns", type=int, default=4, help="turns per conversation (multi-turn)")
    group.add_argument(
        "--first-turn-len",
        type=int,
        help="multi-turn: length of each conversation's first message (its own context); "
        "default: --random-input-len",
    )
    group.add_argument("--task-family", help="ponder.tasks family for --dataset reasoning")
    group.add_argument("--task-difficulty", default="easy", help="easy, medium or hard")
    group.add_argument("--tokenizer", help="dir with tokenizer.json, for token counts")
    group.add_argument("--seed", type=int, default=0)


def _add_load_flags(group: argparse._ArgumentGroup) -> None:
    rates = group.add_mutually_exclusive_group()
    rates.add_argument("--request-rate", default="inf", help="requests/s (Poisson), or inf")
    rates.add_argument("--sweep", help="several rates, one run each, e.g. 1,2,4,8,inf")
    group.add_argument("--burstiness", type=float, default=1.0, help="gamma shape; 1 = Poisson")
    group.add_argument("--max-concurrency", type=int, help="requests in flight at most")
    group.add_argument("--duration", type=float, help="seconds to send for (instead of a count)")
    group.add_argument("--num-warmups", type=int, default=1, help="unmeasured requests first")
    group.add_argument("--slo", help="latency targets, e.g. ttft=200ms,tpot=50ms,e2e=10s")


def _add_output_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--result-dir", help="write <name>.json and PNG plots here")
    group.add_argument("--result-name", help="file name stem (default: bench-<model>-<time>)")
    group.add_argument("--label", help="name of this configuration in compare tables")
    group.add_argument("--no-plots", action="store_true")
    group.add_argument("--no-progress", action="store_true")


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    rates = (
        parse_rates(args.sweep, "--sweep") if args.sweep else parse_rates(args.request_rate, "--request-rate")
    )
    return BenchConfig(
        target=Target(
            base_url=args.base_url,
            endpoint=args.endpoint,
            model=args.model,
            api_key=args.api_key,
            request_timeout_s=args.request_timeout,
            ignore_eos=args.ignore_eos,
            extra_body=_parse_extra_body(args.extra_body),
        ),
        workload=Workload(
            dataset=args.dataset,
            dataset_path=args.dataset_path,
            num_prompts=args.num_prompts,
            random_input_len=args.random_input_len,
            random_output_len=args.random_output_len,
            random_range_ratio=args.random_range_ratio,
            random_prefix_ratio=args.random_prefix_ratio,
            output_len=args.output_len,
            task_family=args.task_family,
            task_difficulty=args.task_difficulty,
            seed=args.seed,
            tokenizer_path=args.tokenizer,
            num_turns=args.num_turns,
            first_turn_len=args.first_turn_len,
        ),
        load=LoadPattern(
            request_rates=rates,
            burstiness=args.burstiness,
            max_concurrency=args.max_concurrency,
            duration_s=args.duration,
            num_warmups=args.num_warmups,
            seed=args.seed,
        ),
        slo=parse_slo(args.slo),
        output=OutputOptions(
            result_dir=args.result_dir,
            result_name=args.result_name,
            label=args.label,
            plots=not args.no_plots,
            progress=not args.no_progress,
        ),
    )


def _parse_extra_body(text: str | None) -> dict:
    if not text:
        return {}
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchConfigError(f"--extra-body is not JSON ({exc})", "--extra-body") from None
    if not isinstance(body, dict):
        raise BenchConfigError("--extra-body must be a JSON object", "--extra-body")
    return body


def run_bench(args: argparse.Namespace) -> int:
    """0 on success; 1 when no request completed; 2 for unusable flags or an unreachable server;
    130 when interrupted."""
    try:
        if getattr(args, "bench_command", None) == "compare":
            return _compare(args)
        return _benchmark(config_from_args(args))
    except BenchError as exc:
        print(f"ponder bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ponder bench: interrupted; no result written", file=sys.stderr)
        return EXIT_INTERRUPTED


def _benchmark(config: BenchConfig) -> int:
    import asyncio

    from ponder.bench.report import markdown_report
    from ponder.bench.results import default_result_name, result_document, write_result
    from ponder.bench.session import run_benchmark

    result = asyncio.run(run_benchmark(config))
    document = result_document(result)
    print(markdown_report(document))
    if config.output.result_dir:
        name = config.output.result_name or default_result_name(document)
        written = [write_result(document, config.output.result_dir, name)]
        if config.output.plots:
            written += _write_plots(document, config.output.result_dir, name)
        print("Wrote " + ", ".join(str(path) for path in written))
    completed = sum(run["summary"]["completed"] for run in document["runs"])
    return 0 if completed else EXIT_NO_REQUEST_COMPLETED


def _write_plots(document: dict, result_dir: str, name: str) -> list[Path]:
    try:
        from ponder.bench.plots import write_plots
    except ImportError as exc:  # matplotlib is optional (the `bench` extra)
        print(f"ponder bench: no plots: {exc}; pip install matplotlib", file=sys.stderr)
        return []
    return write_plots(document, result_dir, name)


def _compare(args: argparse.Namespace) -> int:
    from ponder.bench.report import compare_report
    from ponder.bench.results import read_result

    first, second = (read_result(path) for path in args.results)
    labels = args.labels or [
        document["config"].get("label") or Path(path).stem
        for document, path in ((first, args.results[0]), (second, args.results[1]))
    ]
    print(compare_report(first, second, labels[0], labels[1]))
    return 0
