"""The app on the Ollama backend: the real `ollama` client over real HTTP to the test server."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from chat_app_support import notices, send
from ollama_server import TINYLLAMA_Q4, OllamaTestServer
from ollama_server.engines import Script
from pilot_support import ollama_app, opened_drawer, wait_until
from textual.pilot import Pilot
from textual.widgets import Button, Collapsible, Select, Static

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.chat.opening import default_store_path
from lollma_tui.core.models.demo import DEMOS, demo_model_path
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.confirm import ConfirmScreen
from lollma_tui.ui.widgets.chat_log import PullView
from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer


async def test_chat_through_ollama_with_stats_from_the_final_chunk(ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(Script(text="Entanglement links two particles.", tokens_per_second=200))
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        turn = await send(pilot, app, "explain quantum entanglement")
        assert turn.message.content == "Entanglement links two particles."
        assert turn.message.state == ReplyState.COMPLETE
        stats = turn.message.stats
        assert stats is not None and stats.gen_tokens == ollama_server.generations[-1].eval_count
        assert stats.setup.backend == BackendKind.OLLAMA and stats.setup.quant == "Q4_K_M"
        footer = str(turn.footer.render())
        assert "tok/s" in footer and "to first token" in footer
        assert any("Connected to Ollama" in n for n in notices(app))
        # The card says where Ollama put the model (its /api/ps), not what a llama.cpp build can do.
        card = str(app.chat_screen.query_one("#model-lines").render())
        assert "ollama · 100% CPU" in card and "build" not in card


async def ready(pilot: Pilot[None], app: LollmaApp) -> None:
    """Wait until the model is ready; a wait that runs out says what the backend and chat said."""
    main = app.chat_screen
    await wait_until(
        pilot, lambda: main.models.backend.status.state == BackendState.READY, explain=status_of(app)
    )


def runs_on(app: LollmaApp, kind: BackendKind) -> Callable[[], bool]:
    """Whether the chat has a model loaded on `kind` now."""

    def check() -> bool:
        loaded = app.chat_screen.models.backend.status.loaded
        return loaded is not None and loaded.settings.backend == kind

    return check


def status_of(app: LollmaApp) -> Callable[[], str]:
    """What the backend and the chat said, for a wait that ran out."""
    return lambda: f"{app.chat_screen.models.backend.status!r}; notices: {notices(app)}"


async def test_thinking_is_shown_folded_above_the_answer(ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(Script(text="Four.", thinking="Two plus two is four."))
    app = ollama_app(ollama_server.host, model="qwen3:0.6b")
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        turn = await send(pilot, app, "2+2?")
        assert turn.message.content == "Four."
        folded = turn.query_one(Collapsible)
        assert folded.collapsed
        assert turn.thinking == "Two plus two is four."
        # The thinking text is not part of what the model is sent back next turn.
        assert main.conversation.history()[-1].content == "Four."
    # Kept with the reply: the next start resumes the chat with the thinking folded as it was.
    again = ollama_app(ollama_server.host, model="qwen3:0.6b")
    async with again.run_test(size=(100, 32)) as pilot:
        log = again.chat_screen.chat_log
        # The section's text is mounted inside it a moment after the section itself.
        await wait_until(pilot, lambda: len(log.query(".thinking-text")) == 1)
        (resumed,) = log.reply_turns()
        assert resumed.message.content == "Four." and resumed.query_one(Collapsible).collapsed
        assert str(resumed.query_one(".thinking-text", Static).render()) == "Two plus two is four."
        assert "Two plus two" not in str(again.chat_screen.conversation.history())


async def test_the_context_meter_leaves_out_thinking_that_is_not_sent_back(
    ollama_server: OllamaTestServer,
) -> None:
    # The last reply's token count, thinking and all, was taken for what the context holds: a
    # long thought read as a full context, and "Context full" opened with nothing to leave out.
    ollama_server.queue_reply(Script(text="Four.", thinking=" ".join(["hmm"] * 300)))
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OLLAMA, model="qwen3:0.6b", n_ctx=2048),
        sampling=SamplingSettings(max_tokens=1024),
        ollama_host=ollama_server.host,
    )
    app = LollmaApp(options)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        turn = await send(pilot, app, "2+2?")
        assert turn.message.stats is not None and turn.message.stats.gen_tokens >= 300
        await wait_until(pilot, lambda: main.model_card.context is not None)
        await pilot.pause(0.3)
        check = main.model_card.context
        assert check is not None and check.used < 100, check


async def test_an_empty_think_block_shows_no_thinking_section(ollama_server: OllamaTestServer) -> None:
    # Qwen3 asked not to think, and some R1 distills, write "<think>\n\n</think>": a "thinking"
    # fold was shown that opened on blank lines, live and again when the chat was resumed.
    ollama_server.queue_reply(Script(text="Hello.", thinking="\n\n"))
    app = ollama_app(ollama_server.host, model="qwen3:0.6b")
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        turn = await send(pilot, app, "hi /no_think")
        assert turn.message.content == "Hello."
        assert not turn.query(Collapsible)
    again = ollama_app(ollama_server.host, model="qwen3:0.6b")
    async with again.run_test(size=(100, 32)) as pilot:
        log = again.chat_screen.chat_log
        await wait_until(pilot, lambda: len(log.reply_turns()) == 1)
        await pilot.pause()
        assert not log.reply_turns()[0].query(Collapsible)


async def test_a_model_that_thinks_shows_that_it_works_and_its_pace(ollama_server: OllamaTestServer) -> None:
    # A reasoning model may think for minutes: the reply showed only its folded "thinking"
    # heading, no "Esc stops" line and no live tokens/s until the answer began, and every
    # thinking token laid the chat out again for text folded out of sight.
    thought = " ".join(f"t{i}" for i in range(60))
    ollama_server.queue_reply(Script(text="Four.", thinking=thought, tokens_per_second=40))
    app = ollama_app(ollama_server.host, model="qwen3:0.6b")
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await pilot.press(*"2+2?", "enter")
        await wait_until(pilot, lambda: bool(main.chat_log.reply_turns()) and main.is_generating)
        turn = main.chat_log.reply_turns()[-1]
        view = lambda: str(turn.query_one(".thinking-text", Static).render())  # noqa: E731
        await wait_until(pilot, lambda: len(turn.query(".thinking-text")) == 1)
        footer = lambda: str(turn.footer.render())  # noqa: E731
        await wait_until(pilot, lambda: "thinking… Esc stops" in footer(), explain=footer)
        panel = main.hardware_panel
        await wait_until(pilot, lambda: panel.live_rate is not None and not turn.message.content)
        # Folded, the section is not redrawn as thoughts come.
        folded_text = view()
        await wait_until(pilot, lambda: len(turn.message.thinking) > len(folded_text) + 40)
        assert view() == folded_text
        # Opened, it shows all that was thought so far, and follows.
        turn.query_one(Collapsible).collapsed = False
        await wait_until(pilot, lambda: view() == turn.message.thinking.strip() or not main.is_generating)
        await wait_until(pilot, lambda: not main.is_generating, within=15)
        assert turn.message.thinking == thought, repr(turn.message.thinking[-30:])
        assert view() == thought and turn.message.content == "Four."


async def test_thinking_reaches_the_history_file_while_the_model_still_thinks(
    ollama_server: OllamaTestServer,
) -> None:
    # Minutes of thinking before the first word are not lost to an ssh session that drops.
    ollama_server.queue_reply(Script(text="Four.", thinking="hmm " * 60, tokens_per_second=20))
    app = ollama_app(ollama_server.host, model="qwen3:0.6b")
    main = app.chat_screen

    def on_disk() -> tuple[str, str, str]:
        with closing(sqlite3.connect(default_store_path())) as conn:
            rows = conn.execute("SELECT thinking, content, state FROM messages WHERE role = 'assistant'")
            [row] = rows.fetchall()
        return row

    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await pilot.press(*"2+2?", "enter")
        await wait_until(pilot, lambda: on_disk()[0] != "", explain=on_disk)
        thinking, content, state = on_disk()
        assert main.is_generating and content == "" and state == ReplyState.STREAMING.value
        assert thinking.startswith("hmm hmm") and len(thinking) < len("hmm " * 60)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not main.is_generating)
        (turn,) = main.chat_log.reply_turns()
        assert on_disk() == (turn.message.thinking, "", ReplyState.STOPPED.value)
        # No answer came: /continue has nothing to go on from, and says what helps instead.
        asked = len(ollama_server.generations)
        await pilot.press(*"/continue", "enter")
        await wait_until(pilot, lambda: any("no text to continue; Ctrl+R" in n for n in notices(app)))
        assert len(ollama_server.generations) == asked and not main.is_generating


async def test_server_down_at_start_then_up_connects_and_chats(dead_ollama_host: str) -> None:
    app = ollama_app(dead_ollama_host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: any("not reachable" in n for n in notices(app)))
        assert "Retrying" in (main.model_card.status.message if main.model_card.status else "")
        # A message sent meanwhile says why it got no reply (it used to say only "No Ollama
        # model is loaded."), and how to send it again.
        unsent = await send(pilot, app, "hello?")
        assert unsent.message.state == ReplyState.ERROR
        footer = str(unsent.footer.render())
        assert "no model is loaded" in footer and "not reachable" in footer and "Ctrl+R" in footer
        port = int(dead_ollama_host.rsplit(":", 1)[1])
        with OllamaTestServer(port=port) as server:
            server.queue_reply("I am here now.")
            await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY, within=30)
            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: main.conversation.messages[-1].content == "I am here now.")
            assert [m.content for m in main.conversation.history()] == ["hello?", "I am here now."]


async def test_another_server_on_the_ollama_port_is_not_called_unreachable() -> None:
    # llama-server (or a proxy, a web page) on that port answers 404: "Ollama is not reachable
    # — is `ollama serve` running?" sent the user to check a server that was running.
    from openai_server import OpenAITestServer

    with OpenAITestServer() as other:
        app = ollama_app(f"127.0.0.1:{other.port}")
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_until(pilot, lambda: any("/api/version" in n for n in notices(app)))
            said = next(n for n in notices(app) if "/api/version" in n)
            assert f"127.0.0.1:{other.port} answered 404 to /api/version — is it an Ollama server?" in said
            assert "not reachable" not in said


async def test_a_server_with_many_models_and_none_chosen_names_a_few(ollama_server: OllamaTestServer) -> None:
    # Fifty models' names filled the chat (18 lines), where other lists stop at a few.
    for n in range(12):
        ollama_server.install(replace(TINYLLAMA_Q4, name=f"extra-{n:02d}:1b", weights_digest=f"{n:064x}"))
    app = ollama_app(ollama_server.host, model="")
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: any("Models on this server" in n for n in notices(app)))
        said = next(n for n in notices(app) if "Models on this server" in n)
    names = sorted(ollama_server.installed_names())
    assert said.startswith(f"Models on this server: {', '.join(names[:8])} (+{len(names) - 8} more;")


async def test_a_setting_changed_while_the_server_is_down_is_the_one_loaded(dead_ollama_host: str) -> None:
    app = ollama_app(dead_ollama_host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: any("not reachable" in n for n in notices(app)))
        await pilot.press(*"/batch 128", "enter")
        await wait_until(pilot, lambda: main.models.settings.n_batch == 128 and not main.models.loading)
        port = int(dead_ollama_host.rsplit(":", 1)[1])
        with OllamaTestServer(port=port) as server:
            await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY, within=30)
            # The first load used the settings copied before the wait, undoing /batch unsaid.
            assert [load.requested.get("num_batch") for load in server.loads] == [128]
            assert main.models.settings.n_batch == 128


async def test_after_a_change_and_the_way_back_both_failed_the_same_model_asked_again_loads(
    dead_ollama_host: str,
) -> None:
    # The server went away for a moment during a reload: "/model SAME", "/ctx SAME" and
    # "/backend ollama" all answered "no change", and no message found a model again.
    port = int(dead_ollama_host.rsplit(":", 1)[1])
    server = OllamaTestServer(port=port).start()
    app = ollama_app(server.host)
    main = app.chat_screen
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            await ready(pilot, app)
            server.stop()
            await pilot.press(*"/ctx 1024", "enter")
            await wait_until(pilot, lambda: any("could not be reloaded either" in n for n in notices(app)))
            assert main.models.loaded is None
            server = OllamaTestServer(port=port).start()
            model = main.models.settings.model
            await pilot.press(*f"/model {model}", "enter")
            await wait_until(pilot, lambda: f"Nothing is loaded: loading {model} again." in notices(app))
            await ready(pilot, app)
            assert main.models.loaded is not None and main.models.loaded.settings.model == model
            server.queue_reply("Back.")
            reply = await send(pilot, app, "still there?")
            assert reply.message.content == "Back."
    finally:
        server.stop()


async def test_errors_mid_stream_and_on_load_keep_the_chat(ollama_server: OllamaTestServer) -> None:
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        ollama_server.fail_stream("CUDA error: out of memory", after=2)
        failed = await send(pilot, app, "first question")
        assert failed.message.state == ReplyState.ERROR
        assert "out of memory" in str(failed.footer.render())
        ollama_server.clear_faults()
        ollama_server.queue_reply("Recovered.")
        ok = await send(pilot, app, "second question")
        assert ok.message.content == "Recovered."
        users = [m.content for m in main.conversation.messages if m.role == "user"]
        assert users == ["first question", "second question"]
        # The failed reply's fragments are not sent back to the model, and the question it did
        # not answer goes with the next one, so the roles still alternate.
        assert [(m.role, m.content) for m in main.conversation.history()] == [
            ("user", "first question\n\nsecond question"),
            ("assistant", "Recovered."),
        ]


async def test_unknown_model_says_how_to_get_it(ollama_server: OllamaTestServer) -> None:
    app = ollama_app(ollama_server.host, model="llama9:70b")
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: any("llama9:70b" in n for n in notices(app)))
        message = next(n for n in notices(app) if "llama9:70b" in n)
        assert "no model" in message and "/pull llama9:70b downloads it" in message


async def test_pull_shows_progress_and_the_model_becomes_available(ollama_server: OllamaTestServer) -> None:
    ollama_server.delay_pull_steps(0.05)
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await main.commands.run("/pull smollm2:135m")
        view = await _pull_view(pilot, app)
        await wait_until(pilot, lambda: (view.bar.total or 0) > 0)
        await wait_until(pilot, lambda: str(view.status.render()) == "pulled smollm2:135m")
        assert "smollm2:135m" in ollama_server.installed_names()
        # Tab offers it at once (it did only after the next model swap).
        await wait_until(pilot, lambda: "smollm2:135m" in main.prompt.completion_context.models)
        await main.commands.run("/pull no-such-model:1b")
        await wait_until(pilot, lambda: "failed" in str(main.chat_log.query(PullView).last().status.render()))


async def test_esc_stops_a_pull_and_a_pull_outlives_the_chat_it_was_shown_in(
    ollama_server: OllamaTestServer,
) -> None:
    # Esc and /stop did nothing to a pull; Ctrl+N took its view away, and how it ended was
    # never said.
    ollama_server.delay_pull_steps(0.3)
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await main.commands.run("/pull smollm2:135m")
        view = await _pull_view(pilot, app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: "stopped" in str(view.status.render()))
        assert "smollm2:135m" not in ollama_server.installed_names()
        ollama_server.delay_pull_steps(0.1)
        await main.commands.run("/pull smollm2:135m")
        await wait_until(pilot, lambda: len(main.chat_log.query(PullView)) == 2)
        await pilot.press("ctrl+n")
        await wait_until(
            pilot, lambda: any(str(n.message) == "pulled smollm2:135m" for n in app._notifications)
        )
        assert "smollm2:135m" in ollama_server.installed_names()


async def _pull_view(pilot: Pilot[None], app: LollmaApp) -> PullView:
    main = app.chat_screen
    await wait_until(pilot, lambda: bool(main.chat_log.query(PullView)))
    return main.chat_log.query_one(PullView)


async def test_backend_command_moves_an_ollama_chat_to_a_found_gguf_by_part_of_its_name(
    ollama_server: OllamaTestServer,
) -> None:
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        await pilot.press(*"/backend llama.cpp", "enter")
        await wait_until(pilot, lambda: "which model with llama.cpp" in notices(app)[-1])
        assert "found: " in notices(app)[-1] and "Smollm2" in notices(app)[-1]
        await pilot.press(*"/backend llama.cpp smol", "enter")
        await wait_until(
            pilot,
            runs_on(app, BackendKind.LLAMA_CPP),
            within=60,
            explain=status_of(app),
        )
        # The settings follow when the swap's end is handled, a moment after the load (longer
        # where llama.cpp's repacked path crashes and the load is made again without it).
        demo = str(demo_model_path(DEMOS["smollm2"]))
        await wait_until(pilot, lambda: main.models.settings.model == demo, explain=status_of(app))


async def test_the_drawer_moves_an_ollama_chat_to_a_bundled_demo_model_on_llama_cpp(
    ollama_server: OllamaTestServer,
) -> None:
    # Comparing backends is the point of the app: a chat started on Ollama finds the bundled
    # demo models in llama.cpp's list (not the Ollama tag) and carries on there.
    ollama_server.queue_reply(Script(text="Paris.", tokens_per_second=200))
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await send(pilot, app, "Capital of France?")
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        drawer = await opened_drawer(pilot, main)
        drawer.query_one("#backend", Select).value = BackendKind.LLAMA_CPP
        await pilot.pause()
        demos = {str(demo_model_path(demo)) for demo in DEMOS.values()}
        assert drawer.draft_load.model in demos, drawer.draft_load.model
        assert await pilot.click("#apply")
        await wait_until(
            pilot,
            lambda: (
                runs_on(app, BackendKind.LLAMA_CPP)()
                and main.models.backend.status.state == BackendState.READY
            ),
            within=60,
            explain=status_of(app),
        )
        await pilot.press("escape")
        main.models.sampling = main.models.sampling.with_changes(max_tokens=8)
        main.prompt.focus()
        turn = await send(pilot, app, "And of Italy?")
        assert turn.message.stats is not None
        assert turn.message.stats.setup.backend == BackendKind.LLAMA_CPP
        assert turn.message.content
        # The chat came along: the model saw the earlier turn.
        assert [m.content for m in main.conversation.history()[:2]] == ["Capital of France?", "Paris."]


async def test_choosing_a_backend_again_in_the_drawer_drafts_the_model_last_used_there(
    ollama_server: OllamaTestServer,
) -> None:
    # Back to Ollama from llama.cpp, the drawer drafted the first tag the server lists (a much
    # bigger model, on a real server), where /backend ollama loads the one last used.
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        used = main.models.settings.model
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        await pilot.press(*"/backend llama.cpp smollm", "enter")
        await wait_until(pilot, runs_on(app, BackendKind.LLAMA_CPP), within=60, explain=status_of(app))
        await wait_until(pilot, lambda: main.models.ready, within=60)
        drawer = await opened_drawer(pilot, main)
        drawer.query_one("#backend", Select).value = BackendKind.OLLAMA
        await pilot.pause()
        assert drawer.draft_load.model == used


async def test_the_drawer_lists_a_model_pulled_since_the_app_asked(ollama_server: OllamaTestServer) -> None:
    # `ollama pull` in another terminal: F2's model list (and Tab) lacked it until a swap.
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await wait_until(pilot, lambda: BackendKind.OLLAMA in main.catalog.catalogs)
        ollama_server.install(replace(TINYLLAMA_Q4, name="freshly-pulled:1b", weights_digest="f" * 64))
        drawer = await opened_drawer(pilot, main)

        def listed() -> set[str]:
            catalog = drawer.catalogs.get(BackendKind.OLLAMA)
            return {tag for g in catalog.groups for v in g.variants for tag in v.tags} if catalog else set()

        await wait_until(
            pilot, lambda: "freshly-pulled:1b" in listed(), explain=lambda: str(sorted(listed()))
        )


async def test_keep_on_ollama_writes_the_backend_and_tag_and_says_the_address_is_not_kept(
    ollama_server: OllamaTestServer,
) -> None:
    from lollma_tui.core.config_file import read_config

    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await pilot.press(*"/keep", "enter")
        await wait_until(pilot, lambda: "Kept as the start-up defaults" in notices(app)[-1])
        assert "--ollama-host" in notices(app)[-1]
    kept = read_config().settings
    assert kept["backend"] == BackendKind.OLLAMA and kept["model"] == "tinyllama:1b-q4_K_M"
    assert kept["n_ctx"] == 2048 and kept["max_tokens"] == 64


def llama_app_with_ollama_at(model: str, host: str) -> LollmaApp:
    options = StartupOptions(
        load=LoadSettings(model=model, n_ctx=1024),
        sampling=SamplingSettings(max_tokens=8),
        ollama_host=host,
    )
    return LollmaApp(options)


async def drawer_choosing(pilot: Pilot[None], app: LollmaApp, kind: BackendKind) -> SettingsDrawer:
    """Once the first model is loaded: the drawer open, `kind` chosen in its backend list."""
    main = app.chat_screen
    await wait_until(pilot, lambda: main.models.ready)
    drawer = await opened_drawer(pilot, main)
    drawer.query_one("#backend", Select).value = kind
    return drawer


async def test_the_drawer_lists_an_ollama_servers_models_before_switching_to_it(
    tiny_gguf: Path, ollama_server: OllamaTestServer
) -> None:
    # A chat started on llama.cpp: choosing Ollama in the drawer asks the server what it has,
    # so a model can be picked there and applied, as a user of LM Studio would expect.
    ollama_server.queue_reply(Script(text="Paris.", tokens_per_second=200))
    app = llama_app_with_ollama_at(str(tiny_gguf), ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        drawer = await drawer_choosing(pilot, app, BackendKind.OLLAMA)
        await wait_until(
            pilot, lambda: drawer.draft_load.backend is BackendKind.OLLAMA and drawer.draft_load.model != ""
        )
        assert drawer.draft_load.model in ollama_server.installed_names()
        model_select = drawer.query_one("#model", Select)
        offered = {str(prompt): value for prompt, value in model_select._options}
        tinyllama = next((v for label, v in offered.items() if label.startswith("tinyllama:1b")), None)
        assert tinyllama is not None, offered
        model_select.value = tinyllama
        await wait_until(pilot, lambda: drawer.draft_load.model.startswith("tinyllama:1b"))
        assert await pilot.click("#apply")
        await wait_until(
            pilot,
            runs_on(app, BackendKind.OLLAMA),
            explain=status_of(app),
        )
        await pilot.press("escape")
        main.prompt.focus()
        turn = await send(pilot, app, "Capital of France?")
        assert turn.message.content == "Paris."


async def test_the_drawer_says_why_a_server_has_no_model_list(tiny_gguf: Path, dead_ollama_host: str) -> None:
    app = llama_app_with_ollama_at(str(tiny_gguf), dead_ollama_host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        drawer = await drawer_choosing(pilot, app, BackendKind.OLLAMA)
        await wait_until(pilot, lambda: BackendKind.OLLAMA in drawer.unlisted)
        await pilot.pause()
        status = str(drawer.query_one("#drawer-pending", Static).render())
        assert status.startswith("no model list:") and dead_ollama_host.split(":")[-1] in status, status
        assert drawer.query_one("#apply", Button).disabled
        # The command says the same, rather than pointing at `ollama list`.
        await pilot.press("escape")
        main.prompt.focus()
        await pilot.press(*"/backend ollama", "enter")
        await wait_until(pilot, lambda: "which model with ollama" in notices(app)[-1])
        assert "could not be asked" in notices(app)[-1] and "ollama list" not in notices(app)[-1]
        # The chat stays on the model it had.
        loaded = main.models.backend.status.loaded
        assert loaded is not None and loaded.settings.backend == BackendKind.LLAMA_CPP


async def test_backend_command_lists_the_servers_models_and_takes_part_of_a_name(
    tiny_gguf: Path, ollama_server: OllamaTestServer
) -> None:
    app = llama_app_with_ollama_at(str(tiny_gguf), ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.ready)
        await pilot.press(*"/backend ollama", "enter")
        await wait_until(pilot, lambda: "which model with ollama" in notices(app)[-1])
        assert "qwen3:0.6b" in notices(app)[-1] and "tinyllama:1b" in notices(app)[-1]
        await pilot.press(*"/backend ollama qwen", "enter")
        await wait_until(
            pilot,
            runs_on(app, BackendKind.OLLAMA),
            explain=status_of(app),
        )
        assert main.models.settings.model == "qwen3:0.6b"


async def test_reopening_the_drawer_asks_a_server_that_was_down_again(
    tiny_gguf: Path, dead_ollama_host: str
) -> None:
    # "Cannot reach Ollama": the user starts `ollama serve` and opens the drawer again.
    app = llama_app_with_ollama_at(str(tiny_gguf), dead_ollama_host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        drawer = await drawer_choosing(pilot, app, BackendKind.OLLAMA)
        await wait_until(pilot, lambda: BackendKind.OLLAMA in drawer.unlisted)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not drawer.is_open)
        with OllamaTestServer(port=int(dead_ollama_host.rsplit(":", 1)[1])) as server:
            await pilot.press("f2")
            assert drawer.is_open
            await wait_until(
                pilot,
                lambda: drawer.draft_load.model in server.installed_names(),
                explain=lambda: (
                    f"open={drawer.is_open} focused={app.focused!r} draft={drawer.draft_load.backend}:"
                    f"{drawer.draft_load.model!r} unlisted={dict(drawer.unlisted)} "
                    f"catalogs={list(drawer.catalogs)} asked={len(server.requests_to('/api/tags'))}"
                ),
            )
            status = str(drawer.query_one("#drawer-pending", Static).render())
            assert "reload" in status and not drawer.query_one("#apply", Button).disabled, status
        assert main.models.settings.backend is BackendKind.LLAMA_CPP  # nothing applied meanwhile


async def test_a_server_that_never_answers_is_given_up_on_with_a_reason(
    tiny_gguf: Path, silent_ollama_host: str
) -> None:
    # Not a reply's or a load's wait: the drawer says "asking…" meanwhile.
    app = llama_app_with_ollama_at(str(tiny_gguf), silent_ollama_host)
    main = app.chat_screen
    main.models.list_timeout_s = 0.5
    async with app.run_test(size=(100, 32)) as pilot:
        drawer = await drawer_choosing(pilot, app, BackendKind.OLLAMA)
        await wait_until(pilot, lambda: BackendKind.OLLAMA in drawer.unlisted, within=10)
        assert "nothing received within 0.5 s" in drawer.unlisted[BackendKind.OLLAMA]
        await pilot.pause()
        status = str(drawer.query_one("#drawer-pending", Static).render())
        assert status.startswith("no model list:") and drawer.query_one("#apply", Button).disabled, status
        assert main.models.settings.backend is BackendKind.LLAMA_CPP


async def test_tab_after_backend_ollama_asks_the_server_then_completes_its_models(
    tiny_gguf: Path, ollama_server: OllamaTestServer
) -> None:
    app = llama_app_with_ollama_at(str(tiny_gguf), ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.ready)
        await pilot.press(*"/backend ollama qw", "tab")
        # Nothing known yet: the prompt keeps the focus and the server is asked.
        assert main.prompt.has_focus and main.prompt.text == "/backend ollama qw"
        await wait_until(
            pilot,
            lambda: (
                (context := main.prompt.completion_context) is not None and "ollama" in context.backend_models
            ),
        )
        await pilot.press("tab")
        assert main.prompt.text == "/backend ollama qwen3:0.6b"
        # Any other command line: a Tab that finds nothing asks no one and keeps the focus.
        for line in ("/nosuchcommand ", "/backend llama.cpp zz"):
            main.prompt.set_text(line)
            await pilot.press("tab")
            assert main.prompt.has_focus and len(ollama_server.requests_to("/api/tags")) == 1
        assert not any("Asking llama.cpp" in str(n.message) for n in app._notifications)


async def test_tab_after_backend_ollama_says_why_a_server_that_is_down_lists_nothing(
    tiny_gguf: Path, dead_ollama_host: str
) -> None:
    # Every Tab said "Asking ollama for its models: Tab again in a moment", forever.
    app = llama_app_with_ollama_at(str(tiny_gguf), dead_ollama_host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.ready)
        await pilot.press(*"/backend ollama ", "tab")
        await wait_until(pilot, lambda: BackendKind.OLLAMA in main.catalog.unlisted)
        await pilot.press("tab")
        await pilot.pause()
        toasts = [str(n.message) for n in app._notifications]
        assert toasts[0].startswith("Asking ollama for its models")
        assert "not reachable" in toasts[-1] and toasts[-1].endswith("Tab again in a moment"), toasts


async def test_with_no_model_named_the_resumed_chat_gets_the_model_it_last_used(
    ollama_server: OllamaTestServer,
) -> None:
    first = ollama_app(ollama_server.host, model="tinyllama:1b-q8_0")
    async with first.run_test(size=(100, 32)) as pilot:
        await ready(pilot, first)
        await send(pilot, first, "hello")
    # The server offers four models; the resumed chat's last reply came from q8_0.
    again = ollama_app(ollama_server.host, model="")
    async with again.run_test(size=(100, 32)) as pilot:
        await ready(pilot, again)
        assert again.chat_screen.models.settings.model == "tinyllama:1b-q8_0"
        assert any("the model this chat last used" in n for n in notices(again))
    # A new chat has no model of its own: the user is asked to choose.
    fresh = ollama_app(ollama_server.host, model="")
    object.__setattr__(fresh.chat_screen.options, "new_conversation", True)
    async with fresh.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: any("Choose one with /model" in n for n in notices(fresh)))
        assert fresh.chat_screen.models.backend.status.state is BackendState.UNLOADED


async def test_delete_asks_before_a_model_leaves_the_server(ollama_server: OllamaTestServer) -> None:
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        # The loaded model is refused before anything is asked.
        await pilot.press(*"/delete tinyllama:1b-Q4_K_M", "enter")
        await wait_until(pilot, lambda: "is loaded; switch to another model first" in notices(app)[-1])
        assert not isinstance(app.screen, ConfirmScreen)
        # So is a model the server does not have (it asked "Delete …?" first, then said 404).
        await pilot.press(*"/delete nothere:1b", "enter")
        await wait_until(pilot, lambda: notices(app)[-1] == "✗ Ollama has no model 'nothere:1b' to delete.")
        assert not isinstance(app.screen, ConfirmScreen)
        # Enter alone keeps it: "Keep" has the focus.
        await pilot.press(*"/delete tinyllama:1b-q8_0", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one("#confirm-question", Static).render())
        assert "Delete tinyllama:1b-q8_0 from the Ollama server at" in question
        await pilot.press("enter")
        await wait_until(pilot, lambda: notices(app)[-1] == "Kept tinyllama:1b-q8_0.")
        assert "tinyllama:1b-q8_0" in ollama_server.installed_names()
        await pilot.press(*"/delete tinyllama:1b-q8_0", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(
            pilot, lambda: notices(app)[-1] == "Deleted tinyllama:1b-q8_0 from the Ollama server."
        )
        assert "tinyllama:1b-q8_0" not in ollama_server.installed_names()
        # Tab and the drawer stop offering it at once (they did until the next model swap).
        main = app.chat_screen
        await wait_until(pilot, lambda: "tinyllama:1b-q8_0" not in main.prompt.completion_context.models)
        assert "tinyllama:1b-q4_K_M" in main.prompt.completion_context.models


async def test_a_model_list_that_hangs_holds_a_command_up_for_seconds_not_minutes(
    ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /delete asked the server's list on the screen's turn with the whole read timeout (five
    # minutes): keys, Esc and Ctrl+Q did nothing meanwhile.
    from lollma_tui.core.chat import setting_commands

    monkeypatch.setattr(setting_commands, "CATALOG_WAIT_S", 0.5)
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        ollama_server.faults.tags_delay_s = 20.0
        loop = asyncio.get_running_loop()
        began = loop.time()
        await pilot.press(*"/delete tinyllama:1b-q8_0", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), within=10)
        assert loop.time() - began < 5.0  # not knowing, it asks; the delete itself says the rest
        await pilot.press("enter")
        ollama_server.faults.tags_delay_s = 0.0


async def test_backend_ollama_waits_seconds_for_a_model_list_that_hangs(
    tiny_gguf: Path, ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole list timeout (10 s), frozen, on the screen's turn.
    from lollma_tui.core.chat import setting_commands

    monkeypatch.setattr(setting_commands, "CATALOG_WAIT_S", 0.5)
    app = llama_app_with_ollama_at(str(tiny_gguf), ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.ready)
        ollama_server.faults.tags_delay_s = 20.0
        loop = asyncio.get_running_loop()
        began = loop.time()
        await pilot.press(*"/backend ollama tiny", "enter")
        await pilot.pause()
        assert loop.time() - began < 5.0
        # Not listed in time, the name goes to the server as typed: the load says the rest.
        await wait_until(pilot, lambda: "backend: llama.cpp → ollama" in notices(app)[-1])
        ollama_server.faults.tags_delay_s = 0.0


async def test_a_change_asked_for_while_a_model_loads_is_refused_not_mixed_into_it(
    ollama_server: OllamaTestServer,
) -> None:
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        ollama_server.delay_load(1.5)
        await pilot.press(*"/model tinyllama:1b-q8_0", "enter")
        await wait_until(pilot, lambda: main.models.session.swapping)
        # Worked out from the settings before the load, this would load q4_K_M again with a
        # new context, and cancel the q8_0 load half way.
        await pilot.press(*"/ctx 1024", "enter")
        await wait_until(pilot, lambda: not main.models.session.swapping, within=15)
        assert "A model is loading" in " ".join(notices(app))
        loaded = main.models.backend.status.loaded
        assert loaded is not None and loaded.name == "tinyllama:1b-q8_0"
        assert main.models.settings.n_ctx == 2048
        # Once it is ready the same change goes through.
        ollama_server.delay_load(0)
        await pilot.press(*"/ctx 1024", "enter")
        await wait_until(pilot, lambda: main.models.settings.n_ctx == 1024 and main.models.ready)


async def test_a_continue_that_fails_keeps_the_reply_it_was_to_continue(
    ollama_server: OllamaTestServer,
) -> None:
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        ollama_server.queue_reply(Script(text="Lighthouses use a Fresnel lens to", done_reason="length"))
        cut = await send(pilot, app, "how do lighthouses work?")
        assert cut.message.state == ReplyState.LENGTH
        ollama_server.fail_stream("CUDA error: out of memory", after=0)
        await pilot.press(*"/continue", "enter")
        await wait_until(pilot, lambda: "Could not continue the reply" in notices(app)[-1])
        await wait_until(pilot, lambda: not main.is_generating)
        assert "out of memory" in notices(app)[-1]
        reply = main.conversation.messages[-1]
        # The text the user read is still the reply: sent to the model, and continued next time.
        # Nothing was added, so it is still cut at the length limit.
        assert reply.content == "Lighthouses use a Fresnel lens to" and reply.state == ReplyState.LENGTH
        ollama_server.clear_faults()
        ollama_server.queue_reply(" focus the lamp.")
        await pilot.press(*"/continue", "enter")
        await wait_until(pilot, lambda: reply.content.endswith("focus the lamp.") and not main.is_generating)
        sent = ollama_server.generations[-1].messages
        assert sent[-1] == {"role": "assistant", "content": "Lighthouses use a Fresnel lens to"}


async def test_continue_while_another_model_loads_waits_for_it(ollama_server: OllamaTestServer) -> None:
    # The check that a reply is continued by the model that wrote it ran only with a model
    # loaded: during a swap the new model went on from the old one's text, and the whole reply
    # was saved with the new model's name and figures.
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        ollama_server.queue_reply(Script(text="Lighthouses use a Fresnel lens to", done_reason="length"))
        cut = (await send(pilot, app, "how do lighthouses work?")).message
        generations = len(ollama_server.generations)
        ollama_server.delay_load(3.0)
        await pilot.press(*"/model tinyllama:1b-q8_0", "enter")
        await wait_until(pilot, lambda: main.models.loading)
        await pilot.press(*"/continue", "enter")
        await wait_until(pilot, lambda: "A model is loading: /continue once it is ready" in notices(app)[-1])
        await pilot.pause(0.3)
        assert not main.is_generating and len(ollama_server.generations) == generations
        assert cut.stats is not None and cut.stats.setup.model == TINYLLAMA_Q4.name
        assert cut.content == "Lighthouses use a Fresnel lens to" and cut.state == ReplyState.LENGTH
        # Once loaded, the other model is named as the reason, as before.
        await wait_until(pilot, lambda: main.models.ready, within=15)
        await pilot.press(*"/continue", "enter")
        await wait_until(pilot, lambda: "load that again to continue it" in notices(app)[-1])


async def test_a_version_shown_with_version_keeps_the_turns_left_out_to_fit(
    ollama_server: OllamaTestServer,
) -> None:
    # /version loaded the thread afresh and forgot which early turns were left out to fit the
    # context: Ctrl+R and /edit were then refused as "would not fit", though they had worked.
    from lollma_tui.ui.screens.context_overflow import ContextOverflowScreen

    ollama_server.set_default_reply("short answer here.")
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OLLAMA, model=TINYLLAMA_Q4.name, n_ctx=512),
        sampling=SamplingSettings(max_tokens=64),
        ollama_host=ollama_server.host,
    )
    app = LollmaApp(options)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        asked = lambda: isinstance(app.screen, ContextOverflowScreen)  # noqa: E731

        async def say(text: str) -> None:
            sent = len(main.conversation.messages) + 2
            main.prompt.set_text(text)
            await pilot.press("enter")
            await wait_until(pilot, lambda: asked() or len(main.conversation.messages) == sent)
            if asked():
                await pilot.press("t")  # leave the oldest turns out
            await wait_until(
                pilot, lambda: len(main.conversation.messages) == sent and not main.is_generating
            )

        async def written_again() -> None:
            generations = len(ollama_server.generations)
            await pilot.press("ctrl+r")
            done = lambda: len(ollama_server.generations) > generations and not main.is_generating  # noqa: E731
            await wait_until(pilot, done)

        words = " ".join(["word"] * 120)
        for turn in range(4):
            await say(f"m{turn} {words}")
        left_out = main.conversation.context_from
        assert left_out >= 2
        await written_again()
        await written_again()
        assert "would not fit" not in " ".join(notices(app))
        await pilot.press(*"/version prev", "enter")
        await wait_until(pilot, lambda: notices(app)[-1].startswith("Showing version 2 of 3"))
        assert main.conversation.context_from == left_out
        await written_again()
        assert "would not fit" not in " ".join(notices(app))


async def test_a_continued_reply_thinks_again_in_a_paragraph_of_its_own(
    ollama_server: OllamaTestServer,
) -> None:
    # The continuation's thinking was glued to the first one's: "Think A.Think B.", shown and saved.
    app = ollama_app(ollama_server.host, model="qwen3:0.6b")
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        ollama_server.queue_reply(Script(text="Lighthouses use", thinking="Think A.", done_reason="length"))
        reply = (await send(pilot, app, "how do lighthouses work?")).message
        ollama_server.queue_reply(Script(text=" lenses.", thinking="Think B."))
        await pilot.press(*"/continue", "enter")
        await wait_until(pilot, lambda: reply.content.endswith("lenses.") and not main.is_generating)
        assert reply.thinking == "Think A.\n\nThink B."
    with closing(sqlite3.connect(default_store_path())) as db:
        (saved,) = db.execute("SELECT thinking FROM messages WHERE id = ?", (reply.id,)).fetchone()
    assert saved == "Think A.\n\nThink B."


async def test_a_reply_that_failed_half_way_can_be_continued(ollama_server: OllamaTestServer) -> None:
    # The runner crashed mid-reply, its text kept on screen: /continue said the reply was
    # complete, and there was nothing to continue.
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        ollama_server.queue_reply("Lighthouses use a Fresnel lens to focus")
        ollama_server.fail_stream("runner crashed", after=3)
        failed = await send(pilot, app, "how do lighthouses work?")
        assert failed.message.state == ReplyState.ERROR and failed.message.content
        kept = failed.message.content
        ollama_server.queue_reply(" the lamp.")
        await pilot.press(*"/continue", "enter")
        reply = main.conversation.messages[-1]
        await wait_until(pilot, lambda: reply.content.endswith("the lamp.") and not main.is_generating)
        assert reply.content == kept + " the lamp."
        assert reply.state == ReplyState.COMPLETE and reply.error is None
        sent = ollama_server.generations[-1].messages
        assert sent[-1] == {"role": "assistant", "content": kept}


async def test_a_continued_reply_keeps_saying_which_version_it_is(ollama_server: OllamaTestServer) -> None:
    app = ollama_app(ollama_server.host)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        ollama_server.queue_reply(
            Script(text="A lamp", done_reason="length"), Script(text="A lens and", done_reason="length")
        )
        await send(pilot, app, "how do lighthouses work?")
        await pilot.press("ctrl+r")
        label = lambda: str(main.chat_log.reply_turns()[-1].query_one(".turn-label", Static).render())  # noqa: E731
        await wait_until(pilot, lambda: not main.is_generating and "version 2 of 2" in label())
        ollama_server.queue_reply(" a lamp.")
        await pilot.press(*"/continue", "enter")
        await wait_until(pilot, lambda: main.conversation.messages[-1].content.endswith("a lamp."))
        await wait_until(pilot, lambda: not main.is_generating)
        assert "version 2 of 2" in label(), label()


async def test_a_model_ollama_unloads_after_its_keep_alive_is_shown_unloaded(
    ollama_server: OllamaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Idle past its keep_alive, the model left the server's memory, and the card and the panel
    # still read "● ready · 100% GPU": memory in use that was free.
    from lollma_tui.core.backends.ollama import OllamaBackend
    from lollma_tui.ui.screens import chat_hosts

    monkeypatch.setattr(chat_hosts, "EXTRAS_REFRESH_S", 0.2)
    options = StartupOptions(
        load=LoadSettings(
            backend=BackendKind.OLLAMA, model="tinyllama:1b-q4_K_M", n_ctx=2048, keep_alive="1s"
        ),
        sampling=SamplingSettings(max_tokens=16),
        ollama_host=ollama_server.host,
    )
    app = LollmaApp(options, backend=OllamaBackend(ollama_server.host, timeout_s=10.0, connect_timeout_s=1.0))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await send(pilot, app, "hello")
        loaded = main.models.loaded
        assert loaded is not None and loaded.placement not in (None, "unloaded by the server")
        await wait_until(pilot, lambda: not ollama_server.loaded(), within=15)
        status = lambda: main.models.backend.status  # noqa: E731
        await wait_until(
            pilot, lambda: "unloaded by Ollama after its keep_alive" in status().message, within=10
        )
        assert status().loaded is not None and status().loaded.placement == "unloaded by the server"
        # The next message loads it again, and where it runs is read again.
        await send(pilot, app, "again")
        assert main.conversation.messages[-1].content
        again = main.models.loaded
        assert again is not None and again.placement not in (None, "unloaded by the server")
