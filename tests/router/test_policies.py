"""Routing policies on the balancer alone: load counted at pick time, prefix affinity from KV
events, and the pile-up cases (a burst, requests spaced in time, a shared system prompt)."""

import pytest

from ponder.errors import InvalidRequestError
from ponder.router.balancer import Balancer, NoReplicaError
from ponder.router.policies import KVAware, LeastLoad, ReplicaState, RoundRobin, RoutedRequest, make_policy
from ponder.router.prefix import PrefixIndex, prompt_block_hashes

BS = 4


def replicas(n: int = 2) -> list[ReplicaState]:
    return [ReplicaState(i, f"r{i}") for i in range(n)]


def request(token_ids: list[int], max_tokens: int = 8) -> RoutedRequest:
    return RoutedRequest(len(token_ids), max_tokens, BS, tuple(prompt_block_hashes(token_ids, BS)))


SYSTEM = list(range(1000, 1064))  # 16 blocks shared by every request


def test_round_robin_cycles_and_skips_unavailable():
    states = replicas(3)
    balancer = Balancer(states, RoundRobin())
    picks = [balancer.assign(request([1, 2, 3])).replica.index for _ in range(6)]
    assert picks == [0, 1, 2, 0, 1, 2]
    states[1].healthy = False
    states[2].draining = True
    assert {balancer.assign(request([1])).replica.index for _ in range(4)} == {0}
    states[0].healthy = False
    with pytest.raises(NoReplicaError):
        balancer.assign(request([1]))


def test_least_load_counts_outstanding_tokens_and_release():
    balancer = Balancer(replicas(), LeastLoad())
    big = balancer.assign(request(list(range(100)), max_tokens=100))
    small = [balancer.assign(request([1, 2], max_tokens=4)) for _ in range(5)]
    assert all(a.replica.index != big.replica.index for a in small)  # 5 small ones fit beside it
    big.release()
    big.release()  # idempotent
    assert big.replica.outstanding_tokens == 0 and big.replica.in_flight == 0
    assert balancer.assign(request([1, 2], max_tokens=4)).replica is big.replica


def test_kv_aware_follows_the_cached_prefix():
    states = replicas()
    conversation = list(range(200, 240))
    states[1].prefix.apply([("stored", h) for h in prompt_block_hashes(conversation, BS)])
    balancer = Balancer(states, KVAware(1.0))
    follow_up = request(conversation + [7, 8, 9, 10, 11])
    assignment = balancer.assign(follow_up)
    assert assignment.replica.index == 1 and assignment.cached_blocks == 9  # 39 hashed tokens


def test_kv_aware_burst_with_shared_system_prompt_does_not_pile_up():
    # Every request shares a system prompt cached on replica 0; all arrive at once (no release).
    states = replicas()
    states[0].prefix.apply([("stored", h) for h in prompt_block_hashes(SYSTEM, BS)])
    balancer = Balancer(states, KVAware(1.0))
    picks = [
        balancer.assign(request(SYSTEM + [5000 + i] * 8, max_tokens=32)).replica.index for i in range(20)
    ]
    counts = [picks.count(0), picks.count(1)]
    assert min(counts) > 0 and max(counts) / min(counts) <= 1.5, counts
    assert picks[0] == 0  # the first one takes the cached prefix


def test_kv_aware_requests_spaced_in_time_spread_while_in_flight():
    # Spaced so the replicas never report anything in between: only pick-time counting sees load.
    states = replicas()
    balancer = Balancer(states, KVAware(1.0))
    live = []
    for i in range(10):
        live.append(balancer.assign(request(SYSTEM + [9000 + i] * 8, max_tokens=64)))
    counts = [a.replica.index for a in live]
    assert counts.count(0) == counts.count(1) == 5


def test_kv_aware_predicts_a_just_routed_prompt():
    # Turn 2 of a conversation arrives before replica 1's KV events could say it cached turn 1.
    balancer = Balancer(replicas(), KVAware(1.0))
    other = balancer.assign(request(list(range(300, 340))))
    turn1 = balancer.assign(request(list(range(500, 560))))
    other.release()
    turn1.release()
    turn2 = balancer.assign(request(list(range(500, 560)) + [1, 2, 3, 4, 5]))
    assert turn2.replica is turn1.replica and turn2.cached_blocks == 14


def test_kv_aware_weight_zero_is_least_blocks():
    # 12 blocks: more than half the request's 19 (a smaller difference is a tie)
    states = replicas()
    states[0].prefix.apply([("stored", h) for h in prompt_block_hashes(SYSTEM, BS)])
    states[0].active_blocks = 12
    least_blocks = KVAware(0.0, ownership_weight=0.0)
    assert Balancer(states, least_blocks).assign(request(SYSTEM + [1, 2])).replica.index == 1
    assert Balancer(states, KVAware(1.0)).assign(request(SYSTEM + [1, 2])).replica.index == 0


def test_prefix_index_chain_stops_at_first_miss_and_follows_evictions():
    index = PrefixIndex()
    hashes = prompt_block_hashes(list(range(17)), BS)  # 16 hashed tokens (the last is left out)
    assert len(hashes) == 4
    index.apply([("stored", h) for h in hashes])
    index.apply([("removed", hashes[1])])
    assert index.cached_blocks(hashes) == 1
    index.apply([("stored", hashes[0])], lost=True)  # a fresh start: only what the batch says
    assert index.stored == {hashes[0]}
    index.predict(hashes, now=0.0)
    assert index.cached_blocks(hashes, now=1.0) == 4
    assert index.cached_blocks(hashes, now=10_000.0) == 1  # predictions expire


def test_bad_policy_names_and_weights():
    with pytest.raises(InvalidRequestError):
        make_policy("random")
    with pytest.raises(InvalidRequestError):
        make_policy("kv-aware", -1.0)


def test_kv_aware_keeps_a_conversation_where_its_kv_is_while_that_replica_serves_another_hit():
    # Two conversations cached on replica 1; the first one's next turn is in flight there. It adds
    # only its new blocks, so the second's next turn still goes where its 16 blocks are cached
    # (counting the first's whole prompt as load would send it to replica 0 to recompute).
    states = replicas()
    first, second = list(range(200, 264)), list(range(400, 464))
    for conversation in (first, second):
        states[1].prefix.apply([("stored", h) for h in prompt_block_hashes(conversation, BS)])
    balancer = Balancer(states, KVAware(1.0))
    in_flight = balancer.assign(request(first + [1, 2, 3, 4]))
    assert in_flight.replica.index == 1 and states[1].active_blocks == 19 - 15  # 76 tokens; 15 cached
    assert balancer.assign(request(second + [5, 6, 7, 8])).replica.index == 1
    in_flight.release()
    assert states[1].active_blocks == 19 - 15  # the second one's


def test_kv_aware_stops_routing_to_a_prefix_the_engine_evicted():
    from ponder.engine.kv.block_pool import BlockPool
    from ponder.engine.kv.events import BlockStored

    # The engine's own pool publishes stored / removed; the router's view follows both.
    pool = BlockPool(num_blocks=4)
    conversation = list(range(600, 617))
    hashes = prompt_block_hashes(conversation, BS)
    for block_hash in hashes:
        block_id = pool.allocate()
        pool.register(block_id, block_hash)
        pool.release(block_id)
    states = replicas()
    states[1].active_blocks = 1  # a little busier: only a cached prefix draws requests there

    def sync(after: int) -> int:
        batch = pool.events.since(after)
        kinds = [("stored" if isinstance(e, BlockStored) else "removed", e.block_hash) for e in batch.events]
        states[1].prefix.apply(kinds, lost=batch.lost)
        return batch.next_seq

    cursor = sync(0)
    assert states[1].prefix.cached_blocks(hashes) == 4
    assert KVAware(1.0).pick(states, request(conversation + [1])).index == 1
    pool.allocate()  # reuses the least recently freed block: the conversation's first
    sync(cursor)
    assert states[1].prefix.cached_blocks(hashes) == 0  # a chain: nothing after a miss counts
    assert KVAware(1.0).pick(states, request(conversation + [1])).index == 0


def test_kv_aware_default_weight_keeps_a_turn_beside_a_fresh_prompt_in_flight():
    # Replica 1 holds the conversation and is prefilling one fresh prompt of the same size (18
    # blocks: 16 prompt + 2 output); the next turn computes 2 blocks there, 17 on replica 0.
    def pick(policy) -> int:
        states = replicas()
        states[1].prefix.apply([("stored", h) for h in prompt_block_hashes(conversation, BS)])
        Balancer([states[1]], policy).assign(request(list(range(700, 764))))
        assert states[1].active_blocks == 18
        return Balancer(states, policy).assign(request(conversation + [1, 2, 3, 4])).replica.index

    conversation = list(range(200, 264))
    assert pick(make_policy("kv-aware")) == 1  # 2 x 2 + 18 < 2 x 17
    assert pick(KVAware(1.0)) == 0  # 2 + 18 > 17: the turn moves and recomputes 15 blocks
