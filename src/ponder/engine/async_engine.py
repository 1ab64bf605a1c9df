"""AsyncEngine: an asyncio front to LLMEngine; one engine loop thread batches every caller's requests."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Iterable

from ponder.engine.args import EngineArgs
from ponder.engine.kv.events import KVEventBatch
from ponder.engine.llm_engine import EngineStats, LLMEngine
from ponder.engine.outputs import RequestOutput
from ponder.engine.prompt_input import PromptInput
from ponder.engine.request import Request
from ponder.engine.sampling_params import SamplingParams
from ponder.errors import InvalidRequestError, PonderError, RequestFailedError, RequestNotFoundError

logger = logging.getLogger("ponder.engine")


class EngineDeadError(PonderError):
    """The engine loop hit an unexpected error; the request could not be completed."""


class RequestStream:
    """Async iterator over one request's outputs; ends after the finished output."""

    def __init__(self, request_id: str, engine: AsyncEngine):
        self.request_id = request_id
        self._engine = engine
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[RequestOutput | BaseException] = asyncio.Queue()
        self.finished = False

    def put(self, item: RequestOutput | BaseException) -> None:
        """Called from the engine thread."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def __aiter__(self) -> RequestStream:
        return self

    async def __anext__(self) -> RequestOutput:
        if self.finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self.finished = True
            raise item
        self.finished = item.finished
        return item

    def abort(self) -> None:
        if not self.finished:
            self.finished = True
            self._engine.abort(self.request_id)


class AsyncEngine:
    def __init__(self, engine: LLMEngine):
        self.engine = engine
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._streams: dict[str, RequestStream] = {}
        self._wakeup = threading.Event()
        self._stopped = False
        self._stats = engine.stats()
        self._thread = threading.Thread(target=self._run_loop, name="ponder-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_engine_args(cls, args: EngineArgs) -> AsyncEngine:
        return cls(LLMEngine(args.create_engine_config()))

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    @property
    def max_model_len(self) -> int:
        return self.engine.max_model_len

    def add_request(
        self,
        request_id: str | None,
        prompt: PromptInput,
        params: SamplingParams,
        *,
        priority: int = 0,
        ahead: bool = False,
        prefix_of: tuple[str, int] | None = None,
    ) -> RequestStream:
        """Validate now (raising typed errors), queue for the engine loop, return the stream.
        `ahead`, `prefix_of`: as in LLMEngine.make_request."""
        if self._stopped:
            raise EngineDeadError("the engine is shut down")
        request_id = request_id or uuid.uuid4().hex
        if request_id in self._streams:
            raise InvalidRequestError(f"request id {request_id!r} is already in use", param="request_id")
        request = self.engine.make_request(
            request_id, prompt, params, priority=priority, ahead=ahead, prefix_of=prefix_of
        )
        stream = RequestStream(request_id, self)
        self._streams[request_id] = stream
        self._commands.put(("add", request))
        self._wakeup.set()
        return stream

    async def generate(
        self,
        prompt: PromptInput,
        params: SamplingParams,
        request_id: str | None = None,
        *,
        priority: int = 0,
    ) -> AsyncIterator[RequestOutput]:
        """Like add_request, but aborts the request if the caller stops iterating early."""
        stream = self.add_request(request_id, prompt, params, priority=priority)
        try:
            async for output in stream:
                yield output
        finally:
            stream.abort()

    def abort(self, request_id: str) -> None:
        """Abort a request (no-op if it already finished); frees its KV blocks."""
        if self._streams.pop(request_id, None) is not None:
            self._commands.put(("abort", request_id))
            self._wakeup.set()

    def stop_branch(self, request_id: str, index: int) -> None:
        """End sample `index` of a request early (its stream gets its final delta); frees its KV."""
        if request_id in self._streams:
            self._commands.put(("stop", (request_id, index)))
            self._wakeup.set()

    def stats(self) -> EngineStats:
        """Engine stats as of the end of the last step (updated by the loop thread)."""
        return self._stats

    def kv_events(self, after_seq: int = 0) -> KVEventBatch:
        """KV blocks stored / evicted since after_seq (thread-safe; for a KV-aware router)."""
        return self.engine.kv.pool.events.since(after_seq)

    @property
    def kv_block_size(self) -> int:
        return self.engine.kv.block_size

    async def shutdown(self) -> None:
        self._stopped = True
        self._wakeup.set()
        await asyncio.to_thread(self._thread.join)
        self.engine.shutdown()

    # ---- engine thread -----------------------------------------------------------------

    def _run_loop(self) -> None:
        engine = self.engine
        while not self._stopped:
            self._drain_commands()
            if not engine.has_unfinished_requests():
                self._stats = engine.stats()
                self._wakeup.wait()
                self._wakeup.clear()
                continue
            try:
                outputs = engine.step()
            except Exception as error:  # a bug, not bad input: fail in-flight requests, keep serving
                logger.exception("engine step failed")
                self._fail_all(error)
                continue
            self._stats = engine.stats()  # before delivery: a finished caller sees final stats
            self._deliver(outputs)
        self._fail_all(EngineDeadError("the engine shut down"))

    def _drain_commands(self) -> None:
        while True:
            try:
                command, argument = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                if command == "add":
                    self._add(argument)
                elif command == "stop":
                    self._deliver([self.engine.stop_sequence(*argument)])
                else:
                    self.engine.abort_request(argument)
            except (RequestNotFoundError, InvalidRequestError):
                pass  # finished meanwhile, or a branch that never started

    def _deliver(self, outputs: Iterable[RequestOutput | None]) -> None:
        for output in outputs:
            if output is None:
                continue
            stream = self._streams.get(output.request_id)
            if stream is not None:
                if output.finished:
                    # Release the id before the caller can see the end: it may reuse it at once.
                    self._streams.pop(output.request_id, None)
                failed = output.error is not None
                stream.put(RequestFailedError(f"request failed: {output.error}") if failed else output)

    def _add(self, request: Request) -> None:
        if request.request_id not in self._streams:
            return  # aborted before it was added
        try:
            self.engine.add(request)
        except Exception as error:  # never let one request take the engine loop down
            self._streams.pop(request.request_id).put(error)

    def _fail_all(self, error: Exception) -> None:
        for request_id in list(self.engine.requests):
            try:
                self.engine.abort_request(request_id)
            except RequestNotFoundError:
                pass
        streams = list(self._streams.values())
        self._streams.clear()  # ids free before any caller hears of the failure
        for stream in streams:
            stream.put(EngineDeadError(f"engine error: {error}"))
