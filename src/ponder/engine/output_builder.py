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
    return RequestOutput(
        request_id=request.request_id,
        prompt=request.prompt,
        prompt_token_ids=request.prompt_token_ids,
        outputs=completions,
        finished=finished,
        prompt_logprobs=request.prompt_logprobs,
        metrics=request.metrics,
        num_cached_tokens=request.metrics.num_cached_prompt_tokens,
        error=request.error,
    )


def _cumulative(seq: Sequence) -> CompletionOutput:
    text = seq.text
    return CompletionOutput(
        index=seq.index,
        text=text.raw,
        token_ids=seq.output_token_ids,
        cumulative_logprob=seq.cumulative_logprob,
        logprobs=list(seq.logprobs) if seq.logprobs is not None else None,
        confidences=list(seq.confidences) if seq.confidences is not None else None,
        reasoning=text.reasoning,
        content=text.content,
        num_reasoning_tokens=seq.num_reasoning_tokens,
        num_content_tokens=seq.num_output_tokens - seq.num_reasoning_tokens,
        finish_reason=seq.finish_reason,
        stop_reason=seq.stop_reason,
    )


def _delta(seq: Sequence) -> CompletionOutput:
    sent, text = seq.sent, seq.text
    raw, reasoning, content = text.raw, text.reasoning, text.content
    output = CompletionOutput(
        index=seq.index,
        text=raw[sent.raw_chars :],
        token_ids=seq.output_token_ids[sent.tokens :],
        cumulative_logprob=seq.cumulative_logprob,
        logprobs=seq.logprobs[sent.tokens :] if seq.logprobs is not None else None,
        confidences=seq.confidences[sent.tokens :] if seq.confidences is not None else None,
        reasoning=reasoning[sent.reasoning_chars :],
        content=content[sent.content_chars :],
        num_reasoning_tokens=seq.num_reasoning_tokens,
        num_content_tokens=seq.num_output_tokens - seq.num_reasoning_tokens,
        finish_reason=seq.finish_reason,
        stop_reason=seq.stop_reason,
    )
    sent.tokens, sent.raw_chars = seq.num_output_tokens, len(raw)
    sent.reasoning_chars, sent.content_chars = len(reasoning), len(content)
    return output
