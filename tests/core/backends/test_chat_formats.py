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


def test_every_format_said_to_drop_the_system_prompt_does_and_gets_it_folded_in() -> None:
    # Mistral-instruct dropped "/system Answer in French." without a word.
    import llama_cpp.llama_chat_format as formats

    from lollma_tui.core.backends.chat_formats import FORMATS_WITHOUT_SYSTEM_ROLE

    messages = [ChatMessage("system", "Answer in French."), ChatMessage("user", "Hi")]
    for name in sorted(FORMATS_WITHOUT_SYSTEM_ROLE):
        render = getattr(formats, f"format_{name.replace('-', '_')}")
        as_sent = [{"role": m.role, "content": m.content} for m in messages]
        assert "Answer in French." not in render(messages=as_sent).prompt, name
        adapted = [{"role": m.role, "content": m.content} for m in adapt_messages(messages, name)]
        assert "Answer in French." in render(messages=adapted).prompt, name
    # A GGUF's own template that refuses the role, whatever its format is called.
    assert [m.role for m in adapt_messages(messages, "chat_template.default", no_system_role=True)] == [
        "user"
    ]
