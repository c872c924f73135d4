from __future__ import annotations

from lollma_tui.core.backends.base import ReplyStats, RunSetup
from lollma_tui.core.chat.conversation import Conversation, Message, ReplyState, reply_end_note, title_from
from lollma_tui.core.settings import BackendKind


def test_history_skips_failed_and_streaming_replies_but_keeps_stopped_ones() -> None:
    conversation = Conversation(system_prompt="sys")
    conversation.add_user("one")
    failed = conversation.start_reply()
    failed.state = ReplyState.ERROR
    conversation.add_user("two")
    stopped = conversation.start_reply()
    stopped.content = "partial"
    stopped.state = ReplyState.STOPPED
    conversation.add_user("three")
    conversation.start_reply()  # still streaming
    sent = [(m.role, m.content) for m in conversation.history()]
    # "one" got no reply: it goes with "two", so the roles still alternate.
    assert sent == [
        ("system", "sys"),
        ("user", "one\n\ntwo"),
        ("assistant", "partial"),
        ("user", "three"),
    ]


def test_drop_last_reply_returns_the_question() -> None:
    conversation = Conversation()
    question = conversation.add_user("q")
    reply = conversation.start_reply()
    reply.content = "a"
    reply.state = ReplyState.COMPLETE
    assert conversation.drop_last_reply() is question
    assert conversation.messages == [question]


def test_title_comes_from_first_message() -> None:
    conversation = Conversation()
    conversation.add_user("  explain   quantum\nentanglement ")
    conversation.add_user("second")
    assert conversation.title == "explain quantum entanglement"
    assert title_from("x" * 100).endswith("…") and len(title_from("x" * 100)) == 48


def stats(prompt_tokens: int | None = 40, gen_tokens: int = 128) -> ReplyStats:
    setup = RunSetup(BackendKind.LLAMA_CPP, "Gemma 3 270m", "Q4_K_M", 0, 18, 2048, 2)
    return ReplyStats(setup, 0.19, prompt_tokens, prompt_tokens, 250.0, gen_tokens, 77.0, 1.9)


def test_a_cut_reply_names_the_limit_that_cut_it() -> None:
    # The set-up's context is 2048 tokens.
    assert reply_end_note(ReplyState.LENGTH, stats(prompt_tokens=40, gen_tokens=2008)) == (
        "cut at the context limit (2048 tokens)"
    )
    assert reply_end_note(ReplyState.LENGTH, stats(prompt_tokens=40, gen_tokens=2007)) == (
        "cut at the token limit"
    )
    # Without the figures (a reply saved without stats, a server that gives no prompt count)
    # it cannot tell which.
    assert reply_end_note(ReplyState.LENGTH, None) == "cut at the token or context limit"
    assert reply_end_note(ReplyState.LENGTH, stats(prompt_tokens=None)) == "cut at the token or context limit"


def test_only_a_reply_that_did_not_simply_finish_gets_a_note() -> None:
    assert reply_end_note(ReplyState.COMPLETE, stats()) is None
    assert reply_end_note(ReplyState.ERROR, stats()) is None  # its error says it
    assert reply_end_note(ReplyState.STOPPED, stats()) == "stopped"


def test_the_model_last_used_is_the_newest_reply_s_from_that_server() -> None:
    def reply(model: str, backend: BackendKind, server: str | None) -> Message:
        setup = RunSetup(backend, model, "Q4_K_M", 0, 18, 2048, None, server=server)
        return Message("assistant", "hi", stats=ReplyStats(setup, 0.1, 5, 5, 50.0, 3, 30.0, 0.2))

    den, lab = "http://den:11434", "http://lab:11434"
    chat = Conversation()
    chat.messages += [
        reply("llama3.2:1b", BackendKind.OLLAMA, den),
        reply("qwen3:0.6b", BackendKind.OLLAMA, den),
        reply("phi4:14b", BackendKind.OLLAMA, lab),
        reply("gemma.gguf", BackendKind.LLAMA_CPP, None),
        Message("user", "and now?"),
    ]
    assert chat.model_last_used(BackendKind.OLLAMA, den) == "qwen3:0.6b"
    assert chat.model_last_used(BackendKind.OLLAMA, lab) == "phi4:14b"
    assert chat.model_last_used(BackendKind.LLAMA_CPP, None) == "gemma.gguf"
    assert chat.model_last_used(BackendKind.OLLAMA, "http://elsewhere:11434") is None
    assert Conversation().model_last_used(BackendKind.OLLAMA, den) is None
