"""PromptReader: a request body -> what routing needs (prompt length, max tokens, the prompt's
block hashes), tokenized with the model's own tokenizer and chat template, as the replicas do."""

from __future__ import annotations

import json
import logging
from typing import Any

from ponder.engine.tokenizer import Tokenizer
from ponder.openai.prompts import completion_prompts, render_chat
from ponder.openai.protocol import ChatCompletionRequest
from ponder.router.policies import RoutedRequest
from ponder.router.prefix import prompt_block_hashes

logger = logging.getLogger("ponder.router")
DEFAULT_MAX_TOKENS = 256  # the output a request without max_tokens is assumed to take
CHARS_PER_TOKEN = 4  # a rough length for prompts the router cannot tokenize


class PromptReader:
    def __init__(self, tokenizer: Tokenizer | None, block_size: int = 16):
        self.tokenizer = tokenizer
        self.block_size = block_size

    def read(self, path: str, body: dict[str, Any]) -> RoutedRequest:
        max_tokens = _max_tokens(body)
        token_ids = self._token_ids(path, body)
        if token_ids is None:  # bad or unknown body: the replica will say what is wrong
            estimate = len(json.dumps(body.get("messages") or body.get("prompt") or body.get("input") or ""))
            return RoutedRequest(estimate // CHARS_PER_TOKEN + 1, max_tokens, self.block_size)
        hashes = prompt_block_hashes(token_ids, self.block_size)
        return RoutedRequest(len(token_ids), max_tokens, self.block_size, tuple(hashes))

    def _token_ids(self, path: str, body: dict[str, Any]) -> list[int] | None:
        if self.tokenizer is None:
            return None
        try:
            if path.endswith("/chat/completions"):
                return render_chat(self.tokenizer, ChatCompletionRequest.model_validate(body)).token_ids
            if path.endswith("/completions") and isinstance(body.get("prompt"), str | list):
                prompts = completion_prompts(self.tokenizer, body["prompt"])
                return prompts[0].token_ids if prompts else None
        except Exception as error:  # routing is best effort; validation is the replica's job
            logger.debug("could not tokenize a %s body: %s", path, error)
        return None


def _max_tokens(body: dict[str, Any]) -> int:
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_MAX_TOKENS
