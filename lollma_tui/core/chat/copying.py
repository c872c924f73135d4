"""What /copy copies: the last reply, or one of its code blocks, and the file it also lands in."""

from __future__ import annotations

from pathlib import Path

from lollma_tui.core import paths
from lollma_tui.core.chat.commands import CommandError
from lollma_tui.core.formatting import counted
from lollma_tui.core.safe_files import write_private_file


def code_blocks(markdown: str) -> list[str]:
    """The code blocks a reply shows, in order: fenced with ``` or ~~~ (four backticks around
    an example with three), indented, or inside a list item, as markdown-it reads them."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark", {"html": False}).parse(markdown)
    return [token.content.rstrip("\n") for token in tokens if token.type in ("fence", "code_block")]


def choose_copy(reply: str, argument: str) -> tuple[str, str]:
    """The text ``/copy [code N]`` takes from `reply`, and how to name it; raises `CommandError`."""
    words = argument.split()
    if not words:
        return reply, "the last reply"
    if words[0].lower() != "code" or len(words) > 2:
        raise CommandError("Usage: /copy (the last reply) or /copy code N (its Nth code block)")
    blocks = code_blocks(reply)
    try:
        number = int(words[1]) if len(words) > 1 else 1
    except ValueError:
        raise CommandError("Usage: /copy code N") from None
    if not 1 <= number <= len(blocks):
        raise CommandError(f"The last reply has {counted(len(blocks), 'code block')}.")
    return blocks[number - 1], f"code block {number}"


def save_copy(text: str) -> Path:
    """Keep the copied text in a file only the user can read, for terminals without OSC 52."""
    target = paths.state_dir() / "last-copy.txt"
    write_private_file(target, text)
    return target
