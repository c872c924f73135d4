"""/export onto an existing file asks first, and replaces it only on yes (never through a symlink)."""

from __future__ import annotations

from pathlib import Path

from ollama_server import OllamaTestServer
from pilot_support import ollama_app, wait_until
from textual.pilot import Pilot
from textual.widgets import Static

from lollma_tui.core.backends.base import BackendState
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.confirm import ConfirmScreen
from lollma_tui.ui.widgets.chat_log import Notice


def last_notice(app: LollmaApp) -> str:
    return str(app.chat_screen.chat_log.query(Notice).last().render())


async def chatted(pilot: Pilot[None], app: LollmaApp) -> None:
    main = app.chat_screen
    await wait_until(
        pilot, lambda: main.models.backend.status.state == BackendState.READY and main.history.is_open
    )
    await pilot.press(*"hello there", "enter")
    await wait_until(pilot, lambda: len(main.conversation.messages) == 2 and not main.is_generating)


async def export_onto(pilot: Pilot[None], app: LollmaApp, target: Path, answer: str) -> str:
    """Export onto `target`, answer the question with `answer`; the notice that follows."""
    notices = len(app.chat_screen.chat_log.query(Notice))
    await pilot.press(*f"/export md {target}", "enter")
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    await pilot.pause()
    # The path is quoted as it is: "[b]" in a file name is not markup.
    question = app.screen.query_one("#confirm-question", Static).render()
    assert str(question).startswith(f"{target} already exists.")
    await pilot.press(answer)
    await wait_until(pilot, lambda: len(app.chat_screen.chat_log.query(Notice)) > notices)
    return last_notice(app)


async def test_export_onto_a_file_asks_and_keeps_it_on_no_replaces_it_on_yes(
    ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    ollama_server.queue_reply("General Kenobi.")
    target = tmp_path / "notes [b]x.md"
    target.write_text("keep me\n", encoding="utf-8")
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(100, 32)) as pilot:
        await chatted(pilot, app)
        said = await export_onto(pilot, app, target, "n")
        assert "Not exported" in said
        assert target.read_text(encoding="utf-8") == "keep me\n"

        said = await export_onto(pilot, app, target, "y")
        assert said == f"Exported to {target}"
        exported = target.read_text(encoding="utf-8")
        assert "hello there" in exported and "General Kenobi." in exported


async def test_an_export_that_cannot_be_written_names_the_file_asked_for(
    ollama_server: OllamaTestServer,
) -> None:
    # It named the hidden temporary file beside it: "/proc/.nope.md.633h7kk_.tmp".
    ollama_server.queue_reply("General Kenobi.")
    target = Path("/proc/lollma-export-test.md")  # a folder nobody, root included, writes into
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(100, 32)) as pilot:
        await chatted(pilot, app)
        await pilot.press(*f"/export md {target}", "enter")
        await wait_until(pilot, lambda: last_notice(app).startswith("✗ Export failed"))
        said = last_notice(app)
    assert said.startswith(f"✗ Export failed: {target}: ") and ".tmp" not in said, said


async def test_yes_replaces_a_symlink_and_leaves_the_file_it_points_to(
    ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("do not touch\n", encoding="utf-8")
    link = tmp_path / "link.md"
    link.symlink_to(precious)
    app = ollama_app(ollama_server.host)
    async with app.run_test(size=(100, 32)) as pilot:
        await chatted(pilot, app)
        said = await export_onto(pilot, app, link, "y")
        assert said == f"Exported to {link}"
        assert not link.is_symlink() and "hello there" in link.read_text(encoding="utf-8")
        assert precious.read_text(encoding="utf-8") == "do not touch\n"
