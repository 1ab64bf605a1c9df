"""The paged model's logits equal transformers' for one prompt, a flat batch, and chunked steps."""

from __future__ import annotations

import functools

import pytest
import torch
from transformers import AutoModelForCausalLM

from ponder.models import load_model, read_arch_config
from tests.fixtures.checkpoints import make_checkpoint
from tests.fixtures.paged_batch import PagedModelDriver

ATOL = 1e-4
PROMPTS = [
    [(7 * j + 3) % 300 for j in range(23)],
    [(11 * j + 5) % 300 for j in range(9)],
    [(13 * j + 1) % 300 for j in range(14)],
]


@pytest.fixture(scope="module")
def linear_rope_ckpt(tmp_path_factory):
    return make_checkpoint(
        tmp_path_factory.mktemp("llama_linear"),
        "llama",
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=16,
        rope_scaling={"rope_type": "linear", "factor": 2.5},
        seed=3,
    )


@pytest.fixture(params=["qwen3_ckpt", "qwen2_ckpt", "llama_ckpt", "linear_rope_ckpt"])
def ckpt(request):
    return request.getfixturevalue(request.param)


@functools.cache
def hf_model(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


@torch.inference_mode()
def hf_last_logits(path, tokens: list[int]) -> torch.Tensor:
    return hf_model(path)(torch.tensor([tokens])).logits[0, -1].float()


def driver_for(path, block_size=4):
    arch = read_arch_config(path)
    model = load_model(path, arch, torch.float32, "cpu")
    return PagedModelDriver.for_arch(model, arch, block_size=block_size)


def test_single_prompt_in_one_chunk(ckpt):
    logits = driver_for(ckpt).step({0: PROMPTS[0]})
    assert logits.shape == (1, 331) and logits.dtype == torch.float32
    torch.testing.assert_close(logits[0], hf_last_logits(ckpt, PROMPTS[0]), atol=ATOL, rtol=0)


def test_batch_of_prompts_in_one_flat_step(ckpt):
    logits = driver_for(ckpt, block_size=16).step(dict(enumerate(PROMPTS)))
    for row, prompt in zip(logits, PROMPTS, strict=True):
        torch.testing.assert_close(row, hf_last_logits(ckpt, prompt), atol=ATOL, rtol=0)


def test_chunked_prefill_then_decode_matches_at_every_step(ckpt):
    """Chunks over cached prefixes share steps with other sequences' decodes."""
    driver = driver_for(ckpt, block_size=4)
    chunk_sizes = [7, 4, 5]  # 23 = 7+7+7+2, 9 = 4+4+1, 14 = 5+5+4
    fed: list[list[int]] = [[] for _ in PROMPTS]
    next_token: dict[int, int] = {}
    for _ in range(7):
        chunks = {}
        for seq, prompt in enumerate(PROMPTS):
            done = len(fed[seq])
            finished = done >= len(prompt)
            chunks[seq] = [next_token[seq]] if finished else prompt[done : done + chunk_sizes[seq]]
            fed[seq] += chunks[seq]
        logits = driver.step(chunks)
        for row, seq in zip(logits, chunks, strict=True):
            expected = hf_last_logits(ckpt, fed[seq])
            torch.testing.assert_close(row, expected, atol=ATOL, rtol=0)
            next_token[seq] = int(expected.argmax())
    assert all(len(fed[seq]) >= len(PROMPTS[seq]) + 3 for seq in range(len(PROMPTS)))
