"""The server's side of the engine: admission (bounded queue), starting engine requests, reading
their merged outputs, and aborting whatever is unfinished when a response ends early."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ponder.engine.thinking import ThinkMarkers
from ponder.openai import errors
from ponder.openai.metrics import ModelMetrics, RequestTracker
from ponder.openai.prompts import Prompt
from ponder.openai.settings import ServerSettings
from ponder.reasoning.session import OutputStream, StreamingEngine

if TYPE_CHECKING:
    from ponder.engine.outputs import RequestOutput
    from ponder.engine.sampling_params import SamplingParams


class EngineClient(StreamingEngine, Protocol):
    """What the server needs of an engine: AsyncEngine, or a scripted fake in tests."""

    @property
    def max_model_len(self) -> int: ...


class Admission:
    """Counts sequences in flight; beyond running + waiting capacity a request gets a 429."""

    def __init__(self, limit: int, retry_after_s: int):
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.in_flight = 0

    def admit(self, num_seqs: int) -> Ticket:
        # A request larger than the whole limit is still let in when nothing else runs.
        if self.in_flight and self.in_flight + num_seqs > self.limit:
            raise errors.queue_full(self.limit, self.retry_after_s)
        self.in_flight += num_seqs
        return Ticket(self, num_seqs)


@dataclass
class Ticket:
    admission: Admission
    num_seqs: int
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission.in_flight -= self.num_seqs


@dataclass
class ServingContext:
    engine: EngineClient
    settings: ServerSettings
    metrics: ModelMetrics | None = None
    admission: Admission = field(init=False)  # from settings: one per served model
    draining: bool = False

    def __post_init__(self) -> None:
        self.admission = Admission(self.settings.max_in_flight, self.settings.retry_after_s)

    @property
    def is_reasoning_model(self) -> bool:
        return ThinkMarkers.from_tokenizer(self.engine.tokenizer) is not None

    def check_model(self, model: str) -> None:
        if not self.settings.accept_any_model and model not in self.settings.served_model_names:
            raise errors.model_not_found(model, self.settings.served_model_names)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:24]}"

    def admit(self, num_seqs: int) -> Ticket:
        """A place for `num_seqs` sequences, or 429 (full) / 503 (draining)."""
        try:
            if self.draining:
                raise errors.draining()
            return self.admission.admit(num_seqs)
        except errors.APIError as error:
            if self.metrics is not None:
                self.metrics.rejected(error.code or "refused")
            raise

    def start(
        self, request_id: str, prompts: Sequence[Prompt], params: SamplingParams, priority: int
    ) -> Generation:
        """Admit and queue one engine request per prompt; typed errors leave nothing behind."""
        generation = Generation(self.admit(len(prompts) * params.n))
        try:
            for index, prompt in enumerate(prompts):
                stream = self.engine.add_request(
                    f"{request_id}-{index}", prompt.as_engine_input(), params, priority=priority
                )
                tracker = self.metrics.track() if self.metrics is not None else None
                generation.runs.append(EngineRun(stream, tracker, prompt))
        except BaseException as error:
            # Refused, not aborted: what was queued goes, and it counts as a rejection.
            for run in generation.runs:
                run.stream.abort()
                run.finished = True
            generation.close()
            if self.metrics is not None and isinstance(error, Exception):
                self.metrics.rejected(errors.from_exception(error).code or "invalid_request")
            raise
        return generation


@dataclass
class EngineRun:
    stream: OutputStream
    tracker: RequestTracker | None
    prompt: Prompt
    finished: bool = False


@dataclass
class Generation:
    """All engine requests behind one API request."""

    ticket: Ticket
    runs: list[EngineRun] = field(default_factory=list)

    async def outputs(self) -> AsyncIterator[tuple[int, RequestOutput]]:
        """(prompt index, DELTA output) as they come, from every engine request."""
        try:
            if len(self.runs) == 1:
                async for output in self.runs[0].stream:
                    self._observe(0, output)
                    yield 0, output
            else:
                async for index, output in _merge([run.stream for run in self.runs]):
                    self._observe(index, output)
                    yield index, output
        finally:
            self.close()

    def close(self) -> None:
        """Abort unfinished engine requests (freeing their KV) and give back the admission."""
        for run in self.runs:
            if not run.finished:
                run.finished = True
                run.stream.abort()
                if run.tracker is not None:
                    run.tracker.abort()
        self.ticket.release()

    def _observe(self, index: int, output: RequestOutput) -> None:
        run = self.runs[index]
        if run.tracker is not None:
            run.tracker.observe(output)
        if output.finished:
            run.finished = True


async def _merge(streams: list[OutputStream]) -> AsyncIterator[tuple[int, Any]]:
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(index: int, stream: OutputStream) -> None:
        try:
            async for output in stream:
                await queue.put((index, output))
        except BaseException as error:  # handed to the reader, which re-raises it
            await queue.put((index, error))
            return
        await queue.put((index, done))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        remaining = len(tasks)
        while remaining:
            index, item = await queue.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
