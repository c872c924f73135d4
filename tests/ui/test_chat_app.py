"""The chat pane driven with Pilot against the real demo model (Gemma 3 270M) in a real worker."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from pilot_support import wait_until
from terminal_output import screen_text
from textual.pilot import Pilot
from textual.widgets import Static

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.models.demo import GEMMA
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.widgets.chat_log import Notice, ReplyTurn, UserTurn

DEMO_SAMPLING = GEMMA.sampling

pytestmark = pytest.mark.slow


def make_app(model: Path, sampling: SamplingSettings = DEMO_SAMPLING, demo: bool = False) -> LollmaApp:
    return LollmaApp(
        StartupOptions(load=LoadSettings(model=str(model), n_ctx=2048), sampling=sampling, demo=demo)
    )


async def ready(pilot: Pilot[None], app: LollmaApp) -> None:
    main = app.chat_screen
    await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)


async def send(pilot: Pilot[None], text: str) -> None:
    await pilot.click("#prompt")
    await pilot.press(*text)
    await pilot.press("enter")


async def only_reply(pilot: Pilot[None], app: LollmaApp) -> ReplyTurn:
    """Wait until the conversation's one reply has ended, and return its turn."""
    main = app.chat_screen
    await wait_until(pilot, lambda: main.chat_log.reply_turns() != [] and not main.is_generating)
    (turn,) = main.chat_log.reply_turns()
    return turn


def notices(app: LollmaApp) -> list[str]:
    main = app.chat_screen
    return [str(n.render()) for n in main.chat_log.query(Notice)]


async def test_send_streams_a_reply_with_its_stats(demo_gguf: Path) -> None:
    app = make_app(demo_gguf, demo=True)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await send(pilot, "explain quantum entanglement")
        turn = main.chat_log.query_one(ReplyTurn)
        # Streaming: text shows up before the reply is finished.
        await wait_until(pilot, lambda: bool(turn.message.content))
        assert main.is_generating
        await wait_until(pilot, lambda: not main.is_generating)
        reply = turn.message
        assert reply.state in (ReplyState.COMPLETE, ReplyState.LENGTH)
        # The demo is a base model sampled without a seed: a reply in a script written without
        # spaces (seen: "で購入のページ") is as much a reply, so characters are counted, not words.
        assert len(reply.content.strip()) >= 10
        footer = str(turn.footer.render())
        assert "to first token" in footer and "tok/s" in footer
        assert reply.stats is not None and reply.stats.gen_tokens > 5
        assert reply.stats.setup.quant == "Q4_K_M"
        # The user turn and the conversation both hold the question.
        assert main.chat_log.query_one(UserTurn).message.content == "explain quantum entanglement"
        assert [m.role for m in main.conversation.messages] == ["user", "assistant"]
        # The demo's base-model warning was shown once.
        assert sum("base model" in n for n in notices(app)) == 1
        assert sum("no chat template" in n for n in notices(app)) == 1
        speed = str(main.model_card.query_one("#model-speed", Static).render())
        assert "tok/s" in speed


async def test_escape_stops_the_reply_and_keeps_the_partial_text(demo_gguf: Path) -> None:
    app = make_app(demo_gguf, sampling=DEMO_SAMPLING.with_changes(max_tokens=1500))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await send(pilot, "Write a long story about a lighthouse keeper.")
        turn = main.chat_log.query_one(ReplyTurn)
        await wait_until(pilot, lambda: len(turn.message.content) > 10)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not main.is_generating, within=5)
        reply = turn.message
        assert reply.state == ReplyState.STOPPED
        assert reply.content
        assert reply.stats is not None and reply.stats.gen_tokens < 1500
        assert "stopped" in str(turn.footer.render())
        # The partial reply stays in the conversation the model sees next.
        assert main.conversation.history()[-1].content == reply.content


async def test_a_reply_that_fills_the_context_says_so_not_the_token_limit(demo_gguf: Path) -> None:
    # No token limit and a small context (asked 64; llama.cpp rounds it up to 256): the model
    # writes until the context is full. The footer must name the context, since raising the token
    # limit would change nothing.
    app = LollmaApp(
        StartupOptions(
            load=LoadSettings(model=str(demo_gguf), n_ctx=64),
            sampling=DEMO_SAMPLING.with_changes(max_tokens=None, seed=7),
        )
    )
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        # Half of the small context is kept for the reply: it is sent without a question.
        await send(pilot, "The history of the old harbour town begins with")
        turn = await only_reply(pilot, app)
        reply = turn.message
        assert reply.state == ReplyState.LENGTH, reply.content
        assert reply.stats is not None and reply.stats.prompt_tokens is not None
        n_ctx = reply.stats.setup.n_ctx
        loaded = main.models.backend.status.loaded
        assert loaded is not None and n_ctx == loaded.n_ctx
        # The load line says the context differs from the one asked for.
        assert any(f"ctx {n_ctx} (asked 64)" in notice for notice in notices(app)), notices(app)
        assert reply.stats.prompt_tokens + reply.stats.gen_tokens == n_ctx
        footer = str(turn.footer.render())
        assert f"cut at the context limit ({n_ctx} tokens)" in footer
        assert "token limit" not in footer


async def test_a_reply_cut_by_the_token_limit_says_so(demo_gguf: Path) -> None:
    app = make_app(demo_gguf, sampling=DEMO_SAMPLING.with_changes(max_tokens=6))
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await send(pilot, "The history of the old harbour town begins with")
        turn = await only_reply(pilot, app)
        assert turn.message.state == ReplyState.LENGTH, turn.message.content
        footer = str(turn.footer.render())
        assert "cut at the token limit" in footer and "context" not in footer


async def test_regenerate_replaces_the_last_reply(demo_gguf: Path) -> None:
    app = make_app(demo_gguf, sampling=DEMO_SAMPLING.with_changes(max_tokens=20))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await send(pilot, "Name a colour.")
        await wait_until(pilot, lambda: main.chat_log.reply_turns() != [] and not main.is_generating)
        first = main.chat_log.query_one(ReplyTurn)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: main.chat_log.query_one(ReplyTurn) is not first)
        await wait_until(pilot, lambda: not main.is_generating)
        (second,) = main.chat_log.reply_turns()
        assert second.message.id != first.message.id
        assert second.message.content
        assert [m.role for m in main.conversation.messages] == ["user", "assistant"]
        assert main.conversation.messages[1] is second.message


async def test_worker_killed_mid_reply_keeps_the_chat_and_recovers(demo_gguf: Path) -> None:
    app = make_app(demo_gguf, sampling=DEMO_SAMPLING.with_changes(max_tokens=1500))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await send(pilot, "Tell me about rivers.")
        turn = main.chat_log.query_one(ReplyTurn)
        await wait_until(pilot, lambda: bool(turn.message.content))
        (pid,) = main.models.backend.process_ids()
        os.kill(pid, signal.SIGKILL)
        await wait_until(pilot, lambda: not main.is_generating, within=10)
        assert turn.message.state == ReplyState.ERROR
        assert "SIGKILL" in str(turn.footer.render())
        assert main.models.backend.status.state == BackendState.FAILED
        # Everything typed so far is still there, and the next message restarts the model.
        main.models.sampling = main.models.sampling.with_changes(max_tokens=12)
        await send(pilot, "Are you back?")
        await wait_until(pilot, lambda: len(main.chat_log.reply_turns()) == 2)
        second = main.chat_log.reply_turns()[1]
        await wait_until(pilot, lambda: second.message.state != ReplyState.STREAMING)
        assert second.message.state in (ReplyState.COMPLETE, ReplyState.LENGTH)
        assert [m.content for m in main.conversation.messages if m.role == "user"] == [
            "Tell me about rivers.",
            "Are you back?",
        ]
        assert main.models.backend.process_ids()[0] != pid


async def test_system_prompt_and_clear_commands(demo_gguf: Path) -> None:
    app = make_app(demo_gguf, sampling=DEMO_SAMPLING.with_changes(max_tokens=8))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await send(pilot, "/system You answer in French.")
        assert main.conversation.system_prompt == "You answer in French."
        await send(pilot, "Bonjour")
        await wait_until(pilot, lambda: main.chat_log.reply_turns() != [] and not main.is_generating)
        assert main.conversation.history()[0].role == "system"
        await wait_until(pilot, lambda: main.model_card.context is not None)
        sent = main.model_card.context.used  # type: ignore[union-attr]
        # A longer system prompt is counted at once: the meter kept the last reply's figure, and
        # the next message was not checked against what it would really send.
        main.prompt.set_text("/system " + "Answer in French, briefly, and kindly. " * 20)  # as pasted
        await pilot.press("enter")
        await wait_until(pilot, lambda: main.model_card.context.used > sent + 100)  # type: ignore[union-attr]
        longer = main.model_card.context.used  # type: ignore[union-attr]
        await send(pilot, "/system off")
        assert main.conversation.system_prompt == ""
        assert main.conversation.history()[0].role == "user"
        await wait_until(pilot, lambda: main.model_card.context.used < longer - 100)  # type: ignore[union-attr]
        await send(pilot, "/system You answer in French.")
        await send(pilot, "/clear")
        await pilot.pause()
        assert main.conversation.messages == []
        assert main.conversation.system_prompt == "You answer in French."
        assert "The system prompt stays (/system off drops it)" in notices(app)[-1]
        assert main.chat_log.reply_turns() == []
        await send(pilot, "/nonsense")
        assert any("unknown command" in n for n in notices(app))


async def test_a_corrupt_model_is_reported_and_the_app_keeps_running(tmp_path: Path, tiny_gguf: Path) -> None:
    corrupt = tmp_path / "broken.gguf"
    corrupt.write_bytes(tiny_gguf.read_bytes()[:100_000])
    app = make_app(corrupt)
    main = app.chat_screen
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: any("broken.gguf" in n for n in notices(app)))
        card = main.model_card.status
        assert card is not None and card.state == BackendState.FAILED and "broken.gguf" in card.message
        await send(pilot, "hello?")
        await wait_until(pilot, lambda: main.chat_log.reply_turns() != [] and not main.is_generating)
        turn = main.chat_log.query_one(ReplyTurn)
        assert turn.message.state == ReplyState.ERROR
        # The reply says why (it used to say only "No model is loaded").
        assert "no model is loaded · Not loading broken.gguf: " in str(turn.footer.render())
        assert main.conversation.messages[0].content == "hello?"


async def test_the_side_panel_makes_room_on_a_narrow_terminal_and_comes_back(tiny_gguf: Path) -> None:
    # At 50 columns the 30-column panel left the chat 20 to wrap a reply in.
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(60, 24)) as pilot:
        await ready(pilot, app)
        assert main.sidebar.display is False
        assert main.chat_log.region.width >= 58
        await wait_until(pilot, lambda: main.hardware is not None)
        assert main.hardware is not None and main.hardware.interval_s == 5.0, "folded: sampled slowly"
        await pilot.press("ctrl+b")  # asked for, it shows at any width
        await pilot.pause()
        assert main.sidebar.display is True
        assert main.hardware.interval_s == 1.0
        # ... and the drawer, opened and closed, leaves it shown (it folded it again).
        await pilot.press("f2")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert main.sidebar.display is True
        # Hiding it leaves the focus on the prompt (it stayed on a hidden widget, and what was
        # typed next went nowhere).
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert main.sidebar.display is False
        assert app.focused is main.prompt
        await pilot.press("ctrl+b")
        await pilot.pause()
        await pilot.press("ctrl+b")
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert main.sidebar.display is False, "hidden by the user, it stays hidden when the terminal widens"
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert main.sidebar.display is True
        await pilot.resize_terminal(60, 24)
        await pilot.pause()
        assert main.sidebar.display is False
        # The drawer hides the panel while open; closed on a wide screen, the panel is back.
        await pilot.press("f2")
        await pilot.pause()
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert main.sidebar.display is False
        await pilot.press("escape")
        await pilot.pause()
        assert main.sidebar.display is True
        assert main.sidebar.region.right == 100


async def test_the_footer_fits_its_keys_again_when_the_terminal_is_resized(tiny_gguf: Path) -> None:
    # Started wide and narrowed to 80, Help and Quit fell off and "^p palette" stayed; widened
    # again, the palette key never came back.
    app = make_app(tiny_gguf)
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot, app)
        assert "^p palette" in screen_text(app).splitlines()[-1]
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: "f1 Help" in screen_text(app).splitlines()[-1])
        footer = screen_text(app).splitlines()[-1]
        assert "^q Quit" in footer and "palette" not in footer, footer
        await pilot.resize_terminal(120, 35)
        await wait_until(pilot, lambda: "^p palette" in screen_text(app).splitlines()[-1])
        # Narrower still, the keys also in F1's help give way, and Help and Quit stay: at 60 the
        # footer ended at "^b P".
        for width in (70, 60, 50):
            await pilot.resize_terminal(width, 20)
            await wait_until(pilot, lambda: "f1 Help" in screen_text(app).splitlines()[-1])
            footer = screen_text(app).splitlines()[-1]
            assert "^q Quit" in footer and "esc Stop" in footer, (width, footer)
        assert "Regenerate" not in footer
        await pilot.resize_terminal(120, 35)
        await wait_until(pilot, lambda: "^r Regenerate" in screen_text(app).splitlines()[-1])


async def test_every_key_stays_in_the_footer_where_there_is_room_for_it(tiny_gguf: Path) -> None:
    # At 90 and 100 columns the footer showed "esc Stop ^q Quit f1 Help" and 60 empty columns:
    # the room between the last key and the palette's hint, docked right, was counted as a key's.
    keys = ("esc Stop", "^r Regenerate", "^n New chat", "f2 Settings", "^o Chats", "^b Panel", "f1 Help")
    app = make_app(tiny_gguf)
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot, app)
        for width in (100, 90, 104, 94, 80):
            await pilot.resize_terminal(width, 30)
            await pilot.pause(0.3)
            await wait_until(pilot, lambda: all(key in screen_text(app).splitlines()[-1] for key in keys))
            assert "^q Quit" in screen_text(app).splitlines()[-1]


async def test_everything_fits_and_works_by_keyboard_at_80x24(demo_gguf: Path) -> None:
    app = make_app(demo_gguf, sampling=DEMO_SAMPLING.with_changes(max_tokens=8))
    main = app.chat_screen
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        screen = app.chat_screen
        assert app.focused is screen.prompt
        for widget in (screen.chat_log, screen.prompt, screen.sidebar):
            region = widget.region
            assert region.width > 0 and region.height > 0
            assert region.right <= 80 and region.bottom <= 24
        assert screen.chat_log.region.width >= 40
        # Every key in the footer is on the screen's last row, Help and Quit included.
        footer = screen_text(app).splitlines()[-1]
        for key in ("esc Stop", "^r Regenerate", "f2 Settings", "^b Panel", "f1 Help", "^q Quit"):
            assert key in footer, footer
        await pilot.press(*"hi", "enter")
        await wait_until(pilot, lambda: main.chat_log.reply_turns() != [] and not main.is_generating)
        # The side panel folds away for a wider chat, and comes back.
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert screen.sidebar.display is False
        assert screen.chat_log.region.width >= 78
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert screen.sidebar.display is True
        # Help opens and closes without a mouse.
        await pilot.press("f1")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


async def test_off_the_demo_its_own_sampling_gives_way_to_the_defaults(
    demo_gguf: Path, tiny_gguf: Path, tmp_path: Path
) -> None:
    # The demo's 160-token limit and strong repeat penalty carried over to the user's own model,
    # and /keep then wrote them into config.toml for every later start.
    app = make_app(demo_gguf, demo=True)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await send(pilot, "/set temperature 0.3")  # the user's own choice stays
        await wait_until(pilot, lambda: main.models.sampling.temperature == 0.3)
        demo_sampling = main.models.sampling
        # The demo model in another file (another quantization, the same model): the one
        # setting changed is the file, not its sampling as well.
        other_quant = Path(shutil.copy(demo_gguf, tmp_path / "gemma-3-270m-copy.gguf"))
        await send(pilot, f"/model {other_quant}")
        await wait_until(
            pilot, lambda: main.models.loaded is not None and main.models.settings.model == str(other_quant)
        )
        assert main.models.sampling == demo_sampling
        assert not any("Sampling back at the defaults" in n for n in notices(app))
        await send(pilot, f"/model {tiny_gguf}")
        await wait_until(
            pilot, lambda: main.models.loaded is not None and main.models.loaded.name == "tiny-llama"
        )
        await wait_until(pilot, lambda: any("Sampling back at the defaults" in n for n in notices(app)))
        sampling = main.models.sampling
        assert sampling.temperature == 0.3
        defaults = SamplingSettings()
        assert (sampling.repeat_penalty, sampling.max_tokens, sampling.top_p) == (
            defaults.repeat_penalty,
            defaults.max_tokens,
            defaults.top_p,
        )
        (note,) = [n for n in notices(app) if "Sampling back" in n]
        assert "max_tokens unlimited" in note and "temperature" not in note


async def test_help_on_one_command_and_commands_that_take_no_argument(tiny_gguf: Path) -> None:
    # "/help model" opened the general help at its top; "/clear now" cleared; /stop said nothing.
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        for line in ("/help ctx", "/clear now", "/stop", "/help nosuch"):
            await pilot.press(*line, "enter")
            await pilot.pause()
        assert app.screen is main  # no help screen opened
        shown = notices(app)[-4:]
        assert shown[0].startswith("/ctx N — ")
        assert shown[1] == "✗ /clear takes no argument (usage: /clear)"
        assert shown[2] == "Nothing to stop: no reply is being written."
        assert shown[3].startswith("✗ unknown command /nosuch")
