"""GPU throughput: ponder vs transformers on random-init Qwen3 shapes, against the HBM roofline.

Usage (on a CUDA machine, from the repo root):
    PYTHONPATH=src python benchmarks/throughput.py [--sections small,large,long,prefill,...]
        [--out results.jsonl] [--num-requests 128] [--input-len 512] [--output-len 256]
        [--scheduling async,sync | --no-async-scheduling]

Sections: roofline, always (copy bandwidth, bf16 matmul peak, split-KV kernel on/off at 32k);
small (Qwen3-0.6B shape: ponder vs transformers.generate and generate_batch); large (Qwen3-8B
shape, ponder); long (8B decode at 32k context, batch 1 and 4); prefill (8B, one 8k prompt,
ponder vs transformers); large_baselines (8B, transformers.generate_batch; last, as the
slowest). Checkpoints are random-init bf16 with the real configs, written in the run. Every
request produces exactly --output-len tokens (eos ignored). Prints one JSON line per figure.

ponder runs once per --scheduling mode on the same engine (async: step N + 1 is launched before
step N's tokens reach the host; sync: one after the other). Each decode figure splits a step
into host time (mean_host_ms) and GPU time (mean_step_gpu_ms: CUDA events around the launched
step's forward and sampling; mean_forward_gpu_ms: the forward alone).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

SHAPES = {
    "qwen3-0.6b": dict(
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=True,
    ),
    "qwen3-8b": dict(
        hidden_size=4096,
        intermediate_size=12288,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=False,
    ),
}
RESULTS: list[dict] = []


def record(out_path: Path | None, **fields) -> None:
    fields["date"] = time.strftime("%Y-%m-%d")
    RESULTS.append(fields)
    line = json.dumps(fields)
    print(line, flush=True)
    if out_path is not None:
        with out_path.open("a") as handle:
            handle.write(line + "\n")


def cuda_time(fn, repeats: int = 20, warmup: int = 3) -> float:
    """Median seconds of fn() timed with CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def copy_bandwidth() -> float:
    """Bytes/s of a large device-to-device copy, counting bytes read plus bytes written."""
    src = torch.randn(2**30 // 2, dtype=torch.bfloat16, device="cuda")  # 1 GiB
    dst = torch.empty_like(src)
    seconds = cuda_time(lambda: dst.copy_(src))
    return 2 * src.numel() * 2 / seconds


def matmul_peak() -> float:
    a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    return 2 * 8192**3 / cuda_time(lambda: a @ b)


# ---- checkpoints -----------------------------------------------------------------------------


def make_checkpoint(name: str, path: Path):
    """Random-init bf16 HF model on the GPU (kept for the baselines) and saved to path."""
    from tests.fixtures.checkpoints import write_tokenizer
    from transformers import AutoModelForCausalLM, Qwen3Config

    path.mkdir(parents=True, exist_ok=True)
    write_tokenizer(path)
    config = Qwen3Config(
        **SHAPES[name],
        vocab_size=151936,
        max_position_embeddings=40960,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        rms_norm_eps=1e-6,
        attention_bias=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
    )
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    model.generation_config.eos_token_id = None
    model.generation_config.bos_token_id = None
    start = time.perf_counter()
    model.save_pretrained(path)
    print(f"saved {name} in {time.perf_counter() - start:.1f} s", flush=True)
    return model


def random_prompts(num: int, length: int, seed: int = 0) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(10, 151000, (num, length), generator=generator).tolist()


def free_cuda() -> None:
    gc.collect()
    torch.cuda.empty_cache()


# ---- baselines -------------------------------------------------------------------------------


def hf_generate(model, prompts: list[list[int]], output_len: int) -> float:
    ids = torch.tensor(prompts, device="cuda")
    mask = torch.ones_like(ids)
    kwargs = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        model.generate(ids[:2], attention_mask=mask[:2], max_new_tokens=4, **kwargs)
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = model.generate(
            ids, attention_mask=mask, max_new_tokens=output_len, min_new_tokens=output_len, **kwargs
        )
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    assert out.shape[1] == ids.shape[1] + output_len
    del out
    return elapsed


def hf_generate_batch(model, prompts: list[list[int]], output_len: int) -> tuple[float, int]:
    from transformers import GenerationConfig

    config = GenerationConfig(max_new_tokens=output_len, do_sample=False, eos_token_id=-1, pad_token_id=0)
    # cuDNN's SDPA failed inside transformers' paged SDPA here (torch 2.11, 2026-11-25).
    torch.backends.cuda.enable_cudnn_sdp(False)
    with torch.no_grad():
        model.generate_batch(inputs=prompts[:4], generation_config=config)
        torch.cuda.synchronize()
        start = time.perf_counter()
        results = model.generate_batch(inputs=prompts, generation_config=config)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    tokens = sum(len(result.generated_tokens) for result in results.values())
    return elapsed, tokens


# ---- ponder ----------------------------------------------------------------------------------


def ponder_llm(model_dir: Path, **kwargs):
    from ponder import LLM

    start = time.perf_counter()
    llm = LLM(str(model_dir), dtype="bfloat16", **kwargs)
    print(f"ponder engine ready in {time.perf_counter() - start:.1f} s", flush=True)
    return llm


def set_scheduling(engine, mode: str) -> None:
    """sync; async (the engine's default: steps under async_min_batch_size sequences finish
    synchronously); async1 (every step stays in flight, however small)."""
    engine.async_scheduling = mode.startswith("async")
    default = engine.config.scheduler.async_min_batch_size
    engine._async_min_batch_size = 1 if mode == "async1" else default


@dataclass
class DecodeStep:
    wall: float  # seconds engine.step() took
    host: float  # of which the host was not blocked waiting for sampled tokens
    batch: int
    contexts: int  # summed context length of the batch
    events: tuple  # CUDA events: before the forward, after it, after sampling


def run_steps(llm, prompts: list[list[int]], output_len: int) -> dict:
    """Drive engine.step() directly: total time, and for each pure-decode step its wall time,
    host time, batch, summed context and CUDA events around the step it launched. With
    asynchronous scheduling a call launches step N + 1 and then handles step N's tokens."""
    from ponder import RequestOutputKind, SamplingParams

    engine = llm.engine
    # Final outputs only, as LLM.generate asks for them.
    params = SamplingParams(
        temperature=0.0, max_tokens=output_len, ignore_eos=True, output_kind=RequestOutputKind.FINAL_ONLY
    )
    for index, prompt in enumerate(prompts):
        engine.add_request(f"r{time.monotonic_ns()}-{index}", {"prompt_token_ids": prompt}, params)
    execute, sample = engine.runner.execute, engine.sampler.sample
    launched: list[torch.cuda.Event] = []

    def event() -> torch.cuda.Event:
        marker = torch.cuda.Event(enable_timing=True)
        marker.record()
        launched.append(marker)
        return marker

    def timed_execute(batch, pending=None):
        event()
        result = execute(batch, pending)
        event()  # the logits are ready here on the GPU's timeline
        return result

    def timed_sample(logits, rows):
        result = sample(logits, rows)
        event()
        return result

    engine.runner.execute, engine.sampler.sample = timed_execute, timed_sample
    decode_steps: list[DecodeStep] = []
    generated = 0
    torch.cuda.synchronize()
    start = time.perf_counter()
    while engine.has_unfinished_requests():
        prompt_before = engine.stats().prompt_tokens_computed
        contexts = sum(seq.num_tokens for seq in engine.scheduler.running)
        batch = len(engine.scheduler.running)
        wait_before = engine.device_wait_seconds
        launched.clear()
        step_start = time.perf_counter()
        outputs = engine.step()
        step_time = time.perf_counter() - step_start
        waited = engine.device_wait_seconds - wait_before
        decoding = engine.stats().prompt_tokens_computed == prompt_before and not engine.scheduler.waiting
        if decoding and len(launched) == 3:
            decode_steps.append(DecodeStep(step_time, step_time - waited, batch, contexts, tuple(launched)))
        generated += sum(len(o.outputs[0].token_ids) for o in outputs if o.finished)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    engine.runner.execute, engine.sampler.sample = execute, sample
    return {"elapsed": elapsed, "generated": generated, "decode_steps": decode_steps}


def decode_roofline(arch, steps: list[DecodeStep], bandwidth: float, dtype_bytes: int = 2) -> dict:
    """Fraction of the HBM roofline over the pure-decode steps: each step must read every
    weight once (the embedding only for its rows) and each sequence's KV."""
    weights = weight_bytes(arch, dtype_bytes)
    kv_per_token = 2 * arch.num_hidden_layers * arch.num_key_value_heads * arch.head_dim * dtype_bytes
    ideal = sum((weights + step.contexts * kv_per_token) / bandwidth for step in steps)
    actual = sum(step.wall for step in steps)
    tokens = sum(step.batch for step in steps)
    forward = sum(step.events[0].elapsed_time(step.events[1]) / 1e3 for step in steps)
    gpu = sum(step.events[0].elapsed_time(step.events[2]) / 1e3 for step in steps)
    host = sum(step.host for step in steps)
    count = len(steps)
    return {
        "decode_steps": count,
        "decode_tok_s": tokens / actual,
        "roofline_tok_s": tokens / ideal,
        "roofline_fraction": ideal / actual,
        "mean_step_ms": 1e3 * actual / count,
        # GPU time of the forward (graph replay + logits), and of the whole step (+ sampling).
        "mean_forward_gpu_ms": 1e3 * forward / count,
        "mean_step_gpu_ms": 1e3 * gpu / count,
        # Host time of a step: its wall time minus the time it sat waiting for sampled tokens.
        # Synchronous: step ~ host + GPU. Asynchronous: step ~ max(host, GPU).
        "mean_host_ms": 1e3 * host / count,
        "gpu_busy_fraction": gpu / actual,
        "ideal_step_ms": 1e3 * ideal / count,
        "weight_gb": weights / 1e9,
    }


def weight_bytes(arch, dtype_bytes: int = 2) -> int:
    hidden, inter, layers = arch.hidden_size, arch.intermediate_size, arch.num_hidden_layers
    q, kv = arch.num_attention_heads * arch.head_dim, arch.num_key_value_heads * arch.head_dim
    per_layer = hidden * (q + 2 * kv) + q * hidden + 3 * hidden * inter + 2 * hidden + 2 * arch.head_dim
    lm_head = arch.vocab_size * hidden
    return (layers * per_layer + lm_head + hidden) * dtype_bytes


def matmul_flops(arch, num_tokens: int) -> float:
    """Forward FLOPs of one prompt: weights (2 per parameter per token), causal attention,
    and the LM head on the last token only."""
    hidden, inter, layers = arch.hidden_size, arch.intermediate_size, arch.num_hidden_layers
    q, kv = arch.num_attention_heads * arch.head_dim, arch.num_key_value_heads * arch.head_dim
    per_layer = hidden * (q + 2 * kv) + q * hidden + 3 * hidden * inter
    dense = 2 * layers * per_layer * num_tokens
    attention = layers * 4 * q * num_tokens * num_tokens / 2
    return dense + attention + 2 * hidden * arch.vocab_size


# ---- sections --------------------------------------------------------------------------------


def section_roofline(args, state) -> None:
    state["bandwidth"] = copy_bandwidth()
    state["matmul_peak"] = matmul_peak()
    record(args.out, figure="copy_bandwidth_GBps", value=state["bandwidth"] / 1e9)
    record(args.out, figure="bf16_matmul_peak_TFLOPs", value=state["matmul_peak"] / 1e12)
    for batch in (1, 4):
        record(args.out, figure="split_kv_decode_attention_32k", **split_kv_timing(batch, state))
        free_cuda()


def split_kv_timing(batch: int, state) -> dict:
    """The decode attention kernel alone on the Qwen3-8B attention shape at 32k context."""
    from ponder.kernels.dispatch import decode_num_splits
    from ponder.kernels.triton_decode_attention import decode_attention

    context, block_size = 32768, 16
    blocks = batch * context // block_size
    k_cache = torch.randn(blocks, block_size, 8, 128, dtype=torch.bfloat16, device="cuda")
    v_cache = torch.randn_like(k_cache)
    tables = torch.randperm(blocks, device="cuda", dtype=torch.int32).view(batch, -1)
    seq_lens = torch.full((batch,), context, dtype=torch.int32, device="cuda")
    query = torch.randn(batch, 32, 128, dtype=torch.bfloat16, device="cuda")
    splits = decode_num_splits(batch, 8, context, torch.device("cuda"))

    def attend(num_splits: int) -> torch.Tensor:
        return decode_attention(query, k_cache, v_cache, tables, seq_lens, 128**-0.5, num_splits)

    on = cuda_time(lambda: attend(splits), repeats=50)
    off = cuda_time(lambda: attend(1), repeats=50)
    kv_bytes = 2 * k_cache.numel() * k_cache.element_size()
    return {
        "batch": batch,
        "splits": splits,
        "on_us": on * 1e6,
        "off_us": off * 1e6,
        "speedup": off / on,
        "on_bandwidth_fraction": kv_bytes / on / state["bandwidth"],
    }


def section_ponder(name: str, args, state) -> None:
    """ponder on the shape's checkpoint; the HF model stays on the GPU for the baselines."""
    from ponder.models.hf_config import read_arch_config

    model_dir = checkpoint(name, state)
    prompts = random_prompts(args.num_requests, args.input_len)
    total = args.num_requests * args.output_len
    llm = ponder_llm(
        model_dir,
        max_num_seqs=args.num_requests,
        max_num_batched_tokens=8192,
        max_model_len=args.input_len + args.output_len + 16,
    )
    arch = read_arch_config(model_dir)
    run_steps(llm, prompts, 2)  # warm-up at the measured shapes: kernels compile, buffers grow
    for mode in args.scheduling:
        set_scheduling(llm.engine, mode)  # same engine, same graphs: a fair A/B
        llm.engine.reset_prefix_cache()  # no run may reuse an earlier run's prompts
        result = run_steps(llm, prompts, args.output_len)
        assert result["generated"] == total, result["generated"]
        record(
            args.out,
            figure="ponder",
            scheduling=mode,
            tok_s=total / result["elapsed"],
            seconds=result["elapsed"],
            **workload(name, args),
            **decode_roofline(arch, result["decode_steps"], state["bandwidth"]),
        )
    del llm
    free_cuda()


def section_baselines(name: str, args, state, baselines: tuple[str, ...]) -> None:
    model = state["hf"][name]
    prompts = random_prompts(args.num_requests, args.input_len)
    total = args.num_requests * args.output_len
    for baseline in baselines:
        try:  # a baseline failing must not lose the other figures
            if baseline == "generate":
                seconds, tokens = hf_generate(model, prompts, args.output_len), total
            else:
                seconds, tokens = hf_generate_batch(model, prompts, args.output_len)
            record(
                args.out,
                figure=f"transformers.{baseline}",
                tok_s=tokens / seconds,
                seconds=seconds,
                tokens=tokens,
                **workload(name, args),
            )
        except Exception as error:
            record(args.out, figure=f"transformers.{baseline}", error=repr(error)[:300])
        free_cuda()
    del state["hf"][name], model
    free_cuda()


def workload(name: str, args) -> dict:
    return dict(shape=name, requests=args.num_requests, input_len=args.input_len, output_len=args.output_len)


def checkpoint(name: str, state) -> Path:
    model_dir = state["tmp"] / name
    if name not in state["hf"]:
        state["hf"][name] = make_checkpoint(name, model_dir)
    return model_dir


def section_long(args, state) -> None:
    from ponder.models.hf_config import read_arch_config

    model_dir = checkpoint("qwen3-8b", state)
    arch = read_arch_config(model_dir)
    context, decode_tokens = 32768, 64
    llm = ponder_llm(
        model_dir,
        max_num_seqs=4,
        max_num_batched_tokens=8192,
        max_model_len=context + decode_tokens + 16,
    )
    run_steps(llm, random_prompts(4, context - 1, seed=3), 4)  # warm-up at the measured shapes
    for batch in (1, 4):
        prompts = random_prompts(batch, context - 1, seed=batch)
        for mode in args.scheduling:
            set_scheduling(llm.engine, mode)
            llm.engine.reset_prefix_cache()
            result = run_steps(llm, prompts, decode_tokens)
            record(
                args.out,
                figure="ponder_decode_32k",
                shape="qwen3-8b",
                scheduling=mode,
                batch=batch,
                context=context,
                **decode_roofline(arch, result["decode_steps"], state["bandwidth"]),
            )
    del llm
    free_cuda()


def section_prefill(args, state) -> None:
    from ponder.models.hf_config import read_arch_config

    model_dir = checkpoint("qwen3-8b", state)
    arch = read_arch_config(model_dir)
    length = 8192
    flops = matmul_flops(arch, length)
    prompt = random_prompts(1, length, seed=5)[0]
    llm = ponder_llm(model_dir, max_num_seqs=4, max_num_batched_tokens=length, max_model_len=length + 16)
    times = []
    for _ in range(4):
        llm.engine.reset_prefix_cache()
        result = run_steps(llm, [prompt], 1)
        times.append(result["elapsed"])
    seconds = sorted(times[1:])[1]
    record(
        args.out,
        figure="ponder_prefill_8k",
        shape="qwen3-8b",
        seconds=seconds,
        tflops=flops / seconds / 1e12,
        peak_fraction=flops / seconds / state["matmul_peak"],
    )
    del llm
    free_cuda()
    hf_seconds = hf_prefill_seconds(state["hf"]["qwen3-8b"], prompt)
    record(
        args.out,
        figure="transformers_prefill_8k",
        shape="qwen3-8b",
        seconds=hf_seconds,
        tflops=flops / hf_seconds / 1e12,
        peak_fraction=flops / hf_seconds / state["matmul_peak"],
    )
    free_cuda()


def hf_prefill_seconds(model, prompt: list[int]) -> float:
    ids = torch.tensor([prompt], device="cuda")
    with torch.no_grad():
        return cuda_time(lambda: model(ids, logits_to_keep=1), repeats=5, warmup=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sections", default="small,large,long,prefill,large_baselines", help="roofline always runs"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--num-requests", type=int, default=128)
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--workdir", type=Path, default=None, help="where checkpoints are written")
    parser.add_argument(
        "--scheduling",
        default="async,sync",
        help="ponder runs, in order, on one engine: async (the default engine), async1 (every step "
        "in flight, even of one sequence), sync (the baseline)",
    )
    parser.add_argument(
        "--no-async-scheduling",
        dest="scheduling",
        action="store_const",
        const="sync",
        help="only synchronous scheduling (same as --scheduling sync)",
    )
    args = parser.parse_args()
    args.scheduling = args.scheduling.split(",")
    sections = args.sections.split(",")
    record(
        args.out,
        figure="device",
        name=torch.cuda.get_device_name(),
        torch=torch.__version__,
        triton=__import__("triton").__version__,
        transformers=__import__("transformers").__version__,
    )
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        state = {"tmp": Path(tmp), "hf": {}}
        section_roofline(args, state)
        for section in sections:
            start = time.perf_counter()
            if section == "small":
                section_ponder("qwen3-0.6b", args, state)
                section_baselines("qwen3-0.6b", args, state, ("generate", "generate_batch"))
            elif section == "large":
                section_ponder("qwen3-8b", args, state)
            elif section == "long":
                section_long(args, state)
            elif section == "prefill":
                section_prefill(args, state)
            elif section == "large_baselines":
                section_baselines("qwen3-8b", args, state, ("generate_batch",))
            print(f"section {section} took {time.perf_counter() - start:.1f} s", flush=True)
    print("\n" + "\n".join(json.dumps(r) for r in RESULTS))


if __name__ == "__main__":
    main()
