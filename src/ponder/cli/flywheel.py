"""`ponder flywheel`: the data flywheel from the command line (stats, curate, train, eval,
promote); also the `ponder serve` flags that turn the request log on. See docs/flywheel.md."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ponder.errors import InvalidRequestError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "flywheel",
        help="logged traffic -> curated data -> fine-tuned model -> evaluated -> promoted",
        description="The data flywheel; see docs/flywheel.md.",
    )
    commands = parser.add_subparsers(dest="flywheel_command", required=True)

    stats = commands.add_parser("stats", help="what the request log holds")
    stats.add_argument("log", help="the SQLite request log (ponder serve --log-requests)")
    stats.set_defaults(handler=run_stats)

    curate = commands.add_parser("curate", help="select logged answers and export SFT JSONL")
    curate.add_argument("log", help="the SQLite request log")
    curate.add_argument("--out", required=True, help="directory for train.jsonl and eval.jsonl")
    curate.add_argument("--min-agreement", type=float, help="self-consistency vote share to keep a row")
    curate.add_argument("--min-confidence", type=float, help="strategy confidence to keep a row")
    curate.add_argument("--min-feedback", type=float, help="rows with lower feedback scores are dropped")
    curate.add_argument(
        "--verify-tasks",
        default="",
        metavar="FAMILY,...",
        help="check answers to ponder.tasks questions of these families against the gold answer",
    )
    curate.add_argument("--verified-only", action="store_true", help="keep only rows a checker passed")
    curate.add_argument("--eval-fraction", type=float, default=0.1, help="held out, per workload")
    curate.set_defaults(handler=run_curate)

    train = commands.add_parser("train", help="fine-tune a model on curated SFT JSONL")
    train.add_argument("data", help="SFT JSONL (curate's train.jsonl)")
    train.add_argument("--base", default=None, help="checkpoint dir to start from (default: built-in)")
    train.add_argument("--out", required=True, help="where the fine-tuned checkpoint goes")
    train.add_argument("--method", choices=("full", "lora"), default="full")
    train.add_argument("--epochs", type=float, default=2.0)
    train.add_argument("--lr", type=float, default=None)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--lora-rank", type=int, default=16)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser("eval", help="candidate vs current model on held-out items")
    evaluate.add_argument("--candidate", required=True, help="the fine-tuned checkpoint dir")
    evaluate.add_argument("--current", default=None, help="the served checkpoint (default: built-in)")
    evaluate.add_argument("--data", help="held-out SFT JSONL (curate's eval.jsonl)")
    evaluate.add_argument("--family", help="or: held-out ponder.tasks items of this family (test split)")
    evaluate.add_argument("--difficulty", default="easy")
    evaluate.add_argument("--n", type=int, default=50)
    evaluate.add_argument("--max-tokens", type=int, default=512)
    evaluate.add_argument("--json", dest="json_out", help="also write the comparison here")
    evaluate.set_defaults(handler=run_eval)

    promote = commands.add_parser("promote", help="make a running server serve a new model version")
    promote.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    promote.add_argument("--path", required=True, help="checkpoint dir of the new version")
    promote.add_argument("--version", default=None, help="its version name (default: next vN)")
    promote.add_argument("--model", default=None, help="which served model (default: the primary)")
    promote.add_argument("--api-key", default=None, help="the server's API key (default: $PONDER_API_KEY)")
    promote.set_defaults(handler=run_promote)


def add_request_log_args(parser: argparse.ArgumentParser) -> None:
    from ponder.flywheel.store import default_log_path

    group = parser.add_argument_group("request log (the data flywheel; docs/flywheel.md)")
    group.add_argument(
        "--log-requests",
        nargs="?",
        const=str(default_log_path()),
        default=None,
        metavar="PATH",
        help=f"log every served request to this SQLite file (default when given bare: "
        f"{default_log_path()}); off unless given",
    )
    group.add_argument(
        "--log-content",
        choices=("full", "none"),
        default="full",
        help="'none' keeps only metrics (tokens, latency, agreement), no prompt or reply text",
    )
    group.add_argument(
        "--log-retention",
        default=None,
        metavar="N|AGE",
        help="keep at most N rows and/or rows younger than AGE (e.g. 100000, 7d, '100000,7d')",
    )


def request_log_from_args(args: argparse.Namespace):
    from ponder.flywheel.store import RequestLogStore, Retention

    if not getattr(args, "log_requests", None):
        return None
    retention = Retention.parse(args.log_retention)
    print(f"ponder serve: logging requests to {args.log_requests} (--log-requests)", file=sys.stderr)
    return RequestLogStore(args.log_requests, content=args.log_content, retention=retention)


def run_stats(args: argparse.Namespace) -> int:
    from ponder.flywheel.stats import format_table, summarize
    from ponder.flywheel.store import read_rows

    print(format_table(summarize(read_rows(args.log))))
    return 0


def run_curate(args: argparse.Namespace) -> int:
    from ponder.flywheel.curate import CurationRules, curate
    from ponder.flywheel.export import write_jsonl
    from ponder.flywheel.store import read_rows
    from ponder.flywheel.verify import TaskVerifier

    families = [name.strip() for name in args.verify_tasks.split(",") if name.strip()]
    verifier = TaskVerifier.for_families(families) if families else None
    rules = CurationRules(
        min_agreement=args.min_agreement,
        min_confidence=args.min_confidence,
        min_feedback=args.min_feedback,
        verified_only=args.verified_only,
        eval_fraction=args.eval_fraction,
    )
    result = curate(read_rows(args.log), rules, verifier)
    out = Path(args.out)
    train = write_jsonl(out / "train.jsonl", result.train)
    held = write_jsonl(out / "eval.jsonl", result.eval)
    rejected = ", ".join(f"{reason} {count}" for reason, count in sorted(result.rejected.items()))
    print(f"kept {result.kept}: train {train} -> {out / 'train.jsonl'}, eval {held} -> {out / 'eval.jsonl'}")
    print(f"rejected: {rejected or 'none'}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ponder.train.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(
        base=args.base or str(_builtin()),
        data=args.data,
        out_dir=args.out,
        method=args.method,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        lora_rank=args.lora_rank,
        seed=args.seed,
        device=args.device,
    )
    result = finetune(config)
    print(
        f"{result.method} fine-tune: {result.examples} examples, {result.steps} steps, loss "
        f"{result.first_loss:.4f} -> {result.final_loss:.4f}, {result.trained_tokens} tokens in "
        f"{result.seconds:.1f} s; model at {result.out_dir}"
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from ponder.flywheel import evaluate
    from ponder.flywheel.stats import format_table
    from ponder.tasks import generate

    if args.data:
        items = evaluate.items_from_jsonl(args.data)
    elif args.family:
        items = evaluate.items_from_tasks(generate(args.family, args.difficulty, args.n, split="test"))
    else:
        raise InvalidRequestError("give --data (held-out JSONL) or --family (task items)", param="data")
    if not items:
        raise InvalidRequestError("no held-out items to evaluate on", param="data")
    current_path = args.current or str(_builtin())
    scores = [
        evaluate.score_model(name, path, items, max_tokens=args.max_tokens)
        for name, path in (("current", current_path), ("candidate", args.candidate))
    ]
    rows = evaluate.comparison_rows(*scores)
    print(format_table(rows))
    print(evaluate.verdict(*scores))
    if args.json_out:
        mean, low, high = evaluate.paired_difference(scores[1], scores[0])
        report = {"rows": rows, "difference": mean, "ci95": [low, high]}
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def run_promote(args: argparse.Namespace) -> int:
    import os

    body = {"path": str(Path(args.path).resolve()), "version": args.version, "model": args.model}
    request = urllib.request.Request(
        args.url.rstrip("/") + "/admin/models/promote",
        data=json.dumps({k: v for k, v in body.items() if v is not None}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    key = args.api_key or os.environ.get("PONDER_API_KEY")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            print(json.dumps(json.load(response)))
            return 0
    except urllib.error.HTTPError as error:
        print(f"ponder flywheel promote: {error.code}: {error.read().decode()}", file=sys.stderr)
        return 1


def _builtin() -> Path:
    from ponder.assets import default_model_dir

    return default_model_dir()
