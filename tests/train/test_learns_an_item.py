"""End to end: a tiny model fitted to one item writes its worked solution and passes the checker."""

from __future__ import annotations

from pathlib import Path

import torch

from ponder.tasks import generate
from ponder.train.chat_format import IM_END, prompt_text
from ponder.train.config import load_config
from ponder.train.data import encode_examples, example_texts
from ponder.train.model import build_model
from ponder.train.tokenizer import load_tokenizer


def test_fitted_model_generates_a_checkable_answer(task_tokenizer_dir: Path) -> None:
    torch.manual_seed(0)
    tokenizer = load_tokenizer(task_tokenizer_dir)
    model = build_model(load_config("tiny"), tokenizer)
    item = generate("counting", "easy", 1, split="train")[0]
    (example,) = encode_examples(tokenizer, [example_texts(item)])
    input_ids, labels = torch.tensor([example.input_ids]), torch.tensor([example.labels])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(100):
        model(input_ids=input_ids, labels=labels, use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    prompt = torch.tensor([tokenizer.encode(prompt_text(item.question)).ids])
    output = model.generate(
        prompt,
        max_new_tokens=120,
        do_sample=False,
        eos_token_id=tokenizer.token_to_id(IM_END),
        pad_token_id=0,
    )
    text = tokenizer.decode(output[0, prompt.shape[1] :].tolist(), skip_special_tokens=False)
    assert text.startswith("<think>\n") and text.endswith(IM_END)
    assert item.check(text)
