"""Prompts shared by the GPU engine tests: lengths around block and tile edges."""

from __future__ import annotations


def prompts() -> list[list[int]]:
    lengths = [1, 15, 16, 17, 40, 130, 300]
    return [[(7 * i + 13 * j + 3) % 331 for j in range(n)] for i, n in enumerate(lengths)]
