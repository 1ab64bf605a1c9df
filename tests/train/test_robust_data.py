"""The robustness mix: budget-cut thoughts that still answer, shortcuts only where allowed,
paraphrased questions and plain sums, and fine-tuning from a trained checkpoint."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ponder.errors import ModelLoadError
from ponder.tasks import generate
from ponder.train.chat_format import BUDGET_CLOSE_TEXT, THINK_END
from ponder.train.config import PRESETS, load_config
from ponder.train.data import IGNORE_INDEX, encode_budget_cut_example, example_stream
from ponder.train.model import build_model, load_initial_weights
from ponder.train.tokenizer import load_tokenizer


def learned_text(tokenizer, example) -> str:
    ids = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE_INDEX]
    return tokenizer.decode(ids, skip_special_tokens=False)


def test_budget_cut_examples_learn_the_gold_answer_after_the_budget_close(task_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    item = generate("word_problems", "easy", 1)[0]
    for seed in range(20):
        example = encode_budget_cut_example(tokenizer, item, random.Random(seed))
        text = tokenizer.decode(example.input_ids, skip_special_tokens=False)
        answer = learned_text(tokenizer, example)
        assert answer == f"\\boxed{{{item.answer}}}<|im_end|>"  # never an empty box
        assert text.endswith(BUDGET_CLOSE_TEXT + answer)
        assert text.count(THINK_END) == 1  # the cut thought itself never closed


def test_shortcuts_are_drawn_only_for_the_allowed_difficulties(task_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    base = replace(PRESETS["tiny"], no_think_fraction=0.5, budget_cut_fraction=0.3, probe_fraction=0.0)

    def shortcuts(config) -> int:
        stream = example_stream(config, tokenizer, random.Random(0))
        return sum(not learned_text(tokenizer, next(stream)).startswith("<think>") for _ in range(100))

    hard_only = {"hard": 1.0}
    assert shortcuts(replace(base, difficulty_weights=hard_only, shortcut_difficulties=("easy",))) == 0
    assert shortcuts(replace(base, difficulty_weights=hard_only)) > 40


def test_paraphrase_fraction_rewrites_the_questions(task_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)

    def questions(config) -> list[str]:
        stream = example_stream(config, tokenizer, random.Random(0))
        texts = [tokenizer.decode(next(stream).input_ids, skip_special_tokens=False) for _ in range(60)]
        return [text.split("<|im_start|>user\n")[1].split("<|im_end|>")[0] for text in texts]

    prefixes = ("What is ", "Solve for x:", "List:")
    assert sum(q.startswith(prefixes) for q in questions(PRESETS["tiny"])) > 20
    mixed = questions(replace(PRESETS["tiny"], paraphrase_fraction=1.0, plain_fraction=0.5))
    assert not any(q.startswith(prefixes) for q in mixed)  # train templates only


def test_the_robust_preset_starts_from_the_shipped_weights() -> None:
    config = load_config("robust")
    assert config.init_from and config.tokenizer_dir == config.init_from
    assert config.shortcut_difficulties == ("easy",) and config.budget_cut_fraction > 0


def test_init_from_loads_every_weight_and_refuses_another_shape(
    task_tokenizer_dir: Path, tmp_path: Path
) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    trained = build_model(PRESETS["tiny"], tokenizer)
    trained.save_pretrained(tmp_path / "trained")
    fresh = build_model(replace(PRESETS["tiny"], seed=1), tokenizer)
    load_initial_weights(fresh, str(tmp_path / "trained"))
    for (name, a), (_, b) in zip(trained.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    wider = build_model(replace(PRESETS["tiny"], intermediate_size=256), tokenizer)
    with pytest.raises(ModelLoadError, match="shape"):
        load_initial_weights(wider, str(tmp_path / "trained"))
