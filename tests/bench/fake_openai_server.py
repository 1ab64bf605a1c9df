"""A scripted OpenAI-compatible streaming server on localhost, for timing-exact bench tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Script:
    """How the server answers one request: when each piece is sent, and what goes wrong."""

    reasoning_pieces: tuple[str, ...] = tuple(f" r{i}" for i in range(5))
    answer_pieces: tuple[str, ...] = tuple(f" a{i}" for i in range(5))
    first_token_delay_s: float = 0.100
    token_interval_s: float = 0.020
    # "reasoning" | "reasoning_content" (delta fields) | "think_tags" (inline in content/text)
    reasoning_style: str = "reasoning"
    send_usage: bool = True
    status: int = 200
    malformed_at: int | None = None  # piece index replaced by a chunk that is not JSON
    hang_at: int | None = None  # piece index at which the server stops sending, keeping the socket

    @property
    def num_tokens(self) -> int:
        return len(self.reasoning_pieces) + len(self.answer_pieces)


@dataclass
class ServerStats:
    in_flight: int = 0
    max_in_flight: int = 0
    arrivals: list[float] = field(default_factory=list)  # perf_counter() of each POST
    payloads: list[dict] = field(default_factory=list)


class FakeOpenAIServer:
    """Runs in its own thread and event loop; `script_for(payload)` picks each answer."""

    model = "fake-model"

    def __init__(self, script_for: Callable[[dict], Script] = lambda payload: Script()):
        self.script_for = script_for
        self.stats = ServerStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            method, path, body = await _read_request(reader)
            if method == "GET" and path == "/v1/models":
                await _send_json(writer, 200, {"object": "list", "data": [{"id": self.model}]})
            elif method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
                await self._stream(writer, json.loads(body), chat=path.endswith("chat/completions"))
            else:
                await _send_json(writer, 404, {"error": {"message": f"no route {path}"}})
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away (e.g. its timeout fired)
        finally:
            self._handlers.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, payload: dict, chat: bool) -> None:
        received = time.perf_counter()
        self.stats.arrivals.append(received)
        self.stats.payloads.append(payload)
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        try:
            script = self.script_for(payload)
            if script.status != 200:
                error = {"error": {"message": "scripted failure", "code": script.status}}
                await _send_json(writer, script.status, error)
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
            )
            for index, event in enumerate(_events(script, chat)):
                deadline = received + script.first_token_delay_s + index * script.token_interval_s
                await asyncio.sleep(max(deadline - time.perf_counter(), 0.0))
                if index == script.hang_at:
                    await asyncio.sleep(3600)
                if index == script.malformed_at:
                    writer.write(b'data: {"choices": [{"delta": {"content": "x"\n\n')
                    await writer.drain()
                    return
                writer.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                await writer.drain()
            if script.send_usage:
                writer.write(b"data: " + json.dumps(_usage_event(script, payload)).encode() + b"\n\n")
            writer.write(b"data: [DONE]\n\n")
            await writer.drain()
        finally:
            self.stats.in_flight -= 1


def _events(script: Script, chat: bool) -> list[dict]:
    pieces = [("reasoning", p) for p in script.reasoning_pieces]
    pieces += [("answer", p) for p in script.answer_pieces]
    if script.reasoning_style == "think_tags" and script.reasoning_pieces:
        last = len(script.reasoning_pieces) - 1
        pieces = [
            ("answer", ("<think>" if i == 0 else "") + text + ("</think>" if i == last else ""))
            if kind == "reasoning"
            else (kind, text)
            for i, (kind, text) in enumerate(pieces)
        ]
    events = []
    for kind, text in pieces:
        if chat:
            field_name = script.reasoning_style if kind == "reasoning" else "content"
            choice = {"index": 0, "delta": {field_name: text}, "finish_reason": None}
        else:
            choice = {"index": 0, "text": text, "finish_reason": None}
        events.append({"object": "chat.completion.chunk", "choices": [choice]})
    return events


def _usage_event(script: Script, payload: dict) -> dict:
    prompt = payload.get("prompt") or payload["messages"][-1]["content"]
    usage = {
        "prompt_tokens": len(prompt.split()),
        "completion_tokens": script.num_tokens,
        "total_tokens": len(prompt.split()) + script.num_tokens,
        "completion_tokens_details": {"reasoning_tokens": len(script.reasoning_pieces)},
    }
    return {"object": "chat.completion.chunk", "choices": [], "usage": usage}


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    request_line = (await reader.readline()).decode("latin-1").split()
    headers = {}
    while (line := (await reader.readline()).decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return request_line[0], request_line[1], body


async def _send_json(writer: asyncio.StreamWriter, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    writer.write(
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
        + data
    )
    await writer.drain()
