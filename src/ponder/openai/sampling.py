"""OpenAI request fields -> the engine's SamplingParams, including the thinking budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ponder.engine.sampling_params import RequestOutputKind, SamplingParams
from ponder.errors import InvalidRequestError
from ponder.openai.protocol import ChatCompletionRequest, CompletionRequest, SamplingFields
from ponder.openai.settings import ServerSettings
from ponder.openai.structured_format import structured_outputs_of


@dataclass(frozen=True)
class ReasoningPlan:
    """What the reasoning controls of one request resolve to."""

    thinking_budget: int | None = None
    template_kwargs: dict[str, Any] = field(default_factory=dict)


def plan_reasoning(
    request: SamplingFields, settings: ServerSettings, is_reasoning_model: bool
) -> ReasoningPlan:
    """thinking_budget wins over reasoning_effort, which wins over the server's default."""
    effort = request.reasoning_effort
    # The server's default applies when neither reasoning_effort nor thinking_budget is given.
    budget = settings.default_thinking_budget if is_reasoning_model else None
    template_kwargs: dict[str, Any] = {}
    if effort is not None:
        if effort not in settings.effort_budgets:
            allowed = ", ".join(sorted(settings.effort_budgets))
            raise InvalidRequestError(
                f"reasoning_effort must be one of {allowed}; got {effort!r}",
                param="reasoning_effort",
            )
        if not is_reasoning_model:
            raise InvalidRequestError(
                "reasoning_effort needs a reasoning model (one with <think> and </think> tokens)",
                param="reasoning_effort",
            )
        budget = settings.effort_budgets[effort]
        if effort == "none":
            template_kwargs["enable_thinking"] = False
    if request.thinking_budget is not None:
        budget = request.thinking_budget
    return ReasoningPlan(thinking_budget=budget, template_kwargs=template_kwargs)


def build_sampling_params(
    request: ChatCompletionRequest | CompletionRequest, plan: ReasoningPlan
) -> SamplingParams:
    """Always DELTA outputs: streaming and non-streaming handlers read them the same way."""
    temperature = 1.0 if request.temperature is None else request.temperature
    top_p = 1.0 if request.top_p is None else request.top_p
    if top_p == 0:  # OpenAI accepts 0: only the most likely token survives, i.e. greedy
        temperature, top_p = 0.0, 1.0
    return SamplingParams(
        n=request.n,
        temperature=temperature,
        top_p=top_p,
        top_k=request.top_k if request.top_k is not None else -1,
        min_p=request.min_p or 0.0,
        presence_penalty=request.presence_penalty or 0.0,
        frequency_penalty=request.frequency_penalty or 0.0,
        repetition_penalty=request.repetition_penalty or 1.0,
        seed=request.seed,
        stop=request.stop,
        stop_token_ids=request.stop_token_ids,
        include_stop_str_in_output=request.include_stop_str_in_output,
        ignore_eos=request.ignore_eos,
        max_tokens=request.output_limit,
        min_tokens=request.min_tokens,
        logprobs=_logprobs(request),
        prompt_logprobs=_prompt_logprobs(request),
        thinking_budget=plan.thinking_budget,
        structured_outputs=structured_outputs_of(request),
        skip_special_tokens=request.skip_special_tokens,
        output_kind=RequestOutputKind.DELTA,
        kv_transfer=request.kv_transfer_params,
    )


def _logprobs(request: ChatCompletionRequest | CompletionRequest) -> int | None:
    if isinstance(request, ChatCompletionRequest):
        if not request.logprobs:
            if request.top_logprobs:
                raise InvalidRequestError("top_logprobs needs logprobs set to true", param="top_logprobs")
            return None
        return request.top_logprobs or 0
    return request.logprobs


def _prompt_logprobs(request: ChatCompletionRequest | CompletionRequest) -> int | None:
    if isinstance(request, CompletionRequest) and request.echo and request.logprobs is not None:
        return request.logprobs
    return None
