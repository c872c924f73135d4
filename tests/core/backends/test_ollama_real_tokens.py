"""Real tokens through the whole Ollama path: OllamaBackend → ollama client → HTTP → test
server → the project's llama.cpp backend (worker process) on the tiny random-weight GGUF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ollama_server import OllamaTestServer, spec_from_gguf
from ollama_server.llama_engine import LlamaCppEngine
from ollama_test_support import collect, ollama_settings, user

from lollma_tui.core.backends.base import ReplyDone, TextDelta
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.settings import SamplingSettings

TINY = "tiny:latest"


@pytest.fixture
def real_server(tiny_gguf: Path, tmp_path: Path) -> Iterator[OllamaTestServer]:
    spec = spec_from_gguf(tiny_gguf, TINY)
    engine = LlamaCppEngine(lambda: LlamaCppBackend(log_path=tmp_path / "llama.cpp.log"))
    with OllamaTestServer(engine=engine, installed=[spec], library=[spec]) as server:
        yield server


async def test_real_tokens_stream_through_ollama(real_server: OllamaTestServer) -> None:
    backend = OllamaBackend(real_server.host, timeout_s=60.0)
    try:
        loaded = await backend.load(ollama_settings("tiny", n_ctx=512, n_threads=1, n_gpu_layers=0))
        assert (loaded.architecture, loaded.n_layers, loaded.n_ctx) == ("llama", 2, 512)

        sampling = SamplingSettings(seed=1, max_tokens=24)
        text, _, done = await collect(backend.stream_chat(user("Tell me about the quantum cache."), sampling))
        assert text.strip()
        assert done.stats.gen_tokens > 0
        assert done.stats.gen_tps
        assert done.stats.prompt_tokens
        assert done.stats.prompt_tokens > 5
        record = real_server.generations[-1]
        assert record.done
        assert record.eval_count == done.stats.gen_tokens > 0
        assert record.text == text

        # Stopping a real reply reaches the server, which stops the llama.cpp worker too. The
        # paced pieces keep the reply in flight whatever the machine's speed. (The worker sends
        # its tokens in batches, so the server's pieces are fewer than its tokens: a long reply,
        # stopped at its first piece.)
        real_server.delay_pieces(0.05)
        events = []
        going_on = SamplingSettings(seed=3, repeat_penalty=1.0, max_tokens=400)
        async for event in backend.stream_chat(user("Go on."), going_on):
            events.append(event)
            if len(events) == 1:
                await backend.cancel()
        assert isinstance(events[-1], ReplyDone)
        assert events[-1].finish_reason == "cancelled"
        assert all(isinstance(e, TextDelta) for e in events[:-1])
        (gone,) = await real_server.until(lambda: real_server.disconnects, within_s=10)
        assert not gone.done
        real_server.clear_faults()

        # And the whole path still works afterwards.
        text, _, done = await collect(
            backend.stream_chat(user("Again."), SamplingSettings(seed=2, max_tokens=8))
        )
        assert text
        assert done.finish_reason in ("stop", "length")
    finally:
        await backend.close()
