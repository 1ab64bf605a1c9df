"""TrainConfig: every knob of a training run, the named presets, and loading from TOML/JSON."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ponder.assets import BUILTIN_MODEL_DIR
from ponder.errors import InvalidRequestError
from ponder.tasks import DIFFICULTIES, FAMILIES


@dataclass(frozen=True)
class TrainConfig:
    out_dir: str = "runs/builtin"
    seed: int = 0
    # tokenizer: reuse tokenizer_dir, or train one into out_dir/tokenizer
    tokenizer_dir: str | None = None
    tokenizer_vocab_size: int = 2048
    tokenizer_items_per_cell: int = 400  # items per family x difficulty in its corpus
    # model (Qwen3 architecture)
    hidden_size: int = 384
    num_layers: int = 8
    num_heads: int = 6
    num_kv_heads: int = 2
    head_dim: int = 64
    intermediate_size: int = 1024
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    # data: weights need not sum to 1; an empty family_weights means every family equally
    family_weights: dict[str, float] = field(default_factory=dict)
    difficulty_weights: dict[str, float] = field(
        default_factory=lambda: {"easy": 0.25, "medium": 0.35, "hard": 0.4}
    )
    # per (family, difficulty) factors on top of both, keyed "family/difficulty": "ordering/hard": 0.2
    cell_weights: dict[str, float] = field(default_factory=dict)
    no_think_fraction: float = 0.02  # examples answered directly, so enable_thinking=False works
    probe_fraction: float = 0.0  # examples that are cut thoughts closed by an answer probe
    # Robustness outside the task format (docs/flywheel.md): questions in other phrasings (the
    # "train" templates of ponder.tasks.paraphrase), plain small sums, and thoughts cut by a
    # thinking budget (closed with BUDGET_CLOSE_TEXT) that still answer with the gold answer.
    paraphrase_fraction: float = 0.0
    plain_fraction: float = 0.0
    budget_cut_fraction: float = 0.0
    # the difficulties that direct answers and budget cuts are drawn for (a hard item cannot be
    # answered without its thought); plain small sums count as easy
    shortcut_difficulties: tuple[str, ...] = DIFFICULTIES
    # answers without (all of) their thought carry a compact working before the box
    # (ponder.train.answer_work): the small model cannot do the work in its head
    answer_working: bool = False
    init_from: str | None = None  # a checkpoint dir whose weights start the run (fine-tuning)
    seq_len: int = 1024
    # optimisation
    batch_size: int = 64  # packed sequences per optimiser step
    max_steps: int = 3000
    time_budget_minutes: float | None = None  # if set, the schedule also runs on wall-clock time
    session_minutes: float | None = None  # stop this process (checkpoint + export) after this long
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    # runtime
    device: str = "auto"  # auto, cpu, cuda
    compile: bool = False
    num_workers: int = -1  # data workers; -1: one per spare CPU core, at most 8
    log_every: int = 20
    checkpoint_every: int = 500
    snapshot_every: int = 0  # if > 0, also export the model to out_dir/snapshots/step-N this often
    save_dtype: str = "bfloat16"  # the exported model's weights
    progress_bar: bool = True

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len


PRESETS: dict[str, TrainConfig] = {
    # A CPU smoke run: a few seconds, proves the whole pipeline (and that the loss falls).
    "tiny": TrainConfig(
        out_dir="runs/tiny",
        tokenizer_items_per_cell=40,
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        num_kv_heads=1,
        head_dim=32,
        intermediate_size=128,
        max_position_embeddings=1024,
        difficulty_weights={"easy": 1.0},
        seq_len=256,
        batch_size=8,
        max_steps=40,
        lr=3e-3,
        warmup_steps=5,
        num_workers=0,
        log_every=5,
        checkpoint_every=20,
        save_dtype="float32",
    ),
    # The shipped model (12.9M parameters): 1,750 steps, 115M tokens, about 2 minutes alone on one
    # H100. The mix keeps hard items hard (docs/model.md, "Choosing the model"): 10% hard examples,
    # hard boxes and word problems weighted up, ten times the classic boxes puzzle (learned
    # last), and 10% probe examples so that a forced answer reads the thought's settled result.
    "builtin": TrainConfig(
        out_dir="runs/builtin",
        max_steps=1750,
        batch_size=64,
        seq_len=1024,
        lr=2e-3,
        warmup_steps=300,
        difficulty_weights={"easy": 0.35, "medium": 0.55, "hard": 0.1},
        cell_weights={"boxes/hard": 2.0, "word_problems/hard": 3.0, "boxes/easy": 10.0},
        probe_fraction=0.1,
        compile=True,
        log_every=50,
        checkpoint_every=600,
    ),
}
# The shipped model fine-tuned for robustness outside its task format (docs/flywheel.md,
# "Robustness"): the builtin mix at a tenth of the learning rate, plus paraphrased questions,
# plain small sums, direct answers (enable_thinking=False) and budget-cut thoughts that answer.
PRESETS["robust"] = replace(
    PRESETS["builtin"],
    out_dir="runs/robust",
    init_from=str(BUILTIN_MODEL_DIR),
    tokenizer_dir=str(BUILTIN_MODEL_DIR),
    max_steps=1500,
    lr=3e-4,
    warmup_steps=40,
    paraphrase_fraction=0.4,
    plain_fraction=0.08,
    budget_cut_fraction=0.3,
    no_think_fraction=0.4,
    shortcut_difficulties=("easy",),
    checkpoint_every=1000,
)

# The robust model fine-tuned so that answers without (all of) their thought work the problem out
# before the box (ponder.train.answer_work; docs/model.md, "Answers with working"): direct answers
# and budget cuts on every difficulty, each answer carrying the solution's work lines. Starts from
# the shipped weights; the thinking examples are the builtin mix as before.
PRESETS["working"] = replace(
    PRESETS["robust"],
    out_dir="runs/working",
    max_steps=800,
    answer_working=True,
    no_think_fraction=0.25,
    budget_cut_fraction=0.2,
    shortcut_difficulties=DIFFICULTIES,
)


def load_config(preset: str | None = None, path: str | None = None, **overrides: Any) -> TrainConfig:
    """A preset (default "builtin"), then a TOML/JSON file, then explicit overrides, validated."""
    name = preset or "builtin"
    if name not in PRESETS:
        raise InvalidRequestError(
            f"unknown train preset {name!r}; valid presets: {', '.join(PRESETS)}", param="preset"
        )
    config = PRESETS[name]
    if path is not None:
        config = _apply(config, _read_file(Path(path)), source=path)
    config = _apply(config, {k: v for k, v in overrides.items() if v is not None}, source="flags")
    validate(config)
    return config


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    return asdict(config)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidRequestError(f"train config file {path} does not exist", param="config")
    text = path.read_text()
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise InvalidRequestError(f"cannot parse {path}: {error}", param="config") from error


def _apply(config: TrainConfig, values: dict[str, Any], *, source: str) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidRequestError(
            f"unknown train settings {unknown} in {source}; valid settings: {', '.join(sorted(known))}",
            param="config",
        )
    return replace(config, **values)


def validate(config: TrainConfig) -> None:
    """Raise InvalidRequestError naming the first setting that cannot work."""
    bad_families = sorted(set(config.family_weights) - set(FAMILIES))
    if bad_families:
        raise InvalidRequestError(
            f"unknown families {bad_families} in family_weights; valid: {', '.join(FAMILIES)}",
            param="family_weights",
        )
    bad_levels = sorted(set(config.difficulty_weights) - set(DIFFICULTIES))
    if bad_levels:
        raise InvalidRequestError(
            f"unknown difficulties {bad_levels} in difficulty_weights; valid: {', '.join(DIFFICULTIES)}",
            param="difficulty_weights",
        )
    bad_cells = sorted(
        key
        for key in config.cell_weights
        if key.partition("/")[0] not in FAMILIES or key.partition("/")[2] not in DIFFICULTIES
    )
    if bad_cells:
        raise InvalidRequestError(
            f"unknown cells {bad_cells} in cell_weights; keys are family/difficulty with families "
            f"{', '.join(FAMILIES)} and difficulties {', '.join(DIFFICULTIES)}",
            param="cell_weights",
        )
    for name, weights in (
        ("family_weights", config.family_weights),
        ("difficulty_weights", config.difficulty_weights),
        ("cell_weights", config.cell_weights),
    ):
        if any(w < 0 for w in weights.values()) or (weights and sum(weights.values()) <= 0):
            raise InvalidRequestError(f"{name} must be non-negative with a positive sum", param=name)
    if config.num_heads % config.num_kv_heads:
        raise InvalidRequestError(
            f"num_heads ({config.num_heads}) must be a multiple of num_kv_heads ({config.num_kv_heads})",
            param="num_kv_heads",
        )
    positive = (
        "hidden_size",
        "num_layers",
        "num_heads",
        "num_kv_heads",
        "head_dim",
        "intermediate_size",
        "batch_size",
        "max_steps",
        "seq_len",
        "log_every",
        "checkpoint_every",
    )
    for name in positive:
        if getattr(config, name) <= 0:
            raise InvalidRequestError(f"{name} must be positive", param=name)
    if config.snapshot_every < 0:
        raise InvalidRequestError("snapshot_every must be >= 0 (0: no snapshots)", param="snapshot_every")
    if config.seq_len > config.max_position_embeddings:
        raise InvalidRequestError(
            f"seq_len ({config.seq_len}) exceeds max_position_embeddings ({config.max_position_embeddings})",
            param="seq_len",
        )
    fractions = ("no_think_fraction", "probe_fraction", "paraphrase_fraction", "plain_fraction")
    for name in (*fractions, "budget_cut_fraction"):
        if not 0 <= getattr(config, name) <= 1:
            raise InvalidRequestError(f"{name} must be in [0, 1]", param=name)
    bad_shortcuts = sorted(set(config.shortcut_difficulties) - set(DIFFICULTIES))
    if bad_shortcuts:
        raise InvalidRequestError(
            f"unknown difficulties {bad_shortcuts} in shortcut_difficulties; "
            f"valid: {', '.join(DIFFICULTIES)}",
            param="shortcut_difficulties",
        )
    if config.device not in ("auto", "cpu", "cuda"):
        raise InvalidRequestError("device must be auto, cpu or cuda", param="device")
    if config.save_dtype not in ("float32", "bfloat16", "float16"):
        raise InvalidRequestError("save_dtype must be float32, bfloat16 or float16", param="save_dtype")
