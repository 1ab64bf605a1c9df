"""`ponder chat`: an interactive terminal chat; thinking streams dimmed, then the answer.

It runs the model in-process through the same code as the server (or talks to a running server
with --url), keeps the conversation's history, and sends past answers back without their
thinking, the way API clients do (so the prefix cache keeps working across turns). With
`--strategy` every turn is a test-time scaling run (`reasoning_strategy`): a status line shows its
branches while they run, then the chosen thought and answer follow.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import IO

from ponder.engine.args import EngineArgs
from ponder.errors import PromptTooLongError

DIM, RESET = "\x1b[2m", "\x1b[0m"
HELP = "commands: /reset (forget the conversation), /exit (or Ctrl-D)"
ChunkSource = Callable[[dict], AsyncIterator[dict]]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from ponder.cli.serve import add_model_arg, add_reasoning_args

    parser = subparsers.add_parser("chat", help="chat with a model in the terminal (thinking shown dimmed)")
    add_model_arg(parser)
    add_chat_args(parser)
    add_reasoning_args(parser)
    EngineArgs.add_cli_args(parser)
    parser.set_defaults(handler=run_chat)


def add_chat_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="chat with a running server instead")
    parser.add_argument("--api-key", default=None, help="key for --url")
    parser.add_argument("--system", default=None, help="system prompt")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="tokens per answer, thinking included (default: whatever the context has left)",
    )
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--reasoning-effort", default=None, help="low, medium, high, …")
    parser.add_argument("--thinking-budget", type=int, default=None)
    parser.add_argument(
        "--strategy",
        default=None,
        help="a reasoning strategy for every turn, as in ponder eval: "
        "self_consistency:n=8, confidence:n=16,wave=2,probe_every=32,stop_rule=beta "
        "or JSON (docs/reasoning.md)",
    )
    parser.add_argument("--hide-thinking", action="store_true")
    parser.add_argument("--color", choices=["auto", "always", "never"], default="auto")


@dataclass
class TurnPrinter:
    """Writes one assistant turn: dimmed reasoning (or a [thinking] label without color)."""

    out: IO[str]
    color: bool
    show_thinking: bool
    thinking_open: bool = False
    wrote_answer: bool = False
    status: str = ""  # the strategy's latest progress line, until its answer comes

    def progress(self, snapshot: dict) -> None:
        """A strategy's progress: redrawn in place on a terminal, shown once (the last) without."""
        self.status = progress_line(snapshot)
        if self.color:
            self.out.write(f"\r\x1b[2K{DIM}{self.status}{RESET}")
            self.out.flush()

    def reasoning(self, text: str) -> None:
        if not self.show_thinking or not text:
            return
        self._close_status()
        if not self.thinking_open:
            self.thinking_open = True
            self.out.write(DIM if self.color else "[thinking] ")
        self.out.write(text)
        self.out.flush()

    def content(self, text: str) -> None:
        if not text:
            return
        self._close_status()
        self._close_thinking()
        self.wrote_answer = True
        self.out.write(text)
        self.out.flush()

    def end(self, footer: str) -> None:
        self._close_status()
        self._close_thinking()
        note = f"({footer})"
        self.out.write(f"\n{DIM}{note}{RESET}\n" if self.color else f"\n{note}\n")
        self.out.flush()

    def _close_status(self) -> None:
        if self.status:
            self.out.write("\n" if self.color else f"[{self.status}]\n")
            self.status = ""

    def _close_thinking(self) -> None:
        if self.thinking_open:
            self.thinking_open = False
            self.out.write(f"{RESET}\n\n" if self.color else "\n[answer] ")


def progress_line(snapshot: dict) -> str:
    """ "4 running, 9 finished, 3 stopped, 5,210 tokens; leading: 42 (62%)" """
    line = (
        f"{snapshot.get('branches_running', 0)} running, {snapshot.get('branches_finished', 0)} "
        f"finished, {snapshot.get('branches_stopped', 0)} stopped, "
        f"{snapshot.get('generated_tokens', 0):,} tokens"
    )
    if snapshot.get("leading_answer") is not None:
        line += f"; leading: {snapshot['leading_answer']} ({snapshot.get('leading_share') or 0:.0%})"
    return line


async def chat_loop(
    source: ChunkSource,
    request_fields: dict,
    read_line: Callable[[], str | None],
    out: IO[str],
    *,
    color: bool,
    show_thinking: bool,
    system: str | None = None,
) -> list[dict]:
    """Read user turns until EOF or /exit; returns the conversation."""
    history: list[dict] = [{"role": "system", "content": system}] if system else []
    out.write(f"ponder chat. {HELP}\n")
    while True:
        out.write("you> ")
        out.flush()
        line = await asyncio.to_thread(read_line)
        if line is None or line.strip() in ("/exit", "/quit"):
            out.write("\n")
            return history
        text = line.strip()
        if not text:
            continue
        if text == "/reset":
            history = history[:1] if system else []
            out.write("(conversation reset)\n")
            continue
        history.append({"role": "user", "content": text})
        printer = TurnPrinter(out, color, show_thinking)
        out.write("assistant> ")
        try:
            answer = await _one_turn(source, {**request_fields, "messages": history}, printer)
        except Exception as error:  # show it and keep the session alive
            history.pop()
            out.write(f"\nerror: {error}{_hint(error)}\n")
            continue
        history.append({"role": "assistant", "content": answer})


class ChatError(RuntimeError):
    def __init__(self, message: str | None, code: str | None):
        super().__init__(message)
        self.code = code


def _hint(error: Exception) -> str:
    """What to change when a turn hits a limit (the server's message names its own fields)."""
    too_long = isinstance(error, PromptTooLongError)  # in process; over HTTP, the error's code
    if too_long or getattr(error, "code", None) == "context_length_exceeded":
        return (
            "\n(the conversation no longer fits: /reset it, lower --max-tokens, or serve with a "
            "larger --max-model-len)"
        )
    return ""


async def _one_turn(source: ChunkSource, body: dict, printer: TurnPrinter) -> str:
    answer: list[str] = []
    usage: dict = {}
    started = time.monotonic()
    async for chunk in source(body):
        if chunk.get("error"):
            raise RuntimeError(chunk["error"].get("message", chunk["error"]))
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices", ()):
            if choice.get("strategy_progress"):
                printer.progress(choice["strategy_progress"])
            delta = choice.get("delta", {})
            printer.reasoning(delta.get("reasoning") or delta.get("reasoning_content") or "")
            printer.content(delta.get("content") or "")
            answer.append(delta.get("content") or "")
    elapsed = time.monotonic() - started
    tokens = usage.get("completion_tokens", 0)
    thinking = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
    printer.end(f"{thinking} thinking + {tokens - thinking} answer tokens, {elapsed:.1f}s")
    return "".join(answer)


def run_chat(args: argparse.Namespace) -> int:
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    fields = {
        "model": args.model or "ponder",
        "temperature": args.temperature,
        "top_p": args.top_p,
        "stream_options": {"include_usage": True},
    }
    if args.max_tokens is not None:
        fields["max_tokens"] = args.max_tokens
    if args.reasoning_effort:
        fields["reasoning_effort"] = args.reasoning_effort
    if args.thinking_budget:
        fields["thinking_budget"] = args.thinking_budget
    if args.strategy:  # checked now, before the model loads (a bad one is a clear error)
        from ponder.reasoning.strategy_args import parse_strategy_arg

        fields["reasoning_strategy"] = parse_strategy_arg(args.strategy)[1].to_dict()

    async def converse(source: ChunkSource) -> None:
        await chat_loop(
            source,
            fields,
            _read_line,
            sys.stdout,
            color=color,
            show_thinking=not args.hide_thinking,
            system=args.system,
        )

    async def main() -> None:
        if args.url:
            fields["model"] = args.model or await _first_served_model(args.url, args.api_key)
            await converse(_http_source(args.url, args.api_key))
            return
        from ponder.cli.serve import settings_from_args
        from ponder.engine.async_engine import AsyncEngine
        from ponder.openai.service import CHAT_URL, OpenAIService

        settings = settings_from_args(args)
        fields["model"] = settings.model_name
        engine = AsyncEngine.from_engine_args(EngineArgs.from_cli_args(args))
        try:
            await converse(functools.partial(OpenAIService.for_engine(engine, settings).stream, CHAT_URL))
        finally:
            await engine.shutdown()

    asyncio.run(main())
    return 0


def _read_line() -> str | None:
    try:
        return input()
    except EOFError:
        return None


async def _first_served_model(base_url: str, api_key: str | None) -> str:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(base_url.rstrip("/") + "/v1/models", headers=headers)
        response.raise_for_status()
        return response.json()["data"][0]["id"]


def _http_source(base_url: str, api_key: str | None) -> ChunkSource:
    import httpx

    url = base_url.rstrip("/") + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def source(body: dict) -> AsyncIterator[dict]:
        async with httpx.AsyncClient(timeout=None) as client:
            async with client.stream("POST", url, json={**body, "stream": True}, headers=headers) as response:
                if response.status_code != 200:
                    await response.aread()
                    error = response.json().get("error", {})
                    raise ChatError(error.get("message"), error.get("code"))
                async for line in response.aiter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        yield json.loads(line[len("data: ") :])

    return source
