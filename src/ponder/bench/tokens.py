"""Token counts when a server sends no usage: a `tokenizers` tokenizer, else one per chunk."""

from __future__ import annotations

from pathlib import Path

from ponder.bench.errors import BenchConfigError


class TextTokenizer:
    """Counts and cuts text with a Hugging Face tokenizer.json (no transformers needed)."""

    def __init__(self, path: str):
        from tokenizers import Tokenizer  # imported here: only runs that pass --tokenizer need it

        file = Path(path)
        if file.is_dir():
            file = file / "tokenizer.json"
        if not file.is_file():
            raise BenchConfigError(
                f"--tokenizer: no tokenizer.json at {file}; pass a model directory that has one",
                "--tokenizer",
            )
        try:
            self._tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:  # the library raises a bare Exception on bad files
            raise BenchConfigError(f"--tokenizer: cannot load {file}: {exc}", "--tokenizer") from exc
        self.path = str(file)

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def truncate(self, text: str, num_tokens: int) -> str:
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids[:num_tokens]
        return self._tokenizer.decode(ids)


def load_tokenizer(path: str | None) -> TextTokenizer | None:
    return TextTokenizer(path) if path else None
