"""OpenAI and vLLM structured-output fields -> the engine's StructuredOutputParams.

Chat: `response_format` {"type": "json_object"} or {"type": "json_schema", "json_schema":
{"name", "schema", "strict"}}. Chat and completions: vLLM's `guided_json`, `guided_regex`,
`guided_choice`, `guided_grammar`, or `structured_outputs` {json | regex | choice | grammar |
json_object}. Responses: `text.format` (mapped to response_format by responses_protocol). At most
one of them per request; every error names the field it came from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ponder.engine.structured.params import StructuredOutputParams
from ponder.errors import StructuredOutputError
from ponder.openai.protocol import ChatCompletionRequest, CompletionRequest

GUIDED_FIELDS = {
    "guided_json": "json",
    "guided_regex": "regex",
    "guided_choice": "choice",
    "guided_grammar": "grammar",
}
STRUCTURED_KEYS = ("json", "regex", "choice", "grammar", "json_object")
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")


def structured_outputs_of(
    request: ChatCompletionRequest | CompletionRequest,
) -> StructuredOutputParams | None:
    found: list[StructuredOutputParams] = []
    if isinstance(request, ChatCompletionRequest) and request.response_format is not None:
        from_format = from_response_format(request.response_format)
        if from_format is not None:
            found.append(from_format)
    for field, key in GUIDED_FIELDS.items():
        value = getattr(request, field)
        if value is not None:
            found.append(_params(field, **{key: value}))
    if request.structured_outputs is not None:
        found.append(from_structured_outputs(request.structured_outputs))
    if len(found) > 1:
        names = ", ".join(p.param for p in found)
        raise StructuredOutputError(
            f"set at most one structured-output field; this request sets {names}", param=found[1].param
        )
    return found[0] if found else None


def from_response_format(response_format: dict[str, Any]) -> StructuredOutputParams | None:
    kind = response_format.get("type", "text")
    if kind not in RESPONSE_FORMAT_TYPES:
        raise StructuredOutputError(
            f"response_format.type must be one of {', '.join(RESPONSE_FORMAT_TYPES)}; got {kind!r}",
            param="response_format.type",
        )
    if kind == "text":
        return None
    if kind == "json_object":
        return _params("response_format", json_object=True)
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or "schema" not in spec:
        raise StructuredOutputError(
            'response_format of type "json_schema" needs json_schema: {"name": ..., "schema": {...}}',
            param="response_format.json_schema.schema",
        )
    return _params("response_format.json_schema.schema", json=spec["schema"])


def from_structured_outputs(spec: dict[str, Any]) -> StructuredOutputParams:
    unknown = sorted(set(spec) - set(STRUCTURED_KEYS))
    if unknown:
        raise StructuredOutputError(
            f"structured_outputs takes {', '.join(STRUCTURED_KEYS)}; unknown: {', '.join(unknown)}",
            param="structured_outputs",
        )
    values = {key: value for key, value in spec.items() if value is not None and value is not False}
    return _params("structured_outputs", **values)


def _params(param: str, **fields: Any) -> StructuredOutputParams:
    choice = fields.get("choice")
    if choice is not None and not isinstance(choice, list | tuple):
        raise StructuredOutputError(f"{param}: choice must be a list of strings", param=param)
    if choice is not None:
        fields["choice"] = tuple(choice)
    if "json_object" in fields and not isinstance(fields["json_object"], bool):
        raise StructuredOutputError(f"{param}: json_object must be true or false", param=param)
    return StructuredOutputParams(param=param, **fields)


def response_format_of_text(text: dict[str, Any] | None) -> dict[str, Any] | None:
    """The Responses API's `text.format` as a chat `response_format`: {"type": "json_schema",
    "name", "schema", "strict"} there is {"type": "json_schema", "json_schema": {...}} here."""
    text_format = (text or {}).get("format")
    if not isinstance(text_format, dict):
        return None
    kind = text_format.get("type", "text")
    if kind not in RESPONSE_FORMAT_TYPES:
        raise StructuredOutputError(
            f"text.format.type must be one of {', '.join(RESPONSE_FORMAT_TYPES)}; got {kind!r}",
            param="text.format.type",
        )
    if kind != "json_schema":
        return {"type": kind}
    spec = {key: value for key, value in text_format.items() if key != "type"}
    return {"type": "json_schema", "json_schema": spec}


@contextlib.contextmanager
def text_format_errors() -> Iterator[None]:
    """Around a Responses request: errors about the response_format it was mapped to name the
    field the client sent, text.format."""
    try:
        yield
    except StructuredOutputError as error:
        param = error.param or ""
        if param.startswith("response_format"):
            renamed = "text.format" + param.removeprefix("response_format").replace(".json_schema", "")
            message = error.message.replace("response_format.json_schema.schema", renamed)
            raise StructuredOutputError(message.replace("response_format", "text.format"), renamed) from None
        raise
