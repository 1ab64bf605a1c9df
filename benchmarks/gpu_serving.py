"""Serving goodput on one GPU: `ponder serve` vs `transformers serve`, driven by `ponder bench`.

Usage (on a CUDA machine, from the repo root; fastapi/uvicorn/pydantic/openai importable):
    python benchmarks/gpu_serving.py checkpoint --shape qwen3-8b --out /tmp/ckpt-8b
    python benchmarks/gpu_serving.py offline --model /tmp/ckpt-8b --result-dir R
    python benchmarks/gpu_serving.py serve-bench --server ponder --model /tmp/ckpt-8b --result-dir R
    python benchmarks/gpu_serving.py serve-bench --server transformers --model /tmp/ckpt-8b --result-dir R
    python benchmarks/gpu_serving.py report R [R2 ...]      # table + attainment-vs-rate plot

The checkpoint is random-init bf16 with the real Qwen3 config and a word-level tokenizer over the
full 151,936-token vocabulary (so every sampled id decodes to text on both servers). Its LM-head
row for the end-of-sequence token is zeroed: under greedy decoding (temperature 0, sent to both
servers) a logit of 0 is never the maximum of 151k random logits, so every request runs to its
max_tokens on both servers without `ignore_eos` (which `transformers serve` rejects with a 422).

Workloads (same seed for both servers): "reasoning" (128-token prompts, 1,024-4,096 output
tokens, Poisson arrivals) and "chat" (256 in, 256 out). Each server runs the same rates; the peer
may run a subset of them (it is slower), and every bench has a wall-clock cap so a stalled
server cannot eat the lease.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from throughput import SHAPES as MODEL_SHAPES  # noqa: E402  (the Qwen3 shapes of the offline figures)

SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, tie_word_embeddings=False),  # CPU smoke test
    **MODEL_SHAPES,
}  # fmt: skip
VOCAB_SIZE = 151936
DEVICE = os.environ.get("PEER_DEVICE", "cuda")
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SLO = "ttft=1s,tpot=50ms"
WORKLOADS = {
    "reasoning": ["--random-input-len", "128", "--random-output-len", "2560", "--random-range-ratio", "0.6"],
    "chat": ["--random-input-len", "256", "--random-output-len", "256"],
}


def write_tokenizer(path: Path) -> int:
    """A word-level tokenizer over the whole vocab; returns the eos id."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    words = VOCAB_SIZE - len(SPECIALS)
    vocab = {"[UNK]": 0, **{f"w{i}": i for i in range(1, words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIALS[:3]])
    tokenizer.add_tokens([AddedToken(t, special=False) for t in SPECIALS[3:]])
    tokenizer.save(str(path / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": "[UNK]",
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": 40960,
    }
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return tokenizer.token_to_id("<|im_end|>")


def make_checkpoint(shape: str, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    eos = write_tokenizer(out)
    config = Qwen3Config(
        **SHAPES[shape],
        vocab_size=VOCAB_SIZE,
        max_position_embeddings=40960,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        rms_norm_eps=1e-6,
        attention_bias=False,
        bos_token_id=None,
        eos_token_id=eos,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    with torch.no_grad():
        model.get_output_embeddings().weight[eos].zero_()
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    print(f"checkpoint {shape} (eos id {eos}) written in {time.perf_counter() - start:.1f} s", flush=True)


def offline(model: str, result_dir: Path, num_prompts: int, seed: int) -> None:
    """The engine's own offline figure for the saturation point: same prompt/output lengths."""
    import numpy as np

    from ponder import LLM, SamplingParams

    rng = np.random.default_rng(seed)
    lengths = rng.integers(1024, 4097, num_prompts)
    prompts = [[int(t) for t in rng.integers(10, 151000, 128)] for _ in range(num_prompts)]
    llm = LLM(model, dtype="bfloat16")
    params = [SamplingParams(max_tokens=int(n), temperature=0.0, ignore_eos=True) for n in lengths]
    llm.generate(prompts[:4], params[:4])  # warm-up
    start = time.perf_counter()
    outputs = llm.generate(prompts, params)
    seconds = time.perf_counter() - start
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    row = {"figure": "offline", "num_prompts": num_prompts, "output_tokens": tokens, "seconds": seconds,
           "output_tok_s": tokens / seconds}  # fmt: skip
    print(json.dumps(row), flush=True)
    (result_dir / "offline.json").write_text(json.dumps(row))


def server_command(server: str, model: str, port: int) -> list[str]:
    if server == "ponder":
        return [
            sys.executable,
            "-m",
            "ponder.cli",
            "serve",
            model,
            "--port",
            str(port),
            "--dtype",
            "bfloat16",
        ]
    return [
        "transformers",
        "serve",
        model,
        "--continuous-batching",
        "--device",
        DEVICE,
        "--dtype",
        "bfloat16",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        *os.environ.get("PEER_ARGS", "").split(),
    ]  # e.g. PEER_ARGS=--cb-use-cuda-graph; fmt: skip


def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(2)
    raise RuntimeError("server not ready in time")


def bench(server: str, model: str, url: str, workload: str, rate: str, num_prompts: int,
          result_dir: Path, cap_s: float) -> None:  # fmt: skip
    """One rate per bench process, so a run cut at its cap loses only itself."""
    command = [
        sys.executable, "-m", "ponder.cli", "bench", "--base-url", url, "--model", model,
        "--tokenizer", model, "--dataset", "random", *WORKLOADS[workload], "--num-prompts",
        str(num_prompts), "--request-rate", rate, "--slo", SLO, "--extra-body", '{"temperature": 0}',
        "--result-dir", str(result_dir), "--result-name", f"{server}-{workload}-{rate}", "--label",
        server, "--no-plots", "--no-progress", "--seed", "0", "--request-timeout", str(cap_s),
    ]  # fmt: skip
    start = time.perf_counter()
    try:
        # the bench itself cuts requests at cap_s and still writes its result file
        subprocess.run(command, timeout=cap_s + 30, check=False, stdout=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        print(f"bench {server} {workload} rate {rate} cut at {cap_s:.0f} s", flush=True)
    print(f"bench {server} {workload} rate {rate}: {time.perf_counter() - start:.0f} s", flush=True)


def serve_bench(args: argparse.Namespace) -> None:
    url = f"http://127.0.0.1:{args.port}"
    log = open(args.result_dir / f"{args.server}-server.log", "w")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    proc = subprocess.Popen(server_command(args.server, args.model, args.port), stdout=log,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    try:
        wait_ready(url, proc, args.ready_timeout)
        print(f"{args.server} ready in {time.perf_counter() - start:.0f} s", flush=True)
        for spec in args.runs:
            workload, rates, num, cap = spec.split(":")
            for rate in rates.split(","):
                bench(args.server, args.model, url, workload, rate, int(num), args.result_dir, float(cap))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def load_runs(dirs: list[Path]) -> list[tuple[str, dict]]:
    """(result name, run summary) for every bench result file under the dirs."""
    rows = []
    for directory in dirs:
        for path in sorted(directory.glob("*-*-*.json")):
            data = json.loads(path.read_text())
            series = path.stem.rsplit("-", 1)[0]  # <server>-<workload>
            rows.extend((series, run["summary"]) for run in data.get("runs", []))
    return rows


def report(dirs: list[Path], plot: Path | None) -> None:
    rows = load_runs(dirs)
    print("| run | rate | done / sent | out tok/s | TTFT p50 / p99 ms | TPOT p50 / p99 ms |"
          " ITL p50 / p99 ms | SLO attainment | goodput req/s |")  # fmt: skip
    print("|" + " --- |" * 9)
    for name, s in rows:
        print(
            f"| {name} | {s['request_rate']} | {s['completed']} / {s['num_requests']} | "
            f"{_num(s['output_throughput'])} | {_ms(s, 'ttft')} | {_ms(s, 'tpot')} | {_ms(s, 'itl')} | "
            f"{_num(s.get('slo_attainment_pct'), 1)}% | {_num(s.get('request_goodput'), 3)} |"
        )
    print()
    for name in sorted({n for n, _ in rows}):
        print(f"{name}: highest rate with >= 90% SLO attainment: {_best_rate(rows, name)}")
    for directory in dirs:
        if (directory / "offline.json").exists():
            print("offline:", (directory / "offline.json").read_text())
    if plot is not None:
        _plot(rows, plot)


def _best_rate(rows: list[tuple[str, dict]], name: str) -> str:
    """DistServe's goodput: the highest measured Poisson rate that keeps >= 90% of requests in SLO."""
    rates = [
        float(s["request_rate"])
        for n, s in rows
        if n == name and s["request_rate"] != "inf" and (s.get("slo_attainment_pct") or 0) >= 90
    ]
    return f"{max(rates):g} req/s" if rates else "none measured"


def _num(value, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ms(summary: dict, metric: str) -> str:
    stats = summary.get(f"{metric}_ms") or {}
    return f"{_num(stats.get('median'))} / {_num(stats.get('p99'))}"


def _plot(rows: list[tuple[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = [w for w in WORKLOADS if any(n.endswith(w) for n, _ in rows)]  # only those measured
    fig, axes = plt.subplots(1, len(workloads), figsize=(5 * len(workloads), 4), squeeze=False)
    for axis, workload in zip(axes[0], workloads):
        for name in sorted({n for n, _ in rows if n.endswith(workload)}):
            points = sorted(
                (float(s["request_rate"]), s["slo_attainment_pct"])
                for n, s in rows
                if n == name and s["request_rate"] != "inf" and s.get("slo_attainment_pct") is not None
            )
            if points:
                axis.plot(*zip(*points), marker="o", label=name.removesuffix(f"-{workload}"))
        axis.set_title(f"{workload}: SLO {SLO}")
        axis.set_xlabel("request rate (req/s)")
        axis.set_ylabel("SLO attainment (%)")
        axis.set_xscale("log")
        axis.set_ylim(0, 105)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ckpt = commands.add_parser("checkpoint")
    ckpt.add_argument("--shape", choices=SHAPES, default="qwen3-8b")
    ckpt.add_argument("--out", type=Path, required=True)
    off = commands.add_parser("offline")
    off.add_argument("--model", required=True)
    off.add_argument("--result-dir", type=Path, required=True)
    off.add_argument("--num-prompts", type=int, default=64)
    off.add_argument("--seed", type=int, default=0)
    serve = commands.add_parser("serve-bench")
    serve.add_argument("--server", choices=("ponder", "transformers"), required=True)
    serve.add_argument("--model", required=True)
    serve.add_argument("--result-dir", type=Path, required=True)
    serve.add_argument("--port", type=int, default=8100)
    serve.add_argument("--ready-timeout", type=float, default=240)
    serve.add_argument(
        "--runs", nargs="+", required=True, help="workload:rate,rate,...:num_prompts:cap_seconds_per_rate"
    )
    rep = commands.add_parser("report")
    rep.add_argument("dirs", nargs="+", type=Path)
    rep.add_argument("--plot", type=Path)
    args = parser.parse_args()
    if args.command == "checkpoint":
        make_checkpoint(args.shape, args.out)
    elif args.command == "offline":
        args.result_dir.mkdir(parents=True, exist_ok=True)
        offline(args.model, args.result_dir, args.num_prompts, args.seed)
    elif args.command == "serve-bench":
        args.result_dir.mkdir(parents=True, exist_ok=True)
        serve_bench(args)
    else:
        report(args.dirs, args.plot)


if __name__ == "__main__":
    main()
