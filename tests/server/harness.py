"""Test helpers: a uvicorn server in a background thread, a real tiny engine, a scripted engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from ponder.engine.outputs import CompletionOutput, RequestMetrics, RequestOutput
from ponder.engine.tokenizer import Tokenizer
from ponder.openai.settings import ServerSettings
from ponder.server.app import build_app

MODEL = "tiny"
# An R1-style template: the generation prompt opens the thought, so the model starts thinking.
THINKING_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1 from a daemon thread (no signal handlers)."""

    def __init__(self, app):
        self.app = app
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_ponder_serve(argv: tuple[str, ...], port: int) -> subprocess.Popen:
    """`ponder serve ARGV --port PORT` in a child process, returned once /health answers 200."""
    server = subprocess.Popen(
        [sys.executable, "-m", "ponder.cli", "serve", *argv, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"ponder serve did not come up: {server.stderr.read()[-2000:]}")
        time.sleep(0.2)


@contextlib.contextmanager
def ponder_serve(*argv: str) -> Iterator[str]:
    """`ponder serve ARGV` in a child process on a free port: yields its URL; at the end SIGTERM,
    which must drain and exit 0."""
    port = free_port()
    server = start_ponder_serve(argv, port)
    url = f"http://127.0.0.1:{port}"
    yield url
    server.terminate()
    assert server.wait(timeout=60) == 0  # SIGTERM drains, then exits cleanly


def real_engine(ckpt: Path, **overrides):
    from ponder.engine.args import EngineArgs
    from ponder.engine.async_engine import AsyncEngine
    from ponder.engine.llm_engine import LLMEngine

    knobs = {"block_size": 4, "kv_cache_memory": 1 << 24, "max_model_len": 256, **overrides}
    return AsyncEngine(LLMEngine(EngineArgs.from_kwargs(str(ckpt), **knobs).create_engine_config()))


def serve(engine, **settings) -> ServerThread:
    options = {"served_model_names": (MODEL,), **settings}
    return ServerThread(build_app(engine, ServerSettings(**options)))


def thinking_checkpoint(source: Path, target: Path) -> Path:
    """A copy of a tiny checkpoint whose chat template opens the thought."""
    shutil.copytree(source, target)
    config_path = target / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = THINKING_TEMPLATE
    config_path.write_text(json.dumps(config))
    return target


# ---- a scripted engine: exact text chunks, for protocol tests that need known outputs ----------


@dataclass
class Step:
    """One DELTA output as the engine splits it: the raw text, its reasoning and content parts,
    how many tokens it stands for, the running reasoning count."""

    text: str
    num_tokens: int = 1
    reasoning: str = ""
    content: str = ""
    reasoning_total: int = 0


@dataclass
class ScriptedStats:
    num_requests: int = 0
    num_running: int = 0
    num_waiting: int = 0
    spare_seats: int = 256
    kv_blocks_used: int = 0
    kv_blocks_total: int = 100
    kv_cache_usage: float = 0.0
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0
    num_preemptions: int = 0
    prompt_tokens_computed: int = 0
    generation_tokens: int = 0


class ScriptedStream:
    def __init__(self, engine: ScriptedEngine, request_id: str, prompt: dict, params):
        self.engine, self.request_id, self.prompt, self.params = engine, request_id, prompt, params
        self.aborted = False

    def __aiter__(self) -> AsyncIterator[RequestOutput]:
        return self._outputs()

    async def _outputs(self):
        script = self.engine.script
        token = 100
        for position, step in enumerate(script):
            await asyncio.sleep(self.engine.delay_s)
            last = position == len(script) - 1
            outputs = []
            for index in range(self.params.n):
                outputs.append(
                    CompletionOutput(
                        index=index,
                        text=step.text,
                        reasoning=step.reasoning,
                        content=step.content,
                        token_ids=list(range(token, token + step.num_tokens)),
                        num_reasoning_tokens=step.reasoning_total,
                        finish_reason="stop" if last else None,
                    )
                )
            token += step.num_tokens
            yield RequestOutput(
                request_id=self.request_id,
                prompt=self.prompt.get("prompt"),
                prompt_token_ids=self.prompt["prompt_token_ids"],
                outputs=outputs,
                finished=last,
                metrics=RequestMetrics(arrival_time=time.monotonic()),
            )

    def abort(self) -> None:
        self.aborted = True


@dataclass
class ScriptedEngine:
    """Replays `script` for every request; records what it was asked."""

    tokenizer: Tokenizer
    script: list[Step]
    max_model_len: int = 256
    delay_s: float = 0.0
    requests: list[ScriptedStream] = field(default_factory=list)

    def add_request(
        self, request_id, prompt, params, *, priority=0, ahead=False, prefix_of=None
    ) -> ScriptedStream:
        stream = ScriptedStream(self, request_id, prompt, params)
        self.requests.append(stream)
        return stream

    def stop_branch(self, request_id: str, index: int) -> None:
        pass  # the script runs to its end

    def stats(self) -> ScriptedStats:
        return ScriptedStats()
