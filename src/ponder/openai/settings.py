"""ServerSettings: what `ponder serve` was told about names, keys, limits and reasoning budgets."""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.errors import InvalidRequestError
from ponder.openai.reasoning_output import REASONING_OUTPUTS, ReasoningOutput

# reasoning_effort -> thinking budget in tokens (None: no budget). "none" also asks the chat
# template to skip the thought (enable_thinking=False) where the template supports that.
DEFAULT_EFFORT_BUDGETS: dict[str, int | None] = {
    "none": 1,
    "minimal": 128,
    "low": 512,
    "medium": 2048,
    "high": 8192,
    "xhigh": 16384,
    "max": None,
}


@dataclass(frozen=True)
class ServerSettings:
    served_model_names: tuple[str, ...]
    model_path: str = ""
    api_key: str | None = None
    protect_metrics: bool = False  # /metrics needs the API key too
    max_num_seqs: int = 256  # the engine's; admission counts sequences beyond it as waiting
    max_queue_len: int = 1024  # sequences that may wait beyond max_num_seqs before 429
    retry_after_s: int = 1
    effort_budgets: dict[str, int | None] = field(default_factory=lambda: dict(DEFAULT_EFFORT_BUDGETS))
    default_thinking_budget: int | None = None
    drain_timeout_s: float = 60.0
    max_request_bytes: int = 16 << 20  # one body; larger ones get 413 before any parsing
    request_body_budget_bytes: int = 256 << 20  # every body held at once; beyond: 503 + Retry-After
    reasoning_output: ReasoningOutput = "separate"  # a chat request's reasoning_output default
    accept_any_model: bool = False  # offline batch: one model answers whatever 'model' says
    # name -> checkpoint dir: what best_of_n's scorer "reward_model" may name in a request
    reward_models: dict[str, str] = field(default_factory=dict)
    role: str = "colocated"  # disaggregated serving: "prefill" | "decode" (docs/disaggregated.md)

    def __post_init__(self) -> None:
        if not self.served_model_names:
            raise InvalidRequestError("at least one served model name is needed", "served_model_name")
        if self.max_request_bytes < 1:
            raise InvalidRequestError(
                f"max_request_bytes must be >= 1, got {self.max_request_bytes}", "max_request_bytes"
            )
        if self.request_body_budget_bytes < self.max_request_bytes:
            raise InvalidRequestError(
                f"the request body budget ({self.request_body_budget_bytes} bytes) must hold at "
                f"least one largest body ({self.max_request_bytes} bytes)",
                "request_body_budget",
            )
        if self.reasoning_output not in REASONING_OUTPUTS:
            raise InvalidRequestError(
                f"reasoning_output must be one of {', '.join(REASONING_OUTPUTS)}, got "
                f"{self.reasoning_output!r}",
                "reasoning_output",
            )
        if self.max_queue_len < 0:
            raise InvalidRequestError(
                f"max_queue_len must be >= 0, got {self.max_queue_len}", "max_queue_len"
            )

    @property
    def model_name(self) -> str:
        """The name responses carry."""
        return self.served_model_names[0]

    @property
    def max_in_flight(self) -> int:
        return self.max_num_seqs + self.max_queue_len


def parse_effort_budgets(text: str) -> dict[str, int | None]:
    """'low=256,medium=1024,high=none' -> the defaults with those entries replaced."""
    budgets = dict(DEFAULT_EFFORT_BUDGETS)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip().lower()
        if not sep or not name:
            raise InvalidRequestError(
                f"reasoning effort budgets look like 'low=256,high=none', got {item!r}",
                "reasoning_effort_budgets",
            )
        if value in ("none", "unlimited", ""):
            budgets[name] = None
        elif value.isdigit() and int(value) >= 1:
            budgets[name] = int(value)
        else:
            raise InvalidRequestError(
                f"the budget of {name!r} must be a positive integer or 'none', got {value!r}",
                "reasoning_effort_budgets",
            )
    return budgets
