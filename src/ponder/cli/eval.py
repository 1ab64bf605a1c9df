"""`ponder eval`: strategies on the held-out task split; the argument parser and its handler."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ponder.engine.args import EngineArgs
from ponder.errors import InvalidRequestError

DEFAULT_STRATEGY = "greedy"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="accuracy, tokens and wall time of reasoning strategies on the held-out task split",
        description=(
            "Runs each --strategy over the test split of the task suite and prints accuracy per "
            "family x difficulty, mean reasoning / answer / probe tokens per problem (every branch, "
            "stopped ones included) and wall time. Strategy syntax: TYPE[:key=value,...] or a JSON "
            "object, e.g. self_consistency:n=16  confidence:n=16,warmup=4  "
            "answer_stability:probe_every=64,agree=3  budget:thinking_budget=256 "
            "(see docs/reasoning.md)."
        ),
    )
    parser.add_argument("--model", default=None, help="HF checkpoint dir (default: built-in model)")
    parser.add_argument("--tasks", default="all", help="comma-separated families, or all")
    parser.add_argument("--difficulty", default="hard", help="comma-separated: easy,medium,hard")
    parser.add_argument("--limit", type=int, default=20, help="problems per family and difficulty")
    parser.add_argument(
        "--strategy", action="append", default=None, help=f"repeatable (default: {DEFAULT_STRATEGY})"
    )
    parser.add_argument("--max-tokens", type=int, default=1536, help="per branch")
    parser.add_argument("--temperature", type=float, default=0.8, help="for sampled strategies")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--min-p", type=float, default=0.0, help="drop tokens below min-p x the top one's")
    parser.add_argument("--top-k", type=int, default=-1, help="-1: off")
    parser.add_argument(
        "--phrasing",
        choices=["canonical", "paraphrase"],
        default="canonical",
        help="paraphrase: the test items in held-out phrasings, plain small sums in arithmetic/easy "
        "(docs/flywheel.md, robustness)",
    )
    parser.add_argument(
        "--no-thinking",
        dest="enable_thinking",
        action="store_false",
        help="render prompts with enable_thinking=False (what reasoning_effort none does)",
    )
    parser.add_argument("--item-seed", type=int, default=0, help="which test items")
    parser.add_argument("--sample-seed", type=int, default=0, help="sampling seed of item 0 (+i)")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="problems in flight at once (1: per-problem latency)"
    )
    parser.add_argument(
        "--extra-model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another model for ensemble/cascade strategies (the main one is 'default')",
    )
    parser.add_argument(
        "--verifier",
        choices=["oracle"],
        default=None,
        help="give verifier-based strategies the task's own checker (an upper bound, not a method)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        metavar="LABEL",
        help="compare every other strategy with this one, problem by problem (accuracy difference "
        "with a 95%% interval, problems won and lost, tokens)",
    )
    parser.add_argument("--json", dest="json_path", default=None, help="write results here")
    parser.add_argument("--plot", dest="plot_path", default=None, help="accuracy-vs-tokens PNG")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    EngineArgs.add_cli_args(parser)
    parser.set_defaults(handler=run_eval_command)


def run_eval_command(args: argparse.Namespace) -> int:
    from ponder.eval.compare import check_reference, compare_all
    from ponder.eval.plot import plot_accuracy_vs_tokens
    from ponder.eval.report import format_table, summarize, to_json
    from ponder.eval.runner import EvalConfig, evaluate, item_params
    from ponder.llm import LLM
    from ponder.reasoning.strategy_args import parse_strategy_arg
    from ponder.tasks import DIFFICULTIES, FAMILIES

    strategies = [parse_strategy_arg(text) for text in (args.strategy or [DEFAULT_STRATEGY])]
    if args.reference is not None:  # before any model loads
        check_reference([label for label, _ in strategies], args.reference)
    config = EvalConfig(
        families=_names(args.tasks, FAMILIES, "tasks"),
        difficulties=_names(args.difficulty, DIFFICULTIES, "difficulty"),
        limit=_positive(args.limit, "limit"),
        max_tokens=_positive(args.max_tokens, "max-tokens"),
        temperature=args.temperature,
        top_p=args.top_p,
        min_p=args.min_p,
        top_k=args.top_k,
        item_seed=args.item_seed,
        sample_seed=args.sample_seed,
        concurrency=_positive(args.concurrency, "concurrency"),
        verifier=args.verifier,
        progress=args.progress,
        phrasing=args.phrasing,
        enable_thinking=args.enable_thinking,
    )
    item_params(config, 0)  # bad sampling knobs fail here, before any model loads
    engine_args = EngineArgs.from_cli_args(args)
    main = LLM.from_engine_args(engine_args)
    extra = {
        name: LLM.from_engine_args(dataclasses.replace(engine_args, model=path)).engine
        for name, path in _extra_models(args.extra_model).items()
    }
    evaluations = evaluate(main.engine, strategies, config, models=extra)
    rows = [row for evaluation in evaluations for row in summarize(evaluation)]
    print(format_table(rows))
    comparisons = compare_all(evaluations, args.reference) if args.reference is not None else []
    for comparison in comparisons:
        print(comparison.describe())
    model_name = str(main.engine.config.model.model)
    if args.json_path:
        report = to_json(evaluations, config, model_name, comparisons)
        Path(args.json_path).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json_path}", file=sys.stderr)
    if args.plot_path:
        title = f"{Path(model_name).name}: {','.join(config.difficulties)} split, {config.limit}/family"
        plot_accuracy_vs_tokens(rows, args.plot_path, title=title)
        print(f"wrote {args.plot_path}", file=sys.stderr)
    return 0


def _names(text: str, valid: tuple[str, ...], option: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return valid
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        raise InvalidRequestError(
            f"--{option}: unknown {', '.join(unknown) or '(empty)'}; valid: {', '.join(valid)}, all",
            param=option,
        )
    return names


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise InvalidRequestError(f"--{option} must be >= 1, got {value}", param=option)
    return value


def _extra_models(pairs: list[str]) -> dict[str, str]:
    models = {}
    for pair in pairs:
        name, equals, path = pair.partition("=")
        if not equals or not name or not path or name == "default":
            raise InvalidRequestError(
                f"--extra-model expects NAME=PATH with a name other than 'default', got {pair!r}",
                param="extra-model",
            )
        models[name] = path
    return models
