"""A yes/no question in a dialog, answered from the keyboard."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from lollma_tui.ui.literal import literal


class ConfirmScreen(ModalScreen[bool]):
    """Asks `question`; dismisses with True for yes, False for no.

    "No" has the focus at first, so a reflexive Enter never confirms a destructive action.
    """

    CSS_PATH = "../history_screens.tcss"
    """Loaded with the screen, so the app's first frame does not parse it."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
        Binding("left,right", "switch", "Other button", show=False, id="confirm.switch"),
    ]

    def __init__(
        self,
        question: str,
        yes_label: str = "Yes",
        no_label: str = "No",
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.question = question
        self.yes_label = yes_label
        self.no_label = no_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="history-dialog"):
            # A question quotes titles and paths: shown literally, "[all]" is not markup.
            yield Static(literal(self.question), id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(literal(self.yes_label, one_line=True), variant="error", id="confirm-yes")
                yield Button(literal(self.no_label, one_line=True), id="confirm-no")
            yield Static("y yes · n or Esc no · ←/→ and Enter", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def action_switch(self) -> None:
        yes = self.query_one("#confirm-yes", Button)
        no = self.query_one("#confirm-no", Button)
        (no if yes.has_focus else yes).focus()

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def _no(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(False)
