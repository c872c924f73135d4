"""The official `ollama` client, sync and async, against the test server: every call a
third-party Ollama client makes must work, with the same types and errors as against Ollama."""

from __future__ import annotations

from datetime import datetime

import httpx
import ollama
import pytest
from ollama_server import OllamaTestServer, Script

Q4 = "tinyllama:1b-q4_K_M"
THINKER = "qwen3:0.6b"
HELLO = [{"role": "user", "content": "Hello"}]


def test_sync_client_chat_and_generate(ollama_server: OllamaTestServer) -> None:
    client = ollama.Client(host=ollama_server.host)
    ollama_server.queue_reply("First reply.", "Second reply.", "Third.", "Fourth.")

    reply = client.chat(model=Q4, messages=HELLO)
    assert isinstance(reply, ollama.ChatResponse)
    assert reply.message.content == "First reply."
    assert reply.done
    assert reply.done_reason == "stop"
    assert reply.eval_count == 3
    assert reply.eval_duration
    assert reply.eval_duration > 0

    parts = list(client.chat(model=Q4, messages=HELLO, stream=True))
    assert "".join(p.message.content or "" for p in parts) == "Second reply."
    assert parts[-1].done
    assert parts[-1].prompt_eval_count

    generated = client.generate(model=Q4, prompt="Go on")
    assert generated.response == "Third."
    assert generated.context

    streamed = list(client.generate(model=Q4, prompt="Go on", context=generated.context, stream=True))
    assert "".join(p.response or "" for p in streamed) == "Fourth."
    assert streamed[-1].context
    assert len(streamed[-1].context) > len(generated.context)


def test_sync_client_load_unload_and_catalog(ollama_server: OllamaTestServer) -> None:
    client = ollama.Client(host=ollama_server.host)
    assert client.chat(model=Q4, messages=[]).done_reason == "load"
    assert client.generate(model=THINKER).done_reason == "load"
    running = client.ps()
    assert {m.model for m in running.models} == {Q4, THINKER}
    for model in running.models:
        assert isinstance(model.expires_at, datetime)
        assert model.size
        assert model.size_vram is not None
        assert model.context_length
    assert client.chat(model=Q4, messages=[], keep_alive=0).done_reason == "unload"
    assert client.generate(model=THINKER, keep_alive=0).done_reason == "unload"
    assert client.ps().models == []

    listed = client.list()
    assert {m.model for m in listed.models} >= {Q4, THINKER}
    assert all(isinstance(m.modified_at, datetime) and m.details for m in listed.models)

    shown = client.show(Q4)
    assert shown.modelinfo
    assert shown.modelinfo["llama.block_count"] == 22
    assert shown.capabilities == ["completion"]
    assert shown.details
    assert shown.details.quantization_level == "Q4_K_M"
    assert shown.parameters
    assert shown.template

    progress = list(client.pull("smollm2:135m", stream=True))
    assert progress[0].status == "pulling manifest"
    assert progress[-1].status == "success"
    assert client.pull("smollm2:135m").status == "success"
    assert client.delete("smollm2:135m").status == "success"

    # The client has no version(); other clients read it with plain HTTP.
    assert httpx.get(f"{ollama_server.url}/api/version").json()["version"] == "0.33.0"


def test_sync_client_errors(ollama_server: OllamaTestServer) -> None:
    client = ollama.Client(host=ollama_server.host)
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="nope", messages=HELLO)
    assert (missing.value.status_code, missing.value.error) == (404, "model 'nope' not found")
    with pytest.raises(ollama.ResponseError) as streamed_missing:
        list(client.chat(model="nope", messages=HELLO, stream=True))
    assert streamed_missing.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as thinking:
        client.chat(model=Q4, messages=HELLO, think=True)
    assert thinking.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as deleted:
        client.delete("nope")
    assert deleted.value.status_code == 404

    ollama_server.fail_stream("runner crashed", after=1)
    with pytest.raises(ollama.ResponseError) as mid_stream:
        list(client.chat(model=Q4, messages=HELLO, stream=True))
    assert (mid_stream.value.status_code, mid_stream.value.error) == (-1, "runner crashed")
    with pytest.raises(ollama.ResponseError) as pull:
        list(client.pull("no-such-model", stream=True))
    assert pull.value.status_code == -1


def test_sync_client_thinking(ollama_server: OllamaTestServer) -> None:
    client = ollama.Client(host=ollama_server.host)
    ollama_server.queue_reply(Script(text="42.", thinking="Deep thought."))
    parts = list(client.chat(model=THINKER, messages=HELLO, think=True, stream=True))
    thinking = "".join(p.message.thinking or "" for p in parts)
    content = "".join(p.message.content or "" for p in parts)
    assert (thinking, content) == ("Deep thought.", "42.")
    first_content = next(i for i, p in enumerate(parts) if p.message.content)
    assert all(not p.message.thinking for p in parts[first_content:])


async def test_async_client_every_endpoint(ollama_server: OllamaTestServer) -> None:
    client = ollama.AsyncClient(host=ollama_server.host)
    ollama_server.queue_reply(
        "Async one.", "Async two.", "Async three.", Script(text="Yes.", thinking="Sure.")
    )

    reply = await client.chat(model=Q4, messages=HELLO, options={"min_p": 0.05, "num_ctx": 1024})
    assert reply.message.content == "Async one."
    assert ollama_server.generations[-1].options == {"min_p": 0.05, "num_ctx": 1024}

    stream = await client.chat(model=Q4, messages=HELLO, stream=True)
    assert "".join([p.message.content or "" async for p in stream]) == "Async two."

    generated = await client.generate(model=Q4, prompt="x")
    assert generated.response == "Async three."
    assert generated.context

    thinking = [p async for p in await client.chat(model=THINKER, messages=HELLO, stream=True)]
    assert "".join(p.message.thinking or "" for p in thinking) == "Sure."

    assert (await client.chat(model=Q4, messages=[], keep_alive="10m")).done_reason == "load"
    assert Q4 in {m.model for m in (await client.ps()).models}
    assert (await client.chat(model=Q4, messages=[], keep_alive=0)).done_reason == "unload"
    assert Q4 not in {m.model for m in (await client.ps()).models}

    assert len((await client.list()).models) == 4
    assert (await client.show(THINKER)).capabilities == ["completion", "tools", "thinking"]
    progress = [p async for p in await client.pull("smollm2:135m", stream=True)]
    assert [p.status for p in progress][-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert (await client.delete("smollm2:135m")).status == "success"

    with pytest.raises(ollama.ResponseError) as missing:
        await client.show("nope")
    assert missing.value.status_code == 404
    ollama_server.fail_stream("boom", after=2)
    with pytest.raises(ollama.ResponseError) as mid_stream:
        async for _ in await client.chat(model=Q4, messages=HELLO, stream=True):
            pass
    assert mid_stream.value.status_code == -1
    await client.close()  # type: ignore[no-untyped-call]


def test_clients_report_a_server_that_is_down_like_against_ollama(dead_ollama_host: str) -> None:
    client = ollama.Client(host=dead_ollama_host)
    # Non-streaming calls wrap the failure; streaming ones leak httpx.ConnectError (§A.9).
    with pytest.raises(ConnectionError):
        client.list()
    with pytest.raises(httpx.ConnectError):
        list(client.chat(model=Q4, messages=HELLO, stream=True))
