"""ponder: a reasoning-first LLM inference engine and server."""

from ponder.engine.args import EngineArgs
from ponder.engine.outputs import CompletionOutput, Logprob, RequestOutput
from ponder.engine.sampling_params import RequestOutputKind, SamplingParams
from ponder.engine.structured.params import StructuredOutputParams
from ponder.errors import (
    InvalidRequestError,
    ModelLoadError,
    PonderError,
    PromptTooLongError,
    RequestNotFoundError,
    StructuredOutputError,
    UnsupportedModelError,
)
from ponder.version import __version__

__all__ = [
    "__version__",
    "LLM",
    "AsyncEngine",
    "CompletionOutput",
    "EngineArgs",
    "InvalidRequestError",
    "Logprob",
    "ModelLoadError",
    "PonderError",
    "PromptTooLongError",
    "RequestNotFoundError",
    "RequestOutput",
    "RequestOutputKind",
    "SamplingParams",
    "StructuredOutputError",
    "StructuredOutputParams",
    "UnsupportedModelError",
]


def __getattr__(name: str):
    # Importing the engine pulls in torch; keep `import ponder` light for the CLI and bench.
    if name == "LLM":
        from ponder.llm import LLM

        return LLM
    if name == "AsyncEngine":
        from ponder.engine.async_engine import AsyncEngine

        return AsyncEngine
    raise AttributeError(f"module 'ponder' has no attribute {name!r}")
