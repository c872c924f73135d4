"""Slash commands typed in the chat input, dispatched to the app's actions."""

from __future__ import annotations

from lollma_tui.core.chat.commands import CommandError, parse_command
from lollma_tui.ui.app_bench import BenchFeatures
from lollma_tui.ui.app_settings import SETTING_COMMANDS


class CommandFeatures(BenchFeatures):
    async def run_command(self, text: str) -> None:
        try:
            command = parse_command(text)
        except CommandError as error:
            await self.notice(str(error), "error")
            return
        name, argument = command.name, command.argument
        if name in SETTING_COMMANDS:
            await self.run_setting_command(command)
        elif name == "settings":
            await self.show_settings()
        elif name == "compare":
            await self.show_comparison()
        elif name == "pull":
            if argument:
                self.pull_model(argument)
            else:
                await self.notice("Usage: /pull NAME (e.g. /pull llama3.2:1b)", "error")
        elif name == "delete":
            if argument:
                self.delete_model(argument)
            else:
                await self.notice("Usage: /delete NAME", "error")
        elif name == "bench":
            self.action_bench()
        elif name == "quantize":
            await self.action_quantize()
        elif name == "history":
            self.action_conversations()
        elif name == "search":
            self.action_search(argument)
        elif name == "rename":
            await self.rename_conversation(argument)
        elif name == "edit":
            await self.begin_edit()
        elif name == "continue":
            await self.continue_reply()
        elif name == "copy":
            await self.copy_reply(argument)
        elif name == "export":
            await self.export_conversation(argument)
        elif name == "import":
            await self.import_conversation(argument)
        elif name == "clear":
            await self.action_new_conversation()
        elif name == "system":
            if argument:
                self.conversation.system_prompt = argument
                await self.save_system_prompt()
                await self.notice(f"System prompt set: {argument}")
            else:
                await self.notice(f"System prompt: {self.conversation.system_prompt or '(none)'}")
        elif name == "regen":
            await self.action_regenerate()
        elif name == "stop":
            await self.action_stop()
        elif name == "theme":
            if not argument:
                await self.notice(f"Themes: {', '.join(self.theme_names())} (now: {self.theme})")
            elif self.apply_theme(argument):
                await self.notice(f"Theme: {argument}")
        elif name == "help":
            self.action_help()
        elif name == "quit":
            await self.action_quit()

    async def action_copy_last(self) -> None:
        await self.copy_reply("")

    def action_help(self) -> None:
        # Imported on demand: the help screen's Markdown is not needed for the first frame.
        from lollma_tui.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        await self.stop_and_wait()
        await self.session.close()
        await self.close_history()
        self.exit()
