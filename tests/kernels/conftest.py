"""Triton kernels run compiled on a CUDA device, else under the Triton CPU interpreter."""

from __future__ import annotations

import os

import pytest
import torch

# Must be set before any @triton.jit function is defined, i.e. before the kernel modules load.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

KERNEL_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def device() -> str:
    return KERNEL_DEVICE
