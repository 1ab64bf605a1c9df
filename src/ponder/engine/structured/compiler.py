"""GrammarCache: StructuredOutputParams -> a compiled xgrammar grammar for one tokenizer, LRU-cached.

xgrammar was picked over outlines-core by measurement (docs/results/structured_output.md): on a
151k vocabulary it compiles a JSON schema in ~0.1 s where outlines-core takes ~18 s, at a
per-token mask cost of the same order. It is imported lazily: engines that never see a
constrained request never load it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ponder.engine.structured.params import StructuredOutputParams
from ponder.errors import StructuredOutputError

if TYPE_CHECKING:
    from ponder.engine.tokenizer import Tokenizer

DEFAULT_CACHE_SIZE = 256


def _xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError as exc:  # pragma: no cover - xgrammar is in the server extra
        raise StructuredOutputError(
            "structured output needs the xgrammar package: pip install 'ponder[server]'",
            param="structured_outputs",
        ) from exc
    return xgrammar


def tokenizer_info(tokenizer: Tokenizer, vocab_size: int, stop_token_ids: list[int]) -> Any:
    """xgrammar's view of the vocabulary: token strings by id (padded to the model's logits width,
    the padding ids never allowed), their encoding (byte-level, byte-fallback, raw) and the
    tokens that end the answer."""
    from transformers import PreTrainedTokenizerFast

    xgr = _xgrammar()
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend)
    return xgr.TokenizerInfo.from_huggingface(
        hf_tokenizer, vocab_size=vocab_size, stop_token_ids=sorted(stop_token_ids)
    )


class GrammarCache:
    """Compiles constraints for one model's tokenizer; the most recently used `capacity` compiled
    grammars are kept, keyed by the constraint's canonical text (the tokenizer is fixed per
    cache: one cache per engine). Thread-safe: requests are validated on the caller's thread."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        vocab_size: int,
        stop_token_ids: frozenset[int],
        capacity: int = DEFAULT_CACHE_SIZE,
    ):
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._stop_token_ids = sorted(stop_token_ids)
        self._capacity = capacity
        self._compiler: Any = None
        self._grammars: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def get(self, params: StructuredOutputParams) -> Any:
        """The compiled grammar of `params`; raises StructuredOutputError naming params.param."""
        key = params.cache_key()
        with self._lock:
            compiled = self._grammars.get(key)
            if compiled is not None:
                self._grammars.move_to_end(key)
                self.hits += 1
                return compiled
            self.misses += 1
            compiled = self._compile(params)
            self._grammars[key] = compiled
            if len(self._grammars) > self._capacity:
                self._grammars.popitem(last=False)
            return compiled

    def __len__(self) -> int:
        return len(self._grammars)

    def _compile(self, params: StructuredOutputParams) -> Any:
        compiler = self._get_compiler()
        kind = params.kind
        try:
            if kind == "json":
                # Compact JSON: with free whitespace a weak model can pad forever.
                return compiler.compile_json_schema(params.schema_text, any_whitespace=False)
            if kind == "json_object":
                return compiler.compile_json_schema(
                    json.dumps({"type": "object"}), any_whitespace=False, strict_mode=False
                )
            if kind == "regex":
                assert params.regex is not None
                return compiler.compile_regex(params.regex)
            if kind == "choice":
                assert params.choice is not None
                return compiler.compile_grammar(_choice_grammar(params.choice))
            assert params.grammar is not None
            return compiler.compile_grammar(params.grammar)
        except StructuredOutputError:
            raise
        except Exception as exc:  # xgrammar raises RuntimeError / ValueError with its parser's text
            what = {"json": "JSON schema", "json_object": "JSON object grammar"}.get(kind, kind)
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StructuredOutputError(
                f"{params.param}: the {what} cannot be compiled: {detail}", param=params.param
            ) from exc

    def _get_compiler(self) -> Any:
        if self._compiler is None:
            xgr = _xgrammar()
            info = tokenizer_info(self._tokenizer, self._vocab_size, self._stop_token_ids)
            # xgrammar's own cache is off: this class is the one cache (bounded by count).
            self._compiler = xgr.GrammarCompiler(info, max_threads=2, cache_enabled=False)
        return self._compiler


def _choice_grammar(choices: tuple[str, ...]) -> str:
    """root ::= "a" | "b" ... with each choice as an EBNF string literal (JSON escaping is a
    subset of what xgrammar's EBNF strings accept)."""
    return "root ::= " + " | ".join(json.dumps(choice, ensure_ascii=False) for choice in choices)
