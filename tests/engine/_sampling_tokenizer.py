"""Builds small byte-level BPE checkpoint tokenizers (Qwen-style and Llama-style) for tests."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Let me think step by step: 12 + 30 = 42, so the answer is 42.",
    "Café, naïve, résumé, façade, jalapeño, Straße, smörgåsbord.",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "Emoji: 😀 🚀 🎉 👍🏽 ❤️ 🇫🇷 and math ∑ ∫ √ π ≈ 3.14159.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
    "Wait, let me reconsider. Actually the result is different.",
    "So the final answer is \\boxed{7}.",
]

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK_TOKENS = ["<think>", "</think>"]  # added but not special, as in Qwen3: they stay in text
LLAMA_SPECIAL = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]

# Shaped like Qwen3's template: tools via tojson, namespace, loop controls, reasoning_content.
QWEN_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- '# Tools\n\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' }}{{- tool | tojson }}
    {%- endfor %}
    {{- '\n</tools><|im_end|>\n' }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(last_user=0) %}
{%- for message in messages %}
    {%- if message.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.role == 'system' and loop.first %}{%- continue %}{%- endif %}
    {%- if message.role == 'assistant' %}
        {%- set content = message.content.split('</think>')[-1].lstrip('\n')
            if message.content is string else '' %}
        {%- if loop.index0 > ns.last_user and message.reasoning_content is defined %}
            {{- '<|im_start|>assistant\n<think>\n' + message.reasoning_content.strip('\n')
                + '\n</think>\n\n' + content }}
        {%- else %}
            {{- '<|im_start|>assistant\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

LLAMA_TEMPLATE = """{{- bos_token }}
{%- for message in messages %}
    {%- if message['role'] not in ['system', 'user', 'assistant'] %}
        {{- raise_exception('unsupported role ' + message['role']) }}
    {%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}
    {{- message['content'] | trim }}{{ '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}"""


@functools.cache
def _trained_json(special: tuple[str, ...], added: tuple[str, ...], bos: str | None) -> str:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=list(special),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in added])
    if bos is not None:  # Llama 3 style: tokenizer.json itself prepends BOS
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, 0)]
        )
    return tokenizer.to_str()


def build_backend(style: str = "qwen") -> Tokenizer:
    """The trained `tokenizers.Tokenizer` alone (no config)."""
    if style == "qwen":
        return Tokenizer.from_str(_trained_json(tuple(QWEN_SPECIAL), tuple(THINK_TOKENS), None))
    return Tokenizer.from_str(_trained_json(tuple(LLAMA_SPECIAL), (), LLAMA_SPECIAL[0]))


def write_checkpoint_tokenizer(
    directory: Path,
    style: str = "qwen",
    *,
    template_as_file: bool = False,
    named_templates: bool = False,
    with_template: bool = True,
    add_bos_token: bool | None = None,
) -> Path:
    """Write tokenizer.json + tokenizer_config.json as an HF checkpoint has them."""
    directory.mkdir(parents=True, exist_ok=True)
    build_backend(style).save(str(directory / "tokenizer.json"))
    if style == "qwen":
        config: dict = {
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "bos_token": None,
        }
        template = QWEN_TEMPLATE
    else:
        config = {
            "bos_token": {"content": "<|begin_of_text|>", "special": True, "__type": "AddedToken"},
            "eos_token": "<|eot_id|>",
        }
        template = LLAMA_TEMPLATE
    if add_bos_token is not None:
        config["add_bos_token"] = add_bos_token
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["model_max_length"] = 4096
    if with_template and template_as_file:
        (directory / "chat_template.jinja").write_text(template, encoding="utf-8")
    elif with_template and named_templates:
        config["chat_template"] = [
            {"name": "default", "template": template},
            {"name": "tool_use", "template": "TOOLS {{ tools | tojson }}"},
        ]
    elif with_template:
        config["chat_template"] = template
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


def _byte_to_char() -> dict[int, str]:
    # GPT-2's reversible byte -> printable character map, which byte-level BPE vocabularies use.
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


BYTE_TO_CHAR = _byte_to_char()


def byte_token_ids(tokenizer, data: bytes) -> list[int]:
    """One token per byte: splits every multi-byte character across tokens."""
    return [tokenizer.token_to_id(BYTE_TO_CHAR[b]) for b in data]
