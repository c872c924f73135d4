"""Building blocks of the settings drawer: a labelled field row, text entries, the fit line."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static

from lollma_tui.core.models.fit import FitVerdict
from lollma_tui.core.settings import SettingsError
from lollma_tui.core.settings_table import Setting
from lollma_tui.ui.literal import literal, literal_options, plain
from lollma_tui.ui.widgets.settings_form import FIT_LEVELS, fit_summary


class FieldValidator(Validator):
    """Runs a field's parser, so the Input gets its `-invalid` class and the error text."""

    def __init__(self, field: Setting) -> None:
        super().__init__()
        self.field = field

    def validate(self, value: str) -> ValidationResult:
        try:
            self.field.parse_entry(value)
        except SettingsError as error:
            return self.failure(str(error))
        return self.success()


class FieldRow(Vertical):
    """A label, its control and a reload mark on one line, and room for an error below.

    Classes set by the drawer: `-changed` (differs from the settings in effect), `-reload`
    (and that change reloads the model), `-invalid` (the entry cannot be used), `-read-only`
    (the backend does not let this app change it; the control is disabled).
    """

    def __init__(self, label: str, control: Widget, *, field: str, help: str = "") -> None:
        super().__init__(id=f"row-{field}", classes="field")
        self.label = label
        self.control = control
        self.help = help
        """What the setting means, shown by `FieldHelp` while the row has focus."""

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-line"):
            yield Label(self.label, classes="field-label")
            yield self.control
            yield Static("⟳", classes="reload-mark")
        yield Static("", classes="field-error", markup=False)

    def mark(self, *, changed: bool, reload: bool) -> None:
        """Differs from the settings in effect (•), and that change reloads the model (⟳): said by
        a mark, not by the label's colour alone (under NO_COLOR nothing showed a change)."""
        self.set_class(changed, "-changed")
        self.set_class(changed and reload, "-reload")
        self.query_one(".reload-mark", Static).update("⟳" if reload else "•")

    def show_error(self, error: str | None) -> None:
        self.set_class(error is not None, "-invalid")
        self.query_one(".field-error", Static).update(plain(error or ""))

    def show_read_only(self, reason: str | None) -> None:
        """Disable the control while the backend fixes this setting; `reason` is its tooltip."""
        self.set_class(reason is not None, "-read-only")
        self.control.disabled = reason is not None
        self.tooltip = literal(reason) if reason is not None else None


def text_row(text_field: Setting, value: Any, *, classes: str) -> FieldRow:
    """A row with a compact Input for `text_field`, showing `value`."""
    text_input = Input(
        text_field.entry_text(value),
        placeholder=text_field.placeholder(),
        validators=[FieldValidator(text_field)],
        id=text_field.name,
        classes=classes,
        compact=True,
        tooltip=text_field.help,
    )
    # A blinking cursor repaints forever; over SSH that is traffic for nothing.
    text_input.cursor_blink = False
    return FieldRow(text_field.row_label, text_input, field=text_field.name, help=text_field.help)


class FieldHelp(Static):
    """What the focused setting means, below the fields: a tooltip shows only under a mouse,
    and Tab reached every field without a word on what it does. Its height is fixed, so the
    fields above never move as focus does (a click would land on another one)."""

    def on_mount(self) -> None:
        self.watch(self.screen, "focused", self._focus_moved)

    def _focus_moved(self, focused: Widget | None) -> None:
        nodes = focused.ancestors_with_self if focused is not None else []
        row = next((node for node in nodes if isinstance(node, FieldRow)), None)
        self.update(plain(row.help if row is not None else ""))


def compact_select(options: list[tuple[str, Any]], value: Any, *, id: str) -> Select[Any]:
    return Select(literal_options(options), value=value, allow_blank=False, compact=True, id=id)


class FitLine(Vertical):
    """The fit estimator's verdict, coloured ok/warm/hot, and its notes below it."""

    verdict: reactive[FitVerdict | None] = reactive(None, init=False)
    """None hides the line (no checker, or nothing it can tell for this model) unless a note is set."""
    note: reactive[str | None] = reactive(None, init=False)
    """Why there is no verdict (e.g. the model runs on a server whose memory is out of sight)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="fit-verdict", markup=False)
        yield Static("", id="fit-notes", markup=False)

    def on_mount(self) -> None:
        self._show()

    def watch_verdict(self) -> None:
        self._show()

    def watch_note(self) -> None:
        self._show()

    def _show(self) -> None:
        verdict, note = self.verdict, self.note
        self.display = verdict is not None or note is not None
        if not self.children:
            return
        line = self.query_one("#fit-verdict", Static)
        notes = self.query_one("#fit-notes", Static)
        level = FIT_LEVELS[verdict.status] if verdict is not None else ""
        for name in FIT_LEVELS.values():
            line.set_class(name == level, f"-{name}")
        line.update(plain(fit_summary(verdict)) if verdict is not None else "")
        line.display = verdict is not None
        lines = verdict.notes if verdict is not None else (note,) if note else ()
        notes.display = bool(lines)
        notes.update(plain("\n".join(lines)))


class ApplyBar(Vertical):
    """What is pending, and the Apply and Reset buttons (their presses bubble to the drawer)."""

    STATES = ("-invalid", "-reload", "-changed")

    def compose(self) -> ComposeResult:
        yield FieldHelp(id="drawer-help", markup=False)
        yield Static("", id="drawer-pending", markup=False)
        with Horizontal(id="drawer-buttons"):
            yield Button("Apply", id="apply", variant="primary", compact=True)
            yield Button("Reset", id="reset", compact=True, tooltip="Discard pending changes")
            yield Button(
                "Quantize…", id="quantize", compact=True, tooltip="Make other quantizations of this model"
            )

    def show(self, text: str, state: str, *, reload: bool, can_apply: bool, can_reset: bool) -> None:
        """`state` is one of `STATES` (or ""); it colours the pending line."""
        pending = self.query_one("#drawer-pending", Static)
        pending.update(text)
        for name in self.STATES:
            pending.set_class(name == state, name)
        apply = self.query_one("#apply", Button)
        apply.label = "Apply (reload)" if reload else "Apply"
        if not can_apply and apply.has_focus:
            # A focused button that gets disabled drops focus out of the drawer altogether; the
            # entry before it (Stop) would take the next keys as stop strings, applied at once,
            # and Quantize… after it opened its dialog on the next Enter. The first field does neither.
            self.screen.query_one("#backend").focus()
        apply.disabled = not can_apply
        self.query_one("#reset", Button).disabled = not can_reset
