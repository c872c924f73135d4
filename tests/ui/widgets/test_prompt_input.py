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


async def test_keys_that_arrive_together_act_in_their_order() -> None:
    # Ctrl+J and Up were bindings, run only once the key had gone up to the app: the keys read
    # with them (a slow SSH link, a paste of keystrokes) were typed first.
    from textual import events

    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)

        def arrive(*keys: str) -> None:
            for key in keys:
                character = key if len(key) == 1 else None
                app.post_message(events.Key(key, character))

        arrive("a", "ctrl+j", "b")
        await pilot.pause()
        assert prompt.text == "a\nb"
        arrive("enter", "up", "enter")
        await pilot.pause()
        assert app.sent == ["a\nb", "a\nb"]


async def test_tab_keeps_what_was_typed_when_the_names_only_contain_it() -> None:
    # "/model 135" became "/model Smol", the prefix the two names share, which matches both.
    from lollma_tui.core.chat.commands import CompletionContext

    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        prompt.completion_context = CompletionContext(models=("SmolLM2-135M-Q4", "SmolLM2-135M-Q8", "Other"))
        await pilot.press(*"/model 135", "tab")
        assert prompt.text == "/model 135"
        prompt.clear()
        await pilot.press(*"/model smol", "tab")
        assert prompt.text == "/model SmolLM2-135M-Q"  # what both start with still completes
        prompt.clear()
        await pilot.press(*"/model oth", "tab")
        assert prompt.text == "/model Other"


async def test_a_long_list_of_completions_says_how_many_it_leaves_out() -> None:
    app = PromptApp()
    async with app.run_test() as pilot:
        await pilot.press("/", "tab")
        await pilot.pause()
        (toast,) = app._notifications
        assert "… and " in toast.message and "more" in toast.message
    assert "(Ctrl+P lists every command)" in toast.message


async def test_a_long_list_of_models_does_not_send_to_the_palette() -> None:
    # The palette lists commands, not models: "Ctrl+P lists every command" led nowhere.
    from lollma_tui.core.chat.commands import CompletionContext

    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        prompt.completion_context = CompletionContext(models=tuple(f"model-{i:02}" for i in range(40)))
        await pilot.press(*"/model ", "tab")
        await pilot.pause()
        (toast,) = app._notifications
        assert "more (type more to narrow)" in toast.message and "Ctrl+P" not in toast.message


async def test_a_recalled_entry_changed_and_left_comes_back_changed() -> None:
    # Down (on a one-line prompt, "to the end") threw the edit away, for good.
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        await pilot.press(*"/set top_k 20", "enter", *"second", "enter")
        await pilot.press("up", "up", "backspace", "backspace", *"35")
        assert prompt.text == "/set top_k 35"
        await pilot.press("down")
        assert prompt.text == "second"
        await pilot.press("up")
        assert prompt.text == "/set top_k 35"
        await pilot.press("enter")
        assert app.sent[-1] == "/set top_k 35"
        await pilot.press("up", "up", "up")
        assert prompt.text == "/set top_k 20"  # the history itself is as it was sent


async def test_messages_put_back_one_after_another_keep_their_order() -> None:
    # Lines of a paste that came as typing, each refused while a reply was written, came back
    # glued and in reverse: "line threeline two".
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        prompt.put_back("line two")
        prompt.put_back("line three")
        assert prompt.text == "line two\nline three"
        await pilot.press("end", *" more")
        prompt.put_back("/four")
        assert prompt.text == "line two\nline three\n//four more"
