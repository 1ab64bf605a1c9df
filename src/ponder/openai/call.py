"""Call: one accepted API request, answered whole or as a stream of chunks, then closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class Call(Protocol):
    """What every endpoint's start() returns (ChatRun, CompletionRun, StrategyCall, ResponseRun).
    A transport awaits respond() or iterates stream(), and always calls close() (abort what still
    runs, release the admission), however the response ends."""

    async def respond(self) -> dict: ...

    def stream(self) -> AsyncIterator[dict]: ...

    def close(self) -> None: ...
