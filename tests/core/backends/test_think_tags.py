"""A reasoning model's think block, split from its answer however the stream is cut."""

from __future__ import annotations

import pytest

from lollma_tui.core.backends.think_tags import ThinkSplitter, opens_thinking


def split(splitter: ThinkSplitter, *chunks: str) -> tuple[str, str]:
    pieces = [piece for chunk in chunks for piece in splitter.feed(chunk)] + [*splitter.flush()]
    thinking = "".join(p for kind, p in pieces if kind == "thinking")
    return thinking, "".join(p for kind, p in pieces if kind == "text")


@pytest.mark.parametrize("split", [1, 2, 3, 5, 7, 8, 10, 13])
def test_think_tags_split_anywhere(split: int) -> None:
    text = "<think>plan it</think>The answer."
    splitter = ThinkSplitter()
    pieces = [*splitter.feed(text[:split]), *splitter.feed(text[split:]), *splitter.flush()]
    thinking = "".join(p for kind, p in pieces if kind == "thinking")
    answer = "".join(p for kind, p in pieces if kind == "text")
    assert (thinking, answer) == ("plan it", "The answer.")


def test_a_lone_angle_bracket_is_text() -> None:
    splitter = ThinkSplitter()
    pieces = [*splitter.feed("a <b and <thin"), *splitter.feed("g> c"), *splitter.flush()]
    assert "".join(p for _, p in pieces) == "a <b and <thing> c"
    assert all(kind == "text" for kind, _ in pieces)


def test_a_think_tag_inside_the_answer_is_part_of_it() -> None:
    # Only a block at the start is thinking: before, everything after this tag went hidden.
    text = "Use the `<think>` tag to wrap thoughts, then `</think>`."
    assert split(ThinkSplitter(), text[:9], text[9:]) == ("", text)
    assert split(ThinkSplitter(), "<think>a</think>", "Then <think>b</think>") == (
        "a",
        "Then <think>b</think>",
    )


def test_a_block_the_prompt_opened_ends_at_its_closing_tag() -> None:
    # DeepSeek-R1's template ends the prompt with "<think>\n": the model writes only the end.
    assert split(ThinkSplitter(thinking=True), "weigh it", " up</th", "ink>\n\nForty-two.") == (
        "weigh it up",
        "Forty-two.",
    )


@pytest.mark.parametrize(
    ("end", "opened"), [("<|Assistant|><think>\n", True), ("assistant\n", False), ("<think>x", False)]
)
def test_a_prompt_that_ends_in_an_open_tag_is_seen(end: str, opened: bool) -> None:
    assert opens_thinking(end) is opened


def test_a_continued_reply_starts_in_its_answer() -> None:
    assert split(ThinkSplitter(answering=True), "<think> is a tag") == ("", "<think> is a tag")


def test_blank_lines_before_a_block_are_dropped_and_a_reply_of_blanks_is_kept() -> None:
    assert split(ThinkSplitter(), "\n ", "<think>x</think>y") == ("x", "y")
    assert split(ThinkSplitter(), " ", " ") == ("", "  ")
