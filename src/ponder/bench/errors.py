"""Typed errors of `ponder bench`: bad flags and targets that cannot be benchmarked."""

from __future__ import annotations

from ponder.errors import PonderError


class BenchError(PonderError):
    """The benchmark cannot start; the message says what to change."""


class BenchConfigError(BenchError, ValueError):
    """A flag or input file is invalid; `flag` names the offending option."""

    def __init__(self, message: str, flag: str | None = None):
        super().__init__(message)
        self.message = message
        self.flag = flag


class ServerUnreachableError(BenchError):
    """Nothing answers at --base-url, or it is not an OpenAI-compatible server."""


class TaskSourceUnavailableError(BenchError):
    """The built-in reasoning tasks (ponder.tasks) cannot be imported in this install."""
