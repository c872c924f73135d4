"""The settings drawer in a small host app, driven with the keyboard at 80×24.

The catalog is scanned from real GGUF files (tiny-llama in F16 and Q8_0, tiny-wide in F16) and
the fit verdicts come from the real estimator, so what the drawer shows is what the app will.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from drawer_support import make_fit_checker
from textual.app import App, ComposeResult
from textual.color import Color
from textual.message import Message
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, Input, Select, Static, Switch

import lollma_tui.ui
from lollma_tui.core.models.catalog import Catalog
from lollma_tui.core.models.fit import FitParams, check_fit
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, SettingsError
from lollma_tui.ui.theming import choose_theme, register_themes, with_app_variables
from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer
from lollma_tui.ui.widgets.settings_form import fit_summary
from lollma_tui.ui.widgets.settings_rows import FieldRow, FitLine
from lollma_tui.ui.widgets.stepper import Stepper

UI_DIR = Path(lollma_tui.ui.__file__).parent
GiB = 1 << 30
SIZE = (80, 24)


class DrawerHost(App[None]):
    """A chat-sized placeholder with the drawer docked beside it, themed like the real app."""

    CSS_PATH = [UI_DIR / "app.tcss", UI_DIR / "settings_drawer.tcss"]

    def __init__(self, drawer: SettingsDrawer) -> None:
        super().__init__()
        self.drawer = drawer

    def get_css_variables(self) -> dict[str, str]:
        return with_app_variables(super().get_css_variables())

    def compose(self) -> ComposeResult:
        yield Static("chat", id="chat")
        yield self.drawer

    def on_mount(self) -> None:
        register_themes(self)
        choose_theme(self, "lollma-dark")


class Recorder:
    """Collects each drawer message once (the hook sees it again at every level it bubbles to)."""

    def __init__(self) -> None:
        self._seen: dict[int, Message] = {}

    def __call__(self, message: Message) -> None:
        if isinstance(
            message, SettingsDrawer.ApplyRequested | SettingsDrawer.SamplingChanged | SettingsDrawer.Closed
        ):
            self._seen.setdefault(id(message), message)

    def of(self, kind: type[Any]) -> list[Any]:
        return [m for m in self._seen.values() if isinstance(m, kind)]


def make_drawer(
    llama_catalog: Catalog,
    ollama_catalog: Catalog,
    model: str,
    *,
    free_vram: int | None = 8 * GiB,
    **load: Any,
) -> SettingsDrawer:
    return SettingsDrawer(
        LoadSettings(model=model, **load),
        SamplingSettings(),
        backends=(BackendKind.LLAMA_CPP, BackendKind.OLLAMA),
        catalogs={BackendKind.LLAMA_CPP: llama_catalog, BackendKind.OLLAMA: ollama_catalog},
        fit_checker=make_fit_checker(llama_catalog, free_vram, 16 * GiB),
        id="settings",
    )


def text_of(widget: Static) -> str:
    return str(widget.content)


def row(drawer: SettingsDrawer, name: str) -> FieldRow:
    return drawer.query_one(f"#row-{name}", FieldRow)


def marked(drawer: SettingsDrawer, state: str) -> set[str]:
    return {(r.id or "").removeprefix("row-") for r in drawer.query(FieldRow) if r.has_class(state)}


def focused_id(app: App[Any]) -> str | None:
    return app.focused.id if app.focused is not None else None


async def open_drawer(pilot: Pilot[Any], drawer: SettingsDrawer) -> None:
    drawer.open()
    await pilot.pause()
    assert drawer.display and drawer.region.width > 0


async def tab_to(pilot: Pilot[Any], control_id: str, key: str = "tab", limit: int = 40) -> None:
    for _ in range(limit):
        if focused_id(pilot.app) == control_id:
            return
        await pilot.press(key)
    raise AssertionError(f"#{control_id} not reached with {key}; focus is on {pilot.app.focused!r}")


async def type_into(pilot: Pilot[Any], control_id: str, text: str) -> None:
    """Tab to an entry, empty it and type `text`."""
    await tab_to(pilot, control_id)
    await pilot.press("home", "ctrl+k", *text)
    await pilot.pause()


def verdict_of(drawer: SettingsDrawer) -> Static:
    return drawer.query_one("#fit-verdict", Static)


def theme_color(app: App[Any], name: str) -> Color:
    return Color.parse(app.theme_variables[name])


async def test_keyboard_journey_steps_layers_switches_quant_and_applies_once(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str, q8_path: str, tight_vram: int
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path, free_vram=tight_vram)
    app = DrawerHost(drawer)
    recorder = Recorder()
    async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
        await open_drawer(pilot, drawer)
        assert focused_id(app) == "backend"
        await pilot.press("tab", "tab", "tab")
        assert focused_id(app) == "n_gpu_layers"

        verdict = verdict_of(drawer)
        header = llama_catalog.groups[0].variants[1].header
        assert header is not None

        def expected(layers: int) -> str:
            settings = LoadSettings(model=f16_path, n_gpu_layers=layers)
            return fit_summary(check_fit(header, FitParams.from_settings(settings), tight_vram, 16 * GiB))

        assert text_of(verdict) == expected(0) and verdict.has_class("-ok")
        await pilot.press("right")
        await pilot.pause()
        assert text_of(verdict) == expected(1) and verdict.has_class("-ok")
        await pilot.press("right")
        await pilot.pause()
        layers = drawer.query_one("#n_gpu_layers", Stepper)
        assert layers.value == 2 and "2/3" in str(layers.render())
        assert text_of(verdict) == expected(2) == "▲ fits with 1 of 3 layers on GPU"
        assert verdict.has_class("-warm") and not verdict.has_class("-ok")
        assert verdict.styles.color == theme_color(app, "metric-warm")

        await pilot.press("shift+tab")
        assert focused_id(app) == "quant"
        await pilot.press("enter", "up", "enter")
        await pilot.pause()
        assert drawer.draft_load.model == q8_path
        apply = drawer.query_one("#apply", Button)
        assert str(apply.label) == "Apply (reload)"
        assert recorder.of(SettingsDrawer.ApplyRequested) == []

        await tab_to(pilot, "apply")
        await pilot.press("enter")
        await pilot.pause()

    requests = recorder.of(SettingsDrawer.ApplyRequested)
    assert len(requests) == 1
    assert requests[0].load == LoadSettings(model=q8_path, n_gpu_layers=2)
    assert requests[0].reload_fields == ("model", "n_gpu_layers")
    assert requests[0].control is drawer
    assert recorder.of(SettingsDrawer.SamplingChanged) == []


async def test_a_second_enter_on_apply_does_not_request_twice(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    recorder = Recorder()
    async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
        await open_drawer(pilot, drawer)
        await tab_to(pilot, "use_mlock")
        await pilot.press("space")
        await tab_to(pilot, "apply")
        await pilot.press("enter")
        await pilot.pause()
        # Focus moved off the now-disabled button but stayed in the drawer, and not to an entry
        # that would take the next keys typed (Stop, just before it: applied at once).
        assert app.focused is not None and drawer in app.focused.ancestors
        assert not isinstance(app.focused, Input)
        assert app.focused.id == "backend"  # it was Quantize…: the next Enter opened its dialog
        drawer.action_apply()
        await pilot.pause()
        assert len(recorder.of(SettingsDrawer.ApplyRequested)) == 1
        # The swap failed and the app went idle: the same change may be applied again.
        drawer.busy = "loading…"
        drawer.busy = None
        await pilot.pause()
        assert not drawer.query_one("#apply", Button).disabled


async def test_sampling_edits_post_at_once_and_never_ask_for_apply(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    recorder = Recorder()
    async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
        await open_drawer(pilot, drawer)
        await type_into(pilot, "temperature", "0.3")
        posted = recorder.of(SettingsDrawer.SamplingChanged)
        assert posted, "no SamplingChanged after a valid temperature"
        assert posted[-1].sampling == SamplingSettings(temperature=0.3)
        assert posted[-1].control is drawer

        await type_into(pilot, "seed", "42")
        await type_into(pilot, "max_tokens", "256")
        await type_into(pilot, "stop", "User:, ###")
        assert recorder.of(SettingsDrawer.SamplingChanged)[-1].sampling == SamplingSettings(
            temperature=0.3, seed=42, max_tokens=256, stop=("User:", "###")
        )
        # Clearing the seed means a random seed again.
        await type_into(pilot, "seed", "")
        assert recorder.of(SettingsDrawer.SamplingChanged)[-1].sampling.seed is None
        # Any cleared entry means what its placeholder shows: the default (it was an error).
        await type_into(pilot, "temperature", "")
        assert drawer.errors == {}
        assert recorder.of(SettingsDrawer.SamplingChanged)[-1].sampling.temperature == 0.8
        await type_into(pilot, "n_batch", "")
        assert drawer.errors == {} and drawer.draft_load.n_batch == 512

        assert drawer.query_one("#apply", Button).disabled
        assert marked(drawer, "-reload") == set() and marked(drawer, "-changed") == set()
        assert text_of(drawer.query_one("#drawer-pending", Static)) == "no pending changes"
    assert recorder.of(SettingsDrawer.ApplyRequested) == []


async def test_an_invalid_value_shows_the_error_and_posts_nothing(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    recorder = Recorder()
    async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
        await open_drawer(pilot, drawer)
        await type_into(pilot, "temperature", "9")
        temperature = row(drawer, "temperature")
        error = temperature.query_one(".field-error", Static)
        with pytest.raises(SettingsError) as expected:
            SamplingSettings(temperature=9.0)
        assert text_of(error) == str(expected.value)
        assert temperature.has_class("-invalid") and error.display and error.region.height >= 1
        assert drawer.errors == {"temperature": text_of(error)}
        assert recorder.of(SettingsDrawer.SamplingChanged) == []

        # Not a number at all: a message of our own, still nothing posted.
        await pilot.press("backspace", "x")
        await pilot.pause()
        assert text_of(error) == "temperature must be a number, not 'x'"
        assert recorder.of(SettingsDrawer.SamplingChanged) == []

        # Another field meanwhile applies on its own: it was held back without a word ("no
        # pending changes") while this one had an error.
        await type_into(pilot, "top_k", "10")
        assert recorder.of(SettingsDrawer.SamplingChanged)[-1].sampling == SamplingSettings(top_k=10)

        await tab_to(pilot, "temperature", key="shift+tab")
        await pilot.press("end", "backspace", "1")
        await pilot.pause()
        assert not temperature.has_class("-invalid") and not error.display
        assert [m.sampling for m in recorder.of(SettingsDrawer.SamplingChanged)][-1] == SamplingSettings(
            temperature=1.0, top_k=10
        )


async def test_reload_marks_follow_the_changed_load_fields_only(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        assert marked(drawer, "-reload") == set()
        assert drawer.query_one("#apply", Button).disabled

        await tab_to(pilot, "n_ctx")
        await pilot.press("left")
        await tab_to(pilot, "flash_attn")
        await pilot.press("space")
        await type_into(pilot, "top_k", "20")
        await pilot.pause()
        assert drawer.draft_load == LoadSettings(model=f16_path, n_ctx=2048, flash_attn=True)
        assert marked(drawer, "-reload") == {"n_ctx", "flash_attn"}
        for name in ("n_ctx", "flash_attn"):
            mark = row(drawer, name).query_one(".reload-mark", Static)
            assert mark.visible and text_of(mark) == "⟳"
        assert not row(drawer, "n_gpu_layers").query_one(".reload-mark", Static).visible
        assert text_of(drawer.query_one("#drawer-pending", Static)) == "⟳ reload: context, flash attention"
        assert str(drawer.query_one("#apply", Button).label) == "Apply (reload)"

        # Stepping back to the value in effect takes the mark away again.
        await tab_to(pilot, "n_ctx", key="shift+tab")
        await pilot.press("right")
        await pilot.pause()
        assert marked(drawer, "-reload") == {"flash_attn"}


async def test_keep_alive_is_only_offered_for_ollama_and_needs_no_reload(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        keep_alive = row(drawer, "keep_alive")
        assert not keep_alive.display
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        assert drawer.draft_load.backend == BackendKind.OLLAMA
        assert drawer.draft_load.model == "llama3.2:3b-instruct-q4_K_M"
        assert keep_alive.display
        # Ollama models carry no GGUF header here: no verdict rather than a wrong one.
        assert not drawer.query_one(FitLine).display
        assert (
            text_of(drawer.query_one("#model", Select).query_one("#label", Static))
            == "llama3.2:3b-instruct 3.2B"
        )


async def test_keep_alive_alone_applies_without_a_reload(
    llama_catalog: Catalog, ollama_catalog: Catalog
) -> None:
    drawer = make_drawer(
        llama_catalog, ollama_catalog, "llama3.2:3b-instruct-q4_K_M", backend=BackendKind.OLLAMA
    )
    app = DrawerHost(drawer)
    recorder = Recorder()
    async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
        await open_drawer(pilot, drawer)
        assert row(drawer, "keep_alive").display
        await type_into(pilot, "keep_alive", "1h")
        assert marked(drawer, "-changed") == {"keep_alive"} and marked(drawer, "-reload") == set()
        # Marked by a sign, not only the label's colour (under NO_COLOR nothing showed it).
        mark = row(drawer, "keep_alive").query_one(".reload-mark", Static)
        assert mark.visible and text_of(mark) == "•"
        assert not row(drawer, "n_ctx").query_one(".reload-mark", Static).visible
        apply = drawer.query_one("#apply", Button)
        assert str(apply.label) == "Apply" and not apply.disabled
        await type_into(pilot, "keep_alive", "soon")
        assert row(drawer, "keep_alive").has_class("-invalid") and apply.disabled
        await type_into(pilot, "keep_alive", "-1")
        await tab_to(pilot, "apply")
        await pilot.press("enter")
        await pilot.pause()
    [request] = recorder.of(SettingsDrawer.ApplyRequested)
    assert request.load.keep_alive == "-1" and request.reload_fields == ()


async def test_a_setting_the_backend_ignores_is_kept_in_the_draft_but_nothing_to_apply(
    llama_catalog: Catalog, ollama_catalog: Catalog
) -> None:
    from lollma_tui.core.session import reload_needed
    from lollma_tui.core.session.reload import read_only_fields

    drawer = make_drawer(
        llama_catalog, ollama_catalog, "llama3.2:3b-instruct-q4_K_M", backend=BackendKind.OLLAMA
    )
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        drawer.configure(fit_checker=None, reload_fields=reload_needed, read_only=read_only_fields)
        await open_drawer(pilot, drawer)
        backend = drawer.query_one("#backend", Select)
        backend.value = BackendKind.LLAMA_CPP
        await pilot.pause()
        drawer.query_one("#flash_attn", Switch).value = True
        await pilot.pause()
        backend.value = BackendKind.OLLAMA
        await pilot.pause()
        # Flash attention is Ollama's server setting: it was "applies without reload", Apply on.
        assert drawer.draft_load.flash_attn and drawer.draft_load.backend is BackendKind.OLLAMA
        assert "flash_attn" not in marked(drawer, "-changed")
        assert text_of(drawer.query_one("#drawer-pending", Static)) == "no pending changes"
        assert drawer.query_one("#apply", Button).disabled


async def test_a_bad_keep_alive_hidden_by_a_switch_to_llama_cpp_does_not_hold_apply_back(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    # Only Reset, which drops every edit, used to get Apply back.
    from lollma_tui.core.session import reload_needed
    from lollma_tui.core.session.reload import read_only_fields

    drawer = make_drawer(
        llama_catalog, ollama_catalog, "llama3.2:3b-instruct-q4_K_M", backend=BackendKind.OLLAMA
    )
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        # As the app has it: keep_alive is nothing llama.cpp applies.
        drawer.configure(fit_checker=None, reload_fields=reload_needed, read_only=read_only_fields)
        await open_drawer(pilot, drawer)
        await type_into(pilot, "keep_alive", "10 min")
        apply = drawer.query_one("#apply", Button)
        assert apply.disabled
        await tab_to(pilot, "backend", key="shift+tab")
        await pilot.press("enter", "up", "enter")
        await pilot.pause()
        assert drawer.draft_load.backend == BackendKind.LLAMA_CPP
        assert not row(drawer, "keep_alive").display
        assert not apply.disabled
        assert "keep_alive" not in text_of(drawer.query_one("#drawer-pending", Static))


async def test_busy_shows_progress_and_disables_apply(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    recorder = Recorder()
    async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
        await open_drawer(pilot, drawer)
        busy_line = drawer.query_one("#drawer-busy", Static)
        assert not busy_line.display
        await tab_to(pilot, "n_gpu_layers")
        await pilot.press("right")
        await pilot.pause()
        apply = drawer.query_one("#apply", Button)
        assert not apply.disabled

        drawer.busy = "loading tiny-llama Q8_0…"
        await pilot.pause()
        assert apply.disabled and busy_line.display
        assert text_of(busy_line) == "⟳ loading tiny-llama Q8_0…"
        drawer.action_apply()
        await pilot.pause()
        assert recorder.of(SettingsDrawer.ApplyRequested) == []

        drawer.busy = None
        await pilot.pause()
        assert not apply.disabled and not busy_line.display


async def test_every_control_can_be_reached_and_is_fully_visible_at_80x24(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    expected = [
        "backend",
        "model",
        "quant",
        "n_gpu_layers",
        "n_ctx",
        "n_threads",
        "n_batch",
        "flash_attn",
        "kv_cache_type",
        "repack",
        "use_mmap",
        "use_mlock",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repeat_penalty",
        "seed",
        "max_tokens",
        "stop",
        "apply",
        "reset",
        "quantize",
    ]
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        # One pending change, so that Apply and Reset can take focus too.
        await tab_to(pilot, "use_mlock")
        await pilot.press("space")
        await tab_to(pilot, "backend", key="shift+tab")
        body = drawer.query_one("#drawer-body")
        assert body.max_scroll_y > 0, "at 80×24 the drawer should have to scroll"

        for key, order in (("tab", expected), ("shift+tab", [*reversed(expected[1:]), expected[0]])):
            visited: list[str] = []
            for _ in range(len(expected)):
                await pilot.press(key)
                await pilot.pause()
                control = app.focused
                assert isinstance(control, Widget) and drawer in control.ancestors
                visited.append(control.id or "")
                visible = (
                    body.scrollable_content_region if body in control.ancestors else drawer.content_region
                )
                assert visible.contains_region(control.region), f"#{control.id} is cut off"
                line = control.parent
                assert isinstance(line, Widget)
                label = line.query(".field-label")
                if label:
                    assert visible.contains_region(label.first().region), f"label of #{control.id} is cut off"
                # Exactly the focused control's row is lit, none left over from earlier stops.
                lit = {
                    r.id for r in drawer.query(FieldRow) if r.query_one(".field-label").styles.text_style.bold
                }
                assert lit == ({f"row-{control.id}"} if label else set()), f"lit rows {lit} at #{control.id}"
            if key == "tab":
                assert visited == [*expected[1:], expected[0]]
            else:
                assert visited == order


async def test_reset_discards_every_pending_edit(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str, q8_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    recorder = Recorder()
    async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
        await open_drawer(pilot, drawer)
        await tab_to(pilot, "quant")
        await pilot.press("enter", "up", "enter")
        await tab_to(pilot, "n_gpu_layers")
        await pilot.press("end")
        await type_into(pilot, "n_batch", "0")
        await type_into(pilot, "top_p", "2")
        assert drawer.draft_load.model == q8_path and drawer.draft_load.n_gpu_layers == -1
        assert set(drawer.errors) == {"n_batch", "top_p"}

        await tab_to(pilot, "reset")
        await pilot.press("enter")
        await pilot.pause()
        assert drawer.draft_load == drawer.applied_load
        assert drawer.errors == {}
        assert marked(drawer, "-changed") == set() and marked(drawer, "-invalid") == set()
        assert drawer.query_one("#n_batch", Input).value == "512"
        assert drawer.query_one("#top_p", Input).value == "0.95"
        assert drawer.query_one("#quant", Select).value == 1
        assert drawer.query_one("#n_gpu_layers", Stepper).value == 0
    assert recorder.of(SettingsDrawer.SamplingChanged) == []


async def test_new_applied_settings_keep_the_users_pending_edits(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str, q8_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        await tab_to(pilot, "n_ctx")
        await pilot.press("left")
        await pilot.pause()
        # Meanwhile the app loaded the Q8_0 file with 3 layers (say, from a /quant command).
        drawer.applied_load = LoadSettings(model=q8_path, n_gpu_layers=3)
        await pilot.pause()
        assert drawer.draft_load == LoadSettings(model=q8_path, n_gpu_layers=3, n_ctx=2048)
        assert drawer.query_one("#quant", Select).value == 0
        assert drawer.query_one("#n_gpu_layers", Stepper).value == 3
        assert marked(drawer, "-reload") == {"n_ctx"}

        drawer.applied_sampling = SamplingSettings(temperature=0.2)
        await pilot.pause()
        assert drawer.query_one("#temperature", Input).value == "0.2"


async def test_another_model_brings_its_own_layer_and_context_range(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path, n_gpu_layers=-1)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        layers = drawer.query_one("#n_gpu_layers", Stepper)
        context = drawer.query_one("#n_ctx", Stepper)
        await tab_to(pilot, "model")
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        wide = llama_catalog.groups[1].variants[0]
        assert drawer.draft_load.model == wide.ref
        assert marked(drawer, "-reload") == {"model", "quant"}
        await tab_to(pilot, "n_gpu_layers")
        await pilot.press("left")
        await pilot.pause()
        assert layers.value == 5 and "5/5" in str(layers.render())
        await tab_to(pilot, "n_ctx")
        await pilot.press("end")
        await pilot.pause()
        assert context.value == 16384


async def test_a_layer_count_above_the_model_s_is_shown_as_all_and_left_as_it_was(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    # `--ngl 99`, llama.cpp's "everything": opening the drawer rewrote it to this model's 3,
    # showed that as a change, and a deeper model chosen next got 3 layers on the GPU.
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path, n_gpu_layers=99)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        layers = drawer.query_one("#n_gpu_layers", Stepper)
        assert "all" in str(layers.render())
        assert drawer.draft_load.n_gpu_layers == 99
        assert marked(drawer, "-reload") == set()
        assert drawer.query_one("#apply", Button).disabled
        await tab_to(pilot, "model")
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        assert drawer.draft_load.n_gpu_layers == 99
        assert "all" in str(layers.render())


async def test_typing_a_layer_count(llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        await tab_to(pilot, "n_gpu_layers")
        layers = drawer.query_one("#n_gpu_layers", Stepper)
        await pilot.press("3")
        await pilot.pause()
        assert layers.value == 3 and drawer.draft_load.n_gpu_layers == 3
        await pilot.press("tab", "shift+tab")  # typed, left, and back
        await pilot.press("2", "5")
        await pilot.pause()
        error = row(drawer, "n_gpu_layers").query_one(".field-error", Static)
        assert text_of(error) == "GPU layers must be between 0 and 3, not 25"
        assert drawer.query_one("#apply", Button).disabled
        await pilot.press("tab")
        await pilot.pause()
        # The "2" on the way to 25 was staged once the error went; the 3 from before stays.
        assert not error.display and drawer.errors == {}
        assert layers.value == 3 and drawer.draft_load.n_gpu_layers == 3
        assert not drawer.query_one("#apply", Button).disabled


async def test_clicking_the_arrows_steps_the_value(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    # The text is drawn from the left of a wide field: a click on the ▸ one sees did nothing,
    # while one on the empty right edge stepped.
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path, n_ctx=1024)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        context = drawer.query_one("#n_ctx", Stepper)
        text = str(context.render())
        assert context.content_size.width > len(text) + 4
        await pilot.click(context, offset=(text.index("▸"), 0))
        await pilot.pause()
        assert drawer.draft_load.n_ctx == 2048
        await pilot.click(context, offset=(context.content_size.width - 1, 0))
        await pilot.pause()
        assert drawer.draft_load.n_ctx == 2048  # blank: nothing there to click
        await pilot.click(context, offset=(0, 0))
        await pilot.pause()
        assert drawer.draft_load.n_ctx == 1024


async def test_escape_closes_and_says_so(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    recorder = Recorder()
    async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
        assert not drawer.display
        await open_drawer(pilot, drawer)
        await tab_to(pilot, "top_k")
        await pilot.press("escape")
        await pilot.pause()
        assert not drawer.is_open and not drawer.display
    [closed] = recorder.of(SettingsDrawer.Closed)
    assert closed.control is drawer


def test_drawer_snapshot(
    snap_compare: Callable[..., bool],
    llama_catalog: Catalog,
    ollama_catalog: Catalog,
    f16_path: str,
    tight_vram: int,
) -> None:
    """GPU layers stepped to 2 of 3 (a warm verdict), Q8_0 picked, both marked for reload."""
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path, free_vram=tight_vram)

    async def edit(pilot: Pilot[None]) -> None:
        await open_drawer(pilot, drawer)
        await pilot.press("tab", "tab", "enter", "up", "enter", "tab", "right", "right")
        await pilot.pause()

    assert snap_compare(DrawerHost(drawer), terminal_size=SIZE, run_before=edit)


async def test_a_model_outside_the_catalog_is_still_shown_and_kept(
    llama_catalog: Catalog, ollama_catalog: Catalog, q8_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, "/elsewhere/mystery-Q5_K_M.gguf", n_gpu_layers=7)
    app = DrawerHost(drawer)
    recorder = Recorder()
    async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
        await open_drawer(pilot, drawer)
        model = drawer.query_one("#model", Select)
        assert model.value == 2
        assert text_of(model.query_one("#label", Static)) == "mystery-Q5_K_M.gguf (not scanned)"
        # Nothing is known about its layers: the count stays as it is, without a range.
        layers = drawer.query_one("#n_gpu_layers", Stepper)
        assert layers.value == 7 and "7" in str(layers.render()) and "/" not in str(layers.render())
        assert not drawer.query_one(FitLine).display
        assert drawer.query_one("#apply", Button).disabled
        await tab_to(pilot, "model")
        await pilot.press("enter", "home", "enter")
        await pilot.pause()
        # No Q5_K_M of tiny-llama: its first (smallest) file is picked.
        assert drawer.draft_load.model == q8_path
        # tiny-llama has 2 layers (3 with the output head): 7 is more than it has, so all of
        # them, as llama.cpp reads it; the count is left as the user gave it.
        assert drawer.draft_load.n_gpu_layers == 7
        assert "all" in str(layers.render())
        assert marked(drawer, "-reload") == {"model", "quant"}


async def test_reset_also_drops_digits_typed_into_a_stepper(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path, n_ctx=2048)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        await tab_to(pilot, "n_ctx")
        await pilot.press("4")
        await pilot.pause()
        context = drawer.query_one("#n_ctx", Stepper)
        assert context.has_class("-invalid") and "n_ctx" in drawer.errors
        assert context.value == 2048
        drawer.reset()
        await pilot.pause()
        assert not context.has_class("-invalid") and drawer.errors == {}
        assert context.typed == "" and "2048" in str(context.render())
        assert not row(drawer, "n_ctx").has_class("-invalid")


def option_labels(select: Select[Any]) -> list[str]:
    return [str(label) for label, _ in select._options]


@pytest.mark.parametrize("gguf_found", [True, False])
async def test_switching_backend_does_not_offer_the_other_backends_model(
    llama_catalog: Catalog, ollama_catalog: Catalog, gguf_found: bool
) -> None:
    llama = llama_catalog if gguf_found else Catalog()
    drawer = make_drawer(llama, ollama_catalog, "llama3.2:3b-instruct-q4_K_M", backend=BackendKind.OLLAMA)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        drawer.query_one("#backend", Select).value = BackendKind.LLAMA_CPP
        await pilot.pause()
        model = drawer.query_one("#model", Select)
        # An Ollama tag is no GGUF file: llama.cpp's list must not hold it.
        assert not any("llama3.2" in label for label in option_labels(model)), option_labels(model)
        if gguf_found:
            assert drawer.draft_load.model in {v.ref for group in llama.groups for v in group.variants}
            assert not drawer.query_one("#apply", Button).disabled
        else:
            assert drawer.draft_load.model == ""
            assert text_of(drawer.query_one("#drawer-pending", Static)) == "choose a model"
            assert drawer.query_one("#apply", Button).disabled
        # Back to Ollama: the model in effect there, and no GGUF path in its list.
        drawer.query_one("#backend", Select).value = BackendKind.OLLAMA
        await pilot.pause()
        assert drawer.draft_load.model == "llama3.2:3b-instruct-q4_K_M"
        assert not any(".gguf" in label for label in option_labels(model)), option_labels(model)


async def test_the_focused_field_says_what_it_means_below_the_fields(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str
) -> None:
    # What a setting does was only a mouse tooltip on three text rows: moving through the
    # drawer with Tab, nothing said what "Repack" or "min_p" means.
    drawer = make_drawer(llama_catalog, ollama_catalog, f16_path)
    app = DrawerHost(drawer)
    async with app.run_test(size=SIZE) as pilot:
        await open_drawer(pilot, drawer)
        help_line = drawer.query_one("#drawer-help", Static)
        body = drawer.query_one("#drawer-body")
        seen: dict[str, str] = {}
        await tab_to(pilot, "backend")
        while (focused := focused_id(app)) not in seen:
            assert focused is not None
            seen[focused] = text_of(help_line)
            # Shown whole, at the narrowest drawer, below the fields and clear of them.
            lines = help_line.render_lines(help_line.region.reset_offset)
            assert " ".join(" ".join(strip.text.split()) for strip in lines).strip() == seen[focused]
            assert not help_line.region.overlaps(body.region)
            await pilot.press("tab")
            await pilot.pause()
        fields = {name for name in seen if drawer.query(f"#row-{name}")}
        assert len(fields) >= 20 and all(seen[name] for name in fields), seen
        # A button is no setting: no help is shown for it, nor left from the field before.
        assert "quantize" in seen and not any(seen[name] for name in set(seen) - fields)
        assert seen["backend"].startswith("the inference backend")
        assert seen["quant"].startswith("which quantization")
        assert seen["n_ctx"].startswith("context size in tokens")
        assert "repacked weights" in seen["repack"]
        assert "less likely than this share" in seen["min_p"]
        assert seen["stop"].startswith("strings that end a reply")
