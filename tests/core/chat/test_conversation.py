from __future__ import annotations

from lollma_tui.core.chat.conversation import Conversation, ReplyState, title_from


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
    assert sent == [
        ("system", "sys"),
        ("user", "one"),
        ("user", "two"),
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
