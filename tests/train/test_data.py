"""Training examples: the loss covers only the assistant turn; packing keeps examples apart."""

from __future__ import annotations

import random
import statistics
from dataclasses import replace
from pathlib import Path

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from ponder.tasks import DIFFICULTIES, FAMILIES, generate
from ponder.train.chat_format import PROBE_TEXT
from ponder.train.config import PRESETS
from ponder.train.data import (
    IGNORE_INDEX,
    EncodedExample,
    MixSampler,
    PackedTaskDataset,
    encode_examples,
    encode_probe_example,
    example_stream,
    example_texts,
    pack_rows,
)
from ponder.train.tokenizer import load_tokenizer


def test_labels_cover_exactly_the_assistant_turn(task_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    item = generate("equations", "medium", 1)[0]
    prompt, completion = example_texts(item)
    (example,) = encode_examples(tokenizer, [(prompt, completion)])
    learned = [
        token for token, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE_INDEX
    ]
    assert tokenizer.decode(learned, skip_special_tokens=False) == completion
    assert completion.startswith("<think>\n") and completion.endswith("<|im_end|>")
    assert tokenizer.decode(example.input_ids, skip_special_tokens=False) == prompt + completion


def test_no_thinking_example_answers_directly() -> None:
    item = generate("counting", "easy", 1)[0]
    prompt, completion = example_texts(item, thinking=False)
    assert prompt.endswith("<think>\n\n</think>\n\n")
    assert completion == f"\\boxed{{{item.answer}}}<|im_end|>"


def test_probe_examples_learn_only_the_forced_answer(task_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    item = generate("arithmetic", "medium", 1)[0]
    prompt, completion = example_texts(item)
    full = tokenizer.encode(completion, add_special_tokens=False).ids
    answers = set()
    for seed in range(40):
        example = encode_probe_example(tokenizer, item, random.Random(seed))
        text = tokenizer.decode(example.input_ids, skip_special_tokens=False)
        learned = [
            token
            for token, label in zip(example.input_ids, example.labels, strict=True)
            if label != IGNORE_INDEX
        ]
        answer = tokenizer.decode(learned, skip_special_tokens=False)
        thought = text[len(prompt) : text.rindex(PROBE_TEXT)]
        # the context is the served thought's own tokens, cut anywhere, then the probe text
        assert text.startswith(prompt) and text.endswith(PROBE_TEXT + answer)
        cut = len(example.input_ids) - len(learned) - len(tokenizer.encode(PROBE_TEXT).ids)
        assert (
            example.input_ids[len(tokenizer.encode(prompt).ids) : cut]
            == full[: cut - len(tokenizer.encode(prompt).ids)]
        )
        settled = f"Result: {item.answer}\n" in thought
        assert answer == (f"{item.answer}}}<|im_end|>" if settled else "}<|im_end|>")
        answers.add(settled)
    assert answers == {True, False}  # cuts land before and after the result


def test_probe_fraction_mixes_probes_into_the_stream(task_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    probe_ids = tokenizer.encode(PROBE_TEXT).ids

    def is_probe(example: EncodedExample) -> bool:  # the learned part starts right after a probe
        first = next(i for i, label in enumerate(example.labels) if label != IGNORE_INDEX)
        return example.input_ids[first - len(probe_ids) : first] == probe_ids

    config = replace(PRESETS["tiny"], probe_fraction=0.5)
    stream = example_stream(config, tokenizer, random.Random(0))
    probes = sum(is_probe(next(stream)) for _ in range(128))
    assert 40 <= probes <= 88
    plain = example_stream(PRESETS["tiny"], tokenizer, random.Random(0))
    assert not any(is_probe(next(plain)) for _ in range(128))


def test_mix_sampler_follows_weights() -> None:
    sampler = MixSampler({"counting": 1.0, "boxes": 3.0}, {"hard": 1.0})
    rng = random.Random(0)
    draws = [sampler.draw(rng) for _ in range(2000)]
    assert {difficulty for _, difficulty in draws} == {"hard"}
    assert {family for family, _ in draws} == {"counting", "boxes"}
    assert 0.68 < sum(family == "boxes" for family, _ in draws) / len(draws) < 0.82
    uniform = MixSampler({}, {"easy": 1.0})
    assert uniform.cells == [(family, "easy") for family in FAMILIES]


def test_cell_weights_scale_single_cells() -> None:
    sampler = MixSampler(
        {"counting": 1.0, "boxes": 1.0}, {"easy": 1.0, "hard": 1.0}, {"boxes/hard": 0.0, "counting/hard": 2.0}
    )
    rng = random.Random(0)
    draws = [sampler.draw(rng) for _ in range(3000)]
    assert ("boxes", "hard") not in draws
    assert 0.45 < draws.count(("counting", "hard")) / len(draws) < 0.55  # 2 of 1 + 1 + 2


def _examples(lengths: list[int]):
    for index, length in enumerate(lengths):
        yield EncodedExample(
            input_ids=[index + 10] * length, labels=[IGNORE_INDEX] * 2 + [index + 10] * (length - 2)
        )
    while True:
        yield EncodedExample(input_ids=[99] * 3, labels=[IGNORE_INDEX, 99, 99])


def test_pack_rows_fills_rows_and_restarts_positions() -> None:
    rows = pack_rows(_examples([5, 7, 20, 4, 9]), seq_len=16, pad_id=0)
    for row in (next(rows) for _ in range(4)):
        assert len(row.input_ids) == len(row.labels) == len(row.position_ids) == 16
        starts = [i for i, position in enumerate(row.position_ids) if position == 0]
        for start, end in zip(starts, starts[1:] + [16], strict=True):
            assert row.position_ids[start:end] == list(range(end - start))
            if row.input_ids[start] == 0:  # padding is never learned
                assert set(row.labels[start:end]) == {IGNORE_INDEX}
    # the 20-token example is longer than a row and was skipped
    assert all(12 not in next(rows).input_ids for _ in range(3))


def test_packed_dataset_rows_are_deterministic(task_tokenizer_dir: Path) -> None:
    config = PRESETS["tiny"]
    tokenizer_file = str(task_tokenizer_dir / "tokenizer.json")
    first = iter(PackedTaskDataset(config, tokenizer_file))
    second = iter(PackedTaskDataset(config, tokenizer_file))
    for _ in range(3):
        a, b = next(first), next(second)
        assert torch.equal(a["input_ids"], b["input_ids"])
        assert a["input_ids"].shape == (config.seq_len,)
    other = next(iter(PackedTaskDataset(config, tokenizer_file, stream_key=7)))
    assert not torch.equal(other["input_ids"], a["input_ids"])
    # rows are mostly real tokens: packing wastes little
    row = next(first)
    assert (row["labels"] != IGNORE_INDEX).float().mean() > 0.5


def test_packed_examples_do_not_see_each_other() -> None:
    """transformers must build a block-diagonal mask from restarting position ids."""
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=64,
    )
    model = Qwen3ForCausalLM(config).eval()
    first, second = torch.randint(0, 64, (1, 7)), torch.randint(0, 64, (1, 9))
    packed = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(7), torch.arange(9)]).unsqueeze(0)
    with torch.no_grad():
        packed_logits = model(input_ids=packed, position_ids=positions, use_cache=False).logits
        alone = model(input_ids=second, use_cache=False).logits
    torch.testing.assert_close(packed_logits[:, 7:], alone, atol=1e-5, rtol=1e-4)


def test_hard_items_reason_at_least_150_tokens_on_average(task_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    for family in FAMILIES:
        lengths = {}
        for difficulty in DIFFICULTIES:
            items = generate(family, difficulty, 40, split="train")
            lengths[difficulty] = statistics.mean(len(tokenizer.encode(item.solution).ids) for item in items)
        assert lengths["hard"] >= 150, (family, lengths)
        assert lengths["easy"] < lengths["hard"]
