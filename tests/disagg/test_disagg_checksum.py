"""Checksum mode catches a corrupted transfer: one flipped byte in the shared-memory file makes
the load fail its block check, and the decode engine recomputes (same greedy output)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from ponder.engine.sampling_params import SamplingParams
from tests.disagg.test_disagg_tp import engine, run


def test_a_corrupted_block_fails_the_check_and_the_prompt_is_recomputed(tmp_path):
    producer, consumer = engine(tmp_path, "p"), engine(tmp_path, "d", block_size=8)
    assert producer.kv_transfer is not None and consumer.kv_transfer is not None
    expected = run(consumer, SamplingParams(temperature=0, max_tokens=12))  # colocated
    consumer.reset_prefix_cache()
    epoch = producer.kv_transfer.connector.epoch
    spec = {"transfer_id": uuid.uuid4().hex, "producer_epoch": epoch}
    first = run(
        producer, SamplingParams(temperature=0, max_tokens=1, kv_transfer={"role": "producer", **spec})
    )
    manifest = Path(tmp_path) / epoch / f"{spec['transfer_id']}.json"
    deadline = time.monotonic() + 30
    while not manifest.exists():  # the save thread writes it
        assert time.monotonic() < deadline
        time.sleep(0.01)
    data = manifest.with_suffix(".kv")
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    data.write_bytes(bytes(raw))
    params = {"role": "consumer", **spec, "first_token_id": first[0]}
    assert run(consumer, SamplingParams(temperature=0, max_tokens=12, kv_transfer=params)) == expected
    stats = consumer.kv_transfer.stats
    assert stats.loads_ok == 0 and stats.recomputed == 1 and stats.failures == {"TransferFailed": 1}
    producer.shutdown()
    consumer.shutdown()
