"""A worker's disaggregated-serving routes: /disagg/info (role, epoch, connector), /disagg/cached
(prompt tokens its prefix cache holds), /disagg/prefill (prompt KV + first token, sent to the
consumer named in kv_transfer_params), and the KV-transfer counters on /metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response

from ponder.engine.kv_transfer.coordinator import KVTransfers
from ponder.engine.sampling_params import RequestOutputKind, SamplingParams
from ponder.errors import InvalidRequestError, PonderError
from ponder.openai import errors
from ponder.server.http import JSONBody, error_response

# The request fields that can change the first token; the rest only matter to decoding.
FIRST_TOKEN_FIELDS = ("temperature", "top_p", "top_k", "min_p", "seed", "min_tokens", "ignore_eos")


def install_disagg_routes(app: FastAPI, engine: Any, registry: CollectorRegistry, role: str) -> None:
    transfers: KVTransfers | None = getattr(getattr(engine, "engine", None), "kv_transfer", None)
    if transfers is not None:
        registry.register(_TransferCollector(transfers))

    @app.get("/disagg/info", include_in_schema=False)
    async def info() -> Response:
        connector = transfers.connector if transfers is not None else None
        return JSONBody(
            {
                "role": role,
                "connector": connector.config.connector if connector else "none",
                "name": connector.name if connector else None,
                "epoch": connector.epoch if connector else None,
                "address": connector.address() if connector else None,
                "block_size": engine.kv_block_size,
            }
        )

    @app.post("/disagg/cached", include_in_schema=False)
    async def cached(request: Request) -> Response:
        body = await request.json()
        token_ids = body.get("token_ids") if isinstance(body, dict) else None
        if not isinstance(token_ids, list) or not all(isinstance(t, int) for t in token_ids):
            return error_response(
                errors.APIError(400, "token_ids must be a list of integers", param="token_ids")
            )
        return JSONBody({"cached_tokens": engine.engine.kv.count_cached_prefix(token_ids)})

    @app.post("/disagg/prefill", include_in_schema=False)
    async def prefill(request: Request) -> Response:
        if transfers is None:
            return error_response(errors.APIError(400, "this worker has no --kv-connector", param="role"))
        try:
            body = await request.json()
            params = _first_token_params(body)
            started = time.monotonic()
            stream = engine.add_request(None, body["token_ids"], params)
            token_ids: list[int] = []
            async for output in stream:
                token_ids += output.outputs[0].token_ids
        except (PonderError, KeyError, TypeError, ValueError) as error:
            if isinstance(error, KeyError | TypeError):
                error = InvalidRequestError(f"bad prefill request: {error}", param="token_ids")
            return error_response(errors.from_exception(error))
        if not token_ids:
            return error_response(errors.APIError(500, "the prefill produced no token", type="server_error"))
        return JSONBody({"first_token_id": token_ids[0], "prefill_s": time.monotonic() - started})


def _first_token_params(body: dict[str, Any]) -> SamplingParams:
    sampling = body.get("sampling") or {}
    values = {k: sampling[k] for k in FIRST_TOKEN_FIELDS if sampling.get(k) is not None}
    if sampling.get("top_p") == 0:
        values.update(temperature=0.0, top_p=1.0)
    values["min_tokens"] = min(int(values.get("min_tokens", 0)), 1)
    return SamplingParams(
        **values,
        max_tokens=1,
        output_kind=RequestOutputKind.DELTA,
        kv_transfer=body.get("kv_transfer_params"),
    )


class _TransferCollector(Collector):
    def __init__(self, transfers: KVTransfers):
        self.transfers = transfers

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.transfers.stats
        loads = CounterMetricFamily("ponder:kv_transfer_loads", "KV loads by outcome", labels=["outcome"])
        loads.add_metric(["ok"], stats.loads_ok)
        loads.add_metric(["failed"], stats.loads_failed)
        yield loads
        fallback = CounterMetricFamily(
            "ponder:kv_transfer_fallbacks", "Failed loads by what followed", labels=["action"]
        )
        fallback.add_metric(["recompute"], stats.recomputed)
        fallback.add_metric(["fail"], stats.failed_requests)
        yield fallback
        reasons = CounterMetricFamily(
            "ponder:kv_transfer_failures", "Failed loads by reason", labels=["reason"]
        )
        for reason, count in sorted(stats.failures.items()):
            reasons.add_metric([reason], count)
        yield reasons
        for name, doc, value in (
            ("kv_transfer_saves", "KV saves sent (producer)", stats.saves),
            ("kv_transfer_save_errors", "KV saves that failed (producer)", stats.save_errors),
            (
                "kv_transfer_blocks_verified",
                "Blocks whose checksum matched after transfer",
                stats.blocks_verified,
            ),
            ("kv_transfer_bytes", "KV bytes loaded into this engine", stats.bytes_loaded),
            ("kv_transfer_seconds", "Load start to KV in cache, summed over loads", stats.transfer_seconds),
            (
                "kv_transfer_prefill_seconds",
                "The producers' prefill time of the same loads",
                stats.prefill_seconds,
            ),
        ):
            yield CounterMetricFamily(f"ponder:{name}", doc, value=value)
        share = stats.transfer_seconds / stats.prefill_seconds if stats.prefill_seconds else 0.0
        yield GaugeMetricFamily(
            "ponder:kv_transfer_prefill_share", "Transfer time / prefill time over all loads", value=share
        )
