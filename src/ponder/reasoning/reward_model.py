"""Reward models for best-of-N: any Hugging Face sequence-classification checkpoint.

A candidate is scored as a (question, response) chat rendered with the reward model's own chat
template (or "question\\n\\nresponse" without one). One output label: its logit is the reward;
several: the log-probability of the last label (by convention "good"/"correct").
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from ponder.errors import InvalidRequestError, ModelLoadError


class RewardModel:
    def __init__(self, path: str | Path, device: str = "cpu"):
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as error:
            raise ModelLoadError("reward models need transformers: pip install transformers") from error
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
            self.model = AutoModelForSequenceClassification.from_pretrained(str(path)).to(device).eval()
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"cannot load reward model from {path}: {error}") from error
        self._torch = torch
        self.device = device
        self.path = str(path)
        self._lock = threading.Lock()  # one forward at a time: scoring runs in worker threads

    def render(self, question: str, response: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            chat = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
            return self.tokenizer.apply_chat_template(chat, tokenize=False)
        return f"{question}\n\n{response}"

    def score(self, question: str, response: str) -> float:
        limit = getattr(self.model.config, "max_position_embeddings", None) or 4096
        inputs = self.tokenizer(
            self.render(question, response), return_tensors="pt", truncation=True, max_length=limit
        ).to(self.device)
        with self._lock, self._torch.no_grad():
            logits = self.model(**inputs).logits[0].float()
        if logits.numel() == 1:
            return float(logits[0])
        return float(logits[-1] - self._torch.logsumexp(logits, dim=0))


class RewardModels:
    """Reward models by name; with allow_paths (offline use) a name may also be a checkpoint dir.

    The server passes only the models its operator registered: a request must never make it
    load an arbitrary path."""

    def __init__(self, models: Mapping[str, RewardModel | str] | None = None, *, allow_paths: bool = False):
        self._models: dict[str, RewardModel | str] = dict(models or {})
        self.allow_paths = allow_paths
        self._lock = threading.Lock()

    def check(self, name: str) -> None:
        """Raise InvalidRequestError now (before any generation) if `name` cannot be served."""
        if name in self._models:
            return
        if self.allow_paths and (Path(name) / "config.json").is_file():
            return
        known = ", ".join(self._models) or "none"
        raise InvalidRequestError(
            f"reward model {name!r} is not available (registered: {known})",
            param="reasoning_strategy.reward_model",
        )

    def __call__(self, name: str, question: str, response: str) -> float:
        return self._get(name).score(question, response)

    def _get(self, name: str) -> RewardModel:
        self.check(name)
        with self._lock:
            model = self._models.get(name, name)
            if not isinstance(model, RewardModel):
                model = self._models[name] = RewardModel(model)
            return model
