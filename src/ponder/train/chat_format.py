"""The built-in model's chat format: Qwen3-style turns, thinking inside <think> … </think>.

``CHAT_TEMPLATE`` is the Jinja template written into tokenizer_config.json; ``prompt_text`` and
``completion_text`` produce the same strings in Python so training data matches what the
template gives at serving time (a test holds them equal).
"""

from __future__ import annotations

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
THINK_START = "<think>"
THINK_END = "</think>"
# What an answer probe appends to a live thought to read its answer at once (the default probe of
# ponder.reasoning's answer-stability strategy; a test holds the two equal).
PROBE_TEXT = f"\n{THINK_END}\n\n\\boxed{{"
# What the engine forces when a thinking budget runs out (tokenizer_config.json
# "thinking_budget_close"): unlike a probe, it asks for the best answer now, never an empty box.
BUDGET_CLOSE_TEXT = f"\nAnswer now.\n{THINK_END}\n\n"

# Assistant turns after the last user message keep their reasoning; earlier ones are shown
# without it (as Qwen3 does), so multi-turn prompts stay short.
CHAT_TEMPLATE = """\
{%- set ns = namespace(last_user=-1) -%}
{%- for message in messages -%}
{%- if message.role == 'user' -%}{%- set ns.last_user = loop.index0 -%}{%- endif -%}
{%- endfor -%}
{%- for message in messages -%}
{%- if message.role == 'assistant' -%}
{%- set content = message.content if message.content is string else '' -%}
{%- set reasoning = '' -%}
{%- if message.reasoning_content is defined and message.reasoning_content is string -%}
{%- set reasoning = message.reasoning_content -%}
{%- elif '</think>' in content -%}
{%- set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\\n') -%}
{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}
{%- endif -%}
{%- if loop.index0 > ns.last_user -%}
{{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' -}}
{{- content.lstrip('\\n') + '<|im_end|>\\n' -}}
{%- else -%}
{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' -}}
{%- endif -%}
{%- else -%}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\\n' -}}
{%- if enable_thinking is defined and enable_thinking is false -%}
{{- '<think>\\n\\n</think>\\n\\n' -}}
{%- endif -%}
{%- endif -%}
"""


def prompt_text(question: str, *, enable_thinking: bool = True) -> str:
    """A one-turn conversation up to where the assistant starts (the generation prompt)."""
    text = f"{IM_START}user\n{question}{IM_END}\n{IM_START}assistant\n"
    if not enable_thinking:
        text += f"{THINK_START}\n\n{THINK_END}\n\n"
    return text


def answer_text(answer: str) -> str:
    """The visible answer after the thoughts: the fixed format ponder.tasks.answers reads."""
    return f"\\boxed{{{answer}}}"


def completion_text(reasoning: str, answer: str) -> str:
    """The assistant turn after ``prompt_text``: thoughts, answer, end of turn."""
    return f"{THINK_START}\n{reasoning}\n{THINK_END}\n\n{answer_text(answer)}{IM_END}"
