"""Typed errors users can act on; the server maps each to an OpenAI-style JSON error."""

from __future__ import annotations


class PonderError(Exception):
    """Base class of every error ponder raises on purpose."""


class InvalidRequestError(PonderError, ValueError):
    """A request or its parameters are invalid; `param` names the offending field."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


class PromptTooLongError(InvalidRequestError):
    """The prompt (plus room for one output token) does not fit the model's context."""


class ModelLoadError(PonderError):
    """A checkpoint directory is missing files, is corrupt, or cannot be loaded."""


class UnsupportedModelError(ModelLoadError):
    """The checkpoint's architecture or a config option is not supported."""


class RequestNotFoundError(PonderError, KeyError):
    """An operation named a request id the engine does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "request not found"


class RequestFailedError(PonderError):
    """Handling one request failed inside the engine (its sampling or detokenizing raised); the
    engine ended that request alone and goes on serving the others."""


class TensorParallelError(InvalidRequestError):
    """The model cannot be split over the asked tensor-parallel size (heads, sizes not divisible),
    or the size itself is invalid; the message says which dimension and what would work."""

    def __init__(self, message: str, param: str | None = "tensor_parallel_size"):
        super().__init__(message, param=param)


class TensorParallelWorkerError(PonderError):
    """A tensor-parallel worker process died or a collective with it failed; the engine that
    drives it cannot go on (restart it)."""


class SpeculativeConfigError(InvalidRequestError):
    """The speculative decoding settings are invalid (unknown method, K < 1, a draft model whose
    vocabulary differs from the target's); the message says what is allowed."""


class StructuredOutputError(InvalidRequestError):
    """A structured-output constraint (JSON schema, regex, choice, grammar) is malformed or cannot
    be compiled for this model's vocabulary; `param` names the request field that carried it."""


class KVTransferError(PonderError):
    """A disaggregated request's prompt KV did not arrive intact in time (the prefill worker died,
    the transfer timed out or failed its checksum) and --kv-load-failure-policy is fail."""
