"""Reference greedy decoding and logprobs with Hugging Face transformers (float32)."""

from __future__ import annotations

import functools

import torch


@functools.cache
def hf_model(model_dir: str):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return model.eval()


def hf_greedy(model_dir: str, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """transformers.generate, greedy, with eos disabled so every run makes max_new_tokens."""
    model = hf_model(str(model_dir))
    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt_ids]),
            attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            min_new_tokens=0,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    return out[0, len(prompt_ids) :].tolist()


def hf_logprobs(model_dir: str, token_ids: list[int]) -> torch.Tensor:
    """log_softmax of the logits at every position of token_ids: [len, vocab]."""
    model = hf_model(str(model_dir))
    with torch.no_grad():
        logits = model(torch.tensor([token_ids])).logits[0]
    return torch.log_softmax(logits.float(), dim=-1)
