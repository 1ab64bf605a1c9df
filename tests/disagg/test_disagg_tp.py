"""Prefill and decode engines with different tensor-parallel sizes (TP=2 -> TP=1 and TP=1 -> TP=2,
gloo on CPU, the extra rank a real worker process) and different block sizes: the wire carries
every KV head, the sending ranks gather theirs, the receiving ranks keep theirs. Greedy output is
the colocated one, and the decode engine computes no prompt token."""

from __future__ import annotations

import uuid

import pytest

from ponder.engine.args import EngineArgs
from ponder.engine.llm_engine import LLMEngine
from ponder.engine.sampling_params import SamplingParams

PROMPT = "Count from one to twenty, slowly, and say something about every number. " * 3


def engine(tmp_path, name: str, **knobs) -> LLMEngine:
    args = EngineArgs(
        kv_cache_memory=16 << 20, kv_connector="shm", kv_transfer_dir=str(tmp_path), kv_worker_name=name,
        kv_transfer_checksum=True, kv_transfer_timeout=30.0, **knobs,
    )  # fmt: skip
    return LLMEngine(args.create_engine_config())


def run(engine: LLMEngine, params: SamplingParams) -> list[int]:
    request_id = uuid.uuid4().hex
    engine.add_request(request_id, PROMPT, params)
    tokens: list[int] = []
    while engine.has_unfinished_requests():
        for output in engine.step():
            if output.request_id == request_id:
                tokens = list(output.outputs[0].token_ids)
    return tokens


def hand_off(producer: LLMEngine, consumer: LLMEngine, max_tokens: int) -> list[int]:
    assert producer.kv_transfer is not None and consumer.kv_transfer is not None
    spec = {"transfer_id": uuid.uuid4().hex, "producer_epoch": producer.kv_transfer.connector.epoch}
    first = run(
        producer, SamplingParams(temperature=0, max_tokens=1, kv_transfer={"role": "producer", **spec})
    )
    consumer_params = {"role": "consumer", **spec, "first_token_id": first[0]}
    return run(consumer, SamplingParams(temperature=0, max_tokens=max_tokens, kv_transfer=consumer_params))


@pytest.mark.parametrize(("producer_tp", "consumer_tp"), [(2, 1), (1, 2)])
def test_different_tp_sizes_and_block_sizes_give_the_colocated_output(tmp_path, producer_tp, consumer_tp):
    # The TP=1 engine first: building an engine after a TP group exists in the process would
    # join that group's collectives (one process hosts one tensor-parallel group).
    if producer_tp == 1:
        producer = engine(tmp_path, "p", tensor_parallel_size=1, block_size=16)
        consumer = engine(tmp_path, "d", tensor_parallel_size=consumer_tp, block_size=8)
    else:
        consumer = engine(tmp_path, "d", tensor_parallel_size=consumer_tp, block_size=8)
        producer = engine(tmp_path, "p", tensor_parallel_size=producer_tp, block_size=16)
    try:
        expected = run(producer, SamplingParams(temperature=0, max_tokens=16))  # colocated, on P
        assert hand_off(producer, consumer, 16) == expected
        assert consumer.kv_transfer is not None
        stats = consumer.kv_transfer.stats
        assert stats.loads_ok == 1 and stats.loads_failed == 0 and stats.blocks_verified >= 3
        assert consumer.stats().prompt_tokens_computed == 0
    finally:
        producer.shutdown()
        consumer.shutdown()
