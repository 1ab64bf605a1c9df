"""Speculative decoding: proposers guess tokens, the target verifies them in one batched forward.

proposer.py (the contract), ngram.py (prompt lookup), draft_model.py (a small model with its own
KV cache), controller.py (acceptance tracking: the adaptive off-switch), rejection.py (the
acceptance rule), speculator.py (what the engine calls each step).
"""
