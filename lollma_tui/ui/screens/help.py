"""Keys and slash commands, one keypress away."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from lollma_tui.core.chat.commands import COMMANDS

KEYS = (
    ("Enter", "send the message"),
    ("Ctrl+J / Shift+Enter", "new line in the message"),
    ("Esc", "stop the reply being written; else close the settings drawer"),
    ("Ctrl+R", "regenerate the last reply (/version prev shows the old one)"),
    ("Ctrl+N", "new conversation"),
    ("F2 / Ctrl+T", "settings drawer: model, quantization, GPU layers, context, sampling"),
    ("Ctrl+O", "saved conversations"),
    ("Ctrl+F", "search every conversation"),
    ("F3", "copy the last reply (OSC 52)"),
    ("F4", "hosts: every server, its models, what is loaded, its GPUs; Enter moves the chat there"),
    ("/bench, /quantize", "benchmark set-ups; make other quantizations"),
    ("Ctrl+B", "show or hide the side panel"),
    ("Up / Down", "previous messages you sent"),
    ("PgUp / PgDn", "scroll the conversation"),
    ("Tab", "complete a /command"),
    ("Ctrl+P", "command palette: every slash command, themes, keys"),
    ("F1", "this help"),
    ("Ctrl+Q", "quit"),
)


def _cell(text: str) -> str:
    # A bare "|" ends a table cell, even inside backticks ("/ngl N|auto|all"): escaped, it is shown.
    return text.replace("|", "\\|")


def help_markdown() -> str:
    keys = "\n".join(f"| `{_cell(key)}` | {_cell(what)} |" for key, what in KEYS)
    commands = "\n".join(f"| `{_cell(c.usage)}` | {_cell(c.help)} |" for c in COMMANDS)
    return (
        "# lollma-tui\n\n| key | does |\n|---|---|\n"
        f"{keys}\n\n| command | does |\n|---|---|\n{commands}\n\n"
        "Start a message with `//` to send text that begins with a slash.\n"
    )


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "../help_screen.tcss"
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog") as dialog:
            # The footer under it is the chat's ("esc Stop"): the way out is said here.
            dialog.border_subtitle = "Esc, F1 or q closes"
            yield Markdown(help_markdown())
