"""The prompt's history: Up recalls what was sent, and Down past the newest entry gives back
what was being typed."""

from __future__ import annotations

from textual.app import App, ComposeResult

from lollma_tui.ui.widgets.prompt_input import PromptInput


class PromptApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def compose(self) -> ComposeResult:
        yield PromptInput()

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        self.sent.append(message.text)


async def test_down_past_the_newest_entry_gives_back_the_draft() -> None:
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        await pilot.press(*"first", "enter", *"second", "enter")
        assert app.sent == ["first", "second"]
        await pilot.press(*"a draft")
        await pilot.press("up", "up")
        assert prompt.text == "first"
        await pilot.press("down")
        assert prompt.text == "second"
        await pilot.press("down")
        assert prompt.text == "a draft"


async def test_a_started_command_puts_the_draft_in_the_history() -> None:
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        await pilot.press(*"a draft")
        assert prompt.start_command("/system ") is True
        assert prompt.text == "/system "
        await pilot.press("up")
        assert prompt.text == "a draft"
        # An empty prompt has nothing to keep.
        prompt.clear()
        assert prompt.start_command("/system ") is False


async def test_up_in_a_long_draft_that_wraps_moves_up_a_row_before_it_recalls() -> None:
    # One line of 200 characters wraps over several rows: Up on its last row replaced it
    # with the previous message.
    app = PromptApp()
    async with app.run_test(size=(60, 20)) as pilot:
        prompt = app.query_one(PromptInput)
        await pilot.press(*"earlier", "enter")
        draft = " ".join(["word"] * 40)
        prompt.insert(draft)
        await pilot.pause()
        assert prompt.wrapped_document.height > 2
        await pilot.press("up")
        assert prompt.text == draft
        assert prompt.wrapped_document.location_to_offset(prompt.cursor_location).y > 0
        for _ in range(prompt.wrapped_document.height):
            await pilot.press("up")
        assert prompt.text == "earlier"


async def test_tab_completes_a_command_typed_after_spaces_and_keeps_the_focus() -> None:
    # Enter runs "  /th" as a command; Tab moved the focus away instead, losing what came next.
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        await pilot.press("space", "space", *"/the", "tab")
        assert prompt.has_focus
        assert prompt.text == "/theme "
