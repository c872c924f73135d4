"""Machines that serve models: a name, a kind of server, its URL, and optional remote hardware.

A `HostEntry` is what a ``[[hosts]]`` table of the config file describes, and what the command
line's --backend / --base-url / --ollama-host / --hw-host flags describe for the one host of a
session. `default_hosts` gives the hosts known without any config: OLLAMA_HOST and
OPENAI_BASE_URL are honoured as the defaults. `session_hosts` puts the three together: the hosts
a session can move to (`/host NAME`) and the one it starts on.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from lollma_tui.core.checked import WireError, mapping, optional_text, text
from lollma_tui.core.settings import BackendKind

if TYPE_CHECKING:
    from lollma_tui.core.hardware.ssh_target import SshTarget
    from lollma_tui.core.settings import StartupOptions

MAX_NAME = 64
LOCAL = "local"
"""The name of this machine's llama.cpp host."""


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

    KEYS: ClassVar[tuple[str, ...]] = ("name", "kind", "url", "hw", "hw_command", "api_key_env")
    """What a ``[[hosts]]`` table may hold."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "hosts") -> HostEntry:
        """One ``[[hosts]]`` table: ``name``, ``kind``, ``url``, ``hw = "ssh://…"``, ``hw_command``."""
        # Imported here (and in `session_hosts`): the hardware package is not needed to read a
        # config without remote hardware, on the way to the app's first frame.
        from lollma_tui.core.hardware.ssh_target import SshTarget, SshTargetError

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
            url = optional_text(table, "url", where, max_length=2000)
            if kind is not BackendKind.LLAMA_CPP:
                if not url:
                    raise HostEntryError(f"{where}.url: {kind} hosts need the server’s address")
                url = server_address(kind, url, strict=True)
            return cls(
                name=name,
                kind=kind,
                url=url,
                hw=SshTarget.parse(hw_text) if hw_text else None,
                hw_command=optional_text(table, "hw_command", where, max_length=2000),
                api_key_env=optional_text(table, "api_key_env", where, max_length=200),
            )
        except HostEntryError:
            raise
        except SshTargetError as error:
            raise HostEntryError(f"{where}.hw: {error}") from None
        except WireError as error:
            raise HostEntryError(str(error)) from None
        except ValueError as error:  # the OpenAI base URL's own check
            raise HostEntryError(f"{where}.url: {error}") from None

    @property
    def address(self) -> str | None:
        """The server's normalised address; None for llama.cpp in this app."""
        return server_address(self.kind, self.url)

    def same_server(self, other: HostEntry) -> bool:
        return self.kind is other.kind and self.address == other.address


def server_address(kind: BackendKind, url: str | None, *, strict: bool = False) -> str | None:
    """`url` as the backend of `kind` reads it (None: the environment's or the default server).

    An address that cannot be one raises ValueError (`BaseUrlError`, `OllamaHostError`) when
    `strict`, and otherwise stays as written: building a backend on it says what is wrong.
    """
    if kind is BackendKind.LLAMA_CPP:
        return None
    from lollma_tui.core.backends.ollama_host import base_url as ollama_url
    from lollma_tui.core.backends.openai_host import base_url as openai_url

    openai = kind is BackendKind.OPENAI
    variable = "OPENAI_BASE_URL" if openai else "OLLAMA_HOST"
    try:
        return openai_url(url) if openai else ollama_url(url)
    except ValueError:
        if strict:
            raise
        return (url or os.environ.get(variable, "")).strip()


def default_hosts(environ: Mapping[str, str] | None = None) -> tuple[HostEntry, ...]:
    """This machine's llama.cpp, plus the servers OLLAMA_HOST and OPENAI_BASE_URL name."""
    env = os.environ if environ is None else environ
    hosts = [HostEntry("local", BackendKind.LLAMA_CPP)]
    if env.get("OLLAMA_HOST", "").strip():
        hosts.append(HostEntry("ollama", BackendKind.OLLAMA, env["OLLAMA_HOST"].strip()))
    if env.get("OPENAI_BASE_URL", "").strip():
        hosts.append(HostEntry("openai", BackendKind.OPENAI, env["OPENAI_BASE_URL"].strip()))
    return tuple(hosts)


def session_hosts(
    options: StartupOptions,
    configured: Sequence[HostEntry] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[tuple[HostEntry, ...], HostEntry]:
    """The hosts a session can move to, and the one it starts on.

    The `configured` hosts (the config file's) come first, then the default ones whose name and
    server are not listed yet. The command line's server is the listed host with the same address (with the
    command line's --hw-host, where given), or else it is added, named after its address.
    """
    listed = list(configured)
    for default in default_hosts(environ):
        if not any(h.name == default.name or h.same_server(default) for h in listed):
            listed.append(default)
    kind = options.load.backend
    if options.openai_api_key_env and kind is not BackendKind.OPENAI:
        # --api-key-env is for the command line's OpenAI-compatible server, whichever backend the
        # chat starts on: a switch there later sends the key.
        keyed = HostEntry(
            LOCAL, BackendKind.OPENAI, server_address(BackendKind.OPENAI, options.openai_base_url)
        )
        keyed = replace(keyed, api_key_env=options.openai_api_key_env)
        at = next((i for i, h in enumerate(listed) if h.same_server(keyed)), None)
        if at is None:
            listed.append(replace(keyed, name=_unused_name(_address_name(keyed), listed)))
        elif listed[at].api_key_env is None:
            listed[at] = replace(listed[at], api_key_env=keyed.api_key_env)
    url = {BackendKind.OLLAMA: options.ollama_host, BackendKind.OPENAI: options.openai_base_url}.get(kind)
    hw = None
    if options.hw_host:
        from lollma_tui.core.hardware.ssh_target import SshTarget

        hw = SshTarget.parse(options.hw_host)
    key = options.openai_api_key_env if kind is BackendKind.OPENAI else None
    start = HostEntry(LOCAL, kind, server_address(kind, url), hw, options.hw_command, key)
    for index, host in enumerate(listed):
        if host.same_server(start):
            if start.hw is not None or start.api_key_env is not None:
                host = replace(
                    host,
                    hw=start.hw or host.hw,
                    hw_command=start.hw_command if start.hw else host.hw_command,
                    api_key_env=start.api_key_env or host.api_key_env,
                )
                listed[index] = host
            return tuple(listed), host
    start = replace(start, name=_unused_name(_address_name(start), listed))
    return (*listed, start), start


def options_url(options: StartupOptions, kind: BackendKind) -> str | None:
    """The server of `kind` the command line names (None: the environment's or the default)."""
    return {BackendKind.OLLAMA: options.ollama_host, BackendKind.OPENAI: options.openai_base_url}.get(kind)


def host_for_server(kind: BackendKind, url: str | None, hosts: Sequence[HostEntry]) -> HostEntry:
    """The listed host serving `kind` at `url` (None: the environment's or the default server),
    or a new entry named after the address when none does."""
    wanted = HostEntry(LOCAL, kind, server_address(kind, url))
    found = next((h for h in hosts if h.same_server(wanted)), None)
    return found or replace(wanted, name=_unused_name(_address_name(wanted), hosts))


def _address_name(host: HostEntry) -> str:
    address = host.address
    if address is None:
        return LOCAL
    try:
        netloc = urllib.parse.urlsplit(address).netloc
    except ValueError:  # kept as written (see `server_address`); the backend says what is wrong
        netloc = ""
    return (netloc or address)[:MAX_NAME]


def _unused_name(name: str, hosts: Sequence[HostEntry]) -> str:
    taken = {h.name for h in hosts}
    candidate, number = name, 2
    while candidate in taken:
        candidate = f"{name[: MAX_NAME - 4]}-{number}"
        number += 1
    return candidate
