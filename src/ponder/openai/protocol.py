"""OpenAI request bodies (pydantic v2): strict types, OpenAI's ranges, unknown fields rejected.

Beyond OpenAI's fields the models take vLLM's common extensions (top_k, min_p, ignore_eos, …)
and ponder's reasoning controls (thinking_budget, include_reasoning, reasoning_strategy). Fields
OpenAI defines but ponder cannot honour are accepted only in their neutral form (see
`unsupported_features`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ponder.openai.reasoning_output import ReasoningOutput

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TOKEN_ID = 2**31 - 1
MAX_N = 128
# Bounds on the lists a body may carry, so one request cannot make the server check 10,000
# stop strings per token or walk a million messages: generous next to OpenAI's own limits.
MAX_STOP = 16  # OpenAI: 4
MAX_STOP_CHARS = 1024
MAX_STOP_TOKEN_IDS = 1024
MAX_MESSAGES = 4096
MAX_CONTENT_PARTS = 1024
MAX_TOOLS = 128  # OpenAI: 128
MAX_PROMPTS = 2048  # OpenAI: 2048 prompts per completion request
MAX_METADATA = 16  # OpenAI: 16 pairs
MAX_OPTIONS = 64  # chat_template_kwargs, logit_bias and other free-form objects

TokenId = Annotated[int, Field(ge=0, le=MAX_TOKEN_ID)]
StopString = Annotated[str, Field(max_length=MAX_STOP_CHARS)]
StopField = StopString | Annotated[list[StopString], Field(max_length=MAX_STOP)] | None
Tools = Annotated[list[dict[str, Any]], Field(max_length=MAX_TOOLS)]
Metadata = Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=MAX_METADATA)]
Options = Annotated[dict[str, Any], Field(max_length=MAX_OPTIONS)]
# Checked field by field by ponder.reasoning.spec_parser (errors name
# "reasoning_strategy.<field>"), so the server, LLM.reason and ponder eval agree.
StrategyField = Annotated[
    dict[str, Any] | str | None,
    Field(
        description='a test-time scaling strategy, e.g. {"type": "self_consistency", "n": 16} '
        "or just its type; see docs/reasoning.md",
    ),
]
_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class StreamOptions(BaseModel):
    model_config = _STRICT
    include_usage: bool | None = None
    continuous_usage_stats: bool | None = None  # vLLM: usage in every chunk


class SamplingFields(BaseModel):
    """Fields shared by /v1/completions and /v1/chat/completions."""

    model_config = _STRICT

    model: str
    n: int = Field(1, ge=1, le=MAX_N)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    stop: StopField = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    logit_bias: Annotated[dict[str, float], Field(max_length=MAX_OPTIONS)] | None = None
    user: str | None = None
    # vLLM extensions
    top_k: int | None = Field(None, ge=-1, le=MAX_TOKEN_ID)
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0, le=10)
    min_tokens: int = Field(0, ge=0, le=MAX_TOKEN_ID)
    ignore_eos: bool = False
    stop_token_ids: Annotated[list[TokenId], Field(max_length=MAX_STOP_TOKEN_IDS)] | None = None
    skip_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    priority: int = Field(0, ge=INT64_MIN, le=INT64_MAX)
    # ponder: reasoning controls
    reasoning_effort: str | None = Field(
        None, description="none | minimal | low | medium | high | xhigh | max (server-configured)"
    )
    thinking_budget: int | None = Field(
        None, ge=1, le=MAX_TOKEN_ID, description="max tokens inside <think>; then the answer"
    )
    reasoning_strategy: StrategyField = None
    # vLLM: structured output of the answer (openai/structured_format.py, docs/structured_output.md)
    guided_json: Annotated[dict[str, Any], Field(max_length=MAX_OPTIONS)] | str | None = None
    guided_regex: str | None = None
    guided_choice: Annotated[list[str], Field(max_length=1024)] | None = None
    guided_grammar: str | None = None
    structured_outputs: Annotated[dict[str, Any], Field(max_length=8)] | None = None
    # Set by the disaggregated router only (docs/disaggregated.md): hand-off of the prompt's KV.
    kv_transfer_params: dict[str, Any] | None = None


class ChatMessage(BaseModel):
    # Clients send back the message objects they received (with annotations, audio, refusal…):
    # extra keys are ignored rather than rejected.
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | Annotated[list[dict[str, Any]], Field(max_length=MAX_CONTENT_PARTS)] | None = None
    name: str | None = None
    tool_calls: Tools | None = None
    tool_call_id: str | None = None
    reasoning: str | None = None
    reasoning_content: str | None = None


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKEN_ID)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKEN_ID)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    include_reasoning: bool = True
    reasoning_output: ReasoningOutput | None = Field(
        None,
        description="where the thought goes: 'separate' (reasoning_content), 'content' (inline in "
        "content between think markers, for clients that read only content) or 'both'; "
        "default: the server's --reasoning-output",
    )
    tools: Tools | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    chat_template_kwargs: Options | None = None
    add_generation_prompt: bool = True
    # OpenAI fields with no effect on a self-hosted model
    metadata: Metadata | None = None
    store: bool | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    verbosity: str | None = None
    modalities: Annotated[list[str], Field(max_length=4)] | None = None
    # OpenAI fields ponder cannot honour (rejected unless absent or null)
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    functions: Tools | None = None
    function_call: str | dict[str, Any] | None = None

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


PromptField = (
    str
    | Annotated[list[str], Field(max_length=MAX_PROMPTS)]
    | list[TokenId]
    | Annotated[list[list[TokenId]], Field(max_length=MAX_PROMPTS)]
)


class CompletionRequest(SamplingFields):
    prompt: PromptField
    max_tokens: int | None = Field(16, ge=1, le=MAX_TOKEN_ID)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1, le=MAX_N)

    @property
    def output_limit(self) -> int | None:
        return self.max_tokens


def unsupported_features(request: SamplingFields) -> list[tuple[str, str]]:
    """(param, why) for each field set to something ponder cannot do."""
    problems: list[tuple[str, str]] = []
    if request.logit_bias:
        problems.append(("logit_bias", "logit_bias is not supported"))
    if isinstance(request, ChatCompletionRequest):
        for name in ("audio", "prediction", "web_search_options", "functions", "function_call"):
            if getattr(request, name) is not None:
                problems.append((name, f"{name} is not supported by this server"))
        if request.modalities is not None and request.modalities != ["text"]:
            problems.append(("modalities", "only the 'text' modality is supported"))
        response_type = (request.response_format or {}).get("type", "text")
        if response_type not in ("text", "json_object", "json_schema"):
            problems.append(
                (
                    "response_format",
                    f"response_format {response_type!r} is not supported; use 'text', "
                    "'json_object' or 'json_schema'",
                )
            )
    if isinstance(request, CompletionRequest):
        if request.suffix:
            problems.append(("suffix", "suffix is not supported"))
        if request.best_of is not None and request.best_of != request.n:
            problems.append(("best_of", "best_of must equal n (ranking samples is not supported)"))
    return problems
