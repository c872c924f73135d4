"""Where to watch hardware over ssh: ``[user@]host[:port]`` or ``ssh://[user@]host[:port]``.

The user's own `ssh` does the work, with their config, keys and agent. We add only what a
background reader needs: ``-T`` (no terminal), ``BatchMode=yes`` (never a password or host-key
prompt: there is nobody to answer it) and keep-alives so a dead link is noticed.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def key_setup_hint(target: SshTarget) -> str:
    """How to let ssh log in without a password, in commands that run as written."""
    return (
        f"set up a key: `ssh-keygen -t ed25519` once, then `{target.ssh_command('ssh-copy-id')}`, "
        f"and check that `{target.ssh_command()} true` runs without asking anything"
    )


class SshTargetError(ValueError):
    """Not a usable ssh destination; the message says why."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> SshTarget:
        raw = text.strip()
        scheme, sep, rest = raw.partition("://")
        if sep and scheme.lower() != "ssh":
            raise SshTargetError(f"{text!r}: an ssh destination, not a {scheme}:// address")
        if sep:
            raw = rest.rstrip("/")
        user: str | None = None
        if "@" in raw:
            user, _, raw = raw.rpartition("@")
            if not _USER.match(user):
                raise SshTargetError(f"{text!r}: {user!r} is not a user name")
        host, port = _split_port(raw, text)
        if not host or not (_NAME.match(host) or _is_ipv6(host)):
            raise SshTargetError(f"{text!r}: expected [user@]host[:port]")
        return cls(host, user, port)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def label(self) -> str:
        """How the panel names the machine: the host as the user wrote it."""
        return self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        name = f"{self.user}@{host}" if self.user else host
        return f"{name}:{self.port}" if self.port else name

    def ssh_command(self, program: str = "ssh") -> str:
        """`program` reaching the target, for the user to type: ``ssh -p PORT user@host``.

        Not `str(self)`: ssh and ssh-copy-id read ``host:port`` as a host name, so the port goes
        in ``-p``, and an IPv6 address goes bare (brackets are only for telling it from a port).
        """
        port = ["-p", str(self.port)] if self.port else []
        return shlex.join([program, *port, self.destination])

    def argv(self, remote_command: str, *, ssh: str = "ssh", options: Sequence[str] = ()) -> list[str]:
        """The ssh command line running `remote_command` there; `options` go before the host."""
        command = [
            ssh,
            "-T",
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=10",
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3",
            *options,
        ]  # fmt: skip
        if self.port:
            command += ["-p", str(self.port)]
        return [*command, "--", self.destination, remote_command]


def default_remote_command(interval_s: float, server_port: int | None = None) -> str:
    """What runs on the other machine unless the user says otherwise (--hw-command)."""
    command = f"lollma-tui monitor --jsonl --interval {interval_s:g}"
    return command + (f" --port {server_port}" if server_port else "")


def completed_remote_command(command: str, interval_s: float, server_port: int | None = None) -> str:
    """A user's --hw-command that runs our monitor (``uvx lollma-tui monitor --jsonl``) with the
    interval and the server's port it leaves out, as the default command has them: without
    them the panel lost the model server's process, and Ctrl+B could not slow the far side."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: ssh's shell will say so; look at the words anyway
        words = command.split()
    if "monitor" not in words or "--jsonl" not in words:
        return command  # another program: its own options are its own
    if not any(w == "--interval" or w.startswith("--interval=") for w in words):
        command += f" --interval {interval_s:g}"
    if server_port and not any(w == "--port" or w.startswith("--port=") for w in words):
        command += f" --port {server_port}"
    return command


def quote_command(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def _split_port(raw: str, text: str) -> tuple[str, int | None]:
    if raw.startswith("["):
        host, closed, rest = raw[1:].partition("]")
        if not closed:
            raise SshTargetError(f"{text!r}: expected [host]:port")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise SshTargetError(f"{text!r}: expected [host]:port")
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    else:
        host, port_text = raw, ""
    if not port_text:
        return host, None
    if not port_text.isdecimal() or not 1 <= int(port_text) <= 65535:
        raise SshTargetError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True
