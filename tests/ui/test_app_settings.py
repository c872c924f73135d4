"""Changing the set-up from the chat: setting commands, the drawer, and hot-swaps with the chat kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil
import pytest
from gguf import LlamaFileType
from gguf_factory import TinyModelSpec, quantize_gguf, write_tiny_gguf
from pilot_support import opened_drawer, wait_until
from slow_worker import slow_loading_python
from textual.pilot import Pilot
from textual.widgets import Static

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.session import MemoryBudget
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.widgets.chat_log import Notice, ReplyTurn
from lollma_tui.ui.widgets.settings_drawer import SettingsDrawer
from lollma_tui.ui.widgets.stepper import Stepper

SHORT = SamplingSettings(temperature=0.0, repeat_penalty=1.0, max_tokens=8)


def make_app(model: Path) -> LollmaApp:
    return LollmaApp(StartupOptions(load=LoadSettings(model=str(model), n_ctx=1024), sampling=SHORT))


def notices(app: LollmaApp) -> list[str]:
    main = app.chat_screen
    return [str(n.render()) for n in main.chat_log.query(Notice)]


async def ready(pilot: Pilot[None], app: LollmaApp) -> None:
    main = app.chat_screen
    await wait_until(
        pilot,
        lambda: main.models.backend.status.state == BackendState.READY and not main.models.session.swapping,
    )


async def command(pilot: Pilot[None], app: LollmaApp, text: str) -> None:
    main = app.chat_screen
    await pilot.press(*text, "enter")
    await pilot.pause()
    await wait_until(
        pilot,
        lambda: not main.models.session.swapping and main.models.backend.status.state != BackendState.LOADING,
    )


async def chat(pilot: Pilot[None], app: LollmaApp, text: str) -> None:
    main = app.chat_screen
    count = len(main.conversation.messages)
    await pilot.press(*text, "enter")
    await wait_until(
        pilot,
        lambda: len(main.conversation.messages) >= count + 2 and not main.is_generating,
    )


async def test_quant_and_context_swaps_keep_the_chat_and_label_each_reply(quant_folder: Path) -> None:
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await chat(pilot, app, "first")
        old_pid = main.models.backend.process_ids()
        await command(pilot, app, "/quant Q8_0")
        await wait_until(
            pilot,
            lambda: (
                main.models.backend.status.loaded is not None
                and main.models.backend.status.loaded.quant == "Q8_0"
            ),
        )
        assert main.models.backend.process_ids() != old_pid  # a fresh worker for the new file
        await command(pilot, app, "/ctx 2048")
        await wait_until(
            pilot,
            lambda: (
                main.models.backend.status.loaded is not None
                and main.models.backend.status.loaded.n_ctx == 2048
            ),
        )
        await chat(pilot, app, "second")
        replies = [m for m in main.conversation.messages if m.role == "assistant"]
        assert [m.content for m in main.conversation.messages if m.role == "user"] == [
            "first",
            "second",
        ]
        first, second = (r.stats for r in replies)
        assert first is not None and second is not None
        assert (first.setup.quant, first.setup.n_ctx) == ("F16", 1024)
        assert (second.setup.quant, second.setup.n_ctx) == ("Q8_0", 2048)
        await command(pilot, app, "/compare")
        table = notices(app)[-1]
        assert "F16" in table and "Q8_0" in table
        # The end of the loop: the first set-up, loaded again from its row.
        await command(pilot, app, "/compare 1")
        await wait_until(
            pilot,
            lambda: (
                main.models.backend.status.loaded is not None
                and main.models.backend.status.loaded.quant == "F16"
            ),
        )
        loaded = main.models.backend.status.loaded
        assert loaded is not None and loaded.n_ctx == 1024
        assert main.models.settings.model == first.setup.source
        assert [m.content for m in main.conversation.messages if m.role == "user"] == ["first", "second"]
        await command(pilot, app, "/compare 3")
        assert "Usage: /compare [N], N from 1 to 2" in notices(app)[-1]
        # A digit int() does not read is a usage error too, not the end of the app.
        await command(pilot, app, "/compare ²")
        await wait_until(pilot, lambda: sum("Usage: /compare [N]" in n for n in notices(app)) == 2)


async def test_continue_after_a_quant_swap_keeps_the_reply_with_the_set_up_that_wrote_it(
    quant_folder: Path,
) -> None:
    # The reply was drawn again under the new heading, F16's text included, its figures became the
    # continuation's only, and /compare lost the F16 row.
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await chat(pilot, app, "tell me about the cache")
        reply = main.conversation.messages[-1]
        assert reply.state is ReplyState.LENGTH and reply.stats is not None
        written, text = reply.stats, reply.content
        await command(pilot, app, "/quant Q8_0")
        await wait_until(pilot, lambda: main.models.loaded is not None and main.models.loaded.quant == "Q8_0")
        await command(pilot, app, "/continue")
        await wait_until(pilot, lambda: "The reply was written with" in notices(app)[-1])
        assert "F16" in notices(app)[-1] and not main.is_generating
        assert (reply.stats, reply.content, reply.state) == (written, text, ReplyState.LENGTH)
        # Back on the set-up that wrote it, it goes on.
        await command(pilot, app, "/quant F16")
        await wait_until(pilot, lambda: main.models.loaded is not None and main.models.loaded.quant == "F16")
        await command(pilot, app, "/continue")
        await wait_until(pilot, lambda: not main.is_generating and len(reply.content) > len(text))


def slow_q8_0_app(quant_folder: Path, tmp_path: Path) -> LollmaApp:
    """The tiny model in F16, whose Q8_0 takes 2 s to load (a big file on a slow disk)."""
    python = slow_loading_python(tmp_path, 2.0, marker="Q8_0")
    load = LoadSettings(model=str(quant_folder / "tiny-llama-F16.gguf"), n_ctx=1024)
    return LollmaApp(StartupOptions(load=load, sampling=SHORT), backend=LlamaCppBackend(python=python))


async def swapping_to_q8_0(pilot: Pilot[None], app: LollmaApp) -> None:
    await ready(pilot, app)
    await pilot.press(*"/quant Q8_0", "enter")
    await wait_until(pilot, lambda: app.chat_screen.models.session.swapping)


async def test_a_message_sent_during_a_swap_is_headed_with_the_model_that_answers(
    quant_folder: Path, tmp_path: Path
) -> None:
    # The Q8_0 load is slowed, as a big file on a slow disk: the message waits for it.
    app = slow_q8_0_app(quant_folder, tmp_path)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await swapping_to_q8_0(pilot, app)
        await pilot.press(*"hi", "enter")
        await wait_until(pilot, lambda: len(main.conversation.messages) == 2 and not main.is_generating, 60)
        reply = main.conversation.messages[-1]
        assert reply.stats is not None and reply.stats.setup.quant == "Q8_0"
        (turn,) = main.chat_log.query(ReplyTurn)
        assert "Q8_0" in str(turn.query_one(".turn-label", Static).render())


async def test_the_drawer_opened_during_a_swap_says_a_load_is_under_way(
    quant_folder: Path, tmp_path: Path
) -> None:
    # Opened for the first time mid-swap it said "no pending changes", and Apply answered only
    # "A model is loading": the progress of a swap begun before it was built was dropped.
    app = slow_q8_0_app(quant_folder, tmp_path)
    main = app.chat_screen
    async with app.run_test(size=(120, 35)) as pilot:
        await swapping_to_q8_0(pilot, app)
        drawer = await opened_drawer(pilot, main)
        await pilot.pause()
        busy = drawer.query_one("#drawer-busy", Static)
        assert busy.display and str(busy.render()).startswith("⟳ ")
        await wait_until(pilot, lambda: not main.models.loading, 30)
        await wait_until(pilot, lambda: not busy.display)
        assert drawer.applied_load.model.endswith("tiny-llama-Q8_0.gguf")


async def test_a_rescan_keeps_the_folders_of_the_models_loaded_before(
    quant_folder: Path, tmp_path: Path
) -> None:
    # Started in one folder, moved to a model in another: the next scan (after a quantize, say)
    # dropped the first folder, and with it the quantizations the user was comparing.
    (tmp_path / "other").mkdir()
    elsewhere = write_tiny_gguf(tmp_path / "other" / "other-F16.gguf", TinyModelSpec(name="other"))
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        await command(pilot, app, f"/model {elsewhere}")
        assert main.models.settings.model == str(elsewhere)
        main.catalog.gguf = None
        main.catalog.scan()
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        catalog = main.catalog.gguf
        assert catalog is not None
        assert catalog.find(quant_folder / "tiny-llama-Q8_0.gguf") is not None
        assert catalog.find(elsewhere) is not None


async def test_a_quantization_made_while_the_app_runs_is_found_without_a_restart(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    # `lollma-tui quantize` in another terminal: the folders were scanned only at start, then
    # only when a /quant or /model named a missing variant; a bare /quant and the drawer's Quant
    # list never showed the new file.
    (tmp_path / "models").mkdir()
    source = Path(shutil.copy(tiny_gguf, tmp_path / "models" / "tiny-llama-F16.gguf"))
    app = make_app(source)
    main = app.chat_screen

    def made(quant: str, file_type: LlamaFileType) -> None:
        quantize_gguf(source, source.with_name(f"tiny-llama-{quant}.gguf"), file_type)

    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        made("Q8_0", LlamaFileType.MOSTLY_Q8_0)
        await command(pilot, app, "/quant")
        await wait_until(pilot, lambda: "Q8_0" in notices(app)[-1], explain=lambda: notices(app)[-1])
        made("Q5_0", LlamaFileType.MOSTLY_Q5_0)
        drawer = await opened_drawer(pilot, main)
        catalog = lambda: drawer.catalogs.get(main.models.settings.backend)  # noqa: E731
        quants = lambda: [g.quants for g in catalog().groups] if catalog() is not None else None  # noqa: E731
        await wait_until(pilot, lambda: "Q5_0" in str(quants()), explain=quants)
        await pilot.press("f2")
        made("Q4_0", LlamaFileType.MOSTLY_Q4_0)
        await command(pilot, app, "/quant Q4_0")
        await wait_until(
            pilot, lambda: main.models.loaded is not None and main.models.loaded.quant == "Q4_0", within=30
        )


async def test_compare_counts_the_versions_that_regenerating_replaced(tiny_gguf: Path) -> None:
    # The experiment as a user runs it: ask once, change one setting, Ctrl+R the same question.
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await wait_until(pilot, lambda: main.history.is_open)
        await chat(pilot, app, "first")
        await command(pilot, app, "/ctx 2048")
        await wait_until(pilot, lambda: main.models.settings.n_ctx == 2048 and main.models.ready)
        first_reply = main.conversation.messages[-1]
        await pilot.press("ctrl+r")
        await wait_until(
            pilot,
            lambda: main.conversation.messages[-1] is not first_reply and not main.is_generating,
        )
        # Only the new version is in the thread the model is sent ...
        assert [m.role for m in main.conversation.messages] == ["user", "assistant"]
        await command(pilot, app, "/compare")
        table = notices(app)[-1]
        # ... and both versions are in the table, one row each.
        assert "ctx 1024" in table and "ctx 2048" in table, table
        rows = [line for line in table.splitlines() if line[:1].isdigit()]
        assert [row.split()[:2] for row in rows] == [["1", "1"], ["2", "1"]], table


async def test_sampling_commands_apply_without_a_reload(quant_folder: Path) -> None:
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        pid = main.models.backend.process_ids()
        await command(pilot, app, "/set temperature 0.3")
        assert main.models.sampling.temperature == 0.3
        assert main.models.backend.process_ids() == pid
        await command(pilot, app, "/set temperature 42")
        assert main.models.sampling.temperature == 0.3
        assert "temperature" in notices(app)[-1]


async def test_a_failed_swap_goes_back_to_the_previous_model(quant_folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-Q4_K_M.gguf"
    broken.write_bytes((quant_folder / "tiny-llama-F16.gguf").read_bytes()[:50_000])
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await chat(pilot, app, "before")
        await command(pilot, app, f"/model {broken}")
        assert any("broken-Q4_K_M.gguf" in n for n in notices(app))
        loaded = main.models.backend.status.loaded
        assert loaded is not None and loaded.settings.model.endswith("tiny-llama-F16.gguf")
        await chat(pilot, app, "after")
        assert [m.content for m in main.conversation.messages if m.role == "user"] == [
            "before",
            "after",
        ]


async def test_the_drawer_s_fit_line_shows_for_a_model_loaded_from_another_folder(
    quant_folder: Path, tmp_path: Path
) -> None:
    # The drawer listed the new model's quantizations, but the fit line stayed hidden until a
    # rescan: the verdict was looked up in the folder scan only, and cached as "none".
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(quant_folder / "tiny-llama-Q8_0.gguf", elsewhere / "other-llama-Q8_0.gguf")
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot, app)
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        drawer = await opened_drawer(pilot, main)
        await wait_until(pilot, lambda: drawer.query_one("#fit").display)
        await main.commands.run(f"/model {elsewhere / 'other-llama-Q8_0.gguf'}")  # focus is in the drawer
        await wait_until(pilot, lambda: drawer.applied_load.model.endswith("other-llama-Q8_0.gguf"))
        await wait_until(pilot, lambda: drawer.query_one("#fit").display)
        assert "fits" in str(drawer.query_one("#fit-verdict", Static).render())


async def test_the_fit_line_puts_nothing_on_the_gpu_of_a_cpu_only_build(quant_folder: Path) -> None:
    # A GPU machine whose llama-cpp-python was built without it: the drawer counted the layers
    # in VRAM ("fits · VRAM …"), and the load then refused the RAM they need.
    from lollma_tui.core.session.budget import MemoryBudget

    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot, app)
        assert main.models.session.gpu_offload_supported is False  # this CPU-only test build
        main.catalog._budget = lambda: MemoryBudget(free_ram=16 * 2**30, free_vram=80 * 2**30)
        drawer = await opened_drawer(pilot, main)
        drawer.query_one("#n_gpu_layers", Stepper).focus()
        await pilot.press("end")  # every layer asked for the GPU
        await wait_until(pilot, lambda: drawer.draft_load.n_gpu_layers != 0)
        await wait_until(pilot, lambda: drawer.query_one("#fit").display)
        await wait_until(pilot, lambda: "fits" in str(drawer.query_one("#fit-verdict", Static).render()))
        verdict = str(drawer.query_one("#fit-verdict", Static).render())
        assert "VRAM" not in verdict and "RAM" in verdict, verdict


async def test_the_footer_lets_go_of_the_keys_it_rebuilds(quant_folder: Path) -> None:
    # Each drawer or dialog opened and closed left some 16 footer keys held for good: 60 F2/Esc
    # made a thousand widgets no one could see, and the memory only grew.
    import gc

    def detached_keys() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o).__name__ == "FooterKey" and not o.is_attached)

    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot, app)
        before = detached_keys()
        for _ in range(10):
            await opened_drawer(pilot, main)
            await pilot.press("escape")
            await wait_until(pilot, lambda: not main.drawer.is_open)
            await pilot.pause()
        assert detached_keys() - before < 16


async def test_a_bad_entry_gives_way_to_the_value_a_command_sets(quant_folder: Path) -> None:
    # "abc" left in Threads stayed, with "fix first" and Apply disabled, after /threads 1 had
    # reloaded the model with 1 thread; the same for sampling entries and /set.
    from textual.widgets import Input

    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(120, 35)) as pilot:
        await ready(pilot, app)
        drawer = await opened_drawer(pilot, main)
        for field in ("n_threads", "top_p"):
            drawer.query_one(f"#{field}", Input).focus()
            await pilot.press("ctrl+a", *"abc")
        await wait_until(pilot, lambda: {"n_threads", "top_p"} <= set(drawer.errors))
        await main.commands.run("/threads 1")  # the focus is in the drawer
        await main.commands.run("/set top_p 0.5")
        await wait_until(pilot, lambda: main.models.settings.n_threads == 1 and not main.models.loading)
        await wait_until(pilot, lambda: not drawer.errors)
        assert drawer.query_one("#n_threads", Input).value == "1"
        assert drawer.query_one("#top_p", Input).value == "0.5"


async def test_drawer_by_keyboard_applies_a_swap(quant_folder: Path) -> None:
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        drawer = await opened_drawer(pilot, main)
        assert not main.sidebar.display  # the side panel makes room at 80 columns
        applied: list[LoadSettings] = []
        main.models.swap_to = lambda target, force=False: applied.append(target)  # type: ignore[method-assign]
        drawer.post_message(
            SettingsDrawer.ApplyRequested(drawer, drawer.applied_load.with_changes(n_ctx=2048), ("n_ctx",))
        )
        await pilot.pause()
        assert [s.n_ctx for s in applied] == [2048]
        await pilot.press("escape")
        await pilot.pause()
        assert not drawer.is_open
        assert main.sidebar.display
        assert app.focused is main.prompt


async def test_the_drawers_buttons_are_on_screen_and_apply_by_mouse(quant_folder: Path) -> None:
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        drawer = await opened_drawer(pilot, main)
        await pilot.pause()
        # The last line of the drawer is its buttons: nothing (the footer) may cover them.
        for name in ("#apply", "#reset", "#quantize"):
            button = drawer.query_one(name)
            assert main.get_widget_at(button.region.x + 1, button.region.y)[0] is button, name
        # Step the context up and apply it with a click, as a mouse user would.
        drawer.query_one("#n_ctx").focus()
        await pilot.press("right")
        await pilot.pause()
        wanted = drawer.draft_load.n_ctx
        assert wanted > 1024
        assert await pilot.click("#apply")
        await wait_until(
            pilot,
            lambda: (
                (loaded := main.models.backend.status.loaded) is not None and loaded.settings.n_ctx == wanted
            ),
        )
        await ready(pilot, app)


async def test_the_drawer_on_a_terminal_narrower_than_it_covers_the_chat_and_gives_it_back(
    tiny_gguf: Path,
) -> None:
    # At 40 columns the 46-column drawer took every column from the chat: the prompt had no
    # width left to draw its placeholder in, and the app stopped with a ValueError.
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(40, 14)) as pilot:
        await ready(pilot, app)
        drawer = await opened_drawer(pilot, main)
        await pilot.pause()
        assert app.is_running and drawer.region.width == 40
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.focused is main.prompt)
        await chat(pilot, app, "hello")
        assert main.conversation.messages[-1].role == "assistant"


async def test_gpu_layers_in_the_drawer_on_a_cpu_only_build_reload_nothing(tiny_gguf: Path) -> None:
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        loaded = main.models.loaded
        assert loaded is not None
        drawer = await opened_drawer(pilot, main)
        drawer.query_one("#n_gpu_layers").focus()
        await pilot.press("right")
        await pilot.pause()
        assert drawer.draft_load.n_gpu_layers != 0
        pending = str(drawer.query_one("#drawer-pending").render())
        if loaded.gpu_offload_supported:
            assert pending.startswith("⟳ reload: GPU layers")
            return
        # This build runs every layer on the CPU: the drawer does not promise a reload, and
        # Apply keeps the model loaded, saying why.
        assert pending == "applies without reload: GPU layers"
        assert await pilot.click("#apply")
        await wait_until(pilot, lambda: any("stays loaded as it is" in text for text in notices(app)))
        assert main.models.loaded is loaded
        # A later change of something else is not answered with the GPU layers' note again.
        main.prompt.focus()
        await pilot.press(*"/set keep_alive 10m", "enter")
        await wait_until(pilot, lambda: main.models.settings.keep_alive == "10m" and not main.models.loading)
        await pilot.pause()
        assert sum("GPU layers are ignored" in text for text in notices(app)) == 1, notices(app)


async def test_slash_completion_offers_the_models_quants(quant_folder: Path) -> None:
    app = make_app(quant_folder / "tiny-llama-F16.gguf")
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await wait_until(pilot, lambda: main.prompt.completion_context is not None)
        await wait_until(pilot, lambda: "Q8_0" in main.prompt.completion_context.quants)  # type: ignore[union-attr]
        await pilot.press(*"/quant Q", "tab")
        assert main.prompt.text == "/quant Q8_0" or main.prompt.text.startswith("/quant ")


async def test_keep_writes_the_setup_in_use_into_the_config_file_for_the_next_start(tiny_gguf: Path) -> None:
    from lollma_tui.cli import build_parser, startup_options
    from lollma_tui.core.config_file import config_path, read_config

    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(
        '# mine\n[settings]\nctx = 2048\n\n[[hosts]]\nname = "den"\nkind = "ollama"\n'
        'url = "den.local:11434"\n'
    )
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        await command(pilot, app, "/ctx 512")
        await command(pilot, app, "/set temperature 0.3")
        await command(pilot, app, "/keep")
        await wait_until(pilot, lambda: "Kept as the start-up defaults" in notices(app)[-1])
        assert "ctx 512" in notices(app)[-1] and "temperature 0.3" in notices(app)[-1]
        assert main.models.settings.n_ctx == 512
        # /keep while a load runs: the settings in use were still the set-up being left.
        await main.commands.run("/ctx 1024")
        await main.commands.run("/keep")
        assert "A model is loading: /keep once it is ready" in notices(app)[-1]
        await wait_until(pilot, lambda: main.models.ready and main.models.settings.n_ctx == 1024)
    config = read_config()
    assert config.problems == () and [h.name for h in config.hosts] == ["den"]
    assert config_path().read_text().startswith("# mine\n[settings]\nctx = 512\n")
    # The next start, with no flags, begins with the kept set-up.
    options = startup_options(build_parser().parse_args([]), config)
    assert options.load.model == str(tiny_gguf.resolve()) and options.load.n_ctx == 512
    assert options.sampling.temperature == 0.3 and not options.demo


async def test_a_theme_picked_in_the_app_is_the_one_the_next_start_uses(tiny_gguf: Path) -> None:
    from lollma_tui.cli import build_parser, startup_options
    from lollma_tui.core.config_file import config_path, read_config

    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text("# mine\n[settings]\nctx = 2048\n")
    app = make_app(tiny_gguf)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        assert app.theme == "lollma-dark"
        await command(pilot, app, "/theme lollma-light")
        await wait_until(pilot, lambda: read_config().theme == "lollma-light")
        await wait_until(
            pilot, lambda: any("kept for the next start" in str(t.message) for t in app._notifications)
        )
        # Textual's own theme picker (the palette's "Change theme") is kept the same way.
        app.theme = "textual-light"
        await wait_until(pilot, lambda: read_config().theme == "textual-light")
        # A typo changes nothing, one of Textual's themes included, and keeps nothing.
        await command(pilot, app, "/theme nrod")
        await wait_until(
            pilot, lambda: any("Unknown theme 'nrod'" in str(t.message) for t in app._notifications)
        )
        assert app.theme == "textual-light" and read_config().theme == "textual-light"
        app.theme = "lollma-amber"
        await wait_until(pilot, lambda: read_config().theme == "lollma-amber")
        # The file names another (a theme since removed, or --theme won at start): asking for the
        # theme in use keeps it, where it only said "the one in use" and the file stayed.
        from lollma_tui.core.config_keep import keep_theme

        keep_theme("gone-theme")
        await command(pilot, app, "/theme lollma-amber")
        await wait_until(pilot, lambda: read_config().theme == "lollma-amber")
    assert config_path().read_text().startswith("# mine\n[settings]\nctx = 2048\n")
    config = read_config()
    assert config.problems == ()
    assert startup_options(build_parser().parse_args([]), config).theme == "lollma-amber"
    # A flag still wins over the file.
    assert (
        startup_options(build_parser().parse_args(["--theme", "lollma-light"]), config).theme
        == "lollma-light"
    )


async def test_a_server_address_that_cannot_be_one_leaves_the_model_in_use_loaded(tiny_gguf: Path) -> None:
    """`/backend ollama` with a malformed address: the swap is refused before anything stops,
    with the address and the reason, and the chat goes on with the model it had."""
    app = LollmaApp(
        StartupOptions(
            load=LoadSettings(model=str(tiny_gguf), n_ctx=512),
            sampling=SamplingSettings(max_tokens=8),
            ollama_host="http://[::1",
        )
    )
    main = app.chat_screen
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        first = main.models.backend
        await command(pilot, app, "/backend ollama tinyllama:1b-q4_K_M")
        await wait_until(pilot, lambda: any("Not switching to" in n for n in notices(app)))
        refusal = next(n for n in notices(app) if "Not switching to" in n)
        assert "http://[::1: not a server address" in refusal and "still on" in refusal
        assert main.models.backend is first and first.status.state == BackendState.READY
        await command(pilot, app, "hello")
        await wait_until(pilot, lambda: len(main.conversation.messages) == 2 and not main.is_generating)
        assert main.conversation.messages[-1].stats is not None


async def test_force_loads_a_set_up_the_memory_estimate_refused(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tiny_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await command(pilot, app, "/force")
        assert notices(app)[-1].startswith("Nothing to force")
        # The panel reads 1 MiB of free RAM (psutil, where the host source reads it): the
        # estimate refuses a bigger context, though the machine has room.
        real = psutil.virtual_memory()
        monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=1 << 20))
        await wait_until(pilot, lambda: (main.memory_budget() or MemoryBudget(None)).free_ram == 1 << 20)
        await command(pilot, app, "/ctx 2048")
        await wait_until(pilot, lambda: "RAM short by" in notices(app)[-1])
        assert notices(app)[-1].endswith(" · /force loads it anyway")
        assert main.models.loaded is not None and main.models.loaded.n_ctx == 1024
        await command(pilot, app, "/force")
        await wait_until(pilot, lambda: main.models.ready and main.models.loaded.n_ctx == 2048)
        assert any("loaded anyway (forced): does not fit" in text for text in notices(app))
        await chat(pilot, app, "still here?")
        # Done: nothing is left to force.
        await command(pilot, app, "/force")
        assert notices(app)[-1].startswith("Nothing to force")


async def test_an_unknown_theme_in_the_config_file_is_said_in_the_chat_with_the_file_and_key(
    tiny_gguf: Path,
) -> None:
    # A five-second toast naming neither the file nor the key, where every other problem of the
    # file is said in the chat: behind a loading model it was easy to miss.
    from lollma_tui.cli import build_parser, startup_options
    from lollma_tui.core.config_file import config_path, read_config

    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text('[ui]\ntheme = "nope-theme"\n')
    args = build_parser().parse_args(["--model", str(tiny_gguf)])
    app = LollmaApp(startup_options(args, read_config()))
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        said = [n for n in notices(app) if "nope-theme" in n]
        assert said and said[0].startswith(f"! {config_path()}: ui.theme: Unknown theme 'nope-theme'")
        assert app.theme == "lollma-dark"
    # Given as --theme, it is the flag's: a toast, as before.
    flagged = LollmaApp(
        startup_options(build_parser().parse_args(["--model", str(tiny_gguf), "--theme", "typo"]))
    )
    async with flagged.run_test(size=(100, 30)) as pilot:
        await ready(pilot, flagged)
        assert any("Unknown theme 'typo'" in str(t.message) for t in flagged._notifications)
        assert not [n for n in notices(flagged) if "typo" in n]


async def test_the_last_reply_s_figures_leave_the_card_when_another_set_up_is_loaded(tiny_gguf: Path) -> None:
    # After /model or /ctx the card showed the old set-up's speed under the new one's name
    # until the next reply: in a change-one-setting loop it read as the new set-up's speed.
    app = make_app(tiny_gguf)
    main = app.chat_screen
    speed = lambda: main.model_card.query_one("#model-speed", Static)  # noqa: E731
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot, app)
        await chat(pilot, app, "hello")
        assert main.model_card.last_stats is not None and speed().has_class("-shown")
        await command(pilot, app, "/model /nowhere/missing.gguf")  # refused: the set-up stays
        await ready(pilot, app)
        assert main.model_card.last_stats is not None and speed().has_class("-shown")
        await command(pilot, app, "/ctx 2048")
        await wait_until(pilot, lambda: main.models.loaded is not None and main.models.loaded.n_ctx == 2048)
        await wait_until(pilot, lambda: not speed().has_class("-shown"))
        assert main.model_card.last_stats is None
        await chat(pilot, app, "again")
        assert main.model_card.last_stats is not None and main.model_card.last_stats.setup.n_ctx == 2048
