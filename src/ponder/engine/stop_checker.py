"""Why a sequence ends after a new token, if it does: a stop token, eos, a stop string, or length."""

from __future__ import annotations

from ponder.engine.request import Sequence
from ponder.engine.sampling_params import SamplingParams

Finish = tuple[str, int | str | None]  # (finish_reason, stop_reason)


def token_finish(params: SamplingParams, token_id: int, eos_token_ids: frozenset[int]) -> Finish | None:
    """A token that ends the sequence by itself; it stays in token_ids but never reaches the text."""
    if params.stop_token_ids and token_id in params.stop_token_ids:
        return "stop", token_id
    if token_id in eos_token_ids and not params.ignore_eos:
        return "stop", None
    return None


def text_or_length_finish(seq: Sequence, max_model_len: int) -> Finish | None:
    """After the token's text was added: a stop string in it, or a length limit reached."""
    stop = seq.text.stop_matched
    if stop is not None:
        return "stop", stop
    params = seq.params
    if params.max_tokens is not None and seq.num_output_tokens >= params.max_tokens:
        return "length", None
    if len(seq.token_ids) >= max_model_len:
        return "length", None
    return None
