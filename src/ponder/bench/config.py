"""What one `ponder bench` run measures: the target server, the workload and the arrival pattern."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ponder.bench.errors import BenchConfigError
from ponder.bench.slo import SLO

ENDPOINTS = ("/v1/chat/completions", "/v1/completions")
DATASETS = ("random", "sharegpt", "jsonl", "reasoning", "multi-turn")


def normalize_base_url(url: str) -> str:
    """Accept 'http://host:8000', '.../' and '.../v1' alike: endpoints are appended to the root."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise BenchConfigError(f"--base-url must start with http:// or https:// (got {url!r})", "--base-url")
    return url.removesuffix("/v1")


@dataclass(frozen=True)
class Target:
    """The server under test and how each request is sent to it."""

    base_url: str
    endpoint: str = "/v1/chat/completions"
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    request_timeout_s: float = 600.0
    ignore_eos: bool = False
    extra_body: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalize_base_url(self.base_url))
        if self.endpoint not in ENDPOINTS:
            raise BenchConfigError(
                f"--endpoint must be one of {', '.join(ENDPOINTS)} (got {self.endpoint!r})",
                "--endpoint",
            )
        if self.request_timeout_s <= 0:
            raise BenchConfigError("--request-timeout must be positive", "--request-timeout")

    @property
    def url(self) -> str:
        return self.base_url + self.endpoint

    @property
    def is_chat(self) -> bool:
        return self.endpoint == "/v1/chat/completions"


@dataclass(frozen=True)
class Workload:
    """Which prompts are sent and how many tokens each may generate."""

    dataset: str = "random"
    dataset_path: str | None = None
    num_prompts: int = 100
    random_input_len: int = 256
    random_output_len: int = 128
    random_range_ratio: float = 0.0
    random_prefix_ratio: float = 0.0
    output_len: int | None = None  # overrides every prompt's max_tokens when set
    task_family: str | None = None
    task_difficulty: str = "easy"  # a difficulty of ponder.tasks (easy, medium, hard)
    seed: int = 0
    tokenizer_path: str | None = None
    num_turns: int = 4  # multi-turn: turns per conversation
    # multi-turn: length of each conversation's first user message (its own long context, e.g. a
    # document it is about); None: --random-input-len like every later turn
    first_turn_len: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise BenchConfigError(
                f"--dataset must be one of {', '.join(DATASETS)} (got {self.dataset!r})",
                "--dataset",
            )
        if self.dataset in ("sharegpt", "jsonl") and not self.dataset_path:
            raise BenchConfigError(f"--dataset {self.dataset} needs --dataset-path FILE", "--dataset-path")
        if self.dataset == "reasoning" and not self.task_family:
            raise BenchConfigError(
                "--dataset reasoning needs --task-family (a family of ponder.tasks)",
                "--task-family",
            )
        if self.num_turns < 1:
            raise BenchConfigError("--num-turns must be at least 1", "--num-turns")
        if self.num_prompts < 1:
            raise BenchConfigError("--num-prompts must be at least 1", "--num-prompts")
        if self.random_input_len < 1 or self.random_output_len < 1:
            raise BenchConfigError(
                "--random-input-len and --random-output-len must be at least 1",
                "--random-input-len",
            )
        if not 0.0 <= self.random_range_ratio < 1.0:
            raise BenchConfigError("--random-range-ratio must be in [0, 1)", "--random-range-ratio")
        if not 0.0 <= self.random_prefix_ratio <= 1.0:
            raise BenchConfigError("--random-prefix-ratio must be in [0, 1]", "--random-prefix-ratio")
        if self.first_turn_len is not None and self.first_turn_len < 1:
            raise BenchConfigError("--first-turn-len must be at least 1", "--first-turn-len")
        if self.output_len is not None and self.output_len < 1:
            raise BenchConfigError("--output-len must be at least 1", "--output-len")


@dataclass(frozen=True)
class LoadPattern:
    """When requests arrive: Poisson/gamma arrivals at each rate, capped by a concurrency limit."""

    request_rates: tuple[float, ...] = (math.inf,)
    burstiness: float = 1.0
    max_concurrency: int | None = None
    duration_s: float | None = None  # when set, send for this long instead of --num-prompts
    num_warmups: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.request_rates or any(r <= 0 for r in self.request_rates):
            raise BenchConfigError("request rates must be positive (or inf)", "--request-rate")
        if self.burstiness <= 0:
            raise BenchConfigError("--burstiness must be positive (1.0 = Poisson)", "--burstiness")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise BenchConfigError("--max-concurrency must be at least 1", "--max-concurrency")
        if self.duration_s is not None and self.duration_s <= 0:
            raise BenchConfigError("--duration must be positive", "--duration")
        if self.num_warmups < 0:
            raise BenchConfigError("--num-warmups cannot be negative", "--num-warmups")
        unbounded = any(math.isinf(r) for r in self.request_rates)
        if self.duration_s is not None and unbounded and self.max_concurrency is None:
            # inf rate for a fixed time would open connections without limit
            raise BenchConfigError(
                "--duration with an infinite request rate needs --max-concurrency",
                "--duration",
            )


@dataclass(frozen=True)
class OutputOptions:
    """Where results go and how the run shows itself."""

    result_dir: str | None = None
    result_name: str | None = None
    label: str | None = None
    plots: bool = True
    progress: bool = True


@dataclass(frozen=True)
class BenchConfig:
    target: Target
    workload: Workload = field(default_factory=Workload)
    load: LoadPattern = field(default_factory=LoadPattern)
    slo: SLO = field(default_factory=SLO)
    output: OutputOptions = field(default_factory=OutputOptions)

    def to_json_dict(self) -> dict:
        """The config as recorded in the result file; the API key is never written."""
        target = asdict(self.target)
        target.pop("api_key")
        load = asdict(self.load)
        load["request_rates"] = [rate_to_json(r) for r in self.load.request_rates]
        return {
            "target": target,
            "workload": asdict(self.workload),
            "load": load,
            "slo_ms": self.slo.as_ms_dict(),
            "label": self.output.label,
        }


def rate_to_json(rate: float) -> float | str:
    """JSON has no infinity: an unbounded rate is written as the string "inf"."""
    return "inf" if math.isinf(rate) else rate


def parse_rates(text: str, flag: str) -> tuple[float, ...]:
    """'1,2,4,inf' -> (1.0, 2.0, 4.0, inf)."""
    rates = []
    for item in text.split(","):
        if not item.strip():
            continue
        try:
            rates.append(float(item))
        except ValueError:
            raise BenchConfigError(
                f"{flag}: {item.strip()!r} is not a number; write e.g. 1,2,4,inf", flag
            ) from None
    if not rates:
        raise BenchConfigError(f"{flag} needs at least one rate", flag)
    return tuple(rates)
