"""Workloads: random lengths and shared prefixes, ShareGPT and JSONL files, reasoning tasks."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from ponder.bench.config import Workload
from ponder.bench.datasets import TaskSource, import_task_source, load_prompts
from ponder.bench.errors import BenchConfigError, TaskSourceUnavailableError
from ponder.bench.tokens import TextTokenizer


@pytest.fixture
def word_tokenizer(tmp_path) -> TextTokenizer:
    """A word-level tokenizer.json: one token per filler word, so lengths are exact."""
    from ponder.bench.datasets import _FILLER_WORDS

    vocab = {"[UNK]": 0} | {word: i + 1 for i, word in enumerate(sorted(set(_FILLER_WORDS)))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    return TextTokenizer(str(tmp_path))


def test_random_lengths_stay_in_the_range(word_tokenizer):
    workload = Workload(num_prompts=200, random_input_len=40, random_output_len=20, random_range_ratio=0.25)
    prompts = load_prompts(workload, word_tokenizer)
    assert len(prompts) == 200
    input_lens = [p.prompt_len for p in prompts]
    assert min(input_lens) >= 30 and max(input_lens) <= 50
    assert all(word_tokenizer.count(p.text) == p.prompt_len for p in prompts)
    assert all(15 <= p.output_len <= 25 for p in prompts)
    assert len({p.output_len for p in prompts}) > 5


def test_random_prefix_ratio_shares_the_start_of_every_prompt():
    workload = Workload(num_prompts=20, random_input_len=40, random_prefix_ratio=0.5, seed=1)
    prompts = load_prompts(workload, None)
    words = [p.text.split() for p in prompts]
    assert all(w[:20] == words[0][:20] for w in words)
    assert len({" ".join(w[20:]) for w in words}) == 20
    assert all(p.prompt_len == 40 for p in prompts)
    unshared = load_prompts(Workload(num_prompts=20, random_input_len=40, seed=1), None)
    assert len({" ".join(p.text.split()[:5]) for p in unshared}) > 15


def test_sharegpt_uses_first_turns_and_drops_short_ones(tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "a b c d"}]},
        {
            "conversations": [
                {"from": "human", "value": "please explain the moon to me"},
                {"from": "gpt", "value": "the moon is a rock in the sky"},
            ]
        },
        {"conversations": [{"from": "human", "value": "only one turn here"}]},
    ]
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(rows))
    prompts = load_prompts(Workload(dataset="sharegpt", dataset_path=str(path)), None)
    assert [(p.text, p.prompt_len, p.output_len) for p in prompts] == [
        ("please explain the moon to me", 6, 8)
    ]
    fixed = load_prompts(Workload(dataset="sharegpt", dataset_path=str(path), output_len=3), None)
    assert fixed[0].output_len == 3


def test_jsonl_prompts_and_line_numbered_errors(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "one two", "max_tokens": 7}\n\n{"prompt": "three"}\n')
    prompts = load_prompts(Workload(dataset="jsonl", dataset_path=str(path)), None)
    assert [(p.text, p.output_len) for p in prompts] == [("one two", 7), ("three", 256)]
    path.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n')
    with pytest.raises(BenchConfigError, match="prompts.jsonl:2"):
        load_prompts(Workload(dataset="jsonl", dataset_path=str(path)), None)
    with pytest.raises(BenchConfigError, match="cannot read"):
        load_prompts(Workload(dataset="jsonl", dataset_path=str(tmp_path / "missing.jsonl")), None)


@dataclass
class FakeTask:
    question: str
    answer: str

    def check(self, answer_text: str) -> bool:
        return answer_text.strip() == self.answer


def fake_generate(family, difficulty, n, split="test", seed=0):
    if family != "sum":
        raise ValueError(f"unknown task family {family!r}; valid families: sum")
    assert split == "test"
    step = {"easy": 1, "hard": 2}[difficulty]
    return [FakeTask(f"What is {i} + {step}?", str(i + step)) for i in range(n)]


def fake_extract(text: str) -> str | None:
    return text.rsplit("answer is", 1)[1] if "answer is" in text else None


def test_reasoning_tasks_build_prompts_with_answer_checks():
    source = TaskSource(generate=fake_generate, extract_answer=fake_extract)
    workload = Workload(dataset="reasoning", task_family="sum", task_difficulty="hard", num_prompts=3)
    prompts = load_prompts(workload, None, source)
    assert [p.text for p in prompts] == ["What is 0 + 2?", "What is 1 + 2?", "What is 2 + 2?"]
    assert all(p.output_len == 1024 for p in prompts)
    assert prompts[1].check is not None
    assert prompts[1].check("so the answer is 3")
    assert not prompts[1].check("so the answer is 4")
    assert not prompts[1].check("no idea")
    assert prompts[1].check("3")  # a bare answer, as TaskItem.check also accepts


def test_unknown_task_family_is_a_flag_error():
    source = TaskSource(generate=fake_generate, extract_answer=fake_extract)
    workload = Workload(dataset="reasoning", task_family="poetry", num_prompts=3)
    with pytest.raises(BenchConfigError, match="valid families: sum"):
        load_prompts(workload, None, source)


def test_missing_task_package_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ponder.tasks", None)  # makes the import fail
    with pytest.raises(TaskSourceUnavailableError, match="--dataset random"):
        import_task_source()


def test_workload_flags_are_validated():
    with pytest.raises(BenchConfigError, match="--dataset-path"):
        Workload(dataset="jsonl")
    with pytest.raises(BenchConfigError, match="--task-family"):
        Workload(dataset="reasoning")
    with pytest.raises(BenchConfigError, match="--random-prefix-ratio"):
        Workload(random_prefix_ratio=1.5)


def test_tokenizer_path_must_hold_a_tokenizer_json(tmp_path):
    with pytest.raises(BenchConfigError, match="tokenizer.json"):
        TextTokenizer(str(tmp_path))


def test_multi_turn_turns_extend_their_conversation_under_one_system_prompt():
    from ponder.bench.datasets import load_prompts

    workload = Workload(dataset="multi-turn", num_prompts=6, num_turns=3, random_input_len=8)
    prompts = load_prompts(workload, None)
    assert len(prompts) == 6
    conversations = 2  # sent turn by turn: c0 t0, c1 t0, c0 t1, ...
    system = " ".join(prompts[0].text.split()[:4])
    assert all(p.text.startswith(system) for p in prompts)
    for i in range(conversations, 6):
        assert prompts[i].text.startswith(prompts[i - conversations].text)
    assert not prompts[1].text.startswith(prompts[0].text)


def test_multi_turn_first_turn_len_and_token_identical_turn_prefixes():
    # The router and the engine match prefixes on token ids: each turn's prompt must tokenize to
    # the previous turn's ids and then more, with the model's own tokenizer.
    from ponder.assets import default_model_dir
    from ponder.bench.datasets import load_prompts
    from ponder.engine.tokenizer import Tokenizer

    workload = Workload(
        dataset="multi-turn",
        num_prompts=9,
        num_turns=3,
        random_input_len=6,
        first_turn_len=40,
        random_output_len=4,
    )
    prompts = load_prompts(workload, None)
    assert len(prompts[0].text.split()) == 3 + 40  # system prompt (half of 6) + the long first message
    assert len(prompts[3].text.split()) == 3 + 40 + 4 + 6  # + reply + a short turn
    tokenizer = Tokenizer.from_dir(default_model_dir())
    ids = [tokenizer.encode(p.text) for p in prompts]
    for i in range(3, 9):
        assert ids[i][: len(ids[i - 3])] == ids[i - 3] and len(ids[i]) > len(ids[i - 3])
    with pytest.raises(BenchConfigError, match="--first-turn-len"):
        Workload(dataset="multi-turn", first_turn_len=0)
