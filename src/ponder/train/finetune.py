"""Fine-tune a served checkpoint on SFT JSONL (the flywheel's curated data): the whole model, or
LoRA adapters (peft) merged back into it, so the result is a plain checkpoint ponder serves.

Examples are rendered with the model's own chat template, so training text is what serving
renders; only the assistant turn (thought and answer) is learned."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ponder.engine.tokenizer import Tokenizer
from ponder.errors import InvalidRequestError
from ponder.flywheel.export import read_jsonl

IGNORE_INDEX = -100
METHODS = ("full", "lora")
_WEIGHT_FILES = ("config.json", "model.safetensors.index.json")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class FinetuneConfig:
    base: str  # the checkpoint dir of the model being improved
    data: str  # SFT JSONL (ponder flywheel curate)
    out_dir: str
    method: str = "full"
    epochs: float = 2.0
    lr: float | None = None  # default: 5e-5 full, 1e-3 LoRA
    batch_size: int = 8
    max_len: int = 1024  # longer examples are skipped
    lora_rank: int = 16
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"  # "cuda" on the GPU machine; the built-in model trains fine on a CPU

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 5e-5 if self.method == "full" else 1e-3


@dataclass(frozen=True)
class FinetuneResult:
    out_dir: str
    method: str
    examples: int
    skipped: int
    steps: int
    first_loss: float
    final_loss: float
    trained_tokens: int  # tokens through forward+backward (prompt and completion, no padding)
    seconds: float
    trainable_parameters: int


def encode(tokenizer: Tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one conversation; labels are IGNORE_INDEX up to the last turn."""
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, add_generation_prompt=False).rstrip()
    if not full.startswith(prompt):
        raise InvalidRequestError("the chat template does not render the prompt as a prefix of the chat")
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    completion_ids = tokenizer.encode(full[len(prompt) :], add_special_tokens=False)
    return prompt_ids + completion_ids, [IGNORE_INDEX] * len(prompt_ids) + completion_ids


def finetune(config: FinetuneConfig, log=print) -> FinetuneResult:
    from transformers import AutoModelForCausalLM

    if config.method not in METHODS:
        raise InvalidRequestError(f"method must be one of {', '.join(METHODS)}", param="method")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    tokenizer = Tokenizer.from_dir(config.base)
    examples, skipped = [], 0
    for example in read_jsonl(config.data):
        ids, labels = encode(tokenizer, example["messages"])
        if len(ids) > config.max_len:
            skipped += 1
            continue
        examples.append((ids, labels))
    if not examples:
        raise InvalidRequestError(f"{config.data}: no example fits max_len {config.max_len}", param="data")
    model = AutoModelForCausalLM.from_pretrained(config.base, dtype=torch.float32).to(config.device)
    saved_dtype = _saved_dtype(Path(config.base))
    if config.method == "lora":
        model = _with_lora(model, config.lora_rank)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    steps = max(1, math.ceil(len(examples) / config.batch_size * config.epochs))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / (steps + 1))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = random.Random(config.seed)
    order: list[int] = []
    losses: list[float] = []
    tokens = 0
    started = time.monotonic()
    model.train()
    for step in range(steps):
        if len(order) < config.batch_size:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            order += fresh
        batch = [examples[i] for i in order[: config.batch_size]]
        del order[: config.batch_size]
        inputs = {key: value.to(config.device) for key, value in _collate(batch, pad_id).items()}
        loss = model(**inputs, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += int(inputs["attention_mask"].sum())
        if step % 10 == 0 or step == steps - 1:
            log(f"step {step + 1}/{steps} loss {losses[-1]:.4f}")
    seconds = time.monotonic() - started
    if config.method == "lora":
        model = model.merge_and_unload()
    model.to("cpu")
    _save(model, Path(config.base), Path(config.out_dir), saved_dtype)
    result = FinetuneResult(
        out_dir=config.out_dir,
        method=config.method,
        examples=len(examples),
        skipped=skipped,
        steps=steps,
        first_loss=losses[0],
        final_loss=sum(losses[-5:]) / len(losses[-5:]),
        trained_tokens=tokens,
        seconds=seconds,
        trainable_parameters=sum(p.numel() for p in trainable),
    )
    report = {"config": asdict(config), "result": asdict(result)}
    (Path(config.out_dir) / "flywheel_train.json").write_text(json.dumps(report, indent=2) + "\n")
    return result


def _with_lora(model, rank: int):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise InvalidRequestError("LoRA needs peft: pip install 'ponder[train]'", param="method") from error
    targets = [name for name in LORA_TARGETS if any(n.endswith(name) for n, _ in model.named_modules())]
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets)
    return get_peft_model(model, lora)


def _collate(batch: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, targets) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(targets)
        mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def _saved_dtype(base: Path) -> torch.dtype:
    config = json.loads((base / "config.json").read_text())
    name = config.get("dtype") or config.get("torch_dtype") or "float32"
    return getattr(torch, str(name), torch.float32)


def _save(model, base: Path, out_dir: Path, dtype: torch.dtype) -> None:
    """The weights in the base's dtype, its config, and every tokenizer / template file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(dtype)
    model.save_pretrained(out_dir)
    for source in base.iterdir():
        is_weights = source.suffix in (".safetensors", ".bin") or source.name in _WEIGHT_FILES
        if source.is_file() and not is_weights and not (out_dir / source.name).exists():
            shutil.copyfile(source, out_dir / source.name)
