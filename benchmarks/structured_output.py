"""Structured output on the built-in model: per-token overhead vs unconstrained at batch 32, and the
share of outputs that parse against their schema.

1. overhead: 32 sequences decode together for --tokens steps, every row constrained from its
   first answer token (thinking switched off by the template, and a schema that cannot end
   early) vs the same prompts unconstrained (ignore_eos). Rounds alternate constrained /
   unconstrained; each reports the median decode-step time (prefill excluded).
2. sampler: the sampler alone at batch 32 on random logits, with and without 32 JSON matchers,
   on the built-in vocabulary and on a synthetic Qwen-sized (151,936-id) one.
3. parse: 32 chat requests over three schemas, thinking on (budget --thinking-budget), sampled;
   every answer is checked against its schema.

    nice -n 10 python benchmarks/structured_output.py --rounds 3 --tokens 48
    python benchmarks/structured_output.py --preset quiet --out DIR    # <= 3 min on 2 pinned cores:
        # overhead rounds with an A/A floor (unconstrained twice) and bootstrap 95% intervals, parse
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import torch

from ponder import LLM, SamplingParams
from ponder.engine.structured.params import StructuredOutputParams

BATCH = 32
NO_THINKING = {"enable_thinking": False}
LONG_SCHEMA = {  # an answer that cannot end within the measured steps: every step is masked
    "type": "object",
    "properties": {
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "score": {"type": "integer"}},
                "required": ["name", "score"],
            },
            "minItems": 64,
        }
    },
    "required": ["rows"],
}
# Bounded the way a production schema should be: the built-in model is small, and an unbounded
# number or string can run on until max_tokens (then the JSON is cut off; see the docs).
BOUNDED_INT = {"type": "integer", "minimum": -1000, "maximum": 1000}
SCHEMAS = [
    {
        "type": "object",
        "properties": {"answer": BOUNDED_INT, "confident": {"type": "boolean"}},
        "required": ["answer", "confident"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "verdict": {"enum": ["yes", "no"]},
            "reason": {"type": "string", "maxLength": 40},
        },
        "required": ["verdict", "reason"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": BOUNDED_INT, "maxItems": 4},
            "result": BOUNDED_INT,
        },
        "required": ["steps", "result"],
        "additionalProperties": False,
    },
]
QUESTIONS = [f"What is {a} + {b}?" for a in range(3, 19) for b in (7, 12)]


def prompts(llm: LLM, template_kwargs: dict | None = None) -> list[dict]:
    tokenizer = llm.get_tokenizer()
    out = []
    for question in QUESTIONS[:BATCH]:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, **(template_kwargs or {})
        )
        out.append({"prompt": text, "prompt_token_ids": tokenizer.encode(text, add_special_tokens=False)})
    return out


def decode_step_times(llm: LLM, batch: list[dict], params: SamplingParams) -> list[float]:
    engine = llm.engine
    for i, prompt in enumerate(batch):
        engine.add(engine.make_request(f"r{time.monotonic_ns()}-{i}", prompt, params))
    engine.step()  # the prefill of all 32 (within one token budget) and their first tokens
    times = []
    while engine.has_unfinished_requests():
        start = time.perf_counter()
        engine.step()
        if len(engine.scheduler.running) == BATCH or not times:
            times.append(time.perf_counter() - start)
    return times


def overhead(llm: LLM, rounds: int, tokens: int, budget_s: float | None = None, min_rounds: int = 3) -> dict:
    """Rounds of three runs in rotating order: unconstrained, constrained, and unconstrained again
    (the A/A floor: how far two identical runs read apart here). Each round's constrained and
    second unconstrained runs are divided by its first unconstrained run (paired: robust to load
    drifting over the run); the medians of those ratios come with bootstrap 95% intervals."""
    batch = prompts(llm, NO_THINKING)
    constrained = SamplingParams(
        temperature=0.8, max_tokens=tokens, structured_outputs=StructuredOutputParams(json=LONG_SCHEMA)
    )
    free = SamplingParams(temperature=0.8, max_tokens=tokens, ignore_eos=True)
    decode_step_times(llm, batch, constrained)  # warm-up: compile, caches
    decode_step_times(llm, batch, free)
    runs = [("unconstrained", free), ("constrained", constrained), ("unconstrained2", free)]
    medians: dict[str, list[float]] = {name: [] for name, _ in runs}
    started = time.perf_counter()
    done = 0
    for index in range(rounds):
        round_start = time.perf_counter()
        for name, params in runs[index % 3 :] + runs[: index % 3]:
            medians[name].append(statistics.median(decode_step_times(llm, batch, params)))
        done += 1
        took = time.perf_counter() - round_start
        if budget_s and done >= min_rounds and time.perf_counter() - started + 1.15 * took > budget_s:
            break
    base = statistics.median(medians["unconstrained"])
    with_mask = statistics.median(medians["constrained"])
    result: dict = {
        "batch": BATCH,
        "rounds": done,
        "decode_steps_per_run": tokens - 1,
        "per_token_us_unconstrained": round(base / BATCH * 1e6, 1),
        "per_token_us_constrained": round(with_mask / BATCH * 1e6, 1),
        "overhead_pct_of_medians": round((with_mask / base - 1) * 100, 1),
    }
    for name in medians:
        result[f"step_ms_{name}"] = [round(m * 1e3, 2) for m in medians[name]]
    for name, key in (("constrained", "overhead"), ("unconstrained2", "aa")):
        ratios = [c / u for u, c in zip(medians["unconstrained"], medians[name], strict=True)]
        low, high = bootstrap_median(ratios)
        result[f"{key}_pct_per_round"] = [round((r - 1) * 100, 1) for r in ratios]
        result[f"{key}_pct_median_of_rounds"] = round((statistics.median(ratios) - 1) * 100, 2)
        result[f"{key}_pct_ci95"] = [round((low - 1) * 100, 2), round((high - 1) * 100, 2)]
    return result


def bootstrap_median(values: list[float], samples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median of values (resampled with replacement)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(samples))
    return medians[int(0.025 * samples)], medians[int(0.975 * samples) - 1]


def sampler_cost(vocab_name: str, vocab: list[str], vocab_size: int, eos: int, steps: int) -> dict:
    """Sampler.sample on [32, vocab] random logits, with 32 live JSON matchers vs none."""
    import xgrammar as xgr

    from ponder.engine.sampler import Sampler, SamplingRow
    from ponder.engine.structured.state import StructuredState

    info = xgr.TokenizerInfo(vocab, xgr.VocabType.BYTE_LEVEL, vocab_size=vocab_size, stop_token_ids=[eos])
    grammar = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(LONG_SCHEMA), any_whitespace=False)
    params = SamplingParams(temperature=0.8, max_tokens=None)
    sampler = Sampler(seed=0)
    generator = torch.Generator().manual_seed(0)
    states = [StructuredState(grammar, [0], None) for _ in range(BATCH)]
    histories: list[list[int]] = [[0] for _ in range(BATCH)]
    timings: dict[str, list[float]] = {"unconstrained": [], "constrained": []}
    for _ in range(steps):
        logits = torch.randn(BATCH, vocab_size, generator=generator)
        for name in ("unconstrained", "constrained"):
            rows = [
                SamplingRow(params, histories[i], 1, constraint=states[i] if name == "constrained" else None)
                for i in range(BATCH)
            ]
            start = time.perf_counter()
            sampled = sampler(logits, rows)
            if name == "constrained":
                for i, token in enumerate(sampled.token_ids):
                    histories[i].append(token)
                    states[i].sync(histories[i], None)
            timings[name].append(time.perf_counter() - start)
    base = statistics.median(timings["unconstrained"])
    masked = statistics.median(timings["constrained"])
    return {
        "vocab": vocab_name,
        "vocab_size": vocab_size,
        "sample_ms_unconstrained": round(base * 1e3, 2),
        "sample_ms_constrained": round(masked * 1e3, 2),
        "mask_cost_per_row_us": round((masked - base) / BATCH * 1e6, 1),
    }


def parse_rate(llm: LLM, thinking_budget: int, max_tokens: int) -> dict:
    batch = prompts(llm)
    params = [
        SamplingParams(
            temperature=0.7,
            seed=i,
            max_tokens=max_tokens,
            thinking_budget=thinking_budget,
            structured_outputs=StructuredOutputParams(json=SCHEMAS[i % len(SCHEMAS)]),
        )
        for i in range(len(batch))
    ]
    start = time.perf_counter()
    outputs = llm.generate(batch, params)
    wall = time.perf_counter() - start
    parsed = stopped = thought = 0
    examples = []
    for i, output in enumerate(outputs):
        sample = output.outputs[0]
        stopped += sample.finish_reason == "stop"
        thought += sample.num_reasoning_tokens > 0
        if valid(sample.content, SCHEMAS[i % len(SCHEMAS)]):
            parsed += 1
        if len(examples) < 3:
            examples.append({"reasoning": sample.reasoning[-60:], "content": sample.content})
    return {
        "requests": len(outputs),
        "parsed": parsed,
        "parsed_pct": round(100 * parsed / len(outputs), 1),
        "finished_by_stop": stopped,
        "with_thinking": thought,
        "wall_s": round(wall, 2),
        "examples": examples,
    }


def valid(text: str, schema: dict) -> bool:
    """A small checker for the three schemas above (types, required keys, enums, bounds)."""
    try:
        value = json.loads(text)
    except ValueError:
        return False
    if not isinstance(value, dict) or set(value) != set(schema["required"]):
        return False
    for key, spec in schema["properties"].items():
        item = value[key]
        kind = spec.get("type")
        if "enum" in spec and item not in spec["enum"]:
            return False
        if kind == "integer" and not in_bounds(item, spec):
            return False
        if kind == "boolean" and not isinstance(item, bool):
            return False
        if kind == "string" and not (isinstance(item, str) and len(item) <= spec.get("maxLength", 1 << 30)):
            return False
        if kind == "array" and not (
            isinstance(item, list)
            and len(item) <= spec.get("maxItems", 1 << 30)
            and all(in_bounds(x, spec["items"]) for x in item)
        ):
            return False
    return True


def in_bounds(value: object, spec: dict) -> bool:
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    return spec.get("minimum", -(1 << 63)) <= value <= spec.get("maximum", 1 << 63)


PRESETS: dict[str, dict] = {
    # The lead's quiet box pinned to 2 cores: overhead with its A/A floor, then the parse check.
    "quiet": {"rounds": 30, "tokens": 32, "threads": 2, "budget_s": 150, "skip": ["sampler"]},
    "smoke": {
        "rounds": 2,
        "tokens": 4,
        "threads": 1,
        "max_tokens": 24,
        "thinking_budget": 8,
        "skip": ["sampler"],
    },
}


def markdown(results: dict) -> str:
    lines = [
        f"CPU, torch {torch.__version__}, {results['torch_threads']} threads, CPUs {results['cpus']}, "
        f"load average {results['load_before']} -> {results['load_after']}, {results['wall_s']:.0f} s wall"
    ]
    over = results.get("overhead")
    if over:
        lines += [
            "",
            f"Batch {over['batch']}, {over['decode_steps_per_run']} decode steps per run, "
            f"{over['rounds']} rounds",
            "",
            "| comparison | median of per-round ratios | 95% CI |",
            "|---|---:|---|",
            "| constrained vs unconstrained | {:+.1f}% | [{:+.1f}%, {:+.1f}%] |".format(
                over["overhead_pct_median_of_rounds"], *over["overhead_pct_ci95"]
            ),
            "| A/A: unconstrained vs unconstrained | {:+.1f}% | [{:+.1f}%, {:+.1f}%] |".format(
                over["aa_pct_median_of_rounds"], *over["aa_pct_ci95"]
            ),
            "",
            f"Per token: {over['per_token_us_unconstrained']} us unconstrained, "
            f"{over['per_token_us_constrained']} us constrained (medians of the runs' median steps).",
        ]
    for row in results.get("sampler", []):
        lines.append(
            f"sampler {row['vocab']}: {row['sample_ms_unconstrained']} ms -> "
            f"{row['sample_ms_constrained']} ms "
            f"({row['mask_cost_per_row_us']} us per row)"
        )
    parse = results.get("parse")
    if parse:
        lines += [
            "",
            f"Parse: {parse['parsed']}/{parse['requests']} ({parse['parsed_pct']}%) "
            "parse against their schema, "
            f"{parse['finished_by_stop']} finished by stop, {parse['with_thinking']} thought first.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default=None, help="a named set of the options below"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=48, help="tokens per sequence in the overhead runs")
    parser.add_argument("--sampler-steps", type=int, default=30)
    parser.add_argument("--thinking-budget", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--budget-s", type=float, default=None, help="overhead: stop adding rounds past this")
    parser.add_argument("--skip", nargs="*", default=[], choices=["overhead", "sampler", "parse"])
    parser.add_argument("--out", default=None, help="write structured_output.json and .md here")
    args = parser.parse_args()
    if args.preset:  # a preset sets what was left at its default
        for key, value in PRESETS[args.preset].items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    llm = LLM(max_model_len=512, max_num_seqs=BATCH)
    results: dict = {
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "args": vars(args),
    }
    if "overhead" not in args.skip:
        results["overhead"] = overhead(llm, args.rounds, args.tokens, args.budget_s)
        print(json.dumps(results["overhead"]), flush=True)
    if "sampler" not in args.skip:
        sys.path.insert(0, str(Path(__file__).parent))
        from structured_backends import builtin_vocab, synthetic_qwen_vocab

        results["sampler"] = []
        for name, vocab_source in (("builtin", builtin_vocab), ("qwen-151k", synthetic_qwen_vocab)):
            vocab, vocab_size, eos = vocab_source()
            results["sampler"].append(sampler_cost(name, vocab, vocab_size, eos, args.sampler_steps))
            print(json.dumps(results["sampler"][-1]), flush=True)
    if "parse" not in args.skip:
        results["parse"] = parse_rate(llm, args.thinking_budget, args.max_tokens)
        print(json.dumps(results["parse"]), flush=True)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.perf_counter() - started, 1)
    table = markdown(results)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "structured_output.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        (out / "structured_output.md").write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
