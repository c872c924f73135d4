"""The hardware panel inside the chat app: real sampler, real worker, real tokens."""

from __future__ import annotations

import time
from pathlib import Path

from ollama_server import OllamaTestServer, Script
from pilot_support import wait_until

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp

SLOW_ENDLESS = SamplingSettings(temperature=0.0, repeat_penalty=1.0, max_tokens=3500)
"""Greedy on the random model never stops by itself: long enough to watch, and Esc ends it."""


def options(model: Path, interval: float = 0.25) -> StartupOptions:
    return StartupOptions(
        load=LoadSettings(model=str(model), n_ctx=4096, n_threads=1),
        sampling=SLOW_ENDLESS,
        hardware_interval_s=interval,
    )


async def test_panel_shows_this_machine_and_the_worker_footprint(slow_gguf: Path) -> None:
    app = LollmaApp(options(slow_gguf))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)
        panel = main.hardware_panel
        await wait_until(pilot, lambda: panel.snapshot is not None and bool(panel.snapshot.processes))
        snapshot = panel.snapshot
        assert snapshot is not None
        assert snapshot.gpu_summary == "CPU only"
        (worker_pid,) = main.models.backend.process_ids()
        (worker,) = snapshot.processes
        assert worker.pid == worker_pid
        assert worker.rss_bytes is not None and worker.rss_bytes > 20 * 1024 * 1024
        footprint = panel.model_footprint
        assert footprint is not None and footprint.labels == {worker_pid: "llama.cpp worker"}


async def test_live_token_rate_shows_while_streaming_and_goes_away(slow_gguf: Path) -> None:
    app = LollmaApp(options(slow_gguf))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)
        panel = main.hardware_panel
        await pilot.press(*"go", "enter")
        await wait_until(pilot, lambda: bool(main.conversation.messages[-1].content))
        # A busy UI (here: the event loop blocked for a while, from the first token, as the engine
        # goes on) must not bend the figure: it is the engine's rate, not how soon the UI read
        # the tokens. (Short enough that the worker's pipe does not fill and hold the engine.)
        shown = [panel.live_rate]
        time.sleep(1.2)

        def two_more_figures() -> bool:
            if panel.live_rate is not None and panel.live_rate != shown[-1]:
                shown.append(panel.live_rate)
            return len(shown) >= 3

        await wait_until(pilot, two_more_figures)
        after_block = shown[1]
        assert after_block is not None and after_block > 0
        await pilot.press("escape")
        await wait_until(pilot, lambda: not main.is_generating)
        assert panel.live_rate is None
        stats = main.conversation.messages[-1].stats
        assert stats is not None and stats.ttft_s is not None
        assert stats.gen_tokens < SLOW_ENDLESS.max_tokens  # it was still going when stopped
        # The reply's tokens over its time from first token to stop, all overheads included: the
        # figure shown just after the block describes the same reply.
        whole_reply = stats.gen_tokens / (stats.total_s - stats.ttft_s)
        assert 0.5 < after_block / whole_reply < 2, (shown, whole_reply)


async def test_folding_the_panel_slows_sampling(tiny_gguf: Path) -> None:
    app = LollmaApp(options(tiny_gguf, interval=0.5))
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.hardware is not None)
        assert main.hardware.interval_s == 0.5
        await pilot.press("ctrl+b")
        assert main.hardware.interval_s == 5.0
        await pilot.press("ctrl+b")
        assert main.hardware.interval_s == 0.5


async def test_the_panel_keeps_moving_while_a_slow_model_writes(ollama_server: OllamaTestServer) -> None:
    # While a reply writes, a hardware sample waits for the reply's next text so both change in
    # one screen update. A model that writes a token every 3 s must not freeze the panel for 3 s.
    ollama_server.queue_reply(Script(text="one two three four five", tokens_per_second=0.3))
    app = LollmaApp(
        StartupOptions(
            load=LoadSettings(backend=BackendKind.OLLAMA, model="tinyllama:1b-q4_K_M", n_ctx=2048),
            ollama_host=ollama_server.host,
            hardware_interval_s=0.25,
        ),
        backend=OllamaBackend(ollama_server.host, timeout_s=30.0, connect_timeout_s=1.0),
    )
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)
        await pilot.press(*"go", "enter")
        await wait_until(pilot, lambda: main.replies.writing and bool(main.conversation.messages[-1].content))
        panel = main.hardware_panel
        shown = [panel.snapshot]
        watch_until = time.monotonic() + 2.0

        def watched() -> bool:
            if panel.snapshot is not shown[-1]:
                shown.append(panel.snapshot)
            return time.monotonic() > watch_until

        await wait_until(pilot, watched, within=5)
        assert main.replies.writing  # no text came meanwhile but the first word
        # A sample every 0.25 s, each held 0.35 s at most: about eight in 2 s; a panel frozen
        # until the next word (3 s away) shows one. Three leaves room for a machine under load.
        assert len(shown) >= 3, len(shown)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not main.is_generating)
