"""The chat screen's slash commands: each spec in `core.chat.commands` names one method here.

A plain object the chat screen owns. It turns a command's argument into calls on the screen's
own methods and its controllers; what the user should read goes to the screen's `notice`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from lollma_tui.core.backends.base import BackendError
from lollma_tui.core.chat.commands import BY_NAME, Command, CommandError, escape_message, parse_command
from lollma_tui.core.chat.copying import choose_copy, save_copy
from lollma_tui.core.formatting import counted
from lollma_tui.core.settings import BackendKind
from lollma_tui.ui.literal import plain
from lollma_tui.ui.theming import choose_theme, unknown_theme

if TYPE_CHECKING:
    from lollma_tui.core.backends.base import RunSetup
    from lollma_tui.core.session import SetupSummary
    from lollma_tui.ui.app import LollmaApp
    from lollma_tui.ui.screens.chat import ChatScreen
    from lollma_tui.ui.screens.chat_palette import CommandChosen


def _model_of(setup: RunSetup) -> tuple[object, ...]:
    """What makes a reply another model's: not its context or threads, which /continue may need
    changed (a larger /ctx to go on from a reply that filled it)."""
    return (setup.backend, setup.model, setup.quant, setup.source)


_LOADING = frozenset({"model", "quant", "backend", "ngl", "ctx", "threads", "batch"})
"""Setting commands that name a model set-up (not /set, which may be sampling only)."""


class ChatCommands:
    def __init__(self, screen: ChatScreen) -> None:
        self._screen = screen

    async def run(self, text: str) -> None:
        """Parse `text` and run the handler its spec names."""
        try:
            command = parse_command(text)
        except CommandError as error:
            await self._screen.notice(str(error), "error")
            return
        await getattr(self, BY_NAME[command.name].handler_name)(command)

    async def chosen(self, choice: CommandChosen) -> None:
        """A command picked in the palette: run at once, or put in the prompt for its argument."""
        if not choice.takes_argument:
            await self.run(choice.line)
        elif self._screen.prompt.start_command(choice.line):
            self._screen.notify(
                "What you were typing is one Up away in the prompt.", title=choice.line.strip()
            )

    # -- the model and its settings ---------------------------------------------------------------

    async def command_setting(self, command: Command) -> None:
        """/model, /quant, /ngl, /ctx, /threads, /batch, /backend and /set."""
        screen = self._screen
        try:
            change = await screen.catalog.apply(command)
        except CommandError as error:
            await screen.notice(str(error), "error")
            return
        models = screen.models
        if change.load_changed and not models.swap_to(change.load):
            return
        if not change.load_changed and command.name in _LOADING and models.nothing_loaded():
            # A change and the way back both failed (a server down for a moment): the same
            # set-up asked for again is how the user retries.
            if models.swap_to(change.load):
                await screen.notice(f"Nothing is loaded: loading {plain(models.settings.model)} again.")
            return
        if change.sampling != models.sampling:
            models.sampling = change.sampling
            screen.drawer.sampling_applied()
        await screen.notice(change.message)

    async def command_settings(self, command: Command) -> None:
        from lollma_tui.core.chat.setting_commands import describe_settings

        models = self._screen.models
        await self._screen.notice(describe_settings(models.settings, models.sampling, models.session.loaded))

    async def command_compare(self, command: Command) -> None:
        from lollma_tui.core.session import format_comparison, summarise_replies

        screen = self._screen
        # Every version counts: regenerating under a new setting is how a set-up is compared.
        replies = await screen.history.all_replies(screen.conversation)
        stats = [reply.stats for reply in replies if reply.stats is not None]
        if not stats:
            await screen.notice("No replies with measured speed in this conversation yet.")
            return
        summaries = summarise_replies(stats)
        if not command.argument:
            await screen.notice(format_comparison(summaries))
            return
        await self._load_compared(command.argument, summaries)

    async def _load_compared(self, argument: str, summaries: Sequence[SetupSummary]) -> None:
        """/compare N: load set-up N of the table again, the end of the experiment loop."""
        from lollma_tui.core.session import SetupUnavailableError, settings_for

        screen = self._screen
        if not argument.isdecimal() or not 1 <= int(argument) <= len(summaries):
            await screen.notice(f"Usage: /compare [N], N from 1 to {len(summaries)} (the table's #)", "error")
            return
        try:
            load = settings_for(
                summaries[int(argument) - 1].setup, screen.models.settings, screen.models.loaded
            )
        except SetupUnavailableError as error:
            await screen.notice(f"Set-up {argument} cannot be loaded again: {error}", "error")
            return
        if screen.models.swap_to(load):
            await screen.notice(f"Loading set-up {argument} again · /keep then keeps it for the next start")

    async def command_force(self, command: Command) -> None:
        if not self._screen.models.force_refused():
            await self._screen.notice("Nothing to force: no load was refused for memory since the last one.")

    async def command_keep(self, command: Command) -> None:
        """Write the settings in use into config.toml: the set-up the next start begins with."""
        from lollma_tui.core.config_keep import KeepError, keep_settings
        from lollma_tui.core.models.demo import DEFAULT_DEMO, demo_for

        models = self._screen.models
        if models.loading:
            # The settings in use are still those of the set-up being left.
            await self._screen.notice("A model is loading: /keep once it is ready keeps it.", "warning")
            return
        # The default demo is what starts with no model named, with its own sampling.
        on_demo = demo_for(models.settings.model) is DEFAULT_DEMO
        try:
            kept = await asyncio.to_thread(
                keep_settings,
                models.settings,
                models.sampling,
                model_is_default=on_demo,
                sampling_defaults=DEFAULT_DEMO.sampling if on_demo else None,
            )
        except KeepError as error:
            await self._screen.notice(f"Nothing was kept: {error}", "error")
            return
        written = ", ".join(kept.written) or "nothing differs from the built-in defaults"
        removed = f" Took out {', '.join(kept.removed)}: the demo model needs none." if kept.removed else ""
        if kept.duplicates:
            removed += f" Took out {', '.join(kept.duplicates)}: another key set the same."
        server = (
            " The server's address is not a setting: start with --ollama-host or --base-url (or "
            "their environment variables) as before."
            if models.settings.backend is not BackendKind.LLAMA_CPP
            else ""
        )
        await self._screen.notice(
            f"Kept as the start-up defaults in {kept.path}: {written}.{removed}{server} "
            "Flags given at start still win over the file."
        )

    async def command_pull(self, command: Command) -> None:
        if not command.argument:
            await self._screen.notice("Usage: /pull NAME (e.g. /pull llama3.2:1b)", "error")
            return
        self._screen.run_worker(self._pull(command.argument), group="ollama-pull", exit_on_error=False)

    async def _pull(self, name: str) -> None:
        """Download an Ollama model with a progress bar in the chat; the chat stays usable."""
        screen = self._screen
        if screen.models.ollama() is None:
            await screen.notice("Pulling models needs the Ollama backend (/backend ollama).", "error")
            return
        shown = plain(name, one_line=True)
        view = await screen.chat_log.add_pull(shown)

        def finish(text: str, ok: bool) -> None:
            view.finish(text, ok=ok)
            if not view.is_attached:  # the chat it was shown in was left meanwhile
                screen.notify(text, severity="information" if ok else "error")

        try:
            async for progress in screen.models.pull(name):
                view.show(plain(progress.status, one_line=True), progress.completed, progress.total)
        except BackendError as error:
            finish(plain(f"pull {shown} failed: {error}"), ok=False)
            return
        except asyncio.CancelledError:
            finish(f"pull {shown} stopped: Ollama drops a pull whose client goes away", ok=False)
            raise
        finish(f"pulled {shown}", ok=True)
        screen.catalog.refresh()  # Tab and the drawer offer it

    def stop_pull(self) -> bool:
        """Esc or /stop with no reply being written: stop the pulls under way (False: none)."""
        pulls = [w for w in self._screen.workers if w.group == "ollama-pull" and w.is_running]
        for pull in pulls:
            pull.cancel()
        return bool(pulls)

    async def command_delete(self, command: Command) -> None:
        name = command.argument.strip()
        if not name:
            await self._screen.notice("Usage: /delete NAME", "error")
            return
        refused = self._screen.models.delete_refused(name) or await self._screen.models.not_installed(name)
        if refused is not None:
            await self._screen.notice(refused, "error")
            return
        # Gigabytes to pull again: asked first, as the chat list asks before deleting a chat.
        self._screen.dialogs.confirm_model_delete(name)

    async def command_hosts(self, command: Command) -> None:
        self._screen.hosts.open_view()

    async def command_host(self, command: Command) -> None:
        name, model = self._screen.models.split_host_argument(command.argument)
        if not name:
            self._screen.hosts.open_view()
            return
        await self._screen.hosts.move(name, model)

    async def command_bench(self, command: Command) -> None:
        self._screen.dialogs.bench()

    async def command_quantize(self, command: Command) -> None:
        await self._screen.dialogs.quantize()

    # -- the conversation -----------------------------------------------------------------------

    async def command_clear(self, command: Command) -> None:
        await self._screen.action_new_conversation()

    async def command_regen(self, command: Command) -> None:
        await self._screen.action_regenerate()

    async def command_stop(self, command: Command) -> None:
        if not self._screen.is_generating:
            if not self.stop_pull():
                await self._screen.notice("Nothing to stop: no reply is being written.")
            return
        await self._screen.replies.stop()

    async def command_edit(self, command: Command) -> None:
        """/edit: the last message of the user's goes back into the prompt; Enter resends it."""
        screen = self._screen
        if screen.is_generating:
            screen.notify("Wait for the reply to finish, or press Esc first.", severity="warning")
            return
        message = screen.conversation.last_user()
        if message is None:
            await screen.notice("There is no message of yours to edit yet.")
            return
        screen.editing = message
        # A message sent as "//etc/hosts…" comes back escaped, or Enter would run it as a command.
        kept = screen.prompt.start_command(escape_message(message.content))  # a draft goes into history
        up = " What you were typing is one Up away." if kept else ""
        await screen.notice(
            f"Editing your last message: Enter sends it in place of what followed, Esc drops it.{up}"
        )

    async def command_continue(self, command: Command) -> None:
        """/continue: more of the last reply, when it stopped at the limit, was cut off or failed
        half way."""
        from lollma_tui.core.chat.conversation import ReplyState, fills_context

        screen = self._screen
        if screen.is_generating:
            screen.notify("A reply is still being written.", severity="warning")
            return
        reply = screen.conversation.last_reply()
        if reply is None or screen.conversation.messages[-1] is not reply:
            await screen.notice("Nothing to continue: /continue picks up the last reply where it stopped.")
            return
        if not reply.content:
            # Stopped while it thought, say: there is no text to go on from.
            await screen.notice("The last reply has no text to continue; Ctrl+R asks for it again.")
            return
        cut_off = (ReplyState.LENGTH, ReplyState.STOPPED, ReplyState.INCOMPLETE, ReplyState.ERROR)
        if reply.state not in cut_off:
            await screen.notice("The last reply is complete; there is nothing to continue.")
            return
        if screen.models.loading:
            # Which model will be there, and its context, is not known yet: the new one would go
            # on from the old one's text, and the whole reply would then be saved as its own.
            await screen.notice("A model is loading: /continue once it is ready.", "warning")
            return
        n_ctx = screen.models.loaded.n_ctx if screen.models.loaded is not None else 0
        if reply.state is ReplyState.LENGTH and fills_context(reply.stats, n_ctx):
            # Sent again it fails at once, and the reply was marked stopped.
            await screen.notice(
                f"The reply fills the model's context ({n_ctx:,} tokens): there is no room to go on."
                " /ctx with a larger context, then /continue.",
                "warning",
            )
            return
        written, now = reply.stats, screen.models.loaded
        if written is not None and now is not None and _model_of(written.setup) != _model_of(now.setup()):
            # Its figures would be the new model's, its heading too, over text the old one wrote.
            from lollma_tui.core.backends.describe import format_setup

            await screen.notice(
                f"The reply was written with {plain(format_setup(written.setup), one_line=True)}: load that"
                " again to continue it, or Ctrl+R writes it again with this model (the old one stays as"
                " a version).",
                "warning",
            )
            return
        ended_as = (reply.state, reply.error)  # what it stays when not a word is added
        reply.error = None  # a reply that failed half way goes on from its text, as a stopped one
        # The continued reply is written again, whole, into a fresh turn.
        previous = screen.chat_log.turn_for(reply.id)
        if previous is not None:
            await previous.remove()
        reply.state = ReplyState.STREAMING
        self.drop_edit()
        turn = await screen.chat_log.add_reply(reply, screen.models.reply_heading())
        await screen.replies.start(reply, turn, continuing=ended_as)

    def drop_edit(self) -> None:
        """A reply written again or continued ends an edit begun: the next message replaced the
        question, and the new reply with it."""
        screen = self._screen
        if screen.editing is not None:
            screen.editing = None
            screen.notify("Edit dropped: Enter sends the prompt as a new message.")

    async def command_version(self, command: Command) -> None:
        """/version: which version of the last reply is shown, or show another one."""
        screen = self._screen
        messages = screen.conversation.messages
        last = messages[-1] if messages else None
        if last is None or last.role != "assistant":
            await screen.notice("There is no reply yet to show another version of.")
            return
        if screen.is_generating:
            # As /edit says it: a toast, the chat log is being written.
            screen.notify("Wait for the reply to finish, or press Esc first.", severity="warning")
            return
        if screen.history.store is None:
            await screen.notice("Versions are kept in the history, and the history is off.", "error")
            return
        versions = await screen.history.versions(last.id)
        if versions is None:
            return  # the recorder said why
        shown, count = versions.index(last.id), len(versions)
        wanted = command.argument.lower()
        if not wanted:
            more = "/version prev, next or N shows another" if count > 1 else "Ctrl+R writes another"
            await screen.notice(f"The last reply is version {shown + 1} of {count} · {more}.")
            return
        steps = {"prev": shown - 1, "next": shown + 1}
        if wanted not in steps and not wanted.isdecimal():
            await screen.notice("Usage: /version [N|prev|next]", "error")
            return
        target = steps[wanted] if wanted in steps else int(wanted) - 1
        if not 0 <= target < count:
            await screen.notice(
                f"There is no such version: the last reply has {counted(count, 'version')}.", "error"
            )
            return
        if target == shown:
            await screen.notice(f"Version {shown + 1} of {count} is the one shown.")
            return
        if not await screen.history.locate(versions[target]):
            return
        note = f"Showing version {target + 1} of {count} of the last reply · /version {shown + 1} goes back"
        loaded = await screen.history.load(screen.conversation.id, 1)
        if loaded is None:
            return  # the recorder said why
        thread = loaded[1].conversation
        swapped = thread.messages[-1] if thread.messages else None
        if swapped is None or [m.id for m in thread.messages[:-1]] != [m.id for m in messages[:-1]]:
            # The version has turns of its own after it: the whole thread changes.
            await screen.open_conversation(screen.conversation.id)
        else:
            # Only the last reply changes: the rest of the log, notices included, stays, and so
            # do the turns left out to fit the context (Ctrl+R was refused once they were sent).
            thread.system_prompt = screen.conversation.system_prompt
            thread.context_from = screen.conversation.context_from
            screen.conversation = thread
            await screen.chat_log.replace_turn(last.id, swapped)
            await screen.replies.mark_versions()
            screen.context.refresh(thread)
        await screen.notice(note)

    async def command_system(self, command: Command) -> None:
        screen = self._screen
        if not command.argument:
            await screen.notice(f"System prompt: {screen.conversation.system_prompt or '(none)'}")
            return
        dropped = command.argument.lower() == "off"
        screen.conversation.set_system_prompt("" if dropped else command.argument)
        await screen.history.save_system_prompt(screen.conversation)
        # What the conversation takes changed with it: the meter and the next overflow check.
        screen.context.refresh(screen.conversation)
        await screen.notice("System prompt dropped." if dropped else f"System prompt set: {command.argument}")

    async def command_copy(self, command: Command) -> None:
        screen = self._screen
        reply = screen.conversation.last_reply()
        if reply is None or not reply.content:
            await screen.notice("There is no reply to copy yet.")
            return
        try:
            text, what = choose_copy(reply.content, command.argument)
        except CommandError as error:
            await screen.notice(str(error), "error")
            return
        screen.app.copy_to_clipboard(text)
        copied = f"Copied {what} ({len(text)} characters) with OSC 52."
        try:
            saved = await asyncio.to_thread(save_copy, text)
        except OSError as error:
            # A full disk or an odd state folder: the copy itself still happened.
            await screen.notice(f"{copied} It could not also be saved to a file: {error}", "warning")
            return
        await screen.notice(f"{copied} If your terminal ignores OSC 52, it is also in {saved}.")

    # -- saved conversations --------------------------------------------------------------------

    async def command_history(self, command: Command) -> None:
        self._screen.dialogs.conversations()

    async def command_search(self, command: Command) -> None:
        self._screen.dialogs.search(command.argument)

    async def command_rename(self, command: Command) -> None:
        screen = self._screen
        await screen.notice(*await screen.history.rename(screen.conversation, command.argument))

    async def command_export(self, command: Command) -> None:
        from lollma_tui.core.chat.export import ExportTargetExists

        screen = self._screen
        try:
            line = await screen.history.export(screen.conversation, command.argument)
        except ExportTargetExists as exists:
            screen.dialogs.confirm_export_over(exists.path, command.argument)
            return
        await screen.notice(*line)

    async def command_import(self, command: Command) -> None:
        if not self._screen.history.may_leave(self._screen.conversation):
            return  # imported, it would open in place of the chat on screen
        imported = await self._screen.history.import_file(command.argument)
        if imported is not None:
            conversation_id, copy = imported
            source = command.argument.strip()
            if copy is not None:
                source += f" as a copy ({copy})"
            await self._screen.open_conversation(conversation_id, imported_from=source)

    # -- the app --------------------------------------------------------------------------------

    async def command_theme(self, command: Command) -> None:
        app = self._screen.app
        if not command.argument:
            await self._screen.notice(f"Themes: {', '.join(sorted(app.available_themes))} (now: {app.theme})")
            return
        if command.argument == app.theme:
            # Kept all the same: config.toml may name another (one gone, or --theme won).
            await self._screen.notice(f"Theme {app.theme} is the one in use.")
            cast("LollmaApp", app).keep_theme(app.theme)
            return
        if command.argument not in app.available_themes:
            # Asked for by name in the app: a typo changes nothing (at start it falls back).
            app.notify(unknown_theme(app, command.argument), severity="warning")
            return
        # A change is kept for the next start by the app, which says so.
        choose_theme(app, command.argument)

    async def command_help(self, command: Command) -> None:
        if not command.argument:
            await self._screen.run_action("app.help")
            return
        try:
            spec = BY_NAME[parse_command("/" + command.argument.lstrip("/").split()[0]).name]
        except CommandError as error:
            await self._screen.notice(str(error), "error")
            return
        await self._screen.notice(f"{spec.usage} — {spec.help}")

    async def command_quit(self, command: Command) -> None:
        await self._screen.run_action("app.quit")
