"""The app on a CPU where llama.cpp's repacked weights crash (made so by the worker's fault seam).

The user asks a question and gets an answer; the chat says once, in plain words, what happened;
the model card marks "repack off"; and the next start goes straight to repacking off (the
worker's log shows no second crash).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_support import wait_until
from textual.widgets import Static

from lollma_tui.core import paths
from lollma_tui.core.backends import repack
from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.chat.conversation import ReplyState
from lollma_tui.core.models.demo import SMOLLM2
from lollma_tui.core.settings import LoadSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.widgets.chat_log import Notice, ReplyTurn

pytestmark = pytest.mark.slow


def make_app(model: Path) -> LollmaApp:
    options = StartupOptions(
        load=LoadSettings(model=str(model), n_ctx=1024),
        sampling=SMOLLM2.sampling.with_changes(max_tokens=24),
        demo=True,
        new_conversation=True,
    )
    return LollmaApp(options)


def crash_notices(app: LollmaApp) -> list[str]:
    main = app.chat_screen
    return [text for n in main.chat_log.query(Notice) if "repacking off" in (text := str(n.render()))]


async def test_the_app_answers_says_so_once_and_remembers(
    smollm2_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOLLMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(repack.FAULT_ENV, "load")
    log = paths.llama_log_path()

    app = make_app(smollm2_gguf)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY, within=60)
        await pilot.click("#prompt")
        await pilot.press(*"What is the capital of France?", "enter")
        turn = main.chat_log.query_one(ReplyTurn)
        await wait_until(pilot, lambda: turn.message.state != ReplyState.STREAMING, within=60)
        assert turn.message.state in (ReplyState.COMPLETE, ReplyState.LENGTH)
        assert turn.message.content.strip()
        assert len(crash_notices(app)) == 1
        card = str(main.model_card.query_one("#model-lines", Static).render())
        assert "repack off" in card
    assert log.read_text(errors="replace").count("fault injection: crashing") == 1

    again = make_app(smollm2_gguf)
    async with again.run_test(size=(100, 32)) as pilot:
        models = again.chat_screen.models
        await wait_until(pilot, lambda: models.backend.status.state == BackendState.READY, within=60)
        assert crash_notices(again) == []
        card = str(again.chat_screen.model_card.query_one("#model-lines", Static).render())
        assert "repack off" in card
    assert log.read_text(errors="replace").count("fault injection: crashing") == 1


async def test_after_a_crash_in_a_reply_the_next_reply_names_the_restarted_model(
    repacked_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The next message restarts the model (without repacking); its reply was headed with the
    # file name only, taken while no model was loaded, and never set again.
    monkeypatch.setenv("LOLLMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(repack.FAULT_ENV, "reply")
    options = StartupOptions(load=LoadSettings(model=str(repacked_gguf), n_ctx=512), new_conversation=True)
    app = LollmaApp(options)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY, within=60)
        await pilot.click("#prompt")
        await pilot.press(*"hello", "enter")
        await wait_until(
            pilot, lambda: bool(main.chat_log.query(ReplyTurn)) and not main.is_generating, within=60
        )
        assert main.chat_log.query(ReplyTurn).last().message.state == ReplyState.ERROR
        await pilot.press(*"again", "enter")
        await wait_until(
            pilot, lambda: len(main.chat_log.query(ReplyTurn)) == 2 and not main.is_generating, within=60
        )
        second = main.chat_log.query(ReplyTurn).last()
        assert second.message.content
        heading = str(second.query_one(".turn-label", Static).render())
        assert heading == main.models.reply_heading() and " · llama.cpp · " in heading
