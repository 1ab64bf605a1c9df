"""Pick a grammar library by measurement: xgrammar vs outlines-core, compile time and per-token
mask cost (fill the allowed-token bitmask, then advance by one allowed token; drawing that
random allowed token is not timed) on the built-in
model's vocabulary and on a Qwen-sized (151,936-id) byte-level vocabulary.

No real 151k tokenizer can be downloaded here, so the large vocabulary is synthetic: the 256 byte
tokens plus the most frequent 2-16 character substrings of the Python sources in this venv,
byte-level encoded as GPT-2/Qwen tokenizers store them (with and without a leading space).

    nice -n 10 python benchmarks/structured_backends.py --steps 200
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4},
        "verdict": {"enum": ["yes", "no", "unsure"]},
    },
    "required": ["name", "age", "tags", "verdict"],
    "additionalProperties": False,
}
REGEX = r"\d{3}-\d{4} [a-z]{2,12}"
QWEN_VOCAB_SIZE = 151_936
NUM_REAL_TOKENS = 151_643  # Qwen2/3: the rest are special / padding ids


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map (how byte-level BPE vocabularies store bytes)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


def encode_bytes(raw: bytes) -> str:
    return "".join(BYTE_ENCODER[b] for b in raw)


def builtin_vocab() -> tuple[list[str], int, int]:
    """(encoded vocab by id, model vocab size, eos id) of the built-in model."""
    from ponder.assets import default_model_dir

    model_dir = default_model_dir()
    data = json.loads((model_dir / "tokenizer.json").read_text())
    by_id = {i: t for t, i in data["model"]["vocab"].items()}
    for added in data["added_tokens"]:
        by_id[added["id"]] = added["content"]
    config = json.loads((model_dir / "config.json").read_text())
    vocab = [by_id.get(i, "") for i in range(max(by_id) + 1)]
    return vocab, config["vocab_size"], config["eos_token_id"]


def synthetic_qwen_vocab() -> tuple[list[str], int, int]:
    counts: collections.Counter[bytes] = collections.Counter()
    rng = random.Random(0)
    for path in sorted(Path(np.__file__).parents[1].rglob("*.py"))[:4000]:
        data = path.read_bytes()[:20000]
        for _ in range(len(data) // 8):
            start = rng.randrange(len(data))
            length = rng.choice((2, 3, 3, 4, 4, 5, 6, 7, 8, 10, 12, 16))
            counts[data[start : start + length]] += 1
    tokens = [encode_bytes(bytes([b])) for b in range(256)]
    seen = set(tokens)
    for piece, _ in counts.most_common():
        for variant in (piece, b" " + piece.lstrip()):
            encoded = encode_bytes(variant)
            if encoded not in seen and len(tokens) < NUM_REAL_TOKENS:
                seen.add(encoded)
                tokens.append(encoded)
        if len(tokens) >= NUM_REAL_TOKENS:
            break
    eos = len(tokens)
    tokens += ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    return tokens, QWEN_VOCAB_SIZE, eos


class XGrammarBackend:
    name = "xgrammar"

    def __init__(self, vocab: list[str], vocab_size: int, eos: int):
        import xgrammar as xgr

        self.xgr = xgr
        info = xgr.TokenizerInfo(vocab, xgr.VocabType.BYTE_LEVEL, vocab_size=vocab_size, stop_token_ids=[eos])
        self.compiler = xgr.GrammarCompiler(info, cache_enabled=False)
        self.vocab_size = vocab_size

    def compile(self, kind: str, spec: str):
        if kind == "json":
            return self.compiler.compile_json_schema(spec, any_whitespace=False)
        return self.compiler.compile_regex(spec)

    def walk(self, compiled, steps: int, rng: random.Random) -> list[float]:
        matcher = self.xgr.GrammarMatcher(compiled)
        bitmask = self.xgr.allocate_token_bitmask(1, self.vocab_size)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            matcher.fill_next_token_bitmask(bitmask, 0)
            filled = time.perf_counter()
            token = rng.choice(allowed_ids(bitmask[0].numpy(), self.vocab_size))
            picked = time.perf_counter()
            matcher.accept_token(token)
            times.append(filled - start + time.perf_counter() - picked)
            if matcher.is_terminated():
                matcher.reset()
        return times


class OutlinesBackend:
    name = "outlines-core"

    def __init__(self, vocab: list[str], vocab_size: int, eos: int):
        import outlines_core as oc

        self.oc = oc
        mapping: dict[bytes, list[int]] = {}
        for token_id, token in enumerate(vocab):
            if token_id == eos or not token or token.startswith("<|"):
                continue
            raw = bytes(BYTE_DECODER[c] for c in token) if all(c in BYTE_DECODER for c in token) else None
            if raw:
                mapping.setdefault(raw, []).append(token_id)
        self.vocabulary = oc.Vocabulary(eos, mapping)
        self.vocab_size = vocab_size

    def compile(self, kind: str, spec: str):
        regex = self.oc.json_schema.build_regex_from_schema(spec) if kind == "json" else spec
        return self.oc.Index(regex, self.vocabulary)

    def walk(self, index, steps: int, rng: random.Random) -> list[float]:
        import torch

        guide = self.oc.Guide(index)
        words = (self.vocab_size + 31) // 32
        bitmask = torch.zeros(words, dtype=torch.int32)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            guide.write_mask_into(bitmask.data_ptr(), words, 4)
            filled = time.perf_counter()
            token = rng.choice(allowed_ids(bitmask.numpy(), self.vocab_size))
            picked = time.perf_counter()
            guide.advance(token)
            times.append(filled - start + time.perf_counter() - picked)
            if guide.is_finished():
                guide = self.oc.Guide(index)
        return times


def allowed_ids(bitmask: np.ndarray, vocab_size: int) -> list[int]:
    bits = np.unpackbits(bitmask.view(np.uint8), bitorder="little")[:vocab_size]
    return np.flatnonzero(bits).tolist()


def measure(backend_class, vocab_name: str, vocab, vocab_size: int, eos: int, steps: int) -> list[dict]:
    start = time.perf_counter()
    backend = backend_class(vocab, vocab_size, eos)
    setup_s = time.perf_counter() - start
    rows = []
    for kind, spec in (("json", json.dumps(SCHEMA)), ("regex", REGEX)):
        start = time.perf_counter()
        compiled = backend.compile(kind, spec)
        compile_s = time.perf_counter() - start
        times = backend.walk(compiled, steps, random.Random(0))
        rows.append(
            {
                "backend": backend.name,
                "vocab": vocab_name,
                "grammar": kind,
                "setup_s": round(setup_s, 3),
                "compile_s": round(compile_s, 3),
                "fill_accept_us_median": round(statistics.median(times) * 1e6, 1),
                "fill_accept_us_p99": round(sorted(times)[int(0.99 * (len(times) - 1))] * 1e6, 1),
                "fill_accept_us_mean": round(statistics.mean(times) * 1e6, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--vocab", choices=["builtin", "qwen", "both"], default="both")
    args = parser.parse_args()
    vocabs = []
    if args.vocab in ("builtin", "both"):
        vocabs.append(("builtin", *builtin_vocab()))
    if args.vocab in ("qwen", "both"):
        vocabs.append(("qwen-151k", *synthetic_qwen_vocab()))
    for vocab_name, vocab, vocab_size, eos in vocabs:
        for backend_class in (XGrammarBackend, OutlinesBackend):
            measure(backend_class, vocab_name, vocab, vocab_size, eos, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
