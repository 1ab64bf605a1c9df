"""Prompt inputs (text, token ids, or a dict of either) -> validated token ids."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence as Seq

from ponder.engine.tokenizer import Tokenizer
from ponder.errors import InvalidRequestError

PromptInput = str | Seq[int] | Mapping[str, object]


def tokenize_prompt(
    prompt: PromptInput, tokenizer: Tokenizer, vocab_size: int
) -> tuple[str | None, list[int]]:
    """Returns (the prompt text if there was one, its token ids); raises InvalidRequestError."""
    text: str | None
    ids: object
    if isinstance(prompt, str):
        text, ids = prompt, tokenizer.encode(prompt)
    elif isinstance(prompt, Mapping):
        given_text = prompt.get("prompt")
        if "prompt_token_ids" in prompt:
            if given_text is not None and not isinstance(given_text, str):
                raise InvalidRequestError("a prompt dict's 'prompt' must be a string", param="prompt")
            text, ids = given_text, prompt["prompt_token_ids"]
        elif isinstance(given_text, str):
            text = given_text
            ids = tokenizer.encode(text)
        else:
            raise InvalidRequestError(
                "a prompt dict needs 'prompt' (str) or 'prompt_token_ids' (list of int)",
                param="prompt",
            )
    elif isinstance(prompt, Seq) and not isinstance(prompt, bytes):
        text, ids = None, prompt
    else:
        raise InvalidRequestError(
            f"prompt must be a string, a list of token ids or a dict, got {type(prompt).__name__}",
            param="prompt",
        )
    if not isinstance(ids, Seq) or not ids:
        raise InvalidRequestError("the prompt must not be empty", param="prompt")
    token_ids = list(ids)
    if not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab_size for t in token_ids):
        raise InvalidRequestError(
            f"prompt token ids must be integers in [0, {vocab_size})", param="prompt_token_ids"
        )
    return text, token_ids
