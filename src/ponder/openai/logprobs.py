"""The engine's per-token logprobs in OpenAI's two shapes: chat (`content` list) and legacy."""

from __future__ import annotations

from collections.abc import Sequence

from ponder.engine.outputs import Logprob, PositionLogprobs
from ponder.engine.tokenizer import Tokenizer


class TokenText:
    """Token id -> its text; cached, since the same ids repeat across a response."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[int, str] = {}

    def __call__(self, token_id: int, logprob: Logprob | None = None) -> str:
        if logprob is not None and logprob.decoded_token is not None:
            return logprob.decoded_token
        text = self._cache.get(token_id)
        if text is None:
            text = self._cache[token_id] = self.tokenizer.decode([token_id], skip_special_tokens=False)
        return text


def chat_logprobs(
    token_ids: Sequence[int],
    positions: Sequence[PositionLogprobs] | None,
    top_k: int,
    token_text: TokenText,
) -> list[dict]:
    """One entry per generated token. A token the engine forced (a thinking budget closing the
    thought) has no distribution: it is reported as certain, logprob 0, with no alternatives."""
    entries = []
    for token_id, position in zip(token_ids, positions or [{}] * len(token_ids)):
        chosen = position.get(token_id)
        text = token_text(token_id, chosen)
        entries.append(
            {
                "token": text,
                "logprob": chosen.logprob if chosen is not None else 0.0,
                "bytes": list(text.encode("utf-8", errors="replace")),
                "top_logprobs": [
                    {
                        "token": (alt_text := token_text(alt_id, alt)),
                        "logprob": alt.logprob,
                        "bytes": list(alt_text.encode("utf-8", errors="replace")),
                    }
                    for alt_id, alt in _most_likely(position, top_k)
                ],
            }
        )
    return entries


def completion_logprobs(
    token_ids: Sequence[int],
    positions: Sequence[PositionLogprobs | None],
    top_k: int,
    token_text: TokenText,
    text_offset: int,
) -> dict:
    """Legacy /v1/completions shape; a None position (the first prompt token) has no logprob."""
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    offsets: list[int] = []
    for token_id, position in zip(token_ids, positions):
        chosen = position.get(token_id) if position is not None else None
        text = token_text(token_id, chosen)
        tokens.append(text)
        offsets.append(text_offset)
        text_offset += len(text)
        if position is None:
            token_logprobs.append(None)
            top_logprobs.append(None)
            continue
        token_logprobs.append(chosen.logprob if chosen is not None else 0.0)
        top_logprobs.append(
            {token_text(alt_id, alt): alt.logprob for alt_id, alt in _most_likely(position, top_k)}
        )
    return {
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top_logprobs,
        "text_offset": offsets,
    }


def merge_completion_logprobs(total: dict | None, part: dict) -> dict:
    if total is None:
        return {key: list(values) for key, values in part.items()}
    for key, values in part.items():
        total[key].extend(values)
    return total


def _most_likely(position: PositionLogprobs, top_k: int) -> list[tuple[int, Logprob]]:
    ranked = sorted(position.items(), key=lambda item: (item[1].rank, -item[1].logprob))
    return ranked[:top_k]
