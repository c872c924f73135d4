"""Asking every host at once: reachable or not, models, what is loaded, each on its own."""

from __future__ import annotations

from ollama_server import OllamaTestServer
from openai_server import Flavour, OpenAITestServer, ServedSpec
from openai_server.fixtures import free_port

from lollma_tui.core.host_reports import report_hosts
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
