"""StructuredOutputParams: what shape the answer must have (JSON schema, any JSON, regex, choice,
grammar), checked for types up front; the grammar itself is compiled by the engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ponder.errors import StructuredOutputError

MAX_SPEC_CHARS = 100_000  # a schema, regex or grammar larger than this is refused, not compiled
MAX_CHOICES = 1024


@dataclass(frozen=True)
class StructuredOutputParams:
    """Exactly one of the constraint fields is set. `param` is the request field that set it
    (e.g. "response_format"), so errors name what the user wrote."""

    json: dict[str, Any] | str | None = None  # a JSON schema (object or its text)
    json_object: bool = False  # any JSON object
    regex: str | None = None
    choice: tuple[str, ...] | None = None  # the answer is exactly one of these strings
    grammar: str | None = None  # EBNF (GBNF) grammar text
    param: str = "structured_outputs"

    def __post_init__(self) -> None:
        if isinstance(self.choice, list):
            object.__setattr__(self, "choice", tuple(self.choice))
        _validate(self)

    @property
    def kind(self) -> str:
        for name in ("json", "regex", "choice", "grammar"):
            if getattr(self, name) is not None:
                return name
        return "json_object"

    def cache_key(self) -> tuple[str, str]:
        """(kind, text): equal constraints share one compiled grammar."""
        kind = self.kind
        if kind == "json":
            return kind, self.schema_text
        if kind == "choice":
            return kind, json.dumps(self.choice)
        if kind == "json_object":
            return kind, ""
        value = getattr(self, kind)
        assert isinstance(value, str)
        return kind, value

    @property
    def schema_text(self) -> str:
        if isinstance(self.json, str):
            return self.json
        # Keys keep their order: the answer lists properties in the schema's order.
        return json.dumps(self.json, separators=(",", ":"))


def _validate(params: StructuredOutputParams) -> None:
    param = params.param
    set_fields = [
        name for name in ("json", "regex", "choice", "grammar") if getattr(params, name) is not None
    ]
    if params.json_object:
        set_fields.append("json_object")
    if len(set_fields) != 1:
        raise StructuredOutputError(
            f"{param} must set exactly one of json, json_object, regex, choice or grammar; "
            f"got {', '.join(set_fields) or 'none'}",
            param=param,
        )
    if params.json is not None:
        _check_json_schema(params.json, param)
    for name in ("regex", "grammar"):
        value = getattr(params, name)
        if value is not None and (not isinstance(value, str) or not value):
            raise StructuredOutputError(f"{param}: {name} must be a non-empty string", param=param)
        if isinstance(value, str) and len(value) > MAX_SPEC_CHARS:
            raise StructuredOutputError(
                f"{param}: {name} has {len(value)} characters, at most {MAX_SPEC_CHARS} are allowed",
                param=param,
            )
    if params.choice is not None:
        choices = params.choice
        if not isinstance(choices, tuple) or not choices or len(choices) > MAX_CHOICES:
            raise StructuredOutputError(
                f"{param}: choice must be a list of 1 to {MAX_CHOICES} strings", param=param
            )
        if not all(isinstance(c, str) and c for c in choices):
            raise StructuredOutputError(f"{param}: every choice must be a non-empty string", param=param)


def _check_json_schema(schema: object, param: str) -> None:
    if isinstance(schema, str):
        if len(schema) > MAX_SPEC_CHARS:
            raise StructuredOutputError(
                f"{param}: the JSON schema has {len(schema)} characters, at most {MAX_SPEC_CHARS}",
                param=param,
            )
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise StructuredOutputError(
                f"{param}: the JSON schema is not valid JSON: {exc}", param=param
            ) from exc
    if not isinstance(schema, dict):
        raise StructuredOutputError(
            f"{param}: a JSON schema must be an object, got {type(schema).__name__}", param=param
        )
