"""Self-training through the data flywheel, end to end: serve a family the model is weak on with
self-consistency, log it, keep the answers the vote agreed on, fine-tune, and measure the greedy
accuracy gain on held-out items; then the same with 30% of the logged labels corrupted, trained
with and without curation.

    PYTHONPATH=src python3 benchmarks/flywheel_selftrain.py --out /tmp/selftrain \\
        --family word_problems --difficulty hard --traffic 400 --samples 8 --heldout 200

Steps (each variant trains from the same base model):
1. traffic: `--traffic` train-split items of the family, each answered by self_consistency over
   `--samples` branches, logged as `ponder serve --log-requests` logs them (one LogRecord per
   call: the chosen branch's thought and answer, the vote share as agreement). `--via offline`
   (default) runs the strategy in-process (the server's own rows, without HTTP); the rows are the
   ones the server writes (ponder.openai.request_log builds the same fields).
2. a corrupted copy of the log: `--corrupt` of the rows get a wrong final answer (in the box and
   in the thought's Result/Answer lines), as bad labels or a logging bug would.
3. per variant: `ponder flywheel curate` (rules below), `ponder flywheel train`, and greedy
   accuracy of base and candidate on `--heldout` test-split items (`ponder flywheel eval
   --family F --difficulty D --n M` computes the same).
   - clean/agreement:  --min-agreement A          (self-training: no labels used)
   - clean/all:        no filter                  (every voted answer)
   - corrupt/none:     no filter                  (the corrupted labels go in)
   - corrupt/curated:  --min-agreement A --verify-tasks F (the task checker drops bad labels)
Results: OUT/selftrain.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from ponder.cli import main as ponder
from ponder.engine.sampling_params import SamplingParams
from ponder.flywheel.evaluate import items_from_tasks, paired_difference, score_model
from ponder.flywheel.records import LogRecord
from ponder.flywheel.store import RequestLogStore, read_rows
from ponder.tasks import generate

VARIANTS = {
    "clean/agreement": ("requests.db", ["--min-agreement", "{agreement}"]),
    "clean/all": ("requests.db", []),
    "corrupt/none": ("corrupt.db", []),
    "corrupt/curated": ("corrupt.db", ["--min-agreement", "{agreement}", "--verify-tasks", "{family}"]),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default=None, help="base checkpoint (default: built-in)")
    parser.add_argument("--family", default="word_problems")
    parser.add_argument("--difficulty", default="hard")
    parser.add_argument("--traffic", type=int, default=400, help="served train-split items")
    parser.add_argument("--samples", type=int, default=8, help="self-consistency branches")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--heldout", type=int, default=200, help="test-split items for greedy accuracy")
    parser.add_argument("--max-tokens", type=int, default=1200)
    parser.add_argument("--corrupt", type=float, default=0.3)
    parser.add_argument("--agreement", type=float, default=0.5, help="--min-agreement of curation")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu", help="fine-tuning device (cuda on the GPU machine)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine-kwargs", default="{}", help="JSON, e.g. '{\"max_num_seqs\": 256}'")
    return parser.parse_args(argv)


def serve_traffic(args: argparse.Namespace, base: str, log_path: Path) -> dict:
    """Step 1: answer every item by self-consistency and log it as the server would."""
    from ponder.llm import LLM

    items = generate(args.family, args.difficulty, args.traffic, split="train", seed=0)
    llm = LLM(base, **json.loads(args.engine_kwargs))
    params = SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed)
    strategy = {"type": "self_consistency", "n": args.samples}
    started = time.perf_counter()
    results = llm.reason([item.question for item in items], strategy, params)
    seconds = time.perf_counter() - started
    del llm
    store = RequestLogStore(log_path)
    generated = 0
    for index, (item, result) in enumerate(zip(items, results)):
        usage = result.usage
        generated += usage.generated_tokens
        store.append(
            LogRecord(
                response_id=f"sc-{index}",
                created=time.time(),
                model="ponder",
                model_version="v1",
                workload_id=f"{args.family}/{args.difficulty}",
                endpoint="chat",
                prompt=json.dumps([{"role": "user", "content": item.question}]),
                reasoning=result.reasoning,
                answer=result.content,
                final_answer=result.answer,
                completion_tokens=usage.generated_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                strategy="self_consistency",
                agreement=result.vote.share if result.vote is not None else None,
                finish_reason=result.finish_reason,
            )
        )
    store.close()
    right = sum(item.check(result.answer) for item, result in zip(items, results))
    return {
        "items": len(items),
        "sc_accuracy_on_traffic": right / len(items),
        "generated_tokens": generated,
        "seconds": seconds,
    }


def corrupt_log(source: Path, target: Path, share: float, seed: int) -> int:
    """Step 2: a copy of the log where `share` of the rows carry a wrong final answer."""
    rng = random.Random(seed)
    rows = read_rows(source)
    store = RequestLogStore(target)
    corrupted = 0
    for row in rows:
        if row.final_answer and rng.random() < share:
            row = _with_wrong_answer(row, rng)
            corrupted += 1
        store.append(row)
    store.close()
    return corrupted


def _with_wrong_answer(row: LogRecord, rng: random.Random) -> LogRecord:
    right = row.final_answer or ""
    try:
        wrong = str(int(right) + rng.choice([-1, 1]) * rng.randint(1, 9))
    except ValueError:
        wrong = right + "x"

    def swap(text: str | None) -> str | None:
        if text is None:
            return None
        text = re.sub(rf"(Result|Answer): {re.escape(right)}\b", rf"\1: {wrong}", text)
        return text.replace(f"\\boxed{{{right}}}", f"\\boxed{{{wrong}}}")

    return replace(row, final_answer=wrong, answer=swap(row.answer), reasoning=swap(row.reasoning))


def run_variant(args: argparse.Namespace, name: str, base: str, out: Path, heldout) -> dict:
    log_name, rules = VARIANTS[name]
    tag = name.replace("/", "-")
    data = out / f"data-{tag}"
    rules = [rule.format(agreement=args.agreement, family=args.family) for rule in rules]
    curate = ["flywheel", "curate", str(out / log_name), "--out", str(data), "--eval-fraction", "0", *rules]
    assert ponder(curate) == 0
    kept = len((data / "train.jsonl").read_text().splitlines())
    labels = [
        json.loads(line)["metadata"]["answer"] for line in (data / "train.jsonl").read_text().splitlines()
    ]
    gold = {
        item.question: item.answer
        for item in generate(args.family, args.difficulty, args.traffic, split="train")
    }
    questions = [
        json.loads(line)["messages"][-2]["content"]
        for line in (data / "train.jsonl").read_text().splitlines()
    ]
    from ponder.tasks.answers import answers_equal

    label_accuracy = sum(answers_equal(a, gold[q]) for a, q in zip(labels, questions)) / max(1, kept)
    candidate = out / f"candidate-{tag}"
    train = ["flywheel", "train", str(data / "train.jsonl"), "--base", base, "--out", str(candidate)]
    train += ["--epochs", str(args.epochs), "--lr", str(args.lr), "--batch-size", str(args.batch_size)]
    train += ["--device", args.device, "--seed", str(args.seed)]
    assert ponder(train) == 0
    report = json.loads((candidate / "flywheel_train.json").read_text())["result"]
    score = score_model(
        tag, str(candidate), heldout, max_tokens=args.max_tokens, **json.loads(args.engine_kwargs)
    )
    return {
        "variant": name,
        "commands": [" ".join(["ponder", *curate]), " ".join(["ponder", *train])],
        "kept": kept,
        "label_accuracy": label_accuracy,
        "train_tokens": report["trained_tokens"],
        "train_seconds": report["seconds"],
        "score": score,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = args.model or str(_builtin())
    traffic = serve_traffic(args, base, out / "requests.db")
    print(json.dumps({"traffic": traffic}), flush=True)
    corrupted = corrupt_log(out / "requests.db", out / "corrupt.db", args.corrupt, args.seed)
    heldout = items_from_tasks(generate(args.family, args.difficulty, args.heldout, split="test"))
    engine_kwargs = json.loads(args.engine_kwargs)
    started = time.perf_counter()
    base_score = score_model("base", base, heldout, max_tokens=args.max_tokens, **engine_kwargs)
    eval_seconds = time.perf_counter() - started
    rows: list[dict] = []
    report = {
        "args": vars(args),
        "traffic": traffic,
        "corrupted_rows": corrupted,
        "base_accuracy": base_score.accuracy,
        "base_eval_seconds": eval_seconds,
        "heldout": len(heldout),
        "variants": rows,
    }
    for name in [v for v in args.variants.split(",") if v]:
        result = run_variant(args, name, base, out, heldout)
        mean, low, high = paired_difference(result["score"], base_score)
        score = result.pop("score")
        rows.append({**result, "accuracy": score.accuracy, "gain": mean, "gain_ci95": [low, high]})
        # written after every variant, so a run cut short keeps what it measured
        (out / "selftrain.json").write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    print(table(report))
    return 0


def table(report: dict) -> str:
    traffic = report["traffic"]
    lines = [
        f"traffic: {traffic['items']} items x SC@{report['args']['samples']}, SC accuracy "
        f"{100 * traffic['sc_accuracy_on_traffic']:.1f}%, {traffic['generated_tokens']} tokens in "
        f"{traffic['seconds']:.0f} s; corrupted rows: {report['corrupted_rows']}",
        f"base greedy on {report['heldout']} held-out items: {100 * report['base_accuracy']:.1f}%",
        "",
        "| variant | rows kept | labels right | train tokens | train s | greedy acc | gain (95% CI) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["variants"]:
        low, high = row["gain_ci95"]
        lines.append(
            f"| {row['variant']} | {row['kept']} | {100 * row['label_accuracy']:.0f}% | "
            f"{row['train_tokens']} | {row['train_seconds']:.0f} | {100 * row['accuracy']:.1f}% | "
            f"{100 * row['gain']:+.1f} "
            f"({100 * low:+.1f} .. {100 * high:+.1f}) |"
        )
    return "\n".join(lines)


def _builtin():
    from ponder.assets import default_model_dir

    return default_model_dir()


def _plain(value):
    return asdict(value) if hasattr(value, "__dataclass_fields__") else str(value)


if __name__ == "__main__":
    sys.exit(main())
