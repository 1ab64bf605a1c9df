"""The policies against a deterministic simulation of replicas (tests/router/_sim.py: the real
policy and balancer objects, processor-sharing replicas, LRU prefix caches publishing KV events):
spread and queueing on random prompts, and balance with hit rate on sticky conversations."""

import statistics

import pytest

from ponder.router.balancer import Balancer
from ponder.router.policies import KVAware, LeastLoad, RoundRobin, make_policy
from ponder.router.prefix import prompt_block_hashes

from ._sim import conversation_workload, poisson_workload, random_workload
from .test_policies import BS, replicas, request


def test_ties_do_not_all_fall_on_one_replica():
    # A conversation cached on replica 0 (busy) interleaves with fresh prompts that tie on 1 and
    # 2. A shared turn counter, advanced by the conversation's single-candidate picks too, sent
    # every fresh prompt to replica 2; the least recently picked alternates.
    conversation = list(range(200, 264))
    for policy in (KVAware(ownership_weight=0.0), LeastLoad()):  # tie-breaking alone
        states = replicas(3)
        states[0].prefix.apply([("stored", h) for h in prompt_block_hashes(conversation, BS)])
        states[0].active_blocks, states[0].outstanding_tokens = 30, 120  # busier, beyond a tie
        balancer = Balancer(states, policy)
        fresh = []
        for i in range(8):
            turn = request(conversation + [1, 2], max_tokens=2)
            if isinstance(policy, KVAware):
                balancer.assign(turn).release()
            fresh_one = balancer.assign(request([5000 + 10 * i + k for k in range(40)]))
            fresh_one.release()
            fresh.append(fresh_one.replica.index)
        assert sorted(fresh) == [1, 1, 1, 1, 2, 2, 2, 2], (type(policy).__name__, fresh)


@pytest.mark.parametrize("n", [2, 4])
def test_random_prompts_closed_loop_spread_and_queue(n):
    # No prefix hits: kv-aware is load balancing by blocks. It must spread as evenly as
    # round-robin and never send a request to a longer queue than needed.
    for name in ("round-robin", "least-load", "kv-aware"):
        result = random_workload(make_policy(name), n, seed=1)
        assert result.balance <= 1.05, (name, result.counts)
        if name != "round-robin":
            assert result.excess_queue <= 0.05, (name, result.excess_queue)
    assert random_workload(RoundRobin(), n, seed=1).excess_queue > 0.2  # the test can tell


@pytest.mark.parametrize("n", [2, 4])
def test_random_prompts_poisson_latency_no_worse_than_round_robin(n):
    # Load is counted whole from pick to completion, so equal loads hide whose requests are
    # nearly done; with ties broken by a shared turn counter and only exact ties, kv-aware and
    # least-load were 7-9% slower than round-robin here. Within 2% now (the bound: 5%).
    for seed in range(3):
        base = poisson_workload(RoundRobin(), n, seed=seed).mean_latency
        for name in ("least-load", "kv-aware"):
            mean = poisson_workload(make_policy(name), n, seed=seed).mean_latency
            assert mean <= 1.02 * base, (name, seed, mean, base)


def conversation_runs(policy_factory, n, seeds=range(10)):
    return [conversation_workload(policy_factory(), n, seed=s, jitter=0.5) for s in seeds]


@pytest.mark.parametrize("n", [2, 4])
def test_sticky_conversations_end_up_balanced_with_hit_rate_kept(n):
    # 15 conversations x 4 turns, random start times and pauses, each request's work +-50% (a
    # noisy host). 15 over 4 at best is 4/4/4/3 conversations: max/min 16/12 = 1.33.
    runs = conversation_runs(KVAware, n)
    for result, ideal in runs:
        assert result.balance <= 1.5, result.counts
        assert result.hit_rate >= 0.9 * ideal, (result.hit_rate, ideal)
    mean_hit = statistics.mean(r.hit_rate for r, _ in runs)
    assert mean_hit >= 0.97 * runs[0][1]
    # without the ownership term, placement by momentary load alone: the same test fails
    unowned = conversation_runs(lambda: KVAware(ownership_weight=0.0), n)
    if n == 4:
        assert max(r.balance for r, _ in unowned) > 1.5
    assert mean_hit >= statistics.mean(r.hit_rate for r, _ in unowned) - 0.005  # no hit rate traded
