"""The chat screen's slash commands in Textual's command palette (Ctrl+P).

The palette lists what the registry in `core.chat.commands` lists, nothing of its own: each
command by its usage line and help. Choosing one that takes no argument runs it as if typed;
one that takes an argument is put in the prompt, so the argument is typed (and Tab-completed)
there, where the command's own checks answer it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape
from textual.message import Message

from lollma_tui.core.chat.commands import COMMANDS, CommandSpec
from lollma_tui.ui.literal_app import highlighted_match


@dataclass
class CommandChosen(Message):
    """A slash command was picked in the palette; the chat screen runs it or starts it."""

    name: str
    takes_argument: bool

    @property
    def line(self) -> str:
        """What the prompt holds: the whole command, or the command and a space for its argument."""
        return f"/{self.name} " if self.takes_argument else f"/{self.name}"


class SlashCommands(Provider):
    def _choose(self, spec: CommandSpec) -> None:
        takes_argument = " " in spec.usage and not spec.palette_runs
        self.screen.post_message(CommandChosen(spec.name, takes_argument=takes_argument))

    async def discover(self) -> Hits:
        for spec in COMMANDS:
            yield DiscoveryHit(
                Content(spec.usage), partial(self._choose, spec), text=spec.usage, help=escape(spec.help)
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec in COMMANDS:
            score = matcher.match(spec.usage)
            if score > 0:
                yield Hit(
                    score,
                    highlighted_match(matcher, spec.usage),
                    partial(self._choose, spec),
                    text=spec.usage,
                    help=escape(spec.help),
                )
