"""The chat screen's hosts and the hardware it shows: where the model runs, and that machine.

A plain object the chat screen owns. It opens the hosts view and asks every host in a named
worker, moves the chat to another host (`/host NAME`: a swap through the model controller; the
conversation stays with the screen), points the hardware feed at the machine the chat runs on
(this one, or the host's `hw` over ssh), turns the ssh link's troubles into notices, and keeps
an OpenAI-compatible server's extras fresh with a named worker. Results come back to the screen
as messages (`HostsReported`, `ServerExtrasRead`, `HardwareLinkChanged`).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import replace
from typing import TYPE_CHECKING

from lollma_tui.core.settings import BackendKind
from lollma_tui.ui.literal import plain
from lollma_tui.ui.messages import HostsReported, NoticePosted, ServerExtrasRead

if TYPE_CHECKING:
    from textual.timer import Timer

    from lollma_tui.core.backends.openai import OpenAIBackend
    from lollma_tui.core.hardware import SystemSnapshot
    from lollma_tui.core.host_reports import HostReport
    from lollma_tui.core.hosts import HostEntry
    from lollma_tui.ui.controllers.hardware_feed import HardwareFeed, RemoteLink
    from lollma_tui.ui.messages import HardwareLinkChanged
    from lollma_tui.ui.screens.chat import ChatScreen
    from lollma_tui.ui.screens.hosts import HostsScreen
    from lollma_tui.ui.widgets.server_info import ServerInfo

EXTRAS_REFRESH_S = 5.0
"""How often a server's live extras (slots, KV cache, loading) are read again."""


def server_port(host: HostEntry) -> int | None:
    """The port the host's model server listens on, for the remote monitor to follow it."""
    address = host.address
    if address is None:
        return None
    try:
        split = urllib.parse.urlsplit(address)
        return split.port or (443 if split.scheme == "https" else 80)
    except ValueError:  # an address that cannot be a server's: nothing to follow there
        return None


class ChatHosts:
    def __init__(self, screen: ChatScreen) -> None:
        self._screen = screen
        self._view: HostsScreen | None = None
        self._watched: HostEntry | None = None
        """The host the hardware feed and the extras follow."""
        self._link_troubles: list[str] = []
        """The ssh link's failures said since it was last live, so a retry does not repeat one."""
        self._extras_timer: Timer | None = None

    def _say(self, text: str, kind: str = "info") -> None:
        # Host names, addresses, server and ssh messages come from elsewhere: shown literally.
        self._screen.post_message(NoticePosted(plain(text, one_line=True), kind))

    # -- the hardware feed ---------------------------------------------------------------------

    def start_hardware(self) -> HardwareFeed:
        from lollma_tui.ui.controllers.hardware_feed import HardwareFeed

        screen = self._screen
        self._watched = screen.models.host
        # The provider runs on the sampler thread: it reads the session, never builds it.
        feed = HardwareFeed(
            screen,
            interval_s=screen.panel.sampling_interval(),
            process_ids=screen.models.process_ids,
            remote=self.remote_link(self._watched),
        )
        feed.start()
        self._extras_timer = screen.set_interval(EXTRAS_REFRESH_S, self.refresh_extras, name="server-extras")
        return feed

    def remote_link(self, host: HostEntry) -> RemoteLink | None:
        from lollma_tui.ui.controllers.hardware_feed import RemoteLink

        if host.hw is None:
            return None
        return RemoteLink(host.hw, host.hw_command, server_port(host), self._screen.options.ssh_options)

    def follow(self) -> None:
        """After a swap: the panel and the extras follow the host the chat is on now."""
        screen = self._screen
        host = screen.models.host
        moved = self._watched is not None and host != self._watched
        self._watched = host
        if screen.hardware is not None:
            if moved:
                self._link_troubles.clear()
            link = self.remote_link(host)
            if screen.hardware.watch(link):
                # The figures shown are another machine's: they go, not kept as if live.
                screen.panel.watching(None if link is None else plain(link.target.label, one_line=True))
        self.show_extras()
        if moved:
            where = host.url or "this machine"
            self._say(
                f"The chat is on {host.name} now ({host.kind} at {where}); the whole conversation goes "
                "with the next message."
            )

    def footprint_labels(self, snapshot: SystemSnapshot) -> dict[int, str]:
        """Names for the panel's model processes: ours, or the server on the remote machine."""
        if snapshot.host is not None:
            return {
                process.pid: plain(f"server on {snapshot.host}", one_line=True)
                for process in snapshot.processes
            }
        backend = self._screen.models.backend
        if backend.kind == BackendKind.LLAMA_CPP:
            return {pid: "llama.cpp worker" for pid in backend.process_ids()}
        return {}

    def link_changed(self, message: HardwareLinkChanged) -> None:
        """Say once why the link to a machine's hardware failed (never a password prompt: the
        reason says how to set up a key), and when it is back."""
        # Imported here: the hardware stack (psutil and all) is not needed for the first frame.
        from lollma_tui.core.hardware.remote import LinkState

        status = message.status
        if status.state is LinkState.STALE:
            # A retry repeats its reason with "— retrying in N s" after it; a session that ends
            # for one reason and comes back for another alternates: each reason is said once.
            if any(status.message.startswith(said) for said in self._link_troubles):
                return
            self._link_troubles.append(status.message)
            self._screen.panel.no_sample_because(plain(f"{message.host}: {status.message}"))
            # While the session is up its output is unreadable, and nothing is being retried.
            retrying = "" if status.session_up else " (retrying on its own)"
            self._say(f"Hardware of {message.host}: {status.message}{retrying}", "warning")
        elif status.state is LinkState.LIVE and self._link_troubles:
            self._link_troubles.clear()
            self._say(f"Hardware of {message.host}: live again over ssh.")

    # -- the server's extras ---------------------------------------------------------------------

    def _openai(self) -> OpenAIBackend | None:
        backend = self._screen.models.backend
        if backend.kind is not BackendKind.OPENAI:
            return None
        from lollma_tui.core.backends.openai import OpenAIBackend

        return backend if isinstance(backend, OpenAIBackend) else None

    def show_extras(self) -> None:
        """What the last load found (no request: the load has just asked)."""
        backend = self._openai()
        self._screen.post_message(ServerExtrasRead(backend.extras if backend is not None else None))

    def extras_read(self, info: ServerInfo, message: ServerExtrasRead) -> None:
        loaded = self._screen.models.loaded
        info.model = loaded.name if loaded is not None else None
        info.extras = message.extras

    def refresh_extras(self) -> None:
        ollama = self._screen.models.ollama()
        if ollama is not None and ollama.status.loaded is not None:
            # Ollama unloads a model left idle past its keep_alive: the card and the panel say so.
            self._screen.run_worker(
                ollama.check_still_loaded(), group="server-extras", exclusive=True, exit_on_error=False
            )
            return
        backend = self._openai()
        if backend is None or backend.status.loaded is None:
            return
        self._screen.run_worker(
            self._read_extras(backend), group="server-extras", exclusive=True, exit_on_error=False
        )

    async def _read_extras(self, backend: OpenAIBackend) -> None:
        extras = await backend.refresh_extras()
        if backend is self._screen.models.backend:
            self._screen.post_message(ServerExtrasRead(extras))

    # -- the hosts view and /host ------------------------------------------------------------------

    def open_view(self) -> None:
        from lollma_tui.ui.screens.hosts import HostsScreen

        screen = self._screen
        models = screen.models
        self._view = HostsScreen(models.hosts, active=models.host.name)
        screen.app.push_screen(self._view, self._chosen)
        screen.run_worker(self._survey(), group="host-survey", exclusive=True, exit_on_error=False)

    async def _survey(self) -> None:
        from lollma_tui.core.host_reports import gpu_summaries, report_hosts, with_gpus

        screen = self._screen
        known: dict[str, str] = {}
        feed = screen.hardware
        latest = feed.latest if feed is not None and not feed.stale else None
        if latest is not None and latest.gpu_summary:  # a stale one was listed as current
            known[screen.models.host.name] = latest.gpu_summary
        hosts = screen.models.hosts
        gpus = asyncio.ensure_future(
            gpu_summaries(hosts, known_gpus=known, ssh_options=screen.options.ssh_options)
        )
        try:
            # The servers' answers first: one machine slow over ssh held every row at "asking…".
            asked = await report_hosts(hosts, known=self._while_writing())
            reports = [self._with_own_models(report) for report in asked]
            screen.post_message(HostsReported(tuple(with_gpus(reports, [known.get(h.name) for h in hosts]))))
            screen.post_message(HostsReported(tuple(with_gpus(reports, await gpus))))
        finally:
            gpus.cancel()

    def _while_writing(self) -> dict[str, HostReport]:
        """The server writing a reply is not asked: llama-cpp-python's ends the reply it is
        writing at any other request, so opening this view cut it. What the chat's own
        backend last read stands in."""
        from lollma_tui.core.backends.openai import OpenAIBackend
        from lollma_tui.core.host_reports import HostReport

        models = self._screen.models
        backend = models.backend
        if not self._screen.is_generating or not isinstance(backend, OpenAIBackend):
            return {}
        label = f"{backend.extras.label} · writing a reply"
        loaded = (models.loaded.name,) if models.loaded is not None else ()
        served = tuple(model.id for model in backend.listed)
        return {models.host.name: HostReport(models.host, True, label, served, loaded)}

    def _with_own_models(self, report: HostReport) -> HostReport:
        """llama.cpp runs in this app, so no server says what it has: the app does (it said "—"
        beside a model in use)."""
        if report.entry.kind is not BackendKind.LLAMA_CPP:
            return report
        models = self._screen.models
        loaded = models.loaded if models.backend.kind is BackendKind.LLAMA_CPP else None
        catalog = self._screen.catalog.catalogs.get(BackendKind.LLAMA_CPP)
        return replace(
            report,
            models=tuple(group.name for group in catalog.groups) if catalog is not None else report.models,
            loaded=(loaded.name,) if loaded is not None else (),
        )

    def reported(self, message: HostsReported) -> None:
        view = self._view
        if view is not None and view.is_attached:
            view.reports = message.reports

    async def _chosen(self, name: str | None) -> None:
        self._view = None
        self._screen.workers.cancel_group(self._screen, "host-survey")
        if name is not None and name != self._screen.models.host.name:
            await self.move(name)

    async def move(self, name: str, model: str = "") -> None:
        """/host NAME [MODEL]: load MODEL (or the host's own choice) there, keeping the chat."""
        screen = self._screen
        models = screen.models
        host = models.find_host(name)
        if host is None:
            names = ", ".join(h.name for h in models.hosts)
            self._say(f"No host named {name!r}. Hosts: {names} (/hosts shows them).", "error")
            return
        if host == models.host and not model:
            self._say(f"The chat is on {host.name} already.")
            return
        screen.run_worker(self._move(host, model), group="host-move", exclusive=True, exit_on_error=False)

    async def _move(self, host: HostEntry, model: str) -> None:
        screen = self._screen
        models = screen.models
        if not model:
            chosen = await self._model_for(host)
            if chosen is None:
                return
            model = chosen
        if models.move_to_host(host, model):
            self._say(f"Moving the chat to {host.name} ({model})…")

    async def _model_for(self, host: HostEntry) -> str | None:
        from lollma_tui.core.host_reports import model_to_load, report_host

        screen = self._screen
        models = screen.models
        remembered = models.remembered_model(host)
        if host.kind is BackendKind.LLAMA_CPP:
            model = remembered or models.session.last_models.get(BackendKind.LLAMA_CPP)
            if not model:
                self._say(f"Name the GGUF to load on {host.name}: /host {host.name} PATH", "error")
            return model or None
        report = await report_host(host)
        if not report.reachable:
            self._say(f"{host.name} does not answer: {report.message}", "error")
            return None
        model = model_to_load(report, remembered)
        if model is None:
            offered = ", ".join(report.models[:8]) or "no models"
            self._say(f"{host.name} offers {offered}: choose one with /host {host.name} MODEL", "warning")
        return model
