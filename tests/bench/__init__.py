"""Tests of `ponder bench` (src/ponder/bench)."""
