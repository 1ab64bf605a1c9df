"""`ponder chat`: thinking dimmed then the answer, history without thinking, /reset; and the real
command in a pseudo-terminal."""

import asyncio
import io
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from ponder.cli.chat import DIM, RESET, chat_loop
from tests.server.harness import thinking_checkpoint


def scripted_source(calls: list[list[dict]]):
    async def source(body: dict):
        calls.append([dict(m) for m in body["messages"]])
        for delta in (
            {"role": "assistant", "content": ""},
            {"reasoning": "hmm, "},
            {"reasoning": "four"},
            {"content": "It is "},
            {"content": "4."},
        ):
            yield {"choices": [{"index": 0, "delta": delta}]}
        usage = {"completion_tokens": 9, "completion_tokens_details": {"reasoning_tokens": 5}}
        yield {"choices": [], "usage": usage}

    return source


def run_loop(lines: list[str], color: bool, show_thinking: bool = True, system=None):
    calls: list[list[dict]] = []
    pending = iter(lines)
    out = io.StringIO()
    history = asyncio.run(
        chat_loop(
            scripted_source(calls),
            {"model": "m"},
            lambda: next(pending, None),
            out,
            color=color,
            show_thinking=show_thinking,
            system=system,
        )
    )
    return out.getvalue(), calls, history


def test_thinking_is_dimmed_then_the_answer_follows():
    text, _, _ = run_loop(["2+2?"], color=True)
    assert f"{DIM}hmm, four{RESET}\n\nIt is 4." in text
    assert "5 thinking + 4 answer tokens" in text


def test_without_color_thinking_is_labelled_and_can_be_hidden():
    text, _, _ = run_loop(["2+2?"], color=False)
    assert "\x1b[" not in text
    assert "[thinking] hmm, four\n[answer] It is 4." in text
    hidden, _, _ = run_loop(["2+2?"], color=False, show_thinking=False)
    assert "hmm" not in hidden and "It is 4." in hidden


def strategy_source(body: dict):
    async def source(body: dict):
        for running, finished, leading in ((3, 0, None), (1, 2, "4")):
            progress = {
                "branches_running": running,
                "branches_finished": finished,
                "branches_stopped": 0,
                "generated_tokens": 1200 * finished + 10,
                "leading_answer": leading,
                "leading_share": 1.0 if leading else None,
            }
            yield {"choices": [{"index": 0, "delta": {}, "strategy_progress": progress}]}
        for delta in ({"reasoning": "four"}, {"content": "4"}):
            yield {"choices": [{"index": 0, "delta": delta}]}

    return source(body)


@pytest.mark.parametrize("color", [True, False])
def test_strategy_progress_is_one_status_line_before_the_answer(color):
    out = io.StringIO()
    lines = iter(["2+2?"])
    asyncio.run(
        chat_loop(
            strategy_source, {"model": "m"}, lambda: next(lines, None), out, color=color, show_thinking=True
        )
    )
    text = out.getvalue()
    last = "1 running, 2 finished, 0 stopped, 2,410 tokens; leading: 4 (100%)"
    if color:  # redrawn in place, then the thought starts on its own line
        assert f"\r\x1b[2K{DIM}3 running, 0 finished, 0 stopped, 10 tokens{RESET}" in text
        assert f"\r\x1b[2K{DIM}{last}{RESET}\n{DIM}four" in text
    else:  # only the last status, once
        assert f"[{last}]\n[thinking] four\n[answer] 4" in text and "3 running" not in text


def test_a_bad_strategy_is_a_clear_error_before_the_model_loads(capsys):
    from ponder.cli import main

    assert main(["chat", "/no/such/model", "--strategy", "confidence:n=1"]) == 2
    assert "reasoning_strategy.n must be in [2, 256]" in capsys.readouterr().err


def test_history_keeps_answers_without_thinking_and_reset_forgets():
    _, calls, history = run_loop(["one", "two", "/reset", "three", "/exit"], color=False, system="be brief")
    assert [len(call) for call in calls] == [2, 4, 2]
    assert calls[1][2] == {"role": "assistant", "content": "It is 4."}
    assert calls[2][0] == {"role": "system", "content": "be brief"}
    assert history[-1] == {"role": "assistant", "content": "It is 4."}


def test_chat_command_in_a_pseudo_terminal(qwen3_ckpt, tmp_path):
    model = thinking_checkpoint(qwen3_ckpt, tmp_path / "thinking")
    command = [
        sys.executable,
        "-m",
        "ponder.cli",
        "chat",
        str(model),
        "--max-tokens",
        "12",
        "--thinking-budget",
        "4",
        "--temperature",
        "0",
        "--block-size",
        "4",
        "--kv-cache-memory",
        "16MiB",
    ]
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "TERM": "xterm"},
        close_fds=True,
    )
    os.close(terminal)
    screen = b""

    def read_until(marker: bytes, count: int = 1, timeout_s: float = 60) -> None:
        nonlocal screen
        deadline = time.monotonic() + timeout_s
        while screen.count(marker) < count:
            assert time.monotonic() < deadline, screen.decode(errors="replace")
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                try:
                    screen += os.read(controller, 4096)
                except OSError:
                    break

    try:
        read_until(b"you> ")
        os.write(controller, b"hello there\n")
        read_until(b"you> ", count=2)
        os.write(controller, b"and again\n")
        read_until(b"you> ", count=3)
        os.write(controller, b"/exit\n")
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    assert screen.count(DIM.encode()) >= 4  # thinking and footer of both turns, dimmed
    assert screen.count(b"4 thinking + ") == 2  # the budget held in both turns


def test_chat_against_a_running_server(qwen3_ckpt):
    from ponder.cli.chat import _first_served_model, _http_source
    from ponder.engine.tokenizer import Tokenizer
    from tests.server.harness import ScriptedEngine, serve
    from tests.server.test_reasoning_http import SCRIPT

    engine = ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), SCRIPT)
    with serve(engine) as server:
        pending = iter(["2+2?", "/exit"])
        out = io.StringIO()

        async def run():
            model = await _first_served_model(server.url, None)
            fields = {"model": model, "stream_options": {"include_usage": True}}
            return await chat_loop(
                _http_source(server.url, None),
                fields,
                lambda: next(pending, None),
                out,
                color=True,
                show_thinking=True,
            )

        history = asyncio.run(run())
    assert history[-1] == {"role": "assistant", "content": "The answer is 4."}
    assert f"{DIM}Let me see.{RESET}\n\nThe answer is 4." in out.getvalue()
    assert engine.requests[-1].prompt["prompt"].count("<|im_start|>user\n2+2?") == 1


def test_a_turn_that_no_longer_fits_says_which_flag_to_change(qwen3_ckpt):
    import functools

    from ponder.engine.tokenizer import Tokenizer
    from ponder.openai.service import CHAT_URL, OpenAIService
    from ponder.openai.settings import ServerSettings
    from tests.server.harness import ScriptedEngine
    from tests.server.test_reasoning_http import SCRIPT

    engine = ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), SCRIPT, max_model_len=64)
    service = OpenAIService.for_engine(engine, ServerSettings(("tiny",)))
    pending = iter(["word " * 100, "short", "/exit"])
    out = io.StringIO()
    asyncio.run(
        chat_loop(
            functools.partial(service.stream, CHAT_URL),
            {"model": "tiny"},
            lambda: next(pending, None),
            out,
            color=False,
            show_thinking=True,
        )
    )
    text = out.getvalue()
    assert "maximum context length is 64" in text and "lower --max-tokens" in text
    assert "The answer is 4." in text  # the next turn is fine: the failed one left no trace


def test_chat_asks_for_no_fixed_answer_length_by_default():
    import argparse

    from ponder.cli import chat as chat_command

    parser = argparse.ArgumentParser()
    chat_command.add_parser(parser.add_subparsers())
    assert parser.parse_args(["chat"]).max_tokens is None
