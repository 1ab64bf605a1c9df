"""TransferSpec: a request's kv_transfer_params (set by the disaggregated router), parsed and checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ponder.errors import InvalidRequestError

PRODUCER = "producer"  # a prefill worker: compute the prompt, sample the first token, send the KV
CONSUMER = "consumer"  # a decode worker: take the KV and the first token, go on decoding
PARAM = "kv_transfer_params"


@dataclass(frozen=True)
class TransferSpec:
    role: str
    # Unique per request; files, tags and metrics are keyed by it and by the producer's epoch, so
    # a restarted worker (a new epoch) never reads or serves a transfer of its previous life.
    transfer_id: str
    producer_epoch: str
    consumer_epoch: str = ""
    producer_address: str | None = None  # torch connector: the producer's TCPStore host:port
    first_token_id: int | None = None  # consumer: the token the prefill worker sampled

    @property
    def key(self) -> str:
        return f"{self.producer_epoch}/{self.transfer_id}"

    @classmethod
    def parse(cls, raw: Any) -> TransferSpec:
        if not isinstance(raw, dict):
            raise InvalidRequestError(f"{PARAM} must be an object", param=PARAM)
        role = raw.get("role")
        if role not in (PRODUCER, CONSUMER):
            raise InvalidRequestError(f"{PARAM}.role must be 'producer' or 'consumer'", param=PARAM)
        fields: dict[str, Any] = {}
        for name in ("transfer_id", "producer_epoch"):
            value = raw.get(name)
            if not isinstance(value, str) or not value or "/" in value or ".." in value:
                raise InvalidRequestError(f"{PARAM}.{name} must be a non-empty name", param=PARAM)
            fields[name] = value
        consumer_epoch = raw.get("consumer_epoch", "")
        address = raw.get("producer_address")
        first = raw.get("first_token_id")
        if not isinstance(consumer_epoch, str) or not (address is None or isinstance(address, str)):
            raise InvalidRequestError(
                f"{PARAM}: consumer_epoch and producer_address are strings", param=PARAM
            )
        if role == CONSUMER and (not isinstance(first, int) or isinstance(first, bool) or first < 0):
            raise InvalidRequestError(f"{PARAM}.first_token_id must be a token id", param=PARAM)
        return cls(
            role, consumer_epoch=consumer_epoch, producer_address=address, first_token_id=first, **fields
        )
