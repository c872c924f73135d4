"""Asking every host at once: reachable or not, models, what is loaded, each on its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ollama_server import OllamaTestServer
from openai_server import Flavour, OpenAITestServer, ServedSpec
from openai_server.fixtures import free_port
from sshd_server import ALIAS, QUIET_SSH_OPTIONS, SshServer, monitor_command, quiet_machine

from lollma_tui.core.hardware.ssh_target import SshTarget
from lollma_tui.core.host_reports import HostReport, model_to_load, report_hosts, survey_hosts
from lollma_tui.core.hosts import HostEntry
from lollma_tui.core.settings import BackendKind


async def test_each_host_is_reported_and_a_dead_one_does_not_hold_the_others() -> None:
    studio_models = [ServedSpec("granite-3.0-2b-instruct"), ServedSpec("qwen3-4b", loaded=False)]
    with (
        OpenAITestServer(Flavour.LM_STUDIO, models=studio_models) as studio,
        OpenAITestServer(Flavour.LLAMA_SERVER) as llama,
        OllamaTestServer() as ollama,
    ):
        entries = [
            HostEntry("local", BackendKind.LLAMA_CPP),
            HostEntry("studio", BackendKind.OPENAI, studio.base_url),
            HostEntry("box", BackendKind.OPENAI, llama.base_url),
            HostEntry("ollama", BackendKind.OLLAMA, ollama.host),
            HostEntry("gone", BackendKind.OPENAI, f"http://127.0.0.1:{free_port()}/v1"),
        ]
        reports = {r.entry.name: r for r in await report_hosts(entries, timeout_s=5)}
    assert reports["local"].reachable and reports["local"].message == "llama.cpp in this app"
    studio_report = reports["studio"]
    assert (studio_report.message, studio_report.models) == (
        "LM Studio",
        ("granite-3.0-2b-instruct", "qwen3-4b"),
    )
    assert studio_report.loaded == ("granite-3.0-2b-instruct",)
    assert (
        reports["box"].message.startswith("llama-server") and reports["box"].loaded == reports["box"].models
    )
    assert reports["ollama"].reachable and reports["ollama"].message.startswith("Ollama ")
    assert reports["ollama"].models and reports["ollama"].loaded == ()
    assert not reports["gone"].reachable
    assert "No OpenAI-compatible server answers" in reports["gone"].message


def test_a_host_with_remote_hardware_gets_its_gpu_summary_over_ssh(
    sshd: SshServer, fake_nvml_site: Path
) -> None:
    with OpenAITestServer(Flavour.LLAMA_SERVER) as llama:
        entries = [
            HostEntry(
                "box",
                BackendKind.OPENAI,
                llama.base_url,
                hw=SshTarget(ALIAS),
                hw_command=monitor_command(fake_nvml_site, 0.5),
            ),
            HostEntry("local", BackendKind.LLAMA_CPP),
            HostEntry("den", BackendKind.OLLAMA, "http://127.0.0.1:9", hw=SshTarget("no-such-alias")),
        ]
        reports = asyncio.run(
            survey_hosts(entries, known_gpus={"local": "CPU only"}, ssh_options=sshd.options, timeout_s=3)
        )
    box, local, den = reports
    assert box.reachable and box.gpu_summary is not None
    assert box.gpu_summary.startswith("2 GPUs") and "4090" in box.gpu_summary
    assert local.gpu_summary == "CPU only"
    assert not den.reachable and den.gpu_summary is not None and "no-such-alias" in den.gpu_summary


def test_machines_gone_quiet_over_ssh_do_not_hold_up_a_healthy_server() -> None:
    # Each reading held a thread of the loop's pool for its whole timeout: with a few machines
    # gone quiet, the pool that name lookups need was full, and a healthy server read "no
    # answer within 5 s" (and quitting the app waited for those threads).
    with quiet_machine() as port, OpenAITestServer(Flavour.LLAMA_SERVER) as healthy:
        entries = [HostEntry("healthy", BackendKind.OPENAI, healthy.base_url)]
        entries += [
            HostEntry(f"box{i}", BackendKind.OPENAI, healthy.base_url, hw=SshTarget("127.0.0.1", port=port))
            for i in range(8)
        ]
        reports = asyncio.run(
            survey_hosts(entries, ssh_options=QUIET_SSH_OPTIONS, timeout_s=3, hardware_timeout_s=6)
        )
    assert reports[0].reachable, reports[0].message
    assert all(r.gpu_summary is not None and "within 6 s" in r.gpu_summary for r in reports[1:])


def test_the_model_a_move_loads_when_none_is_named() -> None:
    entry = HostEntry("box", BackendKind.OPENAI, "http://box:8080/v1")
    offered = HostReport(entry, True, "LM Studio", models=("a", "b"), loaded=("b",))
    assert model_to_load(offered, remembered="a") == "a"
    assert model_to_load(offered, remembered="gone") == "b"
    assert model_to_load(HostReport(entry, True, "x", models=("a", "b")), None) is None
    assert model_to_load(HostReport(entry, True, "x", models=("only",)), None) == "only"
