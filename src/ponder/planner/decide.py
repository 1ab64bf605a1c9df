"""The planner's decision: how many prefill and decode workers (or colocated ones) the predicted
load needs, from the engine's profile (ponder profile's step model: prefill time vs input length,
decode step time vs batch and context) times a correction factor learnt from observed vs
expected latency; SLO misses force a step up; scale-down needs several intervals in a row
(hysteresis) and moves one worker at a time. Pure logic: no HTTP, testable on crafted windows."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ponder.errors import InvalidRequestError
from ponder.planner.signals import Window
from ponder.profiling.step_model import StepModel

MODES = ("colocated", "disagg")


@dataclass(frozen=True)
class PlannerConfig:
    ttft_slo_s: float
    tpot_slo_s: float
    mode: str = "colocated"  # colocated: one pool; disagg: prefill and decode pools
    target_attainment: float = 0.9
    target_utilization: float = 0.7  # plan workers to be this busy by the profile
    min_prefill: int = 1
    max_prefill: int = 4
    min_decode: int = 1
    max_decode: int = 4
    ewma_alpha: float = 0.5
    scale_down_after: int = 3  # intervals in a row that need fewer workers before one goes
    max_batch: int = 256
    correction_bounds: tuple[float, float] = (0.5, 5.0)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidRequestError(f"mode must be one of {', '.join(MODES)}", param="mode")
        if self.ttft_slo_s <= 0 or self.tpot_slo_s <= 0:
            raise InvalidRequestError("SLOs must be > 0", param="slo")
        for role in ("prefill", "decode"):
            low, high = getattr(self, f"min_{role}"), getattr(self, f"max_{role}")
            if low < 0 or high < max(low, 1):
                raise InvalidRequestError(f"need 0 <= min-{role} <= max-{role}, max >= 1", param=role)
        if not 0 < self.target_attainment <= 1 or not 0 < self.target_utilization <= 1:
            raise InvalidRequestError("targets must be in (0, 1]", param="target")
        if not 0 < self.ewma_alpha <= 1 or self.scale_down_after < 1:
            raise InvalidRequestError("ewma-alpha in (0, 1], scale-down-after >= 1", param="ewma_alpha")


@dataclass
class Ewma:
    alpha: float
    value: float | None = None

    def update(self, x: float) -> float:
        self.value = x if self.value is None else self.alpha * x + (1 - self.alpha) * self.value
        return self.value


class Capacity:
    """What one worker can do by the profile."""

    def __init__(self, model: StepModel, max_batch: int = 256):
        self.model = model
        self.max_batch = max_batch

    def prefill_s(self, input_len: float) -> float:
        n = max(1.0, input_len)
        return self.model.step_time(int(n), 1, n * n / 2, 1)

    def decode_step_s(self, batch: float, context: float) -> float:
        b = max(1.0, batch)
        return self.model.step_time(int(b), int(b), b * (context + 0.5), int(b))

    def decode_batch(self, context: float, tpot_slo_s: float) -> int:
        """Largest batch whose step stays within the TPOT SLO (0: not even one sequence)."""
        low, high = 0, self.max_batch
        while low < high:
            mid = (low + high + 1) // 2
            if self.decode_step_s(mid, context) <= tpot_slo_s:
                low = mid
            else:
                high = mid - 1
        return low

    def decode_tokens_per_s(self, context: float, tpot_slo_s: float) -> float:
        batch = self.decode_batch(context, tpot_slo_s)
        return batch / self.decode_step_s(batch, context) if batch else 0.0


@dataclass
class Decision:
    at: float
    mode: str
    current: dict[str, int]
    target: dict[str, int]
    needed: dict[str, float]  # by the profile and correction, before clamping and hysteresis
    predicted: dict[str, float]
    correction: dict[str, float]
    observed: dict[str, float]
    reasons: dict[str, str] = field(default_factory=dict)

    def action(self, role: str) -> str:
        delta = self.target[role] - self.current[role]
        return "up" if delta > 0 else "down" if delta < 0 else "hold"

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"actions": {role: self.action(role) for role in self.target}}


class Planner:
    def __init__(self, config: PlannerConfig, model: StepModel):
        self.config = config
        self.capacity = Capacity(model, config.max_batch)
        alpha = config.ewma_alpha
        self.rate, self.input_len, self.output_len = Ewma(alpha), Ewma(alpha), Ewma(alpha)
        self.correction = {"prefill": 1.0, "decode": 1.0}
        self._lower_for = {"prefill": 0, "decode": 0, "colocated": 0}

    def roles(self) -> tuple[str, ...]:
        return ("prefill", "decode") if self.config.mode == "disagg" else ("colocated",)

    def decide(
        self, prefill: Window, decode: Window | None, current: dict[str, int], now: float | None = None
    ) -> Decision:
        """prefill: the window of the pool that makes first tokens (the colocated pool too);
        decode: the decode pool's (None when colocated). current: workers per role now."""
        cfg, cap = self.config, self.capacity
        for role in self.roles():
            if current.get(role, -1) < 0:
                raise InvalidRequestError(f"current worker counts need {role!r}", param="current")
        decode = decode or prefill
        # -- predict: EWMA, but a rising rate is taken at once (a load step must not wait) --
        last_rate = prefill.arrival_rate
        rate = max(self.rate.update(last_rate), last_rate)
        if prefill.requests > 0:
            self.input_len.update(prefill.mean_input_len)
        if decode.finished > 0:
            self.output_len.update(decode.mean_output_len)
        in_len = self.input_len.value or 1.0
        out_len = self.output_len.value or 1.0
        context = in_len + out_len / 2
        # -- correct: observed / expected latency at the load each pool had --
        n_prefill = current.get("prefill", current.get("colocated", 1)) or 1
        n_decode = current.get("decode", current.get("colocated", 1)) or 1
        self._correct_prefill(prefill, last_rate, in_len, n_prefill)
        self._correct_decode(decode, context, n_decode)
        # -- need: worker-seconds of work per second, at the target utilization --
        prefill_work = rate * cap.prefill_s(in_len) * self.correction["prefill"]
        per_worker = cap.decode_tokens_per_s(context, cfg.tpot_slo_s / self.correction["decode"])
        decode_work = rate * out_len / per_worker if per_worker > 0 else math.inf
        reasons: dict[str, str] = {}
        needed: dict[str, float] = {}
        if cfg.mode == "disagg":
            needed["prefill"] = prefill_work / cfg.target_utilization
            needed["decode"] = decode_work / cfg.target_utilization
            misses = {"prefill": prefill.ttft_attainment, "decode": decode.tpot_attainment}
            seen = {"prefill": prefill.requests, "decode": decode.finished}
        else:
            needed["colocated"] = (prefill_work + decode_work) / cfg.target_utilization
            misses = {"colocated": min(prefill.ttft_attainment, decode.tpot_attainment)}
            seen = {"colocated": prefill.requests}
        target: dict[str, int] = {}
        for role in self.roles():
            args = (needed[role], current[role], misses[role], seen[role])
            target[role], reasons[role] = self._target(role, *args)
        if per_worker == 0:
            reasons["decode" if cfg.mode == "disagg" else "colocated"] += (
                "; the profile says even one sequence misses the TPOT SLO"
            )
        return Decision(
            at=time.time() if now is None else now,
            mode=cfg.mode,
            current={r: current[r] for r in self.roles()},
            target=target,
            needed={r: round(v, 3) if math.isfinite(v) else -1.0 for r, v in needed.items()},
            predicted={"rate": round(rate, 4), "input_len": round(in_len, 1), "output_len": round(out_len)},
            correction={k: round(v, 3) for k, v in self.correction.items()},
            observed={
                "rate": round(last_rate, 4),
                "ttft_attainment": round(prefill.ttft_attainment, 3),
                "tpot_attainment": round(decode.tpot_attainment, 3),
                "mean_ttft_s": round(prefill.mean_ttft_s, 4),
                "mean_tpot_s": round(decode.mean_tpot_s, 4),
                "waiting": prefill.waiting + (decode.waiting if decode is not prefill else 0.0),
                "kv_usage": max(prefill.kv_usage, decode.kv_usage),
            },
            reasons=reasons,
        )

    def _target(
        self, role: str, needed: float, current: int, attainment: float, seen: float
    ) -> tuple[int, str]:
        cfg = self.config
        low, high = (cfg.min_prefill, cfg.max_prefill)
        if role == "decode":
            low, high = cfg.min_decode, cfg.max_decode
        if role == "colocated":
            low, high = max(cfg.min_prefill, cfg.min_decode, 1), max(cfg.max_prefill, cfg.max_decode)
        want = math.ceil(needed - 1e-9) if math.isfinite(needed) else high
        slo = "TTFT" if role == "prefill" else "TPOT" if role == "decode" else "SLO"
        missing = seen > 0 and attainment < cfg.target_attainment
        why = f"profile needs {needed:.2f} workers" if math.isfinite(needed) else "profile: SLO infeasible"
        if missing and want <= current:
            want = current + 1
            why = f"{slo} attainment {attainment:.2f} < {cfg.target_attainment:.2f}: one more"
        if want < current:
            if missing:
                self._lower_for[role] = 0
                return self._clamp(current, low, high), f"{why}, but {slo} attainment is below target: hold"
            self._lower_for[role] += 1
            if self._lower_for[role] < cfg.scale_down_after:
                return self._clamp(current, low, high), (
                    f"{why}; lower for {self._lower_for[role]}/{cfg.scale_down_after} intervals: hold"
                )
            self._lower_for[role] = 0
            want, why = current - 1, f"{why} for {cfg.scale_down_after} intervals: drain one"
        else:
            self._lower_for[role] = 0
        clamped = self._clamp(want, low, high)
        if clamped != want:
            why += f" (clamped to [{low}, {high}])"
        return clamped, why

    @staticmethod
    def _clamp(n: int, low: int, high: int) -> int:
        return max(low, min(high, n))

    def _bounded(self, role: str, ratio: float) -> None:
        low, high = self.config.correction_bounds
        smoothed = self.config.ewma_alpha * ratio + (1 - self.config.ewma_alpha) * self.correction[role]
        self.correction[role] = max(low, min(high, smoothed))

    def _correct_prefill(self, w: Window, rate: float, in_len: float, workers: int) -> None:
        """Expected TTFT: the prefill time plus M/D/1 queueing at each worker's share of the rate;
        not learnt near saturation, where queueing, not the model, dominates."""
        if w.requests <= 0 or w.mean_ttft_s <= 0:
            return
        service = self.capacity.prefill_s(in_len)
        rho = rate / workers * service
        if rho >= 0.85:
            return
        expected = service * (1 + rho / (2 * (1 - rho)))
        self._bounded("prefill", w.mean_ttft_s / expected)

    def _correct_decode(self, w: Window, context: float, workers: int) -> None:
        if w.finished <= 0 or w.mean_tpot_s <= 0:
            return
        batch = max(1.0, w.running / workers)
        self._bounded("decode", w.mean_tpot_s / self.capacity.decode_step_s(batch, context))
