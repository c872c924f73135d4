"""What to do when the next message would not fit in the model's context: the user decides.

Backends cut an overlong prompt silently (Ollama drops the start of the context) or fail; this
dialog makes the cut a choice instead of a surprise.
"""

from __future__ import annotations

from enum import Enum

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class OverflowChoice(Enum):
    TRUNCATE = "truncate"
    """Leave the oldest turns out of what is sent; they stay in the history."""
    NEW_CONVERSATION = "new"
    SEND_ANYWAY = "send"
    """Send it all and let the backend cope (it may cut the start of the context or refuse)."""
    CANCEL = "cancel"


_CHOICES: tuple[tuple[OverflowChoice, str, str, str], ...] = (
    (
        OverflowChoice.TRUNCATE,
        "t",
        "Truncate oldest turns",
        "send without the earliest turns; they stay in the history",
    ),
    (OverflowChoice.NEW_CONVERSATION, "n", "Start a new conversation", "this one stays saved"),
    (OverflowChoice.SEND_ANYWAY, "s", "Send anyway", "the backend may cut the start itself, or fail"),
    (OverflowChoice.CANCEL, "c", "Cancel", "back to the message"),
)


def overflow_text(used_tokens: int, n_ctx: int, total_tokens: int, subject: str = "The next message") -> str:
    """`total_tokens`: the conversation so far, the next message and the room kept for its reply."""
    over = total_tokens - n_ctx
    return (
        f"{subject} would overflow the model's context ({total_tokens:,} of {n_ctx:,} tokens"
        + (f", {over:,} too many" if over > 0 else "")
        + f"). The conversation so far takes {used_tokens:,}."
    )


class ContextOverflowScreen(ModalScreen[OverflowChoice]):
    """Dismisses with the `OverflowChoice` picked; Esc is `OverflowChoice.CANCEL`."""

    CSS_PATH = "../history_screens.tcss"
    """Loaded with the screen, so the app's first frame does not parse it."""

    BINDINGS = [
        Binding("t", "choose('truncate')", "Truncate", id="overflow.truncate"),
        Binding("n", "choose('new')", "New conversation", id="overflow.new"),
        Binding("s", "choose('send')", "Send anyway", id="overflow.send"),
        Binding("c,escape", "choose('cancel')", "Cancel", id="overflow.cancel"),
    ]

    def __init__(
        self,
        used_tokens: int,
        n_ctx: int,
        total_tokens: int,
        *,
        can_truncate: bool = True,
        resend: str = "",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.used_tokens = used_tokens
        self.n_ctx = n_ctx
        self.total_tokens = total_tokens
        self.can_truncate = can_truncate
        """False when every earlier turn is already left out (or there is none)."""
        self.resend = resend
        """What is sent again (an edited message, a reply written again) instead of a new message:
        a new conversation is no answer then, the turn is in this one."""

    def compose(self) -> ComposeResult:
        with Vertical(id="overflow-dialog", classes="history-dialog") as dialog:
            dialog.border_title = "Context full"
            yield Static(
                Content(
                    overflow_text(
                        self.used_tokens, self.n_ctx, self.total_tokens, self.resend or "The next message"
                    )
                ),
                id="overflow-question",
            )
            yield OptionList(
                *(
                    Option(
                        Content.assemble(
                            (f"{key}  ", "bold"),
                            (label, "bold"),
                            (f" — {self._detail(choice, detail)}", "$text-muted"),
                        ),
                        id=choice.value,
                        disabled=not self._offered(choice),
                    )
                    for choice, key, label, detail in _CHOICES
                ),
                id="overflow-choices",
            )
            yield Static("↑/↓ and Enter, or the letter · Esc cancels", classes="dialog-keys")

    def on_mount(self) -> None:
        choices = self.query_one("#overflow-choices", OptionList)
        # The harmless choice is the default: Enter pressed out of habit sends nothing.
        choices.highlighted = len(_CHOICES) - 1
        choices.focus()

    def _offered(self, choice: OverflowChoice) -> bool:
        if choice is OverflowChoice.NEW_CONVERSATION:
            return not self.resend
        return self.can_truncate or choice is not OverflowChoice.TRUNCATE

    def _detail(self, choice: OverflowChoice, detail: str) -> str:
        if self._offered(choice):
            return detail
        if choice is OverflowChoice.NEW_CONVERSATION:
            return "not for a turn of this one: Ctrl+N starts one"
        return "nothing earlier to leave out: the message and the room for its reply alone do not fit"

    def action_choose(self, value: str) -> None:
        if self._offered(OverflowChoice(value)):
            self.dismiss(OverflowChoice(value))

    @on(OptionList.OptionSelected, "#overflow-choices")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None and self._offered(OverflowChoice(event.option.id)):
            self.dismiss(OverflowChoice(event.option.id))
