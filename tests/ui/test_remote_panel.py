"""The hardware panel fed over a real ssh session: the far side's two (fake NVML) GPUs labelled
with the host, the model server's footprint there, "stale" when the far side dies, and recovery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_app_support import notices, wait_ready
from openai_server import Flavour, OpenAITestServer
from pilot_support import wait_until
from sshd_server import ALIAS, SshServer, monitor_command
from textual.widgets import Static

from lollma_tui.core.hardware.ssh_target import SshTarget
from lollma_tui.core.hosts import HostEntry
from lollma_tui.core.settings import BackendKind, LoadSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.widgets.hardware_panel import HardwarePanel

INTERVAL_S = 0.25


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(Flavour.LLAMA_SERVER) as running:
        yield running


def make_app(server: OpenAITestServer, command: str, ssh_options: tuple[str, ...]) -> LollmaApp:
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OPENAI, model=""),
        openai_base_url=server.base_url,
        hw_host=ALIAS,
        hw_command=command,
        ssh_options=ssh_options,
        hardware_interval_s=INTERVAL_S,
    )
    return LollmaApp(options)


def local_app_with_host(server: OpenAITestServer, sshd: SshServer, host: HostEntry) -> LollmaApp:
    """The app on `server` with this machine's hardware, and `host` to move the chat to."""
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OPENAI, model=""),
        openai_base_url=server.base_url,
        ssh_options=sshd.options,
        hardware_interval_s=INTERVAL_S,
    )
    return LollmaApp(options, hosts=(host,))


def text_of(panel: HardwarePanel, selector: str) -> str:
    return str(panel.query_one(selector, Static).render())


async def test_the_panel_shows_the_remote_box_and_recovers_from_a_killed_link(
    server: OpenAITestServer, sshd: SshServer, fake_nvml_site: Path
) -> None:
    # The far side follows the process serving the model's port, as `monitor --port` does.
    command = monitor_command(fake_nvml_site, INTERVAL_S) + f" --port {server.port}"
    app = make_app(server, command, sshd.options)
    main = app.chat_screen
    async with app.run_test(size=(120, 44)) as pilot:
        await wait_ready(pilot, app)
        panel = main.hardware_panel
        await wait_until(pilot, lambda: len(panel.gpu_blocks) == 2, within=30)
        assert text_of(panel, "#hw-title").startswith(f"hardware · {ALIAS}")
        snapshot = panel.snapshot
        assert snapshot is not None and snapshot.host == ALIAS
        assert [g.name for g in snapshot.gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3090"]
        # The model server's footprint on that machine, named as such.
        await wait_until(pilot, lambda: f"server on {ALIAS}" in text_of(panel, "#hw-footprint"), within=15)
        # The free memory of another machine is never used to check a local load.
        assert main.memory_budget() is None
        assert not panel.stale

        monitors = [p for p in sshd.sessions() if "monitor" in " ".join(p.cmdline())]
        assert monitors, "the remote monitor should run under sshd"
        for process in monitors:
            process.kill()
        await wait_until(pilot, lambda: panel.stale, within=15)
        assert panel.has_class("-stale") and panel.query_one("#hw-stale", Static).display
        await wait_until(pilot, lambda: any(f"Hardware of {ALIAS}:" in n for n in notices(app)), within=15)
        # The retry starts a new ssh session and the panel comes back by itself.
        await wait_until(pilot, lambda: not panel.stale, within=30)
        assert panel.snapshot is not None and panel.snapshot.host == ALIAS
        await wait_until(pilot, lambda: any("live again over ssh" in n for n in notices(app)), within=15)


async def test_a_refused_key_is_a_notice_on_setting_one_up(
    server: OpenAITestServer, sshd: SshServer, fake_nvml_site: Path
) -> None:
    wrong = ("-F", str(sshd.wrong_key_config()))
    app = make_app(server, monitor_command(fake_nvml_site, INTERVAL_S), wrong)
    async with app.run_test(size=(120, 44)) as pilot:
        await wait_ready(pilot, app)
        await wait_until(pilot, lambda: any("without a password" in n for n in notices(app)), within=30)
        notice = next(n for n in notices(app) if "without a password" in n)
        assert f"ssh-copy-id {ALIAS}" in notice and "ssh-keygen" in notice
        panel = app.chat_screen.hardware_panel
        assert panel.snapshot is None and not panel.gpu_blocks


async def test_the_panel_follows_the_chat_to_a_host_with_remote_hardware(
    server: OpenAITestServer, sshd: SshServer, fake_nvml_site: Path
) -> None:
    with OpenAITestServer(Flavour.VLLM) as gpu_server:
        box = HostEntry(
            "box",
            BackendKind.OPENAI,
            gpu_server.base_url,
            hw=SshTarget(ALIAS),
            hw_command=monitor_command(fake_nvml_site, INTERVAL_S),
        )
        app = local_app_with_host(server, sshd, box)
        main = app.chat_screen
        async with app.run_test(size=(120, 44)) as pilot:
            await wait_ready(pilot, app)
            panel = main.hardware_panel
            await wait_until(pilot, lambda: panel.snapshot is not None)
            assert text_of(panel, "#hw-title") == "hardware" and panel.snapshot.host is None
            await pilot.press(*"/host box", "enter")
            await wait_until(pilot, lambda: main.models.host.name == "box", within=15)
            await wait_until(pilot, lambda: len(panel.gpu_blocks) == 2, within=30)
            assert text_of(panel, "#hw-title") == f"hardware · {ALIAS}"
            # The vLLM server's own figures are under the model card now.
            assert "vLLM 0.9.1" in str(main.query_one("#server-lines", Static).render())
            await pilot.press(*f"/host 127.0.0.1:{server.port}", "enter")
            await wait_until(pilot, lambda: main.models.host.name != "box", within=15)
            await wait_until(
                pilot, lambda: panel.snapshot is not None and panel.snapshot.host is None, within=15
            )
            assert text_of(panel, "#hw-title") == "hardware"
            assert not any("RTX" in g.name for g in panel.snapshot.gpus)


async def test_unreadable_remote_output_is_one_notice_that_promises_no_retry(
    server: OpenAITestServer, sshd: SshServer, fake_nvml_site: Path
) -> None:
    # Junk lines, each refused by the JSON parser its own way, made a notice each, every one
    # saying "(retrying on its own)" while nothing was retried, and naming the host twice.
    junk = "i=0; while [ $i -lt 40 ]; do i=$((i+1)); printf '%*s{\\n' $i ''; done"
    command = f"{junk}; exec {monitor_command(fake_nvml_site, INTERVAL_S)}"
    app = make_app(server, command, sshd.options)
    async with app.run_test(size=(120, 44)) as pilot:
        await wait_ready(pilot, app)
        panel = app.chat_screen.hardware_panel
        # The junk came first on the same stream: once the GPUs show, all of it has been read.
        await wait_until(pilot, lambda: len(panel.gpu_blocks) == 2, within=30)
        await wait_until(pilot, lambda: any("live again over ssh" in n for n in notices(app)), within=15)
        trouble = [
            n for n in notices(app) if n.startswith(f"! Hardware of {ALIAS}") and "live again" not in n
        ]
        assert len(trouble) == 1, trouble
        assert "its output is not lollma-tui hardware lines" in trouble[0]
        assert "retrying" not in trouble[0] and f"{ALIAS}: {ALIAS}" not in trouble[0]


async def test_moving_to_a_host_whose_hardware_cannot_be_read_drops_the_last_machine_s_figures(
    server: OpenAITestServer, sshd: SshServer
) -> None:
    # This machine's figures stayed in the panel, not marked stale, after /host to a machine
    # whose ssh link failed: they read as that machine's.
    with OpenAITestServer(Flavour.VLLM) as gpu_server:
        unreachable = SshTarget("127.0.0.1", port=1)  # nothing listens there
        box = HostEntry("box", BackendKind.OPENAI, gpu_server.base_url, hw=unreachable)
        app = local_app_with_host(server, sshd, box)
        main = app.chat_screen
        async with app.run_test(size=(120, 44)) as pilot:
            await wait_ready(pilot, app)
            panel = main.hardware_panel
            await wait_until(pilot, lambda: panel.snapshot is not None)
            await pilot.press(*"/host box", "enter")
            await wait_until(pilot, lambda: main.models.host.name == "box", within=15)
            await wait_until(pilot, lambda: panel.snapshot is None, within=5)
            waiting = lambda: text_of(panel, "#hw-waiting")  # noqa: E731
            assert panel.has_class("-waiting")
            await wait_until(pilot, lambda: "Connection refused" in waiting(), within=15, explain=waiting)
            assert waiting().startswith("127.0.0.1: ssh cannot reach 127.0.0.1:1")
            # Named before its first sample: the title said "hardware", this machine.
            assert text_of(panel, "#hw-title") == "hardware · 127.0.0.1"
