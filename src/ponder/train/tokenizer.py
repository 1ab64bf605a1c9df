"""Train the built-in model's byte-level BPE tokenizer and write it in Hugging Face format."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from ponder.train.chat_format import (
    CHAT_TEMPLATE,
    ENDOFTEXT,
    IM_END,
    IM_START,
    THINK_END,
    THINK_START,
)

# GPT-2's split pattern, except that a digit never joins another digit: every number is read
# one digit per token, which is what lets a small model learn column arithmetic.
_SPLIT_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
# Like Qwen3, the thinking markers are ordinary added tokens: decoding with
# skip_special_tokens keeps them, so a reasoning parser can still find them in the text.
THINKING_TOKENS = (THINK_START, THINK_END)
MODEL_MAX_LENGTH = 2048


def train_tokenizer(corpus: Iterable[str], vocab_size: int, out_dir: str | Path) -> Tokenizer:
    """Learn a BPE vocabulary of ``vocab_size`` from ``corpus``; write HF tokenizer files."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(THINKING_TOKENS),  # the total comes out at vocab_size
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    thinking = [AddedToken(token, special=False, normalized=False) for token in THINKING_TOKENS]
    tokenizer.add_tokens(thinking)
    save_tokenizer(tokenizer, out_dir)
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, out_dir: str | Path) -> None:
    """Write tokenizer.json and a tokenizer_config.json with the chat template and eos."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "unk_token": None,
        "add_bos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MODEL_MAX_LENGTH,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special_map = {"eos_token": IM_END, "pad_token": ENDOFTEXT}
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")


def load_tokenizer(directory: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))


def special_token_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """Ids of the chat and thinking markers, by token text."""
    ids = {}
    for token in (*SPECIAL_TOKENS, *THINKING_TOKENS):
        token_id = tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"tokenizer has no {token!r} token")
        ids[token] = token_id
    return ids
