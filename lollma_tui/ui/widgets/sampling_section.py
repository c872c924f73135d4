"""The sampling half of the settings drawer: every valid edit takes effect at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Static

from lollma_tui.core.settings import SamplingSettings, SettingsError
from lollma_tui.core.settings_table import Setting
from lollma_tui.ui.widgets.settings_form import SAMPLING_FIELDS
from lollma_tui.ui.widgets.settings_rows import FieldRow, text_row


class SamplingSection(Vertical):
    """Entries for temperature, top_p … stop; posts `Changed` for each new valid combination."""

    sampling: reactive[SamplingSettings] = reactive(SamplingSettings, init=False)
    """The sampling settings in effect; entries the user is not fixing follow it."""

    @dataclass
    class Changed(Message):
        section: SamplingSection
        sampling: SamplingSettings

        @property
        def control(self) -> SamplingSection:
            return self.section

    def __init__(
        self, sampling: SamplingSettings, *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.set_reactive(SamplingSection.sampling, sampling)
        self._errors: dict[str, str] = {}

    @property
    def errors(self) -> Mapping[str, str]:
        return dict(self._errors)

    def compose(self) -> ComposeResult:
        yield Static("Sampling · applies to the next reply", classes="drawer-section")
        for text_field in SAMPLING_FIELDS:
            yield text_row(text_field, getattr(self.sampling, text_field.name), classes="sampling-input")

    def watch_sampling(self, old: SamplingSettings, sampling: SamplingSettings) -> None:
        if self.is_mounted:
            for text_field in SAMPLING_FIELDS:
                name = text_field.name
                if name in self._errors and getattr(old, name) != getattr(sampling, name):
                    # A bad entry left in a field that a command has since set: what is in effect.
                    del self._errors[name]
                    self.query_one(f"#row-{name}", FieldRow).show_error(None)
                if name not in self._errors:
                    self._show(text_field, getattr(sampling, name))

    def reset(self) -> None:
        """Every entry shows the settings in effect again, mistakes included."""
        self._errors.clear()
        for text_field in SAMPLING_FIELDS:
            self._input(text_field).value = text_field.entry_text(getattr(self.sampling, text_field.name))
            self.query_one(f"#row-{text_field.name}", FieldRow).show_error(None)

    def _input(self, text_field: Setting) -> Input:
        return self.query_one(f"#{text_field.name}", Input)

    def _show(self, text_field: Setting, value: object) -> None:
        text_input = self._input(text_field)
        try:
            same = text_field.parse_entry(text_input.value) == value
        except SettingsError:
            same = False
        # An entry that already means this value stays as typed ("0.50" is not rewritten to "0.5").
        if not same:
            text_input.value = text_field.entry_text(value)

    @on(Input.Changed, ".sampling-input")
    def _typed(self, event: Input.Changed) -> None:
        # Not stopped: the drawer also follows the entries (its Reset button, for one).
        text_field = next(f for f in SAMPLING_FIELDS if f.name == event.input.id)
        row = self.query_one(f"#row-{text_field.name}", FieldRow)
        try:
            text_field.parse_entry(event.input.value)
        except SettingsError as error:
            self._errors[text_field.name] = str(error)
            row.show_error(str(error))
            return
        self._errors.pop(text_field.name, None)
        row.show_error(None)
        # Each field on its own: one still being fixed does not hold back the others.
        values = {
            f.name: f.parse_entry(self._input(f).value) for f in SAMPLING_FIELDS if f.name not in self._errors
        }
        sampling = replace(self.sampling, **values)
        if sampling != self.sampling:
            # Set quietly: the entries already show these values.
            self.set_reactive(SamplingSection.sampling, sampling)
            self.post_message(self.Changed(self, sampling))
