"""The training loop: AdamW, warmup + cosine schedule, bf16 on CUDA, checkpoints, HF export."""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ponder.errors import InvalidRequestError
from ponder.train.chat_format import BUDGET_CLOSE_TEXT
from ponder.train.checkpoint import (
    TrainState,
    export_model,
    load_checkpoint,
    save_checkpoint,
    set_budget_close,
)
from ponder.train.config import TrainConfig, config_to_dict
from ponder.train.data import PackedTaskDataset, tokenizer_corpus
from ponder.train.model import build_model, count_parameters, load_initial_weights
from ponder.train.tokenizer import load_tokenizer, train_tokenizer

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainResult:
    steps: int
    first_loss: float
    final_loss: float
    num_parameters: int
    model_dir: Path
    train_seconds: float
    finished: bool  # False when session_minutes stopped the run early (continue with resume)


@dataclass
class _Run:
    """Everything the step loop needs, built once by ``train``."""

    config: TrainConfig
    model: torch.nn.Module
    forward: Callable
    optimizer: torch.optim.Optimizer
    state: TrainState
    device: torch.device
    out_dir: Path
    tokenizer_dir: Path
    held_out: list[Batch]
    log: Callable[[str], None]
    saved_step: int = -1


def lr_multiplier(step: int, progress: float, config: TrainConfig) -> float:
    """Linear warmup over the first steps, then cosine from 1 down to ``min_lr_ratio``."""
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return warmup * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def run_progress(step: int, elapsed_seconds: float, config: TrainConfig) -> float:
    """How far through the run we are (0 to 1): by steps, or by wall-clock if that is further."""
    progress = step / config.max_steps
    if config.time_budget_minutes:
        progress = max(progress, elapsed_seconds / (60.0 * config.time_budget_minutes))
    return progress


def train(config: TrainConfig, *, resume: bool = False, log: Callable[[str], None] = print) -> TrainResult:
    """Train (or resume) the model described by ``config``; export it to out_dir/model."""
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = _resolve_device(config.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for the few fp32 matmuls left
    tokenizer_dir = _prepare_tokenizer(config, out_dir, log)
    tokenizer = load_tokenizer(tokenizer_dir)
    model = build_model(config, tokenizer)
    if config.init_from:
        load_initial_weights(model, config.init_from)
        log(f"weights from {config.init_from}")
    model = model.to(device)
    num_parameters = count_parameters(model)
    optimizer = _optimizer(model, config, device)
    state = TrainState()
    if resume:
        state = load_checkpoint(out_dir / "checkpoint", model, optimizer, config_to_dict(config))
        log(f"resumed from step {state.step} ({state.elapsed_seconds:.0f}s trained)")
    log(
        f"model: Qwen3, {num_parameters / 1e6:.2f}M parameters, vocab {model.config.vocab_size}, "
        f"device {device}, {config.tokens_per_step} tokens/step"
    )
    tokenizer_file = str(tokenizer_dir / "tokenizer.json")
    run = _Run(
        config=config,
        model=model,
        forward=_maybe_compile(model, config, device, log),
        optimizer=optimizer,
        state=state,
        device=device,
        out_dir=out_dir,
        tokenizer_dir=tokenizer_dir,
        held_out=_held_out_batches(config, tokenizer_file),
        log=log,
    )
    batches = _batches(config, tokenizer_file, state.step, device)
    first_loss, final_loss, finished = _step_loop(run, batches)
    if state.step != run.saved_step:
        _save(run)
    model_dir = export_model(model, tokenizer_dir, out_dir / "model", config.save_dtype)
    if config.budget_cut_fraction:  # it learned to answer after this close: let the engine use it
        set_budget_close(model_dir, BUDGET_CLOSE_TEXT)
    if finished:
        log(f"done: {state.step} steps in {state.elapsed_seconds:.0f}s; model in {model_dir}")
    else:
        log(
            f"stopped after session_minutes at step {state.step}; model so far in {model_dir}; "
            "run again with --resume to finish"
        )
    return TrainResult(
        steps=state.step,
        first_loss=first_loss,
        final_loss=final_loss,
        num_parameters=num_parameters,
        model_dir=model_dir,
        train_seconds=state.elapsed_seconds,
        finished=finished,
    )


def _step_loop(run: _Run, batches: Iterator[Batch]) -> tuple[float, float, bool]:
    """Optimiser steps until the schedule ends or the session runs out; (first, last loss, done)."""
    config, state = run.config, run.state
    history = run.out_dir / "train_log.jsonl"
    first_loss = last_loss = float("nan")
    started = time.perf_counter()
    trained_before = state.elapsed_seconds
    window_started, window_tokens = started, 0
    bar = tqdm(
        total=config.max_steps, initial=state.step, disable=not config.progress_bar, desc="train", unit="step"
    )
    while True:
        session_seconds = time.perf_counter() - started
        state.elapsed_seconds = trained_before + session_seconds
        progress = run_progress(state.step, state.elapsed_seconds, config)
        if progress >= 1.0:
            finished = True
            break
        if config.session_minutes and session_seconds >= 60.0 * config.session_minutes:
            finished = False
            break
        lr = config.lr * lr_multiplier(state.step, progress, config)
        loss = _optimizer_step(run, next(batches), lr)
        state.step += 1
        window_tokens += config.tokens_per_step
        bar.update(1)
        if state.step % config.log_every == 0 or state.step == 1:
            last_loss = loss.item()
            first_loss = last_loss if math.isnan(first_loss) else first_loss
            now = time.perf_counter()
            tokens_per_second = window_tokens / max(now - window_started, 1e-9)
            window_started, window_tokens = now, 0
            record = {
                "step": state.step,
                "loss": round(last_loss, 5),
                "lr": lr,
                "tokens_per_s": round(tokens_per_second),
                "elapsed_s": round(state.elapsed_seconds, 1),
            }
            _append_json(history, record)
            if not config.progress_bar:  # plain log lines where no bar is shown (batch jobs)
                run.log(json.dumps(record))
            bar.set_postfix(loss=f"{last_loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_second:.0f}")
            if config.time_budget_minutes and progress > 0:
                bar.total = max(state.step, round(state.step / progress))
        if state.step % config.checkpoint_every == 0:
            _save(run)
        snapshot_due = config.snapshot_every and state.step % config.snapshot_every == 0
        if snapshot_due and state.step < config.max_steps:
            # Models along the way, to pick one by task accuracy rather than by loss (the last
            # step's model is model/, exported once below).
            export_model(
                run.model,
                run.tokenizer_dir,
                run.out_dir / "snapshots" / f"step-{state.step:06d}",
                config.save_dtype,
            )
    bar.close()
    return first_loss, last_loss, finished


def _optimizer_step(run: _Run, batch: Batch, lr: float) -> torch.Tensor:
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    loss = _loss(run.forward, batch, run.device)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.config.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def _save(run: _Run) -> None:
    """Checkpoint for --resume, and note the held-out loss at this point in the log."""
    save_checkpoint(
        run.out_dir / "checkpoint", run.model, run.optimizer, run.state, config_to_dict(run.config)
    )
    run.saved_step = run.state.step
    if run.held_out:
        held_out_loss = _held_out_loss(run.model, run.held_out, run.device)
        record = {"step": run.state.step, "held_out_loss": round(held_out_loss, 5)}
        _append_json(run.out_dir / "train_log.jsonl", record)
        run.log(json.dumps(record))


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidRequestError(
            "device=cuda was asked for but torch sees no CUDA device; use --device cpu or auto",
            param="device",
        )
    return torch.device(device)


def _prepare_tokenizer(config: TrainConfig, out_dir: Path, log: Callable[[str], None]) -> Path:
    if config.tokenizer_dir:
        return Path(config.tokenizer_dir)
    tokenizer_dir = out_dir / "tokenizer"
    if not (tokenizer_dir / "tokenizer.json").is_file():
        corpus = tokenizer_corpus(config.tokenizer_items_per_cell, config.seed)
        tokenizer = train_tokenizer(corpus, config.tokenizer_vocab_size, tokenizer_dir)
        log(f"tokenizer: {tokenizer.get_vocab_size()} tokens, written to {tokenizer_dir}")
    return tokenizer_dir


def _optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device):
    # Norm gains are not decayed: pulling them towards zero only fights the normalisation.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=device.type == "cuda"
    )


def _batches(config: TrainConfig, tokenizer_file: str, step: int, device: torch.device) -> Iterator[Batch]:
    workers = config.num_workers if config.num_workers >= 0 else min(8, (os.cpu_count() or 2) - 1)
    if workers > 0:
        # Each worker runs its own tokenizer; Rust threads inside forked workers only contend.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    dataset = PackedTaskDataset(config, tokenizer_file, stream_key=step)
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers > 0 else None,
    )
    return iter(loader)


def _held_out_batches(config: TrainConfig, tokenizer_file: str) -> list[Batch]:
    """A few fixed batches of test-split examples, to watch for over-fitting."""
    dataset = PackedTaskDataset(config, tokenizer_file, split="test")
    loader = DataLoader(dataset, batch_size=min(config.batch_size, 16), num_workers=0)
    return list(islice(iter(loader), 2))


def _loss(forward: Callable, batch: Batch, device: torch.device) -> torch.Tensor:
    inputs = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        # No attention mask: restarting position ids mark the packed examples (see data.py).
        output = forward(**inputs, use_cache=False)
    return output.loss


@torch.no_grad()
def _held_out_loss(model: torch.nn.Module, batches: list[Batch], device: torch.device) -> float:
    model.eval()
    losses = [_loss(model, batch, device).item() for batch in batches]
    model.train()
    return sum(losses) / len(losses)


def _maybe_compile(
    model: torch.nn.Module, config: TrainConfig, device: torch.device, log: Callable[[str], None]
) -> Callable:
    if not (config.compile and device.type == "cuda"):
        return model
    compiled = torch.compile(model)
    shape = (config.batch_size, config.seq_len)  # the real shape, so it never recompiles
    probe = {
        "input_ids": torch.zeros(shape, dtype=torch.long, device=device),
        "position_ids": torch.arange(config.seq_len, device=device).expand(shape),
        "labels": torch.zeros(shape, dtype=torch.long, device=device),
    }
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            compiled(**probe, use_cache=False).loss.backward()
        model.zero_grad(set_to_none=True)
        return compiled
    except Exception as error:  # a missing compiler toolchain must not cost the whole run
        model.zero_grad(set_to_none=True)
        log(f"torch.compile failed ({type(error).__name__}: {error}); training eagerly")
        return model


def _append_json(path: Path, record: dict) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
