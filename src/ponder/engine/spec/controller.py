"""AcceptanceController: per-sequence acceptance estimates that pick how many tokens to propose
(zero when speculation would not pay: the adaptive off-switch)."""

from __future__ import annotations

from dataclasses import dataclass

DECAY = 0.8  # weight of the past in the acceptance estimate: about the last 5 verifications
PRIOR_TRIALS = 2.0  # a new sequence starts as if it had seen two drafts, PRIOR_ACCEPTANCE of them taken
PRIOR_ACCEPTANCE = 0.6
# Every this many steps, switched-off sequences propose one token, to notice a recovery. All
# probe in the same step: on some hardware the first draft in a batch is what costs. A probe that
# switches nobody back on doubles the interval, up to MAX_PROBE_INTERVAL.
PROBE_INTERVAL = 16
MAX_PROBE_INTERVAL = 512


@dataclass
class _Estimate:
    accepted: float = PRIOR_ACCEPTANCE * PRIOR_TRIALS
    trials: float = PRIOR_TRIALS

    @property
    def acceptance(self) -> float:
        return self.accepted / self.trials


def expected_tokens(acceptance: float, k: int) -> float:
    """Tokens one verification yields with k drafts when each is accepted with `acceptance`
    (independently, the usual model): 1 + a + a^2 + ... + a^k."""
    return sum(acceptance**i for i in range(k + 1))


class AcceptanceController:
    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens
        self._estimates: dict[int, _Estimate] = {}

    def acceptance(self, seq_id: int) -> float:
        return self._estimates.get(seq_id, _Estimate()).acceptance

    def num_tokens(self, seq_id: int, cost_per_token: float, probe: bool) -> int:
        """How many drafts to ask for: the k in 0..max_tokens with the most tokens per cost, where
        one more draft costs cost_per_token decode steps; at least one in a probe step."""
        estimate = self._estimates.setdefault(seq_id, _Estimate())
        best = self.best_k(estimate.acceptance, cost_per_token)
        return max(best, 1) if probe else best

    def best_k(self, acceptance: float, cost_per_token: float) -> int:
        """argmax over k of expected_tokens(acceptance, k) / (1 + cost_per_token * k), the
        smallest k on ties. One pass with a running sum: this runs for every decoding sequence in
        every step, and a GPU step of a small model lasts only a few milliseconds."""
        best, best_gain = 0, 1.0
        tokens = term = 1.0
        for k in range(1, self.max_tokens + 1):
            term *= acceptance
            tokens += term
            gain = tokens / (1.0 + cost_per_token * k)
            if gain > best_gain:
                best, best_gain = k, gain
        return best

    def observe(self, seq_id: int, num_proposed: int, num_accepted: int) -> None:
        """One verification: the first num_accepted of num_proposed drafts were taken. Each
        accepted draft is a success; the rejected one (if any) is the only failure seen, since
        drafts after it were never judged."""
        estimate = self._estimates.setdefault(seq_id, _Estimate())
        failures = 1 if num_accepted < num_proposed else 0
        estimate.accepted = DECAY * estimate.accepted + num_accepted
        estimate.trials = DECAY * estimate.trials + num_accepted + failures

    def forget(self, seq_id: int) -> None:
        self._estimates.pop(seq_id, None)


class ProbeSchedule:
    """When switched-off sequences probe. Each probe is a verify step that mostly loses (its
    sequences were off because drafting did not pay): with a draft model whose step costs more
    than its accepted tokens give, probing every 16 steps alone cost 14% of the throughput (CPU,
    batch 8, docs/results/speculative.md). So the interval doubles after every probe while no
    sequence speculates on its own, and goes back to PROBE_INTERVAL once one does; and where the
    measured cost says that even a draft always accepted would not pay, the probe is skipped and
    the interval jumps to its maximum (the next probe re-measures the cost)."""

    def __init__(self) -> None:
        self.interval = PROBE_INTERVAL
        self._countdown = PROBE_INTERVAL
        self._interval_before = PROBE_INTERVAL

    def is_probe_step(self, hopeless: bool) -> bool:
        """Called once per step that may speculate; hopeless: no acceptance could pay now."""
        self._countdown -= 1
        if self._countdown > 0:
            return False
        self._interval_before = self.interval
        self.interval = MAX_PROBE_INTERVAL if hopeless else min(2 * self.interval, MAX_PROBE_INTERVAL)
        self._countdown = self.interval
        return not hopeless

    def defer(self) -> None:
        """The probe step just granted could not draft (its tokens were still on the device):
        the next step is the probe instead, as if this one had not been."""
        self.interval = self._interval_before
        self._countdown = 1

    def speculating(self) -> None:
        """Some sequence chose to draft without being made to: probe often again."""
        self.interval = PROBE_INTERVAL
        self._countdown = min(self._countdown, PROBE_INTERVAL)
