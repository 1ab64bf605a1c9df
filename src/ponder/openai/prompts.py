"""Request -> prompt token ids: the chat template for chats, tokenization for completions.

Prompts are tokenized here, once, so the context-length check can name both numbers and the
engine receives exactly the ids the template produced (which keeps multi-turn prefixes stable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ponder.engine.tokenizer import Tokenizer
from ponder.errors import InvalidRequestError, PromptTooLongError
from ponder.openai.protocol import ChatCompletionRequest, ChatMessage
from ponder.reasoning.strategies import ReasoningPrompt

# Keys apply_chat_template sets itself; a request may not override them.
RESERVED_TEMPLATE_KEYS = frozenset({"messages", "tools", "add_generation_prompt"})


@dataclass
class Prompt:
    text: str | None
    token_ids: list[int]
    # A chat's messages and template arguments, so that another model (an ensemble's) can
    # render the same conversation with its own template.
    messages: list[dict[str, Any]] | None = None
    template_kwargs: dict[str, Any] = field(default_factory=dict)

    def as_engine_input(self) -> dict:
        return {"prompt": self.text, "prompt_token_ids": self.token_ids}

    def as_reasoning_prompt(self) -> ReasoningPrompt:
        """The prompt as a strategy takes it: these token ids for the requested model, and the
        messages, so that an ensemble's other models can render them with their templates."""
        return ReasoningPrompt(
            messages=tuple(self.messages) if self.messages is not None else None,
            text=self.text,
            token_ids=tuple(self.token_ids),
            template_kwargs=dict(self.template_kwargs),
        )

    def echo_text(self, tokenizer: Tokenizer) -> str:
        """What `echo` repeats: the prompt's text, or its token ids decoded."""
        return self.text if self.text is not None else tokenizer.decode(self.token_ids)


def render_chat(
    tokenizer, request: ChatCompletionRequest, extra_template_kwargs: dict[str, Any] | None = None
) -> Prompt:
    """Apply the model's chat template; `extra_template_kwargs` yield to the request's own."""
    kwargs = dict(extra_template_kwargs or {})
    requested = request.chat_template_kwargs or {}
    reserved = RESERVED_TEMPLATE_KEYS.intersection(requested)
    if reserved:
        raise InvalidRequestError(
            f"chat_template_kwargs may not set {sorted(reserved)}; use the request fields",
            param="chat_template_kwargs",
        )
    kwargs.update(requested)
    tools = request.tools if request.tools and request.tool_choice != "none" else None
    messages = [_template_message(message) for message in request.messages]
    try:
        text = tokenizer.apply_chat_template(
            messages, add_generation_prompt=request.add_generation_prompt, tools=tools, **kwargs
        )
    except InvalidRequestError:
        raise
    except Exception as error:  # a template is untrusted code: any failure is the request's
        raise InvalidRequestError(
            f"the model's chat template could not render these messages: {error}",
            param="messages",
        ) from error
    _require_encodable(text, "messages")
    if tools is not None:
        kwargs["tools"] = tools
    return Prompt(text, tokenizer.encode(text, add_special_tokens=False), messages, kwargs)


def completion_prompts(tokenizer, prompt: str | list) -> list[Prompt]:
    """One Prompt per entry of OpenAI's `prompt` (a string, strings, token ids or lists of ids)."""
    if isinstance(prompt, str):
        entries: list = [prompt]
    elif prompt and all(isinstance(item, int) for item in prompt):
        entries = [prompt]
    else:
        entries = list(prompt)
    if not entries:
        raise InvalidRequestError("prompt must not be an empty list", param="prompt")
    prompts = []
    for entry in entries:
        if isinstance(entry, str):
            _require_encodable(entry, "prompt")
            prompts.append(Prompt(entry, tokenizer.encode(entry)))
        else:
            prompts.append(Prompt(None, list(entry)))
        if not prompts[-1].token_ids:
            raise InvalidRequestError("prompt must not be empty", param="prompt")
    return prompts


def check_context_length(prompt: Prompt, max_tokens: int | None, max_model_len: int, where: str) -> None:
    """OpenAI's rule: prompt + requested completion must fit the context, else a 400."""
    num_prompt = len(prompt.token_ids)
    if num_prompt >= max_model_len:
        raise PromptTooLongError(
            f"This model's maximum context length is {max_model_len} tokens, and the {where} "
            f"has {num_prompt} tokens, leaving no room for an answer; shorten the {where}",
            param=where,
        )
    if max_tokens is not None and num_prompt + max_tokens > max_model_len:
        raise PromptTooLongError(
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {num_prompt + max_tokens} tokens ({num_prompt} in the {where}, "
            f"{max_tokens} for the completion). Reduce the {where} or max_tokens to at most "
            f"{max_model_len - num_prompt}",
            param="max_tokens",
        )


def _template_message(message: ChatMessage) -> dict[str, Any]:
    # "developer" is OpenAI's newer name for "system"; templates only know the latter.
    role = "system" if message.role == "developer" else message.role
    rendered: dict[str, Any] = {"role": role, "content": message.content}
    if message.content is None and message.role != "assistant":
        raise InvalidRequestError(f"a {message.role} message needs content", param="messages")
    if message.content is None:  # templates concatenate content; a tool-call turn has none
        rendered["content"] = ""
    for key in ("name", "tool_calls", "tool_call_id"):
        value = getattr(message, key)
        if value is not None:
            rendered[key] = value
    # Templates that render past thoughts (Qwen3 after the last user turn) read this key.
    reasoning = message.reasoning_content or message.reasoning
    if reasoning is not None:
        rendered["reasoning_content"] = reasoning
    return rendered


def _require_encodable(text: str, param: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidRequestError(
            f"the {param} contain text that is not valid Unicode ({error.reason} at position "
            f"{error.start}); send UTF-8 text",
            param=param,
        ) from None
