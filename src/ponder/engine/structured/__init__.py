"""Structured output: constrain a sequence's answer (never its thought) to a JSON schema, any JSON
object, a regex, a choice or a grammar (docs/structured_output.md).

params.py (what the request asks, no heavy imports), compiler.py (xgrammar, LRU cache),
state.py (per-sequence matcher and answer start), mask.py (batched bitmask -> logits)."""

from ponder.engine.structured.params import StructuredOutputParams

__all__ = ["StructuredOutputParams"]
