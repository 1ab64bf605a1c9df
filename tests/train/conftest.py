"""A task tokenizer trained once per test session (a second or so)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.train.data import tokenizer_corpus
from ponder.train.tokenizer import train_tokenizer


@pytest.fixture(scope="session")
def task_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("task_tokenizer")
    train_tokenizer(tokenizer_corpus(items_per_cell=60, seed=0), 2048, directory)
    return directory
