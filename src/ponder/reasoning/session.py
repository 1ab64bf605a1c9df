"""EngineSession: how a strategy drives an engine: submit requests, watch their branches grow,
stop a branch, cancel a request. One strategy run owns one session per model it uses.

Two implementations share this contract: `AsyncEngineSession` over the server's AsyncEngine, and
`ponder.reasoning.inline_engine.InlineSession`, which steps an LLMEngine itself so offline runs
are deterministic (a strategy reacts to every step before the next one runs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ponder.engine.output_text import split_token_ids
from ponder.engine.outputs import RequestOutput
from ponder.engine.sampling_params import RequestOutputKind, SamplingParams
from ponder.engine.thinking import ThinkMarkers

if TYPE_CHECKING:
    from ponder.engine.tokenizer import Tokenizer

BRANCH = "branch"  # a sample of the problem: its tokens are reasoning or answer
PROBE = "probe"  # a short read-out forked from a live thought: its tokens are probe cost


@dataclass(frozen=True)
class BranchOutput:
    """What a branch answers with: its tokens after the prompt and the engine's split of them."""

    token_ids: list[int]
    reasoning: str
    content: str


@dataclass(eq=False)
class BranchState:
    """Everything one sample has produced so far (accumulated from delta outputs)."""

    request_id: str
    index: int
    kind: str
    prompt_token_ids: list[int]
    token_ids: list[int] = field(default_factory=list)
    reasoning: str = ""  # the engine's split of what it generated: the thought
    content: str = ""  # and the answer
    confidences: list[float | None] = field(default_factory=list)
    cumulative_logprob: float = 0.0
    num_reasoning_tokens: int = 0
    finish_reason: str | None = None
    stopped: bool = False  # ended early by the strategy (its tokens still count)
    # Answered by a probe (strategies.probing): the thought up to the probe, the probe's answer.
    settled: BranchOutput | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def mean_logprob(self) -> float:
        return self.cumulative_logprob / max(1, self.num_tokens)

    @property
    def output(self) -> BranchOutput:
        """What the branch answers with: the probe's settled answer, else its own output."""
        return self.settled or BranchOutput(self.token_ids, self.reasoning, self.content)


@dataclass(eq=False)
class RequestHandle:
    request_id: str
    kind: str
    branches: list[BranchState]
    num_cached_tokens: int = 0  # prompt tokens the engine found in its prefix cache

    @property
    def finished(self) -> bool:
        return all(branch.finished for branch in self.branches)

    @property
    def live(self) -> list[BranchState]:
        return [branch for branch in self.branches if not branch.finished]


@dataclass(frozen=True)
class Submission:
    """One engine request as `EngineSession.submit` hands it to an implementation."""

    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    ahead: bool  # admitted before every waiting request
    prefix_of: tuple[str, int] | None = None  # (request id, index) of a running sample it extends

    def engine_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `make_request` / `add_request` after the request id."""
        return {
            "prompt": {"prompt_token_ids": self.prompt_token_ids},
            "params": self.params,
            "ahead": self.ahead,
            "prefix_of": self.prefix_of,
        }


class EngineSession(ABC):
    def __init__(self, tokenizer: Tokenizer, name: str):
        self.tokenizer = tokenizer
        self.name = name
        self.handles: list[RequestHandle] = []
        self._by_id: dict[str, RequestHandle] = {}
        self._prefix = uuid.uuid4().hex[:12]
        self._counter = itertools.count()
        self.markers = ThinkMarkers.from_tokenizer(tokenizer)  # None: the model does not think

    # ---- what strategies call ----------------------------------------------------------

    def submit(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        kind: str = BRANCH,
        *,
        ahead: bool = False,
        prefix_of: BranchState | None = None,
    ) -> RequestHandle:
        """Start one engine request; its n branches share the prompt's prefill and KV.
        `ahead`: queue it before every waiting request (a probe of a running thought: a few
        tokens that may end the thought, worth more than starting anything new).
        `prefix_of`: a running branch whose tokens the prompt starts with; the request reuses its
        KV, the partly written last block included (a probe then computes only its own text)."""
        request_id = f"reason-{self._prefix}-{next(self._counter)}"
        params = dataclasses.replace(params, output_kind=RequestOutputKind.DELTA)
        prompt = list(prompt_token_ids)
        source = None if prefix_of is None else (prefix_of.request_id, prefix_of.index)
        self._start(Submission(request_id, prompt, params, ahead, source))  # typed errors first
        branches = [BranchState(request_id, i, kind, prompt) for i in range(params.n)]
        handle = RequestHandle(request_id, kind, branches)
        self.handles.append(handle)
        self._by_id[request_id] = handle
        return handle

    def stop_branch(self, branch: BranchState) -> None:
        """End one branch now and free its KV; the request's other branches go on."""
        if branch.finished or branch.stopped:
            return
        branch.stopped = True
        self._stop(branch.request_id, branch.index)

    def cancel(self, handle: RequestHandle) -> None:
        """End every unfinished branch of a request (frees its KV)."""
        live = handle.live
        if not live:
            return
        for branch in live:
            branch.stopped = True
            branch.finish_reason = "abort"
        self._abort(handle.request_id)

    def close(self) -> None:
        for handle in self.handles:
            self.cancel(handle)

    @property
    def in_flight(self) -> bool:
        return any(not handle.finished for handle in self.handles)

    async def wait(self) -> list[BranchState]:
        """Wait for the next outputs of this session's requests; returns the branches that grew."""
        if not self.in_flight:
            raise RuntimeError("wait() with no request in flight would never return")
        changed: dict[int, BranchState] = {}
        for output in await self._next_outputs():
            for branch in self.apply(output):
                changed[id(branch)] = branch
        return list(changed.values())

    async def run_to_end(self, handle: RequestHandle) -> RequestHandle:
        while not handle.finished:
            await self.wait()
        return handle

    def split(self, prompt_token_ids: list[int], output_token_ids: list[int]) -> BranchOutput:
        """Tokens that follow a prompt (joined from several requests), with the engine's
        thought/answer split of them."""
        split = split_token_ids(self.tokenizer, self.markers, prompt_token_ids, output_token_ids)
        return BranchOutput(list(output_token_ids), split.reasoning, split.content)

    # ---- bookkeeping -------------------------------------------------------------------

    def apply(self, output: RequestOutput) -> list[BranchState]:
        handle = self._by_id.get(output.request_id)
        if handle is None:
            return []
        handle.num_cached_tokens = output.num_cached_tokens
        changed = []
        for completion in output.outputs:
            branch = handle.branches[completion.index]
            branch.token_ids.extend(completion.token_ids)
            branch.reasoning += completion.reasoning
            branch.content += completion.content
            if completion.confidences is not None:
                branch.confidences.extend(completion.confidences)
            if completion.cumulative_logprob is not None:
                branch.cumulative_logprob = completion.cumulative_logprob
            branch.num_reasoning_tokens = completion.num_reasoning_tokens
            if completion.finish_reason is not None:
                branch.finish_reason = completion.finish_reason
            changed.append(branch)
        if output.finished:
            for branch in handle.live:  # branches that never started, or an aborted request
                branch.finish_reason = "abort"
        return changed

    # ---- what an implementation provides -----------------------------------------------

    @abstractmethod
    def _start(self, submission: Submission) -> None:
        """Queue the request (validating it: typed errors propagate)."""

    @abstractmethod
    def _stop(self, request_id: str, index: int) -> None: ...

    @abstractmethod
    def _abort(self, request_id: str) -> None: ...

    @abstractmethod
    async def _next_outputs(self) -> list[RequestOutput]:
        """At least one output of this session's requests (or an engine error raised)."""

    @abstractmethod
    def spare_seats(self) -> int:
        """Sequences the engine could still start at once (a load signal: `wave="auto"`)."""


class OutputStream(Protocol):
    """One request's outputs as they come (AsyncEngine's RequestStream)."""

    def __aiter__(self) -> AsyncIterator[RequestOutput]: ...

    def abort(self) -> None: ...


class StreamingEngine(Protocol):
    """What a session needs of a shared engine: AsyncEngine, or a scripted fake in tests."""

    @property
    def tokenizer(self) -> Tokenizer: ...

    def add_request(
        self,
        request_id: str | None,
        prompt: Any,
        params: SamplingParams,
        *,
        priority: int = 0,
        ahead: bool = False,
        prefix_of: tuple[str, int] | None = None,
    ) -> OutputStream: ...

    def stop_branch(self, request_id: str, index: int) -> None: ...

    def stats(self) -> Any: ...


class AsyncEngineSession(EngineSession):
    """A session over AsyncEngine (the server's engine): many sessions share its engine loop."""

    def __init__(self, engine: StreamingEngine, name: str = "default"):
        super().__init__(engine.tokenizer, name)
        self.engine = engine
        self._queue: asyncio.Queue[RequestOutput | BaseException] = asyncio.Queue()
        self._streams: dict[str, tuple[OutputStream, asyncio.Task]] = {}

    def _start(self, submission: Submission) -> None:
        stream = self.engine.add_request(submission.request_id, **submission.engine_arguments())
        self._streams[submission.request_id] = (stream, asyncio.create_task(self._pump(stream)))

    async def _pump(self, stream: OutputStream) -> None:
        try:
            async for output in stream:
                self._queue.put_nowait(output)
        except Exception as error:  # handed to the strategy, which re-raises it
            self._queue.put_nowait(error)

    def _stop(self, request_id: str, index: int) -> None:
        self.engine.stop_branch(request_id, index)

    def spare_seats(self) -> int:
        return self.engine.stats().spare_seats  # as of the last step: the loop runs in its thread

    def _abort(self, request_id: str) -> None:
        stream, task = self._streams.pop(request_id, (None, None))
        if stream is not None:
            stream.abort()
            task.cancel()  # an aborted stream gets no more outputs: do not wait for them

    async def _next_outputs(self) -> list[RequestOutput]:
        items = [await self._queue.get()]
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        outputs = []
        for item in items:
            if isinstance(item, BaseException):
                raise item
            outputs.append(item)
        return outputs
