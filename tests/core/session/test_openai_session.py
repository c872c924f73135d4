"""Hot-swapping on an OpenAI-compatible server: another model id, and read-only server settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from openai_helpers import openai_settings, reply, text_of
from openai_server import Flavour, OpenAITestServer, ServedSpec

from lollma_tui.core.backends.base import Backend
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.backends.openai import OpenAIBackend
from lollma_tui.core.session.budget import MemoryBudget
from lollma_tui.core.session.reload import read_only_fields, reload_needed
from lollma_tui.core.session.session import ModelSession
from lollma_tui.core.settings import BackendKind, LoadSettings

MODELS = [ServedSpec("llama-3.2-1b-instruct-q8_0"), ServedSpec("qwen3-4b-q4_k_m")]


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(Flavour.LLAMA_SERVER, models=[ServedSpec(m.id) for m in MODELS]) as running:
        yield running


@pytest.fixture
async def session(server: OpenAITestServer) -> AsyncIterator[ModelSession]:
    def factory(kind: BackendKind) -> Backend:
        assert kind is BackendKind.OPENAI
        return OpenAIBackend(server.base_url, timeout_s=10)

    model_session = ModelSession(factory, openai_settings(MODELS[0].id))
    yield model_session
    await model_session.close()


def test_every_server_setting_is_read_only_with_a_reason() -> None:
    fields = read_only_fields(BackendKind.OPENAI)
    assert {"n_gpu_layers", "n_ctx", "n_threads", "n_batch", "flash_attn", "kv_cache_type"} <= set(fields)
    assert "model" not in fields
    assert all("server" in reason for reason in fields.values())
    old = openai_settings("a")
    assert reload_needed(old, old.with_changes(n_ctx=8192)) == ()
    assert reload_needed(old, old.with_changes(model="b")) == ("model",)


async def test_swapping_is_choosing_another_model_id(session: ModelSession, server: OpenAITestServer) -> None:
    first = await session.load()
    assert first.ok and first.loaded is not None and first.loaded.name == MODELS[0].id
    result = await session.swap(openai_settings(MODELS[1].id))
    assert result.ok and result.reloaded, result.message
    server.queue("from the second model")
    assert text_of(await reply(session.backend)) == "from the second model"  # type: ignore[arg-type]
    assert server.chat_requests()[-1].body["model"] == MODELS[1].id


async def test_a_changed_server_setting_is_refused_with_its_reason(session: ModelSession) -> None:
    await session.load()
    asked = session.settings.with_changes(n_ctx=32768, n_gpu_layers=-1)
    # Even with a tiny budget nothing is refused for memory: the server's memory is not ours to judge.
    result = await session.swap(asked, budget=MemoryBudget(free_ram=1, free_vram=1))
    assert result.ok and not result.reloaded
    assert "unchanged" in result.message
    assert any(
        note.startswith("n_ctx not changed: set when the OpenAI-compatible server starts")
        for note in result.notes
    )
    assert any(note.startswith("n_gpu_layers not changed") for note in result.notes)
    # The settings shown stay what the server runs, not what was asked for.
    assert session.settings.n_ctx == openai_settings("x").n_ctx
    assert session.settings.n_gpu_layers == 0


async def test_a_model_the_server_lacks_rolls_back(session: ModelSession) -> None:
    await session.load()
    result = await session.swap(openai_settings("gpt-4o"))
    assert not result.ok and result.rolled_back
    assert result.loaded is not None and result.loaded.name == MODELS[0].id
    assert "has no model 'gpt-4o'" in result.message


async def test_the_catalog_is_the_servers_model_list(session: ModelSession) -> None:
    await session.load()
    catalog = await session.catalog()
    assert [g.name for g in catalog.groups] == [m.id for m in MODELS]
    assert [g.variants[0].quant for g in catalog.groups] == ["Q8_0", "Q4_K_M"]
    choice = await session.choose_model("qwen3")
    assert choice.ref == MODELS[1].id


async def test_a_switch_to_an_id_the_server_does_not_list_leaves_the_model_in_use(
    server: OpenAITestServer, tiny_gguf: Path, tmp_path: Path
) -> None:
    # The backend's load refuses an id its server does not list: the switch is refused before
    # the llama.cpp model is unloaded, not after (then reloaded, minutes for a big one).
    def factory(kind: BackendKind) -> Backend:
        if kind is BackendKind.OPENAI:
            return OpenAIBackend(server.base_url, timeout_s=10)
        return LlamaCppBackend(log_path=tmp_path / "llama.log")

    session = ModelSession(factory, LoadSettings(model=str(tiny_gguf), n_ctx=512))
    try:
        assert (await session.load()).ok
        (worker,) = session.process_ids()
        result = await session.swap(openai_settings("llama-3.2-1b-instruct-q8"))
        assert result.refused and "has no model 'llama-3.2-1b-instruct-q8'" in result.message
        assert "it offers: llama-3.2-1b-instruct-q8_0, qwen3-4b-q4_k_m" in result.message
        assert session.kind is BackendKind.LLAMA_CPP and session.process_ids() == (worker,)
        # Several models and none named: which one is asked, before anything is unloaded too.
        unnamed = await session.swap(openai_settings(""))
        assert unnamed.refused and "which model?" in unnamed.message
        assert session.process_ids() == (worker,)
    finally:
        await session.close()
