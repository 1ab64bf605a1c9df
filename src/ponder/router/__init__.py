"""Data-parallel serving: several `ponder serve` replicas (local processes or Ray actors) behind
one OpenAI-compatible front end that routes each request (round-robin, least-load, kv-aware)."""
