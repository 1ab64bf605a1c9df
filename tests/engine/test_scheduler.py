"""Token-budget scheduling, chunked prefill, preemption, and a property test for block leaks."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.config import SchedulerConfig
from ponder.engine.kv.manager import KVCacheManager
from ponder.engine.scheduler import Scheduler

from ._fakes import advance, make_seq, referenced_blocks


def make_scheduler(num_blocks=64, block_size=4, budget=16, max_seqs=8, policy="fcfs"):
    kv = KVCacheManager(num_blocks, block_size)
    return Scheduler(SchedulerConfig(max_num_seqs=max_seqs, max_num_batched_tokens=budget, policy=policy), kv)


def test_long_prompt_is_chunked_and_mixed_with_decodes():
    scheduler = make_scheduler(budget=8)
    short = make_seq([1, 2, 3])
    long = make_seq(list(range(20)))
    scheduler.add_waiting(short)
    scheduler.add_waiting(long)
    batch = scheduler.schedule()
    assert [s is short for s in batch.seqs] == [True, False]
    assert batch.num_new_tokens == [3, 5]  # the long prompt gets what is left of the budget
    advance(scheduler, batch)
    batch = scheduler.schedule()
    # decode of the short one first, then the next chunk of the long prompt
    assert batch.seqs == [short, long] and batch.num_new_tokens == [1, 7]


def test_max_num_seqs_limits_admission():
    scheduler = make_scheduler(max_seqs=2)
    seqs = [make_seq([1, 2]) for _ in range(3)]
    for seq in seqs:
        scheduler.add_waiting(seq)
    batch = scheduler.schedule()
    assert batch.seqs == seqs[:2]
    assert scheduler.waiting == [seqs[2]]


def test_spare_seats_count_running_and_every_sample_a_waiting_request_will_fork_into():
    scheduler = make_scheduler(max_seqs=8)
    assert scheduler.spare_seats() == 8
    running = [make_seq([1, 2]) for _ in range(3)]
    for seq in running:
        scheduler.add_waiting(seq)
    advance(scheduler, scheduler.schedule())
    assert scheduler.spare_seats() == 5
    scheduler.add_waiting(make_seq([3, 4], n=4))  # forks into 4 once prefilled
    assert scheduler.spare_seats() == 1
    scheduler.add_waiting(make_seq([5, 6], n=4))
    assert scheduler.spare_seats() == 0  # never negative


def test_preempts_newest_when_blocks_run_out_then_resumes():
    scheduler = make_scheduler(num_blocks=4, block_size=2, budget=64)
    old = make_seq([1, 2, 3], max_tokens=5)  # 8 tokens: the whole pool alone
    new = make_seq([4, 5, 6], max_tokens=5)
    scheduler.add_waiting(old)
    scheduler.add_waiting(new)
    advance(scheduler, scheduler.schedule())  # both prefilled: 2 blocks each, pool full
    advance(scheduler, scheduler.schedule())  # position 3 still fits in the second block
    batch = scheduler.schedule()  # both need a 3rd block at position 4 ... only by preempting
    assert scheduler.num_preemptions >= 1
    assert new in scheduler.waiting and new.block_table == [] and new.num_computed_tokens == 0
    assert batch.seqs == [old]
    advance(scheduler, batch)
    for _ in range(20):
        advance(scheduler, scheduler.schedule())
        if not scheduler.has_unfinished:
            break
    assert not scheduler.has_unfinished
    assert old.num_output_tokens == 5 and new.num_output_tokens == 5
    assert scheduler.kv.num_free_blocks == 4


def test_priority_policy_admits_and_keeps_higher_priority_first():
    scheduler = make_scheduler(max_seqs=1, policy="priority")
    low = make_seq([1], priority=5)
    high = make_seq([2], priority=0)
    scheduler.add_waiting(low)
    scheduler.add_waiting(high)
    assert scheduler.schedule().seqs == [high]


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    num_blocks=st.integers(4, 24),
    block_size=st.sampled_from([1, 2, 4]),
    budget=st.integers(1, 24),
)
def test_random_arrivals_and_aborts_never_leak_blocks(data, num_blocks, block_size, budget):
    scheduler = make_scheduler(num_blocks=num_blocks, block_size=block_size, budget=budget, max_seqs=4)
    capacity = num_blocks * block_size
    live = []
    for _ in range(data.draw(st.integers(1, 40))):
        action = data.draw(st.sampled_from(["add", "step", "step", "abort"]))
        if action == "add":
            length = data.draw(st.integers(1, max(1, capacity // 2)))
            prefix = data.draw(st.sampled_from([[], [9] * block_size * 2]))  # shared prefixes
            prompt = (prefix + list(range(length)))[: max(1, capacity - 4)]
            max_tokens = data.draw(st.integers(1, max(1, capacity - len(prompt))))
            seq = make_seq(prompt, max_tokens=max_tokens)
            scheduler.add_waiting(seq)
            live.append(seq)
        elif action == "abort" and live:
            seq = live.pop(data.draw(st.integers(0, len(live) - 1)))
            scheduler.remove(seq)
        else:
            for seq in advance(scheduler, scheduler.schedule()):
                live.remove(seq)
        # Invariant: ref counts equal the references held by live sequences.
        refs = referenced_blocks(live)
        pool = scheduler.kv.pool
        assert all(pool.ref_counts[b] == refs.get(b, 0) for b in range(num_blocks))
    for seq in live:
        scheduler.remove(seq)
    assert scheduler.kv.num_free_blocks == num_blocks
    assert not scheduler.has_unfinished
