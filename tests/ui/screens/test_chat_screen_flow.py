"""Messages between the chat screen and its controllers: what each reports reaches the widgets
that show it. Real llama.cpp on tiny models, the real hardware sampler, the real store."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from hw_fakes import GiB, make_snapshot
from pilot_support import opened_drawer, wait_until
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Static

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.chat.commands import COMMANDS
from lollma_tui.core.chat.opening import default_store_path
from lollma_tui.core.chat.store import ChatStore
from lollma_tui.core.models.demo import DEMOS, demo_model_path, demo_model_ready
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.messages import (
    BackendStatusChanged,
    ChoicesRefreshed,
    ContextMeasured,
    HardwareSampled,
    NoticePosted,
    SwapFinished,
    SwapProgressed,
)
from lollma_tui.ui.screens.chat import ChatScreen
from lollma_tui.ui.screens.chat_commands import ChatCommands
from lollma_tui.ui.widgets.chat_log import Notice, ReplyTurn
from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer

SHORT = SamplingSettings(temperature=0.0, repeat_penalty=1.0, max_tokens=8)


def make_app(model: Path, **options: object) -> LollmaApp:
    load = LoadSettings(model=str(model), n_ctx=1024)
    return LollmaApp(StartupOptions(load=load, sampling=SHORT, **options))  # type: ignore[arg-type]


def notices(screen: ChatScreen) -> list[tuple[str, set[str]]]:
    return [(str(n.render()), set(n.classes)) for n in screen.chat_log.query(Notice)]


async def loaded(pilot: Pilot[None], screen: ChatScreen) -> None:
    models = screen.models
    await wait_until(pilot, lambda: models.backend.status.state == BackendState.READY and models.ready)


def of_type(seen: list[Message], kind: type[Message]) -> list[Message]:
    """Each message once: the hook sees a message again at every node it bubbles through."""
    return list({id(m): m for m in seen if isinstance(m, kind)}.values())


async def test_a_swap_result_updates_the_card_and_the_drawer(quant_folder: Path) -> None:
    seen: list[Message] = []
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    screen = app.chat_screen
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        await loaded(pilot, screen)
        [first] = of_type(seen, SwapFinished)
        assert first.first and first.result.ok  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: screen.catalog.gguf is not None)
        drawer = await opened_drawer(pilot, screen)
        target = drawer.applied_load.with_changes(model=str(quant_folder / "tiny-llama-Q8_0.gguf"))
        drawer.post_message(SettingsDrawer.ApplyRequested(drawer, target, ("model",)))
        await wait_until(pilot, lambda: len(of_type(seen, SwapFinished)) == 2, within=60)
        await loaded(pilot, screen)
        await pilot.pause()
        # The controller reported each phase, then the result; the screen handed it down.
        assert of_type(seen, SwapProgressed)
        assert drawer.busy is None
        assert drawer.applied_load.model.endswith("tiny-llama-Q8_0.gguf")
        card = str(screen.model_card.query_one("#model-lines", Static).render())
        assert "Q8_0" in card
        assert screen.model_card.status is not None and screen.model_card.status.state == BackendState.READY
        assert any("Q8_0" in text and "loaded in" in text for text, _ in notices(screen))


async def test_a_failed_first_load_marks_the_card(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    app = make_app(broken)
    screen = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(
            pilot,
            lambda: (
                screen.model_card.status is not None and screen.model_card.status.state == BackendState.FAILED
            ),
        )
        assert screen.model_card.status is not None and "broken.gguf" in screen.model_card.status.message
        assert any("-error" in classes for _, classes in notices(screen))


async def test_a_screen_worker_that_fails_is_said_in_the_chat(tiny_gguf: Path) -> None:
    # The screen's workers do not end the app when they fail; before, that was all: nobody said.
    app = make_app(tiny_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await loaded(pilot, screen)

        async def fails() -> None:
            raise NotADirectoryError(20, "Not a directory", "/home/me/.local/state/lollma-tui")

        screen.run_worker(fails(), name="open_history", group="history-open", exit_on_error=False)
        await wait_until(pilot, lambda: any("open_history failed" in text for text, _ in notices(screen)))
        text, classes = next((t, c) for t, c in notices(screen) if "open_history failed" in t)
        assert "NotADirectoryError" in text and "/home/me/.local/state/lollma-tui" in text
        assert "-error" in classes


async def test_a_notice_that_comes_after_the_chat_log_has_gone_is_dropped(tiny_gguf: Path) -> None:
    # Quitting mid-swap closes the model under the swap; its failure came to a chat log being
    # removed: "MountError: Can't mount widget(s) before ChatLog is mounted", and exit status 1.
    app = make_app(tiny_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await loaded(pilot, screen)
        app.exit()  # quitting: the chat log is on its way out from here on
        await screen.chat_log.add_notice("Could not load q8_0: Lost the connection to Ollama", "error")


async def test_a_reply_reaches_the_card_the_meter_and_the_panel(tiny_gguf: Path) -> None:
    seen: list[Message] = []
    app = make_app(tiny_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        await loaded(pilot, screen)
        await pilot.press(*"hello", "enter")
        await wait_until(pilot, lambda: bool(screen.chat_log.reply_turns()) and not screen.is_generating)
        await pilot.pause()
        reply = screen.chat_log.query_one(ReplyTurn).message
        assert reply.stats is not None
        assert screen.model_card.last_stats is reply.stats
        assert "tok/s" in str(screen.model_card.query_one("#model-speed", Static).render())
        # The card's last lines do not run into the hardware panel's title.
        assert screen.hardware_panel.region.y > screen.model_card.region.bottom
        # The context meter measured the conversation once the reply ended.
        measured = [m for m in of_type(seen, ContextMeasured) if m.check is not None]  # type: ignore[attr-defined]
        assert measured and screen.model_card.context == measured[-1].check  # type: ignore[attr-defined]
        assert screen.model_card.context is not None and screen.model_card.context.used > 0
        # The live rate is shown while a reply streams and cleared when it ends.
        assert screen.hardware_panel.live_rate is None


async def test_hardware_samples_reach_the_panel(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf, hardware_interval_s=0.25)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        # The real sampler, through the feed: the panel shows its newest snapshot.
        await wait_until(pilot, lambda: screen.hardware is not None and screen.hardware.latest is not None)
        feed = screen.hardware
        assert feed is not None
        await wait_until(pilot, lambda: screen.hardware_panel.snapshot is not None)
        assert screen.hardware_panel.history is feed.history
        # A sample posted to the screen is what the panel shows, with our worker's footprint.
        feed.stop()
        await loaded(pilot, screen)
        snapshot = make_snapshot(ram_used=7 * GiB)
        screen.post_message(HardwareSampled(snapshot, feed.history, stale=True))
        await wait_until(pilot, lambda: screen.hardware_panel.snapshot is snapshot)
        assert screen.hardware_panel.stale
        footprint = screen.hardware_panel.model_footprint
        assert footprint is not None
        assert set(footprint.labels) == set(screen.models.backend.process_ids())


async def test_backend_status_and_notices_from_controllers(tiny_gguf: Path) -> None:
    seen: list[Message] = []
    app = make_app(tiny_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(100, 32), message_hook=seen.append) as pilot:
        await loaded(pilot, screen)
        statuses = [m.status.state for m in of_type(seen, BackendStatusChanged)]  # type: ignore[attr-defined]
        assert BackendState.LOADING in statuses and statuses[-1] == BackendState.READY
        # A controller's notice: the history recorder refuses an import without a path.
        await pilot.press(*"/import", "enter")
        await wait_until(pilot, lambda: any("Usage: /import PATH" in text for text, _ in notices(screen)))
        assert [m.text for m in of_type(seen, NoticePosted)][-1].startswith("Usage: /import")  # type: ignore[attr-defined]


async def test_choices_reach_completion_and_the_drawer(quant_folder: Path) -> None:
    seen: list[Message] = []
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    screen = app.chat_screen
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        await wait_until(pilot, lambda: bool(of_type(seen, ChoicesRefreshed)))
        completion = screen.prompt.completion_context
        assert completion is not None and {"F16", "Q8_0"} <= set(completion.quants)
        drawer = await opened_drawer(pilot, screen)
        [catalog] = drawer.catalogs.values()
        files = {variant.ref for group in catalog.groups for variant in group.variants}
        # The models folder's files, and the bundled demo models that are ready to load.
        demos = {str(demo_model_path(demo)) for demo in DEMOS.values() if demo_model_ready(demo)}
        assert files - demos == {
            str(quant_folder / "tiny-llama-F16.gguf"),
            str(quant_folder / "tiny-llama-Q8_0.gguf"),
        }
        assert demos <= files


async def test_escape_closes_the_drawer_wherever_the_focus_is_when_nothing_streams(tiny_gguf: Path) -> None:
    # The user opened the drawer, then clicked the prompt (or the chat log) and pressed Esc.
    app = make_app(tiny_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, screen)
        drawer = await opened_drawer(pilot, screen)
        screen.prompt.focus()
        await pilot.pause()
        assert not drawer.has_focus_within
        await pilot.press(*"/stop", "enter")  # the command stops replies only
        await pilot.pause()
        assert drawer.is_open
        await pilot.press("escape")
        await wait_until(pilot, lambda: not drawer.is_open)
        assert screen.prompt.has_focus and not screen.is_generating
        await pilot.press("f2")  # and F2 opens it again, rather than closing a drawer left open
        assert drawer.is_open


async def test_config_problems_and_the_model_note_are_shown_when_the_app_starts(tiny_gguf: Path) -> None:
    problems = ("config.toml: settings.n_ctx: n_ctx must be between 64 and 4194304, not 10",)
    took = "tiny: took Q8_0 (also: F16)"  # --model tiny, of two quantizations
    app = make_app(tiny_gguf, config_problems=problems, model_note=took)
    screen = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: any("settings.n_ctx" in text for text, _ in notices(screen)))
        [(text, classes)] = [(t, c) for t, c in notices(screen) if "settings.n_ctx" in t]
        assert text == f"! {problems[0]}" and "-warning" in classes  # said by a mark, not only a colour
        await wait_until(pilot, lambda: any(text == took for text, _ in notices(screen)))
        await loaded(pilot, screen)  # the app still starts and loads the model


def test_every_command_has_its_handler() -> None:
    for spec in COMMANDS:
        assert callable(getattr(ChatCommands, spec.handler_name, None)), spec.name
    handlers = {name for name in vars(ChatCommands) if name.startswith("command_")}
    assert handlers == {spec.handler_name for spec in COMMANDS}


def writing_app(slow_gguf: Path) -> LollmaApp:
    """Replies that go on until stopped; room for two turns, so no context warning comes between."""
    endless = SamplingSettings(temperature=0.0, repeat_penalty=1.0, max_tokens=2000)
    load = LoadSettings(model=str(slow_gguf), n_ctx=8192, n_threads=1)
    return LollmaApp(StartupOptions(load=load, sampling=endless))


async def start_writing(pilot: Pilot[None], screen: ChatScreen, text: str) -> None:
    await pilot.press(*text, "enter")
    await wait_until(pilot, lambda: screen.is_generating)


async def stop_reply(pilot: Pilot[None], screen: ChatScreen) -> None:
    await pilot.press("escape")
    await wait_until(pilot, lambda: not screen.is_generating)


async def test_enter_while_a_reply_is_written_keeps_the_message_in_the_prompt(slow_gguf: Path) -> None:
    app = writing_app(slow_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, screen)
        await start_writing(pilot, screen, "first")
        await pilot.press(*"second", "enter", *" too")
        await pilot.pause()
        assert screen.prompt.text == "second too"  # not sent, and not lost
        assert [m.content for m in screen.conversation.messages if m.role == "user"] == ["first"]
        await stop_reply(pilot, screen)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.is_generating)
        assert [m.content for m in screen.conversation.messages if m.role == "user"] == [
            "first",
            "second too",
        ]
        await stop_reply(pilot, screen)


async def test_a_reply_written_again_ends_the_edit_and_what_was_typed_is_a_new_message(
    slow_gguf: Path,
) -> None:
    # Ctrl+R while editing once kept the edit: the message sent next replaced the question and
    # the reply just written again. It ends the edit now, and says so.
    app = writing_app(slow_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, screen)
        await start_writing(pilot, screen, "first")
        await stop_reply(pilot, screen)
        await pilot.press(*"/edit", "enter")
        await wait_until(pilot, lambda: screen.prompt.text == "first")
        await pilot.press("ctrl+r")  # a new version of the reply is written meanwhile
        await wait_until(pilot, lambda: screen.is_generating)
        assert screen.editing is None
        assert any("Edit dropped" in n.message for n in app._notifications)
        await pilot.press(*" again", "enter")
        await pilot.pause()
        assert screen.prompt.text == "first again"  # put back: a reply is still being written
        await stop_reply(pilot, screen)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.is_generating)
        assert [m.content for m in screen.conversation.messages if m.role == "user"] == [
            "first",
            "first again",
        ]
        await stop_reply(pilot, screen)


async def test_a_reply_is_saved_with_the_sampling_it_was_asked_with(slow_gguf: Path) -> None:
    app = writing_app(slow_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, screen)
        await start_writing(pilot, screen, "first")
        await pilot.press(*"/set temperature 0.9", "enter")  # for the next reply
        await wait_until(pilot, lambda: screen.models.sampling.temperature == 0.9)
        await stop_reply(pilot, screen)
        reply = screen.conversation.messages[-1]
    with ChatStore.open(default_store_path()) as store:
        loaded_back = store.load(store.latest_conversation_id() or "")
    assert loaded_back.meta[reply.id].sampling is not None
    assert loaded_back.meta[reply.id].sampling.temperature == 0.0


LATER_MODULES = (
    "psutil",
    "lollma_tui.core.hardware",
    "lollma_tui.core.hardware.sampler",
    "lollma_tui.core.backends.openai_extras",
    "lollma_tui.ui.widgets.hardware_panel",
    "lollma_tui.ui.widgets.model_card",
    "lollma_tui.ui.widgets.server_info",
    "lollma_tui.ui.widgets.settings_drawer",
    # The parts that talk to models, the store and servers, and what they report.
    "lollma_tui.core.backends.base",
    "lollma_tui.core.chat.conversation",
    "lollma_tui.core.chat.commands",
    "lollma_tui.ui.messages",
    "lollma_tui.ui.controllers.model_session",
    "lollma_tui.ui.controllers.model_catalog",
    "lollma_tui.ui.controllers.history_recorder",
    "lollma_tui.ui.controllers.context_meter",
    "lollma_tui.ui.screens.chat_commands",
    "lollma_tui.ui.screens.chat_hosts",
    "lollma_tui.ui.screens.chat_replies",
    "lollma_tui.ui.screens.chat_palette",
)
"""Behind the side panel, the drawer and the chat screen's controllers: none of them is needed
to draw the empty chat and its prompt."""


def test_the_first_frame_imports_nothing_behind_the_side_panel_or_the_controllers() -> None:
    # What `lollma-tui` imports before it runs the app, in a fresh interpreter.
    code = (
        "import sys, lollma_tui.cli, lollma_tui.core.config_file, lollma_tui.ui.app\n"
        f"print(sorted(m for m in {LATER_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


async def test_the_side_panel_is_filled_once_the_first_frame_is_up(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    screen = app.chat_screen
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, screen)
        assert [w.id for w in screen.sidebar.children] == ["model-card", "server-info", "hardware-panel"]
        # The panel brought its own stylesheet (it is not in the app's CSS_PATH): its rules apply.
        panel = screen.hardware_panel
        assert str(panel.styles.height) == "auto"
        assert panel.query_one("#hw-title", Static).styles.text_style.bold
        # Samples reach it: the feed started after the panel was there.
        await wait_until(pilot, lambda: panel.snapshot is not None)


async def test_the_collector_paused_for_the_start_resumes_once_the_first_frame_is_up(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    gc.disable()  # as `lollma-tui` starts the app
    try:
        async with app.run_test() as pilot:
            await loaded(pilot, app.chat_screen)
            assert gc.isenabled()
            # What the start-up made is frozen: later full collections do not scan it again.
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()
