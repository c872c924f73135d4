"""Which llama-cpp-python chat format to use when a GGUF carries no chat template.

Without a template llama-cpp-python falls back to the llama-2 format, which most other models
answer with nothing or with garbage; the architecture tells us the family's own format.
"""

from __future__ import annotations

from collections.abc import Sequence

from lollma_tui.core.backends.base import ChatMessage

_FORMAT_BY_ARCHITECTURE: dict[str, str] = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3n": "gemma",
    "llama": "llama-2",
    "llama4": "llama-3",
    "mistral": "mistral-instruct",
    "mistral3": "mistral-instruct",
    "qwen": "qwen",
    "qwen2": "chatml",
    "qwen2moe": "chatml",
    "qwen3": "chatml",
    "qwen3moe": "chatml",
    "phi2": "chatml",
    "phi3": "chatml",
    "chatglm": "chatglm3",
    "baichuan": "baichuan-2",
}

DEFAULT_FORMAT = "chatml"

FORMATS_WITHOUT_SYSTEM_ROLE = frozenset({"gemma", "mistral-instruct"})
"""Formats whose template drops system messages; we fold the system prompt into the first turn."""


def format_for_architecture(architecture: str) -> str:
    return _FORMAT_BY_ARCHITECTURE.get(architecture.lower(), DEFAULT_FORMAT)


def adapt_messages(
    messages: Sequence[ChatMessage], chat_format: str, *, no_system_role: bool = False
) -> list[ChatMessage]:
    """Fold system messages into the first user turn for formats that would drop them, and for
    a GGUF's own template that refuses them (`no_system_role`: Gemma 2's, Mistral's)."""
    if chat_format not in FORMATS_WITHOUT_SYSTEM_ROLE and not no_system_role:
        return list(messages)
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content.strip())
    rest = [m for m in messages if m.role != "system"]
    if not system:
        return rest
    for i, message in enumerate(rest):
        if message.role == "user":
            rest[i] = ChatMessage("user", f"{system}\n\n{message.content}")
            return rest
    return [ChatMessage("user", system), *rest]
