"""Greedy output is identical with and without speculation, in every engine mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder import LLM
from ponder.engine.sampling_params import SamplingParams
from tests.fixtures.checkpoints import make_checkpoint

REASONING = "Let me think step by step. 12 + 30 = 42. 42 - 7 = 35. Let me check: 12 + 30 = 42. 42 - 7 ="
TINY_PROMPTS = [
    "The quick brown fox jumps over the lazy dog",
    "Let me think step by step. First add 12 and 30",
    "Hello, how are you today?",
    "Numbers like 0 1 2 3 4 5 6 7 8 9 10 100",
]


def greedy(max_tokens: int) -> SamplingParams:
    return SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)


def token_ids(llm: LLM, prompts: list[str], params: SamplingParams) -> list[list[int]]:
    return [list(out.outputs[0].token_ids) for out in llm.generate(prompts, params)]


@pytest.fixture(scope="module")
def draft_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another random-init Qwen3 with the test tokenizer: a draft that is mostly wrong."""
    return make_checkpoint(tmp_path_factory.mktemp("draft"), "qwen3", num_layers=1, seed=7)


SMALL_POOL = {"num_kv_blocks": 64, "max_model_len": 256}


def test_builtin_model_ngram_and_draft() -> None:
    prompts = [REASONING, "Let me check: 6 times 7 is"]
    params = greedy(20)
    expected = token_ids(LLM(**SMALL_POOL), prompts, params)
    for method in ("ngram", "draft"):
        llm = LLM(speculative_method=method, num_speculative_tokens=3, **SMALL_POOL)
        assert token_ids(llm, prompts, params) == expected, method
        stats = llm.engine.stats()
        assert stats.spec_draft_tokens > 0 and stats.spec_accepted_tokens > 0, method


MODES = {
    "batching": {"num_kv_blocks": 128},  # continuous batching of four prompts
    "chunked-prefill": {"num_kv_blocks": 128, "max_num_batched_tokens": 8},  # mixes with drafts
    "preemption": {"block_size": 4, "num_kv_blocks": 32, "max_model_len": 96},  # a tiny pool
}
_expected: dict[str, list[list[int]]] = {}


@pytest.mark.parametrize(
    ("method", "mode"),
    [
        ("ngram", "batching"),
        ("draft-self", "batching"),
        ("draft-other", "batching"),
        ("ngram", "chunked-prefill"),
        ("draft-other", "chunked-prefill"),
        ("ngram", "preemption"),
        ("draft-self", "preemption"),
    ],
)
def test_tiny_qwen3(qwen3_ckpt: Path, draft_ckpt: Path, method: str, mode: str) -> None:
    params = greedy(32)
    knobs = MODES[mode]
    if mode not in _expected:
        _expected[mode] = token_ids(LLM(str(qwen3_ckpt), **knobs), TINY_PROMPTS, params)
    expected = _expected[mode]
    spec: dict = {"speculative_method": "ngram"}
    if method != "ngram":
        draft = qwen3_ckpt if method == "draft-self" else draft_ckpt
        spec = {"speculative_method": "draft", "speculative_model": str(draft)}
    if method == "draft-self":  # its cost per draft is a whole step: the off-switch would stay off
        spec["speculative_adaptive"] = False
    llm = LLM(str(qwen3_ckpt), num_speculative_tokens=4, **spec, **knobs)
    assert token_ids(llm, TINY_PROMPTS, params) == expected
    stats = llm.engine.stats()
    assert stats.spec_draft_tokens > 0
    if method == "draft-self":  # the target drafting for itself: every draft is right
        assert stats.spec_accepted_tokens == stats.spec_draft_tokens
    if method == "draft-other":
        assert stats.spec_accepted_tokens < stats.spec_draft_tokens
    if mode == "preemption":
        assert stats.num_preemptions > 0
    assert stats.kv_blocks_used == 0  # every block, rolled-back ones included, went back


def test_prefix_cache_hit_and_stops(qwen3_ckpt: Path) -> None:
    """A second request reuses blocks the first one published while speculating (blocks that
    held rejected drafts were never published), and max_tokens / stop strings cut exactly."""
    base = LLM(str(qwen3_ckpt), block_size=4, num_kv_blocks=256)
    llm = LLM(
        str(qwen3_ckpt),
        block_size=4,
        num_kv_blocks=256,
        speculative_method="draft",
        speculative_model=str(qwen3_ckpt),
        speculative_adaptive=False,  # a self-draft never pays: the off-switch would stay off
    )
    params = greedy(30)
    first = token_ids(llm, TINY_PROMPTS[:1], params)
    assert first == token_ids(base, TINY_PROMPTS[:1], params)
    # The continuation as a prompt: its blocks were written while speculating.
    follow_up = llm.engine.tokenizer.decode(llm.engine.tokenizer.encode(TINY_PROMPTS[0]) + first[0][:20])
    hits_before = llm.engine.stats().prefix_cache_hits
    assert token_ids(llm, [follow_up], greedy(12)) == token_ids(base, [follow_up], greedy(12))
    assert llm.engine.stats().prefix_cache_hits > hits_before
    for max_tokens in (1, 2, 5, 7):
        got = token_ids(llm, TINY_PROMPTS[:2], greedy(max_tokens))
        assert got == token_ids(base, TINY_PROMPTS[:2], greedy(max_tokens))
        assert all(len(ids) == max_tokens for ids in got)
    text = base.generate(TINY_PROMPTS[:1], params)[0].outputs[0].text
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    stopped = SamplingParams(temperature=0.0, max_tokens=30, ignore_eos=True, stop=[stop], logprobs=2)
    want, got = base.generate(TINY_PROMPTS[:1], stopped)[0], llm.generate(TINY_PROMPTS[:1], stopped)[0]
    assert got.outputs[0].text == want.outputs[0].text and got.outputs[0].finish_reason == "stop"
    assert got.outputs[0].token_ids == want.outputs[0].token_ids
    assert got.outputs[0].logprobs is not None and want.outputs[0].logprobs is not None
    assert [sorted(p) for p in got.outputs[0].logprobs] == [sorted(p) for p in want.outputs[0].logprobs]
    for mine, theirs in zip(got.outputs[0].logprobs, want.outputs[0].logprobs):
        for token, entry in mine.items():
            assert entry.logprob == pytest.approx(theirs[token].logprob, abs=1e-4)
