"""Runs the app under uvicorn; SIGTERM (or Ctrl-C) drains in-flight requests, then exits 0."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Generator
from types import FrameType
from typing import Protocol

import uvicorn
from fastapi import FastAPI

logger = logging.getLogger("ponder.server")
DRAIN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Drainable(Protocol):
    """What a draining server stops: the models of `ponder serve`, or the replica router."""

    @property
    def in_flight(self) -> int: ...

    def drain(self) -> None:
        """Refuse new requests (503); in-flight ones go on."""


class DrainingServer(uvicorn.Server):
    """uvicorn.Server that refuses new work once asked to stop and lets running requests finish.

    uvicorn itself stops listening and waits for open requests (up to the graceful-shutdown
    timeout); this adds the refusal (503 and an unhealthy /health on kept-alive connections)
    and exits normally instead of re-raising the signal, so a supervisor sees a clean stop.
    """

    def __init__(self, config: uvicorn.Config, target: Drainable):
        super().__init__(config)
        self.target = target

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.begin_drain) for sig in DRAIN_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def begin_drain(self, sig: int | None = None, frame: FrameType | None = None) -> None:
        if self.should_exit:  # a second signal: stop now
            self.force_exit = True
            return
        logger.warning("draining: %d in flight; refusing new requests", self.target.in_flight)
        self.target.drain()
        self.should_exit = True


def build_server(
    app: FastAPI,
    target: Drainable,
    host: str,
    port: int,
    *,
    drain_timeout_s: float,
    log_level: str = "info",
) -> DrainingServer:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=int(drain_timeout_s),
        lifespan="on",
    )
    return DrainingServer(config, target)
