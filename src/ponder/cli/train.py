"""`ponder train`: command-line flags over TrainConfig; also `python -m ponder.train`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ponder.errors import InvalidRequestError, ModelLoadError
from ponder.train.config import PRESETS, load_config

# flag name -> TrainConfig field, for the flags that map one to one
_FLAG_FIELDS = {
    "out_dir": "out_dir",
    "steps": "max_steps",
    "batch_size": "batch_size",
    "seq_len": "seq_len",
    "lr": "lr",
    "warmup_steps": "warmup_steps",
    "seed": "seed",
    "time_budget_minutes": "time_budget_minutes",
    "session_minutes": "session_minutes",
    "device": "device",
    "compile": "compile",
    "num_workers": "num_workers",
    "tokenizer_dir": "tokenizer_dir",
    "checkpoint_every": "checkpoint_every",
    "snapshot_every": "snapshot_every",
    "log_every": "log_every",
    "probe_fraction": "probe_fraction",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `train` subcommand on the `ponder` CLI."""
    parser = subparsers.add_parser(
        "train",
        help="train the built-in reasoning model (or a variant) on the task suite",
        description="Train a small Qwen3 reasoning model on ponder's task suite.",
    )
    add_train_arguments(parser)
    parser.set_defaults(handler=run_train)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="builtin",
        help="starting settings: tiny (CPU smoke run), builtin (default), robust (fine-tunes the "
        "shipped model for other phrasings and thinking budgets) or working (robust, plus answers "
        "that carry their working when the thought is absent or cut)",
    )
    parser.add_argument("--config", help="TOML or JSON file of TrainConfig settings")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT_DIR/checkpoint with the same settings"
    )
    parser.add_argument("--out-dir", help="where the tokenizer, checkpoint and model go")
    parser.add_argument("--steps", type=int, help="maximum optimiser steps")
    parser.add_argument("--batch-size", type=int, help="packed sequences per step")
    parser.add_argument("--seq-len", type=int, help="tokens per packed sequence")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--warmup-steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--time-budget-minutes", type=float, help="end the schedule after this much training time"
    )
    parser.add_argument("--session-minutes", type=float, help="stop this process after this long (resumable)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the model (CUDA only)",
    )
    parser.add_argument("--num-workers", type=int, help="data workers (-1: automatic)")
    parser.add_argument("--tokenizer-dir", help="reuse this tokenizer instead of training one")
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument(
        "--snapshot-every",
        type=int,
        help="also export a loadable model every N steps (out-dir/snapshots/step-N)",
    )
    parser.add_argument("--log-every", type=int)
    parser.add_argument(
        "--family-weights", type=_weights, help="data mix by family, e.g. arithmetic=2,boxes=1 (others get 0)"
    )
    parser.add_argument(
        "--difficulty-weights", type=_weights, help="data mix by difficulty, e.g. easy=1,medium=1,hard=2"
    )
    parser.add_argument(
        "--cell-weights",
        type=_weights,
        help="factors for single family/difficulty cells, e.g. ordering/hard=0.2",
    )
    parser.add_argument(
        "--probe-fraction",
        type=float,
        help="share of examples that are cut thoughts closed by an answer probe "
        "(teaches the model to answer a probe with its settled result)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_train(args: argparse.Namespace) -> int:
    """Run training from parsed flags; returns a process exit status."""
    from ponder.train.trainer import train  # torch and transformers load only when training

    overrides = {field: getattr(args, flag) for flag, field in _FLAG_FIELDS.items()}
    overrides["family_weights"] = args.family_weights
    overrides["difficulty_weights"] = args.difficulty_weights
    overrides["cell_weights"] = args.cell_weights
    if args.no_progress:
        overrides["progress_bar"] = False
    try:
        config = load_config(args.preset, args.config, **overrides)
        result = train(config, resume=args.resume)
    except (InvalidRequestError, ModelLoadError) as error:
        print(f"ponder train: error: {error}", file=sys.stderr)
        return 2
    print(
        f"first loss {result.first_loss:.4f}, final loss {result.final_loss:.4f}, "
        f"{result.num_parameters / 1e6:.2f}M parameters, model at {result.model_dir}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ponder.train",
        description="Train a small Qwen3 reasoning model on ponder's task suite.",
    )
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


def _weights(text: str) -> dict[str, float]:
    weights = {}
    for part in text.split(","):
        name, separator, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            separator = ""
        if not separator:
            raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT pairs, got {part!r}")
    return weights
