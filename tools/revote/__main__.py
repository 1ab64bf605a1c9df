"""`python -m tools.revote RUN.json ...`: re-score a recorded `ponder eval --json` run under other
vote rules, with no model (a research tool: the product's vote rules are the strategies')."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ponder.errors import InvalidRequestError, PonderError
from tools.revote.rules import (
    DEFAULT_SUBSETS,
    RuleOutcome,
    default_rules,
    parse_rule,
    problem_key,
    revote,
    votable,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.revote",
        description=(
            "Reads a `ponder eval --json` file and votes again over the branches each multi-branch "
            "strategy recorded, with no model: majority over 1, 2, 4, ... of the branches (mean over "
            "random subsets), weighted by exp(mean log-probability) or by confidence, "
            "confidence-filtered (DeepConf offline), or stopped once decided (share / beta). Rules: "
            "WEIGHT[:keep_top=S,rank=R,n=K,stop=share|beta,consensus=C,warmup=W] with WEIGHT "
            "majority|confidence|logprob, R confidence|logprob; e.g. confidence:keep_top=0.1. "
            "Confidence rules need a run that recorded confidences "
            "(self_consistency:n=16,vote=confidence)."
        ),
    )
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="JSON files `ponder eval --json` wrote; several (e.g. other --item-seed sets) are pooled",
    )
    parser.add_argument(
        "--strategy", action="append", default=None, help="label to re-vote, repeatable (default: all)"
    )
    parser.add_argument(
        "--rule", action="append", default=None, help="vote rule, repeatable (default: a standard set)"
    )
    parser.add_argument(
        "--reference",
        default=None,
        metavar="LABEL",
        help="a recorded strategy to compare each rule with, problem by problem (default: greedy)",
    )
    parser.add_argument(
        "--subsets", type=int, default=DEFAULT_SUBSETS, help="random subsets per problem for n=K"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsets")
    parser.add_argument("--json", dest="json_path", default=None, help="write the rows here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """0 on success; 2 (with a one-line error) for unusable runs or rules."""
    try:
        return run_revote_command(build_parser().parse_args(argv))
    except PonderError as error:
        print(f"revote: error: {error}", file=sys.stderr)
        return 2


@dataclass(frozen=True)
class RevoteRow:
    strategy: str
    rule: str
    num_items: int
    voters: float
    tokens: float
    accuracy: float
    pass_at: float
    reference: str | None = None
    diff: float | None = None  # accuracy minus the reference's, paired
    ci95_low: float | None = None
    ci95_high: float | None = None


def run_revote_command(args: argparse.Namespace) -> int:
    rules = [parse_rule(text) for text in args.rule] if args.rule else None
    if args.subsets < 1:
        raise InvalidRequestError(f"--subsets must be >= 1, got {args.subsets}", param="subsets")
    recorded = pooled([_load(path) for path in args.runs])
    chosen = _chosen_strategies(recorded, args.strategy)
    reference = _reference(recorded, args.reference)
    # problem -> 1 or 0: what each rule's per-problem score is compared with
    reference_scores = (
        {problem_key(item): float(item["correct"]) for item in reference["items"]} if reference else {}
    )
    rows = []
    for label in chosen:
        items = recorded[label]["items"]
        versus = reference["label"] if reference and reference["label"] != label else None
        for rule in rules or default_rules(items):
            outcome = revote(label, items, rule, subsets=args.subsets, seed=args.seed)
            rows.append(_row(outcome, len(items), versus, reference_scores))
    print(format_rows(rows))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps([asdict(row) for row in rows], indent=2))
        print(f"wrote {args.json_path}", file=sys.stderr)
    return 0


def _row(
    outcome: RuleOutcome, num_items: int, reference: str | None, reference_scores: dict[str, float]
) -> RevoteRow:
    from ponder.eval.compare import paired_interval

    row = RevoteRow(
        outcome.strategy,
        outcome.rule,
        num_items,
        outcome.voters,
        outcome.tokens,
        outcome.accuracy,
        outcome.pass_at,
    )
    diffs = [
        score - reference_scores[key] for key, score in outcome.scores.items() if key in reference_scores
    ]
    if reference is None or not diffs:
        return row
    diff, low, high = paired_interval(diffs)
    return replace(row, reference=reference, diff=diff, ci95_low=low, ci95_high=high)


def format_rows(rows: list[RevoteRow]) -> str:
    from ponder.eval.report import align

    cells = [["strategy", "rule", "n", "voters", "tokens", "acc%", "pass%", "vs reference (95% CI)"]]
    for row in rows:
        versus = ""
        if row.diff is not None:
            versus = (
                f"{100 * row.diff:+.1f} ({100 * row.ci95_low:+.1f} to {100 * row.ci95_high:+.1f}) "
                f"vs {row.reference}"
            )
        cells.append(
            [
                row.strategy,
                row.rule,
                str(row.num_items),
                f"{row.voters:.1f}",
                f"{row.tokens:.0f}",
                f"{100 * row.accuracy:.1f}",
                f"{100 * row.pass_at:.1f}",
                versus,
            ]
        )
    return "\n".join(line.rstrip() for line in align(cells, left_columns=2).splitlines())


def pooled(reports: list[dict]) -> dict[str, dict]:
    """Strategies by label, each with the items of every report that recorded it; a problem may
    appear once per strategy (pool runs of different item sets, not repeats of one)."""
    strategies: dict[str, dict] = {}
    for report in reports:
        for strategy in report["strategies"]:
            merged = strategies.setdefault(strategy["label"], {"label": strategy["label"], "items": []})
            merged["items"] = merged["items"] + strategy["items"]
    for label, strategy in strategies.items():
        keys = [problem_key(item) for item in strategy["items"]]
        if len(set(keys)) < len(keys):
            repeated = next(key for key in keys if keys.count(key) > 1)
            raise InvalidRequestError(
                f"{label!r} has problem {repeated} more than once: pool runs of different item sets",
                param="run",
            )
    return strategies


def _load(path: str) -> dict:
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InvalidRequestError(f"no such file: {path}", param="run") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidRequestError(f"{path} is not JSON: {error}", param="run") from None
    if not isinstance(report, dict) or not isinstance(report.get("strategies"), list):
        raise InvalidRequestError(f"{path} is not a `ponder eval --json` report", param="run")
    return report


def _chosen_strategies(recorded: dict[str, dict], labels: list[str] | None) -> list[str]:
    if labels:
        unknown = [label for label in labels if label not in recorded]
        if unknown:
            raise InvalidRequestError(
                f"--strategy {', '.join(unknown)} not in the run; recorded: {', '.join(recorded)}",
                param="strategy",
            )
        flat = [label for label in labels if not votable(recorded[label])]
        if flat:
            raise InvalidRequestError(
                f"{', '.join(flat)} recorded fewer than 2 branches per problem (or no branch records)",
                param="strategy",
            )
        return labels
    chosen = [label for label, strategy in recorded.items() if votable(strategy)]
    if not chosen:
        raise InvalidRequestError(
            "no strategy in the run recorded several branches per problem with their records",
            param="strategy",
        )
    return chosen


def _reference(recorded: dict[str, dict], label: str | None) -> dict | None:
    if label is None:
        return recorded.get("greedy")
    if label not in recorded:
        raise InvalidRequestError(
            f"--reference {label!r} not in the run; recorded: {', '.join(recorded)}", param="reference"
        )
    return recorded[label]


if __name__ == "__main__":
    sys.exit(main())
