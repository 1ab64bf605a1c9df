"""Turns a request's sequences into the RequestOutput its caller asked for (cumulative, delta, final)."""

from __future__ import annotations

from ponder.engine.outputs import CompletionOutput, RequestOutput
from ponder.engine.request import Request, Sequence
from ponder.engine.sampling_params import RequestOutputKind


def build_output(request: Request, updated: set[Sequence]) -> RequestOutput | None:
    """None when there is nothing to send: FINAL_ONLY before the end, or an empty delta."""
    kind = request.params.output_kind
    finished = request.finished
    if kind is RequestOutputKind.FINAL_ONLY and not finished:
        return None
    if kind is RequestOutputKind.DELTA:
        completions = [_delta(seq) for seq in request.sequences if seq in updated]
        if not completions and not finished:
            return None
    else:
        completions = [_cumulative(seq) for seq in request.sequences]
    if request.aborted:
        for completion in completions:
            completion.finish_reason = completion.finish_reason or "abort"
    metrics = request.metrics
    return RequestOutput(
        request_id=request.request_id,
        prompt=request.prompt,
        prompt_token_ids=request.prompt_token_ids,
        outputs=completions,
        finished=finished,
        prompt_logprobs=request.prompt_logprobs,
        metrics=metrics,
        num_cached_tokens=metrics.num_cached_prompt_tokens if metrics else 0,
        extra=request.extra,
    )


def _cumulative(seq: Sequence) -> CompletionOutput:
    return CompletionOutput(
        index=seq.index,
        text=seq.output_text,
        token_ids=seq.output_token_ids,
        cumulative_logprob=seq.cumulative_logprob,
        logprobs=list(seq.logprobs) if seq.logprobs is not None else None,
        confidences=list(seq.confidences) if seq.confidences is not None else None,
        num_reasoning_tokens=seq.num_reasoning_tokens,
        finish_reason=seq.finish_reason,
        stop_reason=seq.stop_reason,
    )


def _delta(seq: Sequence) -> CompletionOutput:
    start_token, start_char = seq.num_sent_tokens, seq.num_sent_chars
    text = seq.output_text
    seq.num_sent_tokens, seq.num_sent_chars = seq.num_output_tokens, len(text)
    return CompletionOutput(
        index=seq.index,
        text=text[start_char:],
        token_ids=seq.output_token_ids[start_token:],
        cumulative_logprob=seq.cumulative_logprob,
        logprobs=seq.logprobs[start_token:] if seq.logprobs is not None else None,
        confidences=seq.confidences[start_token:] if seq.confidences is not None else None,
        num_reasoning_tokens=seq.num_reasoning_tokens,
        finish_reason=seq.finish_reason,
        stop_reason=seq.stop_reason,
    )
