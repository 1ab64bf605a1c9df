"""`ponder batch`: OpenAI Batch API lines in and out, bad lines reported in place, and a run
killed midway resumes to exactly one result per custom_id."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ponder.openai.batch import process_file
from ponder.openai.service import OpenAIService
from ponder.openai.settings import ServerSettings
from tests.server.harness import real_engine


def request_line(custom_id: str, max_tokens: int = 4, url: str = "/v1/chat/completions") -> str:
    body = {"model": "any-name", "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
    if url.endswith("chat/completions"):
        body["messages"] = [{"role": "user", "content": f"request {custom_id}"}]
    else:
        body["prompt"] = f"request {custom_id}"
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def read_output(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batch_lines_good_and_bad(qwen3_ckpt, tmp_path):
    lines = [
        request_line("a"),
        request_line("b", url="/v1/completions"),
        "{this is not json",
        json.dumps({"method": "POST", "url": "/v1/completions", "body": {}}),
        request_line("a"),  # a repeated custom_id
        json.dumps(
            {
                "custom_id": "bad-body",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "m", "messages": [], "temperature": "hot"},
            }
        ),
        json.dumps(
            {
                "custom_id": "bad-url",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "m"},
            }
        ),
        "",
        request_line("c"),
    ]
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("\n".join(lines) + "\n")
    settings = ServerSettings(("tiny",), accept_any_model=True)

    async def run():
        engine = real_engine(qwen3_ckpt)
        try:
            api = OpenAIService.for_engine(engine, settings)
            first = await process_file(api, source, output, concurrency=8, show_progress=False)
            again = await process_file(api, source, output, concurrency=8, show_progress=False)
            return first, again
        finally:
            await engine.shutdown()

    (written, failed), (rewritten, _) = asyncio.run(run())
    records = read_output(output)
    assert (written, failed, rewritten) == (8, 5, 0)
    by_id = {r["custom_id"]: r for r in records if r["custom_id"]}
    assert set(by_id) == {"a", "b", "c", "bad-body", "bad-url"}
    for custom_id in ("a", "b", "c"):
        response = by_id[custom_id]["response"]
        assert response["status_code"] == 200 and by_id[custom_id]["error"] is None
        assert response["body"]["usage"]["completion_tokens"] == 4
        assert response["request_id"] == response["body"]["id"]
    assert by_id["a"]["response"]["body"]["object"] == "chat.completion"
    assert by_id["b"]["response"]["body"]["object"] == "text_completion"
    assert by_id["bad-body"]["response"]["status_code"] == 400
    assert by_id["bad-body"]["response"]["body"]["error"]["param"] in ("messages", "temperature")
    assert by_id["bad-url"]["response"]["status_code"] == 404
    unnamed = sorted((r["error"]["line"], r["error"]["message"]) for r in records if r["custom_id"] is None)
    assert [line for line, _ in unnamed] == [3, 4, 5]
    assert "not valid JSON" in unnamed[0][1] and "custom_id" in unnamed[1][1]
    assert "repeats custom_id 'a'" in unnamed[2][1]


def test_killed_batch_resumes_with_each_custom_id_once(qwen3_ckpt, tmp_path):
    count = 24
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(request_line(f"r{i}", 20 + 8 * i) + "\n" for i in range(count)))
    command = [
        sys.executable,
        "-m",
        "ponder.cli",
        "batch",
        str(source),
        "-o",
        str(output),
        "--model",
        str(qwen3_ckpt),
        "--max-num-seqs",
        "2",
        "--max-concurrency",
        "2",
        "--block-size",
        "4",
        "--kv-cache-memory",
        "16MiB",
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        while not output.exists() or len(output.read_text().splitlines()) < 3:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "batch wrote nothing"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    done_before = len(read_output(output))
    assert 3 <= done_before < count
    with output.open("a") as file:  # as if killed in the middle of writing a line
        file.write('{"id": "batch_req_torn", "custom_id": "r')
    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    records = read_output(output)
    custom_ids = [r["custom_id"] for r in records]
    assert sorted(custom_ids) == sorted(f"r{i}" for i in range(count))
    assert all(r["response"]["status_code"] == 200 for r in records)
    assert f"{count - done_before} written" in resumed.stderr
