"""InlineEngine: steps an LLMEngine from the event loop for offline strategy runs (LLM.reason, eval).

Many strategy runs (one per problem) share one engine, so their branches batch together. The
engine steps only when every run with requests in flight is waiting for outputs: each run sees
every step's outputs and reacts (stops a branch, adds a probe) before the next step. That makes
offline runs deterministic, which the threaded AsyncEngine cannot promise. (With asynchronous
scheduling the step after is already on the device when outputs arrive, so a reaction lands one
step later; runs are still deterministic.)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ponder.engine.outputs import RequestOutput
from ponder.errors import InvalidRequestError, RequestNotFoundError
from ponder.reasoning.session import EngineSession, Submission

if TYPE_CHECKING:
    from ponder.engine.llm_engine import LLMEngine


class InlineEngine:
    def __init__(self, engine: LLMEngine, name: str = "default"):
        self.engine = engine
        self.name = name
        self._sessions: list[InlineSession] = []
        self._owners: dict[str, InlineSession] = {}
        self._step_scheduled = False

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    def session(self) -> InlineSession:
        session = InlineSession(self)
        self._sessions.append(session)
        return session

    def release(self, session: InlineSession) -> None:
        session.close()
        if session in self._sessions:
            self._sessions.remove(session)
        for request_id in [r for r, owner in self._owners.items() if owner is session]:
            del self._owners[request_id]
        self.schedule_step()  # the others may have been waiting for this one

    def own(self, request_id: str, session: InlineSession) -> None:
        self._owners[request_id] = session

    def route(self, outputs: list[RequestOutput | None]) -> None:
        for output in outputs:
            if output is None:
                continue
            owner = self._owners.get(output.request_id)
            if owner is not None:
                owner.receive(output)
                if output.finished:
                    del self._owners[output.request_id]

    def schedule_step(self) -> None:
        """Step soon, after every task that is ready now has run: runs that are starting get to
        submit their requests first, so they join the same batch. (Stepping at once would also
        let a run whose outputs arrive at once go on alone, never yielding to the others.)"""
        if self._step_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: nobody can be waiting
        self._step_scheduled = True
        loop.call_soon(self._step_when_all_wait)

    def _step_when_all_wait(self) -> None:
        """Run engine steps while every session with requests in flight waits and none has news."""
        self._step_scheduled = False
        active = [s for s in self._sessions if s.in_flight]
        if not active or not all(s.waiting for s in active):
            return  # the last of them to wait schedules the step again
        try:
            while not any(s.has_news for s in active):
                if not self.engine.has_unfinished_requests():
                    raise RuntimeError("sessions wait for outputs but the engine has no requests")
                self.route(self.engine.step())
        except Exception as error:  # a callback's exception would be lost: hand it to the runs
            for session in active:
                session.fail(error)
            return
        for session in active:
            session.wake()


class InlineSession(EngineSession):
    def __init__(self, inline: InlineEngine):
        super().__init__(inline.tokenizer, inline.name)
        self.inline = inline
        self._news: list[RequestOutput] = []
        self._waiter: asyncio.Future | None = None

    @property
    def waiting(self) -> bool:
        return self._waiter is not None and not self._waiter.done()

    @property
    def has_news(self) -> bool:
        return bool(self._news)

    def receive(self, output: RequestOutput) -> None:
        self._news.append(output)

    def wake(self) -> None:
        if self._news and self.waiting:
            self._waiter.set_result(None)

    def fail(self, error: BaseException) -> None:
        if self.waiting:
            self._waiter.set_exception(error)

    def _start(self, submission: Submission) -> None:
        engine = self.inline.engine
        engine.add(engine.make_request(submission.request_id, **submission.engine_arguments()))
        self.inline.own(submission.request_id, self)

    def _stop(self, request_id: str, index: int) -> None:
        try:
            output = self.inline.engine.stop_sequence(request_id, index)
        except (RequestNotFoundError, InvalidRequestError):
            return  # finished meanwhile, or a branch that has not started
        self.inline.route([output])

    def _abort(self, request_id: str) -> None:
        try:
            output = self.inline.engine.abort_request(request_id)
        except RequestNotFoundError:
            return
        self.inline.route([output])

    def spare_seats(self) -> int:
        return self.inline.engine.stats().spare_seats

    async def _next_outputs(self) -> list[RequestOutput]:
        if not self._news:
            self._waiter = asyncio.get_running_loop().create_future()
            self.inline.schedule_step()
            await self._waiter
        news, self._news = self._news, []
        return news
