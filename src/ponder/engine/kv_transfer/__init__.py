"""KV hand-off between a prefill and a decode engine (disaggregated serving, docs/disaggregated.md)."""
