from __future__ import annotations

from lollma_tui.core.backends.base import ChatMessage
from lollma_tui.core.backends.chat_formats import adapt_messages, format_for_architecture


def test_gemma_family_gets_gemma_format() -> None:
    for arch in ("gemma", "gemma2", "gemma3", "GEMMA3"):
        assert format_for_architecture(arch) == "gemma"


def test_unknown_architecture_falls_back_to_chatml() -> None:
    assert format_for_architecture("some-new-arch") == "chatml"


def test_system_prompt_is_folded_into_first_user_turn_for_gemma() -> None:
    messages = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello"),
    ]
    adapted = adapt_messages(messages, "gemma")
    assert [m.role for m in adapted] == ["user", "assistant"]
    assert adapted[0].content.startswith("Be brief.") and adapted[0].content.endswith("Hi")


def test_formats_with_a_system_role_are_untouched() -> None:
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")]
    assert adapt_messages(messages, "chatml") == messages
