"""The chat input: Enter sends, Ctrl+J (or Shift+Enter where the terminal reports it) adds a line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import events
from textual.message import Message
from textual.widgets import TextArea

if TYPE_CHECKING:
    from lollma_tui.core.chat.commands import CompletionContext


SHOWN_COMPLETIONS = 24
"""Names a Tab lists at most; the toast says how many more there are."""


class PromptInput(TextArea):
    # Handled as the key comes, as Enter is: a binding runs only once the key has gone up to the
    # app, and keys that arrived with it (a paste of keystrokes, a slow SSH link) are typed first.
    _KEYS = {
        "ctrl+j": "newline",
        "shift+enter": "newline",
        "up": "history_back",
        "down": "history_forward",
        "pageup": "scroll_log_up",
        "pagedown": "scroll_log_down",
    }

    @dataclass
    class Submitted(Message):
        prompt_input: PromptInput
        text: str

        @property
        def control(self) -> PromptInput:
            return self.prompt_input

    @dataclass
    class CompletionsWanted(Message):
        """Tab found nothing to offer on a command line: the app may know where to look (a
        server not asked yet); Tab again completes once `completion_context` has them."""

        prompt_input: PromptInput
        text: str

        @property
        def control(self) -> PromptInput:
            return self.prompt_input

    @dataclass
    class LogScrollWanted(Message):
        """PageUp or PageDown in the prompt: the conversation above it scrolls a page (the log
        takes no focus: keys typed there went nowhere)."""

        pages: int

    def action_scroll_log_up(self) -> None:
        self.post_message(self.LogScrollWanted(-1))

    def action_scroll_log_down(self) -> None:
        self.post_message(self.LogScrollWanted(1))

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            compact=True,
            placeholder="Message, or /command — Enter sends, Ctrl+J new line",
            id=id,
            classes=classes,
        )
        self.completion_context: CompletionContext | None = None
        """Argument values to complete (models, quants, themes); set by the app."""
        self._history: list[str] = []
        self._history_index: int | None = None
        self._draft = ""
        """What was typed before Up went into the history."""
        self._edits: dict[int, str] = {}
        """History entries changed and left with Up or Down, by index (as readline keeps them)."""
        self._returned = ""
        """The messages put back since the last send, at the start of the prompt."""
        # A blinking cursor repaints twice a second forever; terminals over SSH notice.
        self.cursor_blink = os.environ.get("LOLLMA_CURSOR_BLINK", "0") == "1"

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self._submit()
            return
        if event.key == "tab" and self._complete_command():
            event.stop()
            event.prevent_default()
            return
        action = self._KEYS.get(event.key)
        if action is not None:
            event.stop()
            event.prevent_default()
            getattr(self, f"action_{action}")()
            return
        await super()._on_key(event)

    def _submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        if not self._history or self._history[-1] != text:
            self._history.append(text)
        self._history_index = None
        self._draft = ""
        self._edits.clear()
        self._returned = ""
        self.clear()
        self.post_message(self.Submitted(self, text))

    def _complete_command(self) -> bool:
        # The command registry is imported on the first Tab, not for the first frame.
        from lollma_tui.core.chat.commands import Completion, complete

        text = self.text
        if text.lstrip().startswith("/"):
            text = text.lstrip()  # a command typed after spaces is still one (Enter runs it)
        if self.completion_context is None:
            completions = [Completion(c.name, f"/{c.name} ", c.help) for c in complete(text)]
        else:
            completions = complete(text, context=self.completion_context)
        if not completions:
            if not text.startswith("/"):
                return False
            # On a command line Tab completes: a miss keeps the focus here.
            self.post_message(self.CompletionsWanted(self, text))
            return True
        common = os.path.commonprefix([c.text for c in completions])  # noqa: RUF071 - plain strings
        if len(completions) == 1:
            if len(completions[0].text) > len(text):
                self.set_text(completions[0].text)
        elif len(common) > len(text) and common.lower().startswith(text.lower()):
            # Names that only contain what was typed share a prefix that may say less than it:
            # "/model 135" must not become "/model Smol", which two models match.
            self.set_text(common)
        if len(completions) > 1:
            shown = "  ".join(c.name for c in completions[:SHOWN_COMPLETIONS])
            more = len(completions) - SHOWN_COMPLETIONS
            if more > 0:
                # The palette lists commands, not a command's values (models, quants).
                where = "Ctrl+P lists every command" if " " not in text.lstrip() else "type more to narrow"
                shown += f"  … and {more} more ({where})"
            self.notify(shown, title="Completions", timeout=4)
        return True

    def set_text(self, text: str) -> None:
        """Replace what the prompt holds, the cursor at the end."""
        self.load_text(text)
        self.move_cursor(self.document.end)

    def put_back(self, message: str) -> None:
        """A message that was not sent goes back, before anything typed since, as it would be
        typed to send it: one starting with "/" keeps its "//", and is no command."""
        from lollma_tui.core.chat.commands import escape_message

        # Several refused in a row (lines of a paste that came as typing, while a reply was
        # written) each went before the last: they came back glued, in reverse order.
        text = self.text
        earlier = self._returned if self._returned and text.startswith(self._returned) else ""
        self._returned = f"{earlier}\n{escape_message(message)}" if earlier else escape_message(message)
        self.set_text(self._returned + text[len(earlier) :])

    def start_command(self, line: str) -> bool:
        """Put `line` (a command waiting for its argument) in the prompt and focus it.

        A draft the prompt held goes into its history first, where Up finds it: True then.
        """
        draft = self.text
        kept = bool(draft.strip()) and not draft.startswith(line.strip())
        if kept and (not self._history or self._history[-1] != draft):
            self._history.append(draft)
        self._history_index = None
        self._draft = ""
        self.set_text(line)
        self.focus()
        return kept

    def _visual_row(self) -> int:
        return self.wrapped_document.location_to_offset(self.cursor_location).y

    def action_newline(self) -> None:
        self.insert("\n")

    def action_history_back(self) -> None:
        # Only recall history from the first row on screen, so Up still moves within a long
        # draft, wrapped lines included.
        if self._visual_row() != 0 or not self._history:
            self.action_cursor_up()
            return
        if self._history_index is None:
            # What was being typed comes back when Down goes past the newest entry.
            self._draft = self.text
            index = len(self._history) - 1
        else:
            self._keep_edit()
            index = max(0, self._history_index - 1)
        self._history_index = index
        self.set_text(self._edits.get(index, self._history[index]))

    def _keep_edit(self) -> None:
        """A recalled entry changed and then left is kept, for Up or Down to bring back."""
        index = self._history_index
        if index is not None and self.text != self._history[index]:
            self._edits[index] = self.text

    def action_history_forward(self) -> None:
        if self._history_index is None or self._visual_row() != self.wrapped_document.height - 1:
            self.action_cursor_down()
            return
        self._keep_edit()
        index = self._history_index + 1
        if index >= len(self._history):
            self._history_index = None
            self.set_text(self._draft)
            self._draft = ""
            return
        self._history_index = index
        self.set_text(self._edits.get(index, self._history[index]))
