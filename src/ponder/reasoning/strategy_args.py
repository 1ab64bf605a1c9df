"""Command-line strategy text -> (label, spec): "self_consistency:n=16,vote=confidence" or JSON
(`ponder eval --strategy`, `ponder chat --strategy`)."""

from __future__ import annotations

import json
from typing import Any

from ponder.errors import InvalidRequestError
from ponder.reasoning.spec_parser import parse_strategy_spec
from ponder.reasoning.specs import StrategySpec


def parse_strategy_arg(text: str) -> tuple[str, StrategySpec]:
    """`TYPE[:key=value,...]` (a `label=` key names the row; `a|b` is a list) or a JSON object."""
    text = text.strip()
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidRequestError(
                f"--strategy {text!r} is not valid JSON: {error}", param="strategy"
            ) from error
        if not isinstance(fields, dict):
            raise InvalidRequestError("--strategy JSON must be an object", param="strategy")
        label = fields.pop("label", None) or _default_label(fields)
        return label, parse_strategy_spec(fields)
    kind, _, rest = text.partition(":")
    fields: dict[str, Any] = {"type": kind.strip()}
    label = None
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        key, equals, value = pair.partition("=")
        if not equals:
            raise InvalidRequestError(
                f"--strategy {text!r}: expected key=value, got {pair!r}", param="strategy"
            )
        if key.strip() == "label":
            label = value.strip()
        else:
            fields[key.strip()] = _value(value.strip())
    return label or text, parse_strategy_spec(fields)


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if "|" in text:
        return [part for part in text.split("|") if part]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text.encode().decode("unicode_escape") if "\\" in text else text


def _default_label(fields: dict[str, Any]) -> str:
    rest = ",".join(f"{k}={v}" for k, v in fields.items() if k != "type")
    return f"{fields.get('type')}:{rest}" if rest else str(fields.get("type"))
