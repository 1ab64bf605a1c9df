"""KV events: the block pool publishes stored / removed blocks by chain hash, the log hands them
out by cursor, and the hashes are those a router computes from the prompt's token ids."""

import asyncio

from ponder.engine.args import EngineArgs
from ponder.engine.async_engine import AsyncEngine
from ponder.engine.kv.block_pool import BlockPool
from ponder.engine.kv.events import BlockRemoved, BlockStored, KVEventLog
from ponder.engine.llm_engine import LLMEngine
from ponder.engine.sampling_params import SamplingParams
from ponder.router.prefix import prompt_block_hashes


def test_pool_publishes_store_and_eviction():
    pool = BlockPool(2)
    a = pool.allocate()
    pool.register(a, 111)
    pool.register(a, 111)  # already published: no second event
    b = pool.allocate()
    pool.register(b, 111)  # another block, same content: first writer wins, no event
    pool.release(a)
    pool.release(b)
    events = pool.events.since(0).events
    assert events == [BlockStored(1, 111)]
    pool.allocate()  # the least recently freed first: a, whose hash is forgotten
    pool.allocate()
    assert pool.events.since(1).events == [BlockRemoved(2, 111)]


def test_reset_prefix_cache_removes_everything():
    pool = BlockPool(3)
    for block_hash in (1, 2, 3):
        pool.register(pool.allocate(), block_hash)
    pool.reset_prefix_cache()
    kinds = [type(e) for e in pool.events.since(3).events]
    assert kinds == [BlockRemoved] * 3


def test_log_cursor_and_lost_events():
    log = KVEventLog(capacity=3)
    batch = log.since(0)
    assert batch.events == [] and batch.next_seq == 0 and not batch.lost
    for h in range(5):
        log.stored(h)
    batch = log.since(0)  # events 1 and 2 were dropped
    assert [e.seq for e in batch.events] == [3, 4, 5] and batch.lost and batch.next_seq == 5
    assert log.since(5).events == [] and log.since(5).next_seq == 5 and not log.since(5).lost
    assert [e.block_hash for e in log.since(4).events] == [4] and not log.since(4).lost
    assert [e.seq for e in log.since(2, limit=2).events] == [3, 4]
    restarted = log.since(99)  # the engine behind this cursor restarted
    assert restarted.lost and [e.seq for e in restarted.events] == [3, 4, 5]


def test_engine_events_match_the_routers_prompt_hashes(qwen3_ckpt):
    config = EngineArgs.from_kwargs(str(qwen3_ckpt), block_size=4, kv_cache_memory=1 << 24)
    engine = AsyncEngine(LLMEngine(config.create_engine_config()))
    prompt_ids = list(range(10, 31))  # 21 tokens: 5 full blocks

    async def run() -> None:
        params = SamplingParams(temperature=0, max_tokens=2, ignore_eos=True)
        async for _ in engine.add_request("r", {"prompt_token_ids": prompt_ids}, params):
            pass
        await engine.shutdown()

    asyncio.run(run())
    assert engine.kv_block_size == 4
    stored = [e.block_hash for e in engine.kv_events(0).events if isinstance(e, BlockStored)]
    expected = prompt_block_hashes(prompt_ids, 4)
    assert len(expected) == 5
    assert stored[: len(expected)] == expected
