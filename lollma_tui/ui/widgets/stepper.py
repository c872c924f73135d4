"""A one-line value stepper: Left/Right (or -/+) walk a scale, digits type a value in.

The scale decides what the steps are: GPU layers step one layer at a time between "auto" and
"all", the context steps through powers of two up to the model's training context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from lollma_tui.core.settings import AUTO, LoadSettings, SettingsError

StepValue = int | Literal["auto"]
"""What a stepper holds; the same shape as `GpuLayers`, plain ints for other scales."""

UNKNOWN_LAYER_LIMIT = 999
"""Highest layer count offered when the model's layer count is unknown (Ollama tags)."""


class StepScale(Protocol):
    def step(self, value: StepValue, delta: int) -> StepValue: ...

    def first(self) -> StepValue: ...

    def last(self) -> StepValue: ...

    def parse(self, text: str) -> StepValue:
        """Typed digits → value; raises `SettingsError` when out of range."""
        ...

    def label(self, value: StepValue) -> str: ...

    def fit(self, value: StepValue) -> StepValue:
        """`value` moved into this scale (a layer count beyond a smaller model's)."""
        ...


@dataclass(frozen=True, slots=True)
class LayerScale:
    """auto, 0, 1 … n_layers + 1 (the +1 is the output head), all (-1)."""

    n_layers: int | None = None
    """Repeating layers (block_count); None when unknown."""

    @property
    def top(self) -> int:
        return self.n_layers + 1 if self.n_layers is not None else UNKNOWN_LAYER_LIMIT

    def _ordinal(self, value: StepValue) -> int:
        if value == AUTO:
            return 0
        assert isinstance(value, int)
        return self.top + 2 if value < 0 else min(value, self.top) + 1

    def _value(self, ordinal: int) -> StepValue:
        if ordinal <= 0:
            return AUTO
        return -1 if ordinal >= self.top + 2 else ordinal - 1

    def step(self, value: StepValue, delta: int) -> StepValue:
        return self._value(self._ordinal(value) + delta)

    def first(self) -> StepValue:
        return AUTO

    def last(self) -> StepValue:
        return -1

    def parse(self, text: str) -> StepValue:
        count = int(text)
        if count > self.top:
            raise SettingsError(f"GPU layers must be between 0 and {self.top}, not {count}")
        return count

    def label(self, value: StepValue) -> str:
        if value == AUTO:
            return "auto"
        if isinstance(value, int) and value < 0:
            return "all"
        return f"{value}/{self.top}" if self.n_layers is not None else str(value)

    def fit(self, value: StepValue) -> StepValue:
        if isinstance(value, str) or value < 0:
            return value
        # `--ngl 99` is llama.cpp's way to say "all": shown as such for any model.
        return -1 if self.n_layers is not None and value > self.top else value


CONTEXT_FLOOR = 512
UNKNOWN_CONTEXT_LIMIT = 1 << 17


@dataclass(frozen=True, slots=True)
class ContextScale:
    """Powers of two from 512 up to the training context (which is a step too)."""

    n_ctx_train: int | None = None

    @property
    def steps(self) -> tuple[int, ...]:
        limit = self.n_ctx_train or UNKNOWN_CONTEXT_LIMIT
        steps = []
        size = CONTEXT_FLOOR
        while size < limit:
            steps.append(size)
            size *= 2
        steps.append(limit)
        return tuple(steps)

    def step(self, value: StepValue, delta: int) -> StepValue:
        assert isinstance(value, int)
        steps = self.steps
        if delta > 0:
            bigger = [s for s in steps if s > value]
            return bigger[min(delta, len(bigger)) - 1] if bigger else value
        smaller = [s for s in steps if s < value]
        return smaller[-min(-delta, len(smaller))] if smaller else value

    def first(self) -> StepValue:
        return self.steps[0]

    def last(self) -> StepValue:
        return self.steps[-1]

    def parse(self, text: str) -> StepValue:
        value = int(text)
        LoadSettings(n_ctx=value)
        return value

    def label(self, value: StepValue) -> str:
        if self.n_ctx_train and isinstance(value, int) and value > self.n_ctx_train:
            return f"{value} > {self.n_ctx_train}"
        return str(value)

    def fit(self, value: StepValue) -> StepValue:
        return value


class Stepper(Widget, can_focus=True):
    """Steps through `scale` with the arrow keys; typing digits enters a value directly."""

    BINDINGS = [
        Binding("left,minus", "step(-1)", "Less", show=False, id="stepper.less"),
        Binding("right,plus,equals_sign", "step(1)", "More", show=False, id="stepper.more"),
        Binding("home", "first", show=False, id="stepper.first"),
        Binding("end", "last", show=False, id="stepper.last"),
        Binding("backspace", "erase", show=False, id="stepper.erase"),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | left, - | One step down. |
    | right, + | One step up. |
    | home, end | The first and the last step. |
    | 0-9, backspace | Type a value. |
    """

    value: reactive[StepValue] = reactive[StepValue](0, init=False)
    scale: reactive[StepScale] = reactive[StepScale](LayerScale, init=False)
    typed: reactive[str] = reactive("", init=False)
    """Digits typed since the last step; shown instead of the value while not empty."""

    @dataclass
    class Changed(Message):
        """The value changed, or typed digits became invalid (`error`) or valid again."""

        stepper: Stepper
        value: StepValue
        error: str | None = None

        @property
        def control(self) -> Stepper:
            return self.stepper

    def __init__(
        self,
        value: StepValue,
        scale: StepScale,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.set_reactive(Stepper.scale, scale)
        self.set_reactive(Stepper.value, scale.fit(value))
        self.error: str | None = None
        self._before_typing: StepValue = self.value

    def render(self) -> str:
        shown = f"{self.typed}▏" if self.typed else self.scale.label(self.value)
        left = "◂" if self.value != self.scale.first() else " "
        right = "▸" if self.value != self.scale.last() else " "
        return f"{left} {shown} {right}"

    def watch_value(self) -> None:
        self.post_message(self.Changed(self, self.value))

    def watch_scale(self, scale: StepScale) -> None:
        self.value = scale.fit(self.value)
        self.refresh()

    def watch_typed(self) -> None:
        self.refresh()

    def _set_error(self, error: str | None) -> None:
        changed = error != self.error
        self.error = error
        self.set_class(error is not None, "-invalid")
        if changed:
            self.post_message(self.Changed(self, self.value, error))

    def action_step(self, delta: int) -> None:
        self.discard_typing()
        self.value = self.scale.step(self.value, delta)

    def action_first(self) -> None:
        self.discard_typing()
        self.value = self.scale.first()

    def action_last(self) -> None:
        self.discard_typing()
        self.value = self.scale.last()

    def action_erase(self) -> None:
        if self.typed:
            self._type(self.typed[:-1])

    def on_key(self, event: events.Key) -> None:
        if event.character is not None and event.character.isdigit() and event.character.isascii():
            event.stop()
            event.prevent_default()
            self._type(self.typed + event.character)

    def _type(self, text: str) -> None:
        if not self.typed:
            self._before_typing = self.value
        self.typed = text
        if not text:
            self._set_error(None)
            return
        try:
            value = self.scale.parse(text)
        except SettingsError as error:
            self._set_error(str(error))
            return
        self._set_error(None)
        self.value = value

    def discard_typing(self) -> None:
        """Drop digits that never made a valid value, and the value they passed through on the
        way: "9999999" staged 999999 (valid) once its error went. The value from before the
        typing comes back."""
        if self.typed and self.error is not None:
            self.value = self._before_typing
        self.typed = ""
        self._set_error(None)

    def on_blur(self) -> None:
        self.discard_typing()

    def on_click(self, event: events.Click) -> None:
        # The text is drawn from the left: ▸ is where it ends, not at the widget's right edge.
        right = len(self.render()) - 1
        if event.x <= 1:
            self.action_step(-1)
        elif right - 1 <= event.x <= right:
            self.action_step(1)
