"""Validates a strategy request (a JSON-like dict) into a StrategySpec; no pydantic, no torch.

Errors are InvalidRequestError with param "reasoning_strategy.<field>", so the server can answer
400 naming the field, exactly as for the other request fields.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from ponder.errors import InvalidRequestError
from ponder.reasoning.specs import PARAM_PREFIX, SPEC_TYPES, StrategySpec


def parse_strategy_spec(value: Mapping[str, Any] | str | StrategySpec) -> StrategySpec:
    """A dict such as {"type": "self_consistency", "n": 16}, or just a type name."""
    if isinstance(value, StrategySpec):
        value.validate()
        return value
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            f"{PARAM_PREFIX} must be an object with a 'type', got {type(value).__name__}",
            param=PARAM_PREFIX,
        )
    kind = value.get("type")
    if kind not in SPEC_TYPES:
        shown = "missing" if kind is None else repr(kind)
        raise InvalidRequestError(
            f"{PARAM_PREFIX}.type is {shown}; valid types: {', '.join(SPEC_TYPES)}",
            param=f"{PARAM_PREFIX}.type",
        )
    spec_class = SPEC_TYPES[kind]
    hints = typing.get_type_hints(spec_class)
    fields = {f.name: f for f in dataclasses.fields(spec_class)}
    arguments = {}
    for name, raw in value.items():
        if name == "type":
            continue
        if name not in fields:
            allowed = ", ".join(fields) or "none"
            raise InvalidRequestError(
                f"{PARAM_PREFIX}.{name} is not a field of strategy {kind!r}; its fields: {allowed}",
                param=f"{PARAM_PREFIX}.{name}",
            )
        arguments[name] = _check_field(name, raw, hints[name], fields[name].metadata)
    for name, spec_field in fields.items():
        if name not in arguments and "min_items" in spec_field.metadata:  # a required list
            _check_list(f"{PARAM_PREFIX}.{name}", spec_field.default, spec_field.metadata)
    spec = spec_class(**arguments)
    spec.validate()
    return spec


def _check_field(name: str, value: Any, annotation: Any, rules: Mapping[str, Any]) -> Any:
    param = f"{PARAM_PREFIX}.{name}"
    allowed = _allowed_types(annotation)
    if value is None:
        if type(None) in allowed:
            return None
        raise InvalidRequestError(f"{param} must not be null", param=param)
    if tuple in allowed:
        return _check_list(param, value, rules)
    if int in allowed and _is_int(value):
        return _check_range(param, value, rules)
    if float in allowed and _is_number(value):
        return _check_range(param, float(value), rules)
    if str in allowed and isinstance(value, str):
        choices = rules.get("choices")
        if choices and value not in choices:
            number = f"an integer in [{rules.get('min')}, {rules.get('max')}] or " if int in allowed else ""
            raise InvalidRequestError(
                f"{param} must be {number}one of {', '.join(choices)}; got {value!r}", param=param
            )
        return value
    if bool in allowed and isinstance(value, bool):
        return value
    wanted = " or ".join(t.__name__ for t in allowed if t is not type(None))
    raise InvalidRequestError(f"{param} must be {wanted}, got {value!r}", param=param)


def _check_range(param: str, value: float, rules: Mapping[str, Any]) -> float:
    low, high = rules.get("min"), rules.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise InvalidRequestError(f"{param} must be in {bounds}, got {value!r}", param=param)
    return value


def _check_list(param: str, value: Any, rules: Mapping[str, Any]) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise InvalidRequestError(f"{param} must be a list of model names", param=param)
    if len(value) < rules.get("min_items", 0):
        raise InvalidRequestError(
            f"{param} needs at least {rules['min_items']} entries, got {len(value)}", param=param
        )
    return tuple(value)


def _allowed_types(annotation: Any) -> tuple[type, ...]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(typing.get_origin(a) or a for a in typing.get_args(annotation))
    return (typing.get_origin(annotation) or annotation,)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
