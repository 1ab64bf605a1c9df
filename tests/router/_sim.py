"""A deterministic simulation of replicas behind the balancer (no HTTP, no clock): requests arrive,
the real policy objects pick, each replica serves its requests in flight by processor sharing, and
its prefix cache (LRU over blocks) publishes stored / removed events to the router's PrefixIndex,
as the engine does. Used to compare policies' spread, queueing and hit rate."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ponder.router.balancer import Assignment, Balancer
from ponder.router.policies import Policy, ReplicaState, RoutedRequest
from ponder.router.prefix import prompt_block_hashes

BS = 16
PREFILL_COST = 1.0  # work units per uncached prompt token
DECODE_COST = 4.0  # per output token


@dataclass
class SimRequest:
    token_ids: list[int]
    max_tokens: int
    conversation: int = -1
    turn: int = 0


@dataclass
class Job:
    request: SimRequest
    assignment: Assignment
    arrival: float
    remaining: float


@dataclass
class SimReplica:
    capacity_blocks: int
    jobs: list[Job] = field(default_factory=list)
    cache: OrderedDict[int, None] = field(default_factory=OrderedDict)

    def cached_tokens(self, hashes: list[int]) -> int:
        count = 0
        for block_hash in hashes:
            if block_hash not in self.cache:
                break
            self.cache.move_to_end(block_hash)
            count += 1
        return count * BS

    def store(self, hashes: list[int]) -> list[tuple[str, int]]:
        events = []
        for block_hash in hashes:
            if block_hash in self.cache:
                self.cache.move_to_end(block_hash)
                continue
            self.cache[block_hash] = None
            events.append(("stored", block_hash))
        while len(self.cache) > self.capacity_blocks:
            evicted, _ = self.cache.popitem(last=False)
            events.append(("removed", evicted))
        return events


@dataclass
class SimResult:
    counts: list[int]
    hit_rate: float  # prompt tokens found in the chosen replica's (true) cache
    mean_latency: float
    excess_queue: float  # mean over arrivals: in flight at the chosen replica - fewest in flight

    @property
    def balance(self) -> float:
        return max(self.counts) / max(min(self.counts), 1)


class Simulation:
    """`follow_up(request, finished_at)` may return the next request and when it arrives."""

    def __init__(
        self,
        policy: Policy,
        replicas: int,
        capacity_blocks: int = 1 << 30,
        follow_up: Callable[[SimRequest, float], tuple[float, SimRequest] | None] | None = None,
        jitter: float = 0.0,
        seed: int = 0,
    ):
        self.states = [ReplicaState(i, f"r{i}") for i in range(replicas)]
        self.balancer = Balancer(self.states, policy)
        self.replicas = [SimReplica(capacity_blocks) for _ in range(replicas)]
        self.follow_up = follow_up
        self._arrivals: list[tuple[float, int, SimRequest]] = []
        self._seq = itertools.count()
        self.now = 0.0
        self.hit_tokens = self.prompt_tokens = 0
        self.latencies: list[float] = []
        self.excess: list[int] = []
        self.jitter = jitter  # each request's work x uniform(1 - jitter, 1 + jitter): a noisy host
        self._rng = random.Random(seed)

    def submit(self, at: float, request: SimRequest) -> None:
        heapq.heappush(self._arrivals, (at, next(self._seq), request))

    def run(self) -> SimResult:
        while self._arrivals or any(r.jobs for r in self.replicas):
            finish = [
                (self.now + min(j.remaining for j in r.jobs) * len(r.jobs), i)
                for i, r in enumerate(self.replicas)
                if r.jobs
            ]
            next_finish = min(finish, default=(float("inf"), -1))
            next_arrival = self._arrivals[0][0] if self._arrivals else float("inf")
            until = min(next_finish[0], next_arrival)
            self._advance(until)
            if next_finish[0] <= next_arrival:
                self._complete(next_finish[1])
            else:
                _, _, request = heapq.heappop(self._arrivals)
                self._arrive(request)
        return SimResult(
            counts=[s.routed for s in self.states],
            hit_rate=self.hit_tokens / max(self.prompt_tokens, 1),
            mean_latency=sum(self.latencies) / max(len(self.latencies), 1),
            excess_queue=sum(self.excess) / max(len(self.excess), 1),
        )

    def _advance(self, until: float) -> None:
        elapsed = until - self.now
        for replica in self.replicas:
            for job in replica.jobs:
                job.remaining -= elapsed / len(replica.jobs)
        self.now = until

    def _arrive(self, request: SimRequest) -> None:
        hashes = prompt_block_hashes(request.token_ids, BS)
        routed = RoutedRequest(len(request.token_ids), request.max_tokens, BS, tuple(hashes))
        fewest = min(s.in_flight for s in self.states)
        assignment = self.balancer.assign(routed)
        index = assignment.replica.index
        self.excess.append(assignment.replica.in_flight - 1 - fewest)
        cached = self.replicas[index].cached_tokens(hashes)
        self.hit_tokens += cached
        self.prompt_tokens += len(request.token_ids)
        work = (len(request.token_ids) - cached) * PREFILL_COST + request.max_tokens * DECODE_COST
        work *= self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        self.replicas[index].jobs.append(Job(request, assignment, self.now, work))

    def _complete(self, index: int) -> None:
        replica = self.replicas[index]
        job = min(replica.jobs, key=lambda j: j.remaining)
        replica.jobs.remove(job)
        job.assignment.release()
        self.latencies.append(self.now - job.arrival)
        events = replica.store(prompt_block_hashes(job.request.token_ids, BS))
        self.states[index].prefix.apply(events)
        if self.follow_up is not None:
            following = self.follow_up(job.request, self.now)
            if following is not None:
                self.submit(*following)


def random_tokens(rng: random.Random, n: int) -> list[int]:
    return [rng.randrange(1, 50_000) for _ in range(n)]


def random_workload(
    policy: Policy, replicas: int, requests: int = 240, concurrency: int | None = None, seed: int = 0
) -> SimResult:
    """Single-turn unique prompts of 120-160 tokens, 8 output tokens, a closed loop of
    `concurrency` clients (default 2 per replica), as benchmarks/replicas.py's random workload."""
    rng = random.Random(seed)
    prompts = [SimRequest(random_tokens(rng, rng.randint(120, 160)), 8) for _ in range(requests)]
    queue = iter(prompts)

    def next_one(_: SimRequest, finished_at: float) -> tuple[float, SimRequest] | None:
        following = next(queue, None)
        return None if following is None else (finished_at, following)

    sim = Simulation(policy, replicas, follow_up=next_one)
    for request in itertools.islice(queue, concurrency or 2 * replicas):
        sim.submit(0.0, request)
    return sim.run()


def poisson_workload(
    policy: Policy, replicas: int, load: float = 0.85, requests: int = 400, seed: int = 0
) -> SimResult:
    """Single-turn unique prompts of 100-160 tokens arriving at random (Poisson) at `load` x what
    the replicas serve."""
    rng = random.Random(seed)
    rate = load * replicas / (130 * PREFILL_COST + 8 * DECODE_COST)
    sim = Simulation(policy, replicas)
    at = 0.0
    for _ in range(requests):
        at += rng.expovariate(rate)
        sim.submit(at, SimRequest(random_tokens(rng, rng.randint(100, 160)), 8))
    return sim.run()


def conversation_workload(
    policy: Policy,
    replicas: int,
    conversations: int = 15,
    turns: int = 4,
    first_turn: int = 700,
    later_turn: int = 24,
    seed: int = 0,
    slack: float = 1.3,
    jitter: float = 0.0,
    start_window: float = 1.0,
) -> tuple[SimResult, float]:
    """Conversations under a shared 24-token system prompt, each with its own long first message,
    starting at random times; each next turn (the previous prompt + an 8-token reply + a new
    message) follows its answer after a random pause. Each replica's cache holds `slack` x 1/N of
    the conversations' blocks. Returns the result and the hit rate of keeping each conversation
    on one replica."""
    rng = random.Random(seed)
    system = random_tokens(rng, 24)
    firsts = {c: system + random_tokens(rng, first_turn) for c in range(conversations)}
    mean_work = first_turn * PREFILL_COST + 8 * DECODE_COST

    def grow(prompt: list[int]) -> list[int]:
        return prompt + random_tokens(rng, 8 + later_turn)

    def next_turn(request: SimRequest, finished_at: float) -> tuple[float, SimRequest] | None:
        if request.turn + 1 >= turns:
            return None
        following = SimRequest(grow(request.token_ids), 8, request.conversation, request.turn + 1)
        return finished_at + rng.expovariate(1 / mean_work), following

    last_len = len(system) + first_turn + (turns - 1) * (8 + later_turn)
    capacity = int(slack * conversations * -(-last_len // BS) / replicas)
    sim = Simulation(policy, replicas, capacity, follow_up=next_turn, jitter=jitter, seed=seed)
    for c, prompt in firsts.items():
        at = rng.uniform(0, start_window * conversations * mean_work / replicas)
        sim.submit(at, SimRequest(prompt, 8, c))
    lens = [len(system) + first_turn + t * (8 + later_turn) for t in range(turns)]
    ideal_hits = conversations * (len(system) // BS * BS + sum(((n - 1) // BS) * BS for n in lens[:-1]))
    # turn t > 0 finds the previous prompt's full blocks (its last token is never cached)
    ideal = ideal_hits / (conversations * sum(lens))
    return sim.run(), ideal


def bench_conversations(
    policy: Policy,
    replicas: int,
    conversations: int = 15,
    turns: int = 4,
    first_turn: int = 700,
    later_turn: int = 24,
    seed: int = 0,
    slack: float = 1.3,
    jitter: float = 0.5,
) -> SimResult:
    """As `ponder bench --dataset multi-turn` sends them: every conversation's first turn, then
    every second turn, ..., a closed loop of 2 clients per replica; each request's work varies
    by +-`jitter` (a shared host), so placement by momentary load is uneven."""
    rng = random.Random(seed)
    system = random_tokens(rng, 24)
    prompts = [system + random_tokens(rng, first_turn) for _ in range(conversations)]
    order = []
    for turn in range(turns):
        order += [SimRequest(p, 8, c, turn) for c, p in enumerate(prompts)]
        prompts = [p + random_tokens(rng, 8 + later_turn) for p in prompts]
    queue = iter(order)

    def next_one(_: SimRequest, finished_at: float) -> tuple[float, SimRequest] | None:
        following = next(queue, None)
        return None if following is None else (finished_at, following)

    capacity = int(slack * conversations * -(-len(prompts[0]) // BS) / replicas)
    sim = Simulation(policy, replicas, capacity, follow_up=next_one, jitter=jitter, seed=seed)
    for request in itertools.islice(queue, 2 * replicas):
        sim.submit(0.0, request)
    return sim.run()
