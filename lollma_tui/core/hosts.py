"""Machines that serve models: a name, a kind of server, its URL, and optional remote hardware.

A `HostEntry` is what a ``[[hosts]]`` table of the config file describes, and what the command
line's --backend / --base-url / --ollama-host / --hw-host flags describe for the one host of a
session. `default_hosts` gives the hosts known without any config: OLLAMA_HOST and
OPENAI_BASE_URL are honoured as the defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lollma_tui.core.checked import WireError, mapping, optional_text, text
from lollma_tui.core.hardware.ssh_target import SshTarget, SshTargetError
from lollma_tui.core.settings import BackendKind

MAX_NAME = 64


class HostEntryError(ValueError):
    """A host entry that cannot be used; the message names the entry and the field."""


@dataclass(frozen=True, slots=True)
class HostEntry:
    name: str
    kind: BackendKind
    url: str | None = None
    """The server's address (Ollama host, or an OpenAI base URL); None for llama.cpp in-process."""
    hw: SshTarget | None = None
    """Watch this machine's hardware over ssh; None: the panel shows this machine."""
    hw_command: str | None = None
    """The command run there instead of `lollma-tui monitor --jsonl` (e.g. with uvx)."""
    api_key_env: str | None = None
    """OpenAI-compatible servers: the variable holding the API key."""

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > MAX_NAME:
            raise HostEntryError(f"host name must be 1 to {MAX_NAME} characters, not {self.name!r}")
        if self.kind is BackendKind.LLAMA_CPP and self.url is not None:
            raise HostEntryError(f"host {self.name}: llama.cpp runs in this app and has no URL")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "hosts") -> HostEntry:
        """One ``[[hosts]]`` table: ``name``, ``kind``, ``url``, ``hw = "ssh://…"``, ``hw_command``."""
        try:
            table = mapping(data, where)
            name = text(table.get("name"), f"{where}.name", max_length=MAX_NAME)
            kind_text = text(table.get("kind"), f"{where}.kind", max_length=20)
            try:
                kind = BackendKind(kind_text)
            except ValueError:
                choices = ", ".join(k.value for k in BackendKind)
                raise HostEntryError(f"{where}.kind: {kind_text!r} is not one of {choices}") from None
            hw_text = optional_text(table, "hw", where, max_length=300)
            return cls(
                name=name,
                kind=kind,
                url=optional_text(table, "url", where, max_length=2000),
                hw=SshTarget.parse(hw_text) if hw_text else None,
                hw_command=optional_text(table, "hw_command", where, max_length=2000),
                api_key_env=optional_text(table, "api_key_env", where, max_length=200),
            )
        except (WireError, SshTargetError) as error:
            raise HostEntryError(str(error)) from None


def default_hosts(environ: Mapping[str, str] | None = None) -> tuple[HostEntry, ...]:
    """This machine's llama.cpp, plus the servers OLLAMA_HOST and OPENAI_BASE_URL name."""
    env = os.environ if environ is None else environ
    hosts = [HostEntry("local", BackendKind.LLAMA_CPP)]
    if env.get("OLLAMA_HOST", "").strip():
        hosts.append(HostEntry("ollama", BackendKind.OLLAMA, env["OLLAMA_HOST"].strip()))
    if env.get("OPENAI_BASE_URL", "").strip():
        hosts.append(HostEntry("openai", BackendKind.OPENAI, env["OPENAI_BASE_URL"].strip()))
    return tuple(hosts)
