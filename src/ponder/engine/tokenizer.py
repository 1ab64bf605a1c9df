"""Tokenizer: a checkpoint's tokenizer.json plus its special tokens, BOS rule and chat template."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import tokenizers
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import processors

from ponder.errors import InvalidRequestError, ModelLoadError

# The special tokens a tokenizer_config.json may name; chat templates see them as variables.
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "pad_token")
DEFAULT_TEMPLATE = "default"
TOOL_USE_TEMPLATE = "tool_use"


class Tokenizer:
    """Encodes, decodes and renders chats the way `transformers.AutoTokenizer` does for the dir."""

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        *,
        special_tokens: Mapping[str, str] | None = None,
        chat_templates: Mapping[str, str] | None = None,
        source: str = "<in-memory tokenizer>",
        budget_close_text: str | None = None,
    ):
        self.backend = backend
        self.source = source
        self.special_tokens = dict(special_tokens or {})
        self.budget_close_text = budget_close_text  # the model's own close of a budgeted thought
        self.chat_templates = dict(chat_templates or {})
        self._compiled_templates = {
            name: _compile_template(text, name, source) for name, text in self.chat_templates.items()
        }
        special_ids = {i for i, token in backend.get_added_tokens_decoder().items() if token.special}
        named_ids = (backend.token_to_id(token) for token in self.special_tokens.values())
        special_ids.update(i for i in named_ids if i is not None)
        self.all_special_ids: list[int] = sorted(special_ids)
        self.bos_token_id = self.token_to_id(self.special_tokens.get("bos_token"))
        self.eos_token_id = self.token_to_id(self.special_tokens.get("eos_token"))
        self.pad_token_id = self.token_to_id(self.special_tokens.get("pad_token"))
        # decode([id]) is a pure function of the id; the detokenizer asks for it about once per
        # generated token, and logprobs for every top-k alternative.
        self._token_texts: dict[tuple[int, bool], str] = {}

    @classmethod
    def from_dir(cls, path: str | Path) -> Tokenizer:
        directory = Path(path)
        tokenizer_file = directory / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ModelLoadError(
                f"{directory} has no tokenizer.json; ponder needs the fast-tokenizer file that "
                "HF checkpoints ship (save it with tokenizer.save_pretrained(dir))"
            )
        try:
            backend = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # the Rust loader raises a bare Exception
            raise ModelLoadError(f"cannot load {tokenizer_file}: {exc}") from exc
        config = _read_json(directory / "tokenizer_config.json")
        special_tokens = {
            name: token
            for name in SPECIAL_TOKEN_NAMES
            if (token := _token_content(config.get(name))) is not None
        }
        if "add_bos_token" in config or "add_eos_token" in config:
            # transformers rebuilds the post-processor from these flags when the config sets them.
            backend.post_processor = _bos_eos_post_processor(
                backend,
                special_tokens.get("bos_token") if config.get("add_bos_token") else None,
                special_tokens.get("eos_token") if config.get("add_eos_token") else None,
            )
        return cls(
            backend,
            special_tokens=special_tokens,
            chat_templates=_read_chat_templates(directory, config),
            source=str(directory),
            budget_close_text=_string_or_none(config.get("thinking_budget_close")),
        )

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        if len(token_ids) == 1:
            key = (int(token_ids[0]), skip_special_tokens)
            text = self._token_texts.get(key)
            if text is None:
                text = self._token_texts[key] = self.backend.decode([key[0]], skip_special_tokens)
            return text
        return self.backend.decode(list(token_ids), skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, token_ids: Sequence[int]) -> list[str]:
        """Raw vocabulary strings (e.g. 'Ġthe' for byte-level BPE); '' for an unknown id."""
        return [self.backend.id_to_token(i) or "" for i in token_ids]

    def token_to_id(self, token: str | None) -> int | None:
        return None if token is None else self.backend.token_to_id(token)

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_templates)

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **template_kwargs: Any,
    ) -> str:
        """Render messages to the prompt text (tokenize it with add_special_tokens=False)."""
        template = self._pick_template(tools)
        if tools is not None and (
            not isinstance(tools, list | tuple) or not all(isinstance(t, Mapping) for t in tools)
        ):
            raise InvalidRequestError("tools must be a list of JSON-schema objects", param="tools")
        variables: dict[str, Any] = {
            **self.special_tokens,
            **template_kwargs,
            "messages": normalize_messages(messages),
            "tools": None if tools is None else [dict(t) for t in tools],
            "add_generation_prompt": add_generation_prompt,
        }
        try:
            return template.render(**variables)
        except jinja2.TemplateError as exc:
            raise InvalidRequestError(
                f"the model's chat template rejected the messages: {exc}", param="messages"
            ) from exc

    def _pick_template(self, tools: object) -> jinja2.Template:
        if tools is not None and TOOL_USE_TEMPLATE in self._compiled_templates:
            return self._compiled_templates[TOOL_USE_TEMPLATE]
        if DEFAULT_TEMPLATE in self._compiled_templates:
            return self._compiled_templates[DEFAULT_TEMPLATE]
        if not self._compiled_templates:
            raise InvalidRequestError(
                f"this model has no chat template ({self.source} has no chat_template in "
                "tokenizer_config.json and no chat_template.jinja); send a plain-text "
                "completion request instead",
                param="messages",
            )
        raise InvalidRequestError(
            f"this model's chat templates {sorted(self._compiled_templates)} include no "
            f"'{DEFAULT_TEMPLATE}' one",
            param="messages",
        )


def normalize_messages(messages: object) -> list[dict[str, Any]]:
    """Check OpenAI-style chat messages; text-part lists become one string, None keys drop."""
    if not isinstance(messages, list | tuple) or not messages:
        raise InvalidRequestError(
            "messages must be a non-empty list of {'role': ..., 'content': ...} objects",
            param="messages",
        )
    return [_normalize_message(message, index) for index, message in enumerate(messages)]


def _normalize_message(message: object, index: int) -> dict[str, Any]:
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise InvalidRequestError(
            f"{where} must be an object with 'role' and 'content', got {type(message).__name__}",
            param="messages",
        )
    role = message.get("role")
    if not isinstance(role, str) or not role:
        raise InvalidRequestError(f"{where}.role must be a non-empty string", param="messages")
    content = message.get("content")
    if content is None and not (role == "assistant" and message.get("tool_calls")):
        raise InvalidRequestError(
            f"{where}.content is missing; only an assistant message with tool_calls may omit it",
            param="messages",
        )
    normalized = {key: value for key, value in message.items() if value is not None}
    if isinstance(content, list | tuple):
        normalized["content"] = "\n".join(_text_of_part(part, f"{where}.content") for part in content)
    elif content is not None and not isinstance(content, str):
        raise InvalidRequestError(
            f"{where}.content must be a string or a list of text parts, got {type(content).__name__}",
            param="messages",
        )
    return normalized


def _text_of_part(part: object, where: str) -> str:
    if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return part["text"]
    kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
    raise InvalidRequestError(
        f"{where} parts must be {{'type': 'text', 'text': '...'}}; got a {kind!r} part "
        "(this model takes text only)",
        param="messages",
    )


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} must hold a JSON object")
    return data


def _token_content(value: object) -> str | None:
    """A special token written as a string or as an AddedToken dict ({"content": ...})."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _read_chat_templates(directory: Path, config: Mapping[str, Any]) -> dict[str, str]:
    raw = config.get("chat_template")
    templates: dict[str, str] = {}
    if isinstance(raw, str):
        templates[DEFAULT_TEMPLATE] = raw
    elif isinstance(raw, list):  # [{"name": ..., "template": ...}, ...]
        templates.update({entry["name"]: entry["template"] for entry in raw if isinstance(entry, Mapping)})
    # Newer transformers save templates as files; they win over the config's copy.
    jinja_file = directory / "chat_template.jinja"
    if jinja_file.is_file():
        templates[DEFAULT_TEMPLATE] = jinja_file.read_text(encoding="utf-8")
    extra_dir = directory / "additional_chat_templates"
    if extra_dir.is_dir():
        for path in sorted(extra_dir.glob("*.jinja")):
            templates[path.stem] = path.read_text(encoding="utf-8")
    return templates


def _bos_eos_post_processor(
    backend: tokenizers.Tokenizer, bos: str | None, eos: str | None
) -> processors.TemplateProcessing:
    def with_specials(sequence: str) -> str:
        return " ".join(part for part in (bos and f"{bos}:0", sequence, eos and f"{eos}:0") if part)

    specials = [(token, backend.token_to_id(token)) for token in (bos, eos) if token is not None]
    missing = [token for token, token_id in specials if token_id is None]
    if missing:
        raise ModelLoadError(f"tokenizer_config.json names tokens {missing} absent from the vocab")
    return processors.TemplateProcessing(
        single=with_specials("$A:0"),
        pair=f"{with_specials('$A:0')} {with_specials('$B:1')}",
        special_tokens=specials,
    )


class _GenerationBlock(Extension):
    """Accepts transformers' `{% generation %}` marker blocks and renders their body as-is."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> list[nodes.Node]:
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _compile_template(text: str, name: str, source: str) -> jinja2.Template:
    # Templates come from untrusted checkpoints, hence the sandbox (same setup as transformers).
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_GenerationBlock, "jinja2.ext.loopcontrols"],
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_template_error
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return environment.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ModelLoadError(f"chat template {name!r} of {source} is not valid Jinja: {exc}") from exc


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson HTML-escapes; chat templates expect plain JSON.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_template_error(message: str) -> None:
    raise jinja2.TemplateError(message)


def _string_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
