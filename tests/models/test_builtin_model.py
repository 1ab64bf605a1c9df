"""The shipped reasoning model: loads through the engine and transformers alike, and reasons."""

import pytest
import torch

from ponder import LLM, SamplingParams
from ponder.assets import default_model_dir
from ponder.tasks import FAMILIES, generate

from ..engine._reference import hf_greedy


@pytest.fixture(scope="module")
def llm():
    return LLM(max_num_seqs=16)


def chat_prompt(llm, question: str) -> list[int]:
    tokenizer = llm.get_tokenizer()
    text = tokenizer.apply_chat_template([{"role": "user", "content": question}])
    return tokenizer.encode(text, add_special_tokens=False)


def test_engine_and_transformers_agree_token_for_token(llm):
    assert llm.engine.dtype == torch.float32  # dtype auto on CPU
    items = [generate(family, "medium", 1, seed=3)[0] for family in ("arithmetic", "boxes")]
    prompts = [chat_prompt(llm, item.question) for item in items]
    params = SamplingParams(temperature=0, max_tokens=32, ignore_eos=True)
    outs = llm.generate([{"prompt_token_ids": p} for p in prompts], params)
    for prompt, out in zip(prompts, outs):
        assert out.outputs[0].token_ids == hf_greedy(str(default_model_dir()), prompt, 32)


def test_it_thinks_then_answers_easy_items(llm):
    items = [generate(family, "easy", 1, seed=7)[0] for family in FAMILIES]
    outs = llm.chat(
        [[{"role": "user", "content": item.question}] for item in items],
        SamplingParams(temperature=0, max_tokens=600),
    )
    solved = [item.check(out.outputs[0].text) for item, out in zip(items, outs)]
    assert sum(solved) >= len(items) - 1, [out.outputs[0].text[-200:] for out in outs]
    for out in outs:
        completion = out.outputs[0]
        assert completion.text.startswith("<think>") and "</think>" in completion.text
        assert completion.num_reasoning_tokens > 10
        assert completion.finish_reason == "stop"
