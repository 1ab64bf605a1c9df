"""Decides whether a sequence is done after it gets a new token, and why."""

from __future__ import annotations

from ponder.engine.request import Sequence


def check_stop(
    seq: Sequence, token_id: int, eos_token_ids: frozenset[int], max_model_len: int
) -> None:
    """Feed the new token to the detokenizer and set finish_reason/stop_reason when it ends seq.

    The token is already appended to seq.token_ids. Stop and eos tokens stay in token_ids (they
    were generated) but never reach the text."""
    params = seq.params
    detokenizer = seq.detokenizer
    if token_id in params.stop_token_ids:
        _finish(seq, "stop", token_id)
    elif token_id in eos_token_ids and not params.ignore_eos:
        _finish(seq, "stop", None)
    else:
        if detokenizer is not None:
            detokenizer.append(token_id)
            if detokenizer.stop_matched is not None:
                _finish(seq, "stop", detokenizer.stop_matched)
                return
        reached_max_tokens = (
            params.max_tokens is not None and seq.num_output_tokens >= params.max_tokens
        )
        if reached_max_tokens or len(seq.token_ids) >= max_model_len:
            _finish(seq, "length", None)
    if seq.finish_reason is not None and detokenizer is not None:
        detokenizer.flush()  # text held back for a possible stop string is final now
        # A stop string hidden behind an incomplete character only shows up at the flush.
        if seq.finish_reason == "length" and detokenizer.stop_matched is not None:
            _finish(seq, "stop", detokenizer.stop_matched)


def _finish(seq: Sequence, reason: str, stop_reason: int | str | None) -> None:
    seq.finish_reason = reason
    seq.stop_reason = stop_reason
