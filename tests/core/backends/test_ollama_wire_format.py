"""The test server at the byte level: what any Ollama client sees on the wire (§A.10)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from ollama_server import OllamaTestServer, Script
from ollama_server.catalog import default_installed

METRICS = {
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
}
GO_TIME_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$")
GO_TIME = re.compile(r"^\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?(Z|[+-]\d\d:\d\d)$")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
Q4 = "tinyllama:1b-q4_K_M"


@pytest.fixture
def http(ollama_server: OllamaTestServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ollama_server.url, timeout=5.0) as client:
        yield client


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    """Parse an NDJSON body, checking the framing every client relies on."""
    assert response.headers["content-type"] == "application/x-ndjson"
    body = response.content
    assert body.endswith(b"\n")
    lines = body[:-1].split(b"\n")
    assert all(line.strip() for line in lines), "a blank line breaks the official client"
    for line in lines:
        outside_strings = _STRING.sub(b'""', line)
        assert not re.search(rb"\s", outside_strings), f"not compact JSON: {line!r}"
    return [json.loads(line) for line in lines]


def chat(http: httpx.Client, **body: Any) -> httpx.Response:
    body.setdefault("model", Q4)
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return http.post("/api/chat", json=body)


# -- streaming ----------------------------------------------------------------------------------


def test_chat_streams_ndjson_when_stream_is_absent(
    http: httpx.Client, ollama_server: OllamaTestServer
) -> None:
    ollama_server.queue_reply(Script(text="Hello there, world."))
    lines = ndjson(chat(http))
    assert len(lines) > 2
    assert "".join(line["message"]["content"] for line in lines) == "Hello there, world."
    for line in lines:
        assert line["model"] == Q4
        assert line["message"]["role"] == "assistant"
        assert "content" in line["message"]
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]


def test_metrics_only_on_the_final_chunk(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(
        Script(text="one two three", tokens_per_second=1000, prompt_tokens_per_second=500)
    )
    lines = ndjson(chat(http))
    *chunks, final = lines
    for chunk in chunks:
        assert not METRICS & chunk.keys()
        assert "done_reason" not in chunk
    assert final.keys() >= METRICS
    assert all(isinstance(final[key], int) for key in METRICS)
    assert final["done_reason"] == "stop"
    assert final["eval_count"] == 3
    # Nanoseconds: 3 tokens at 1000 tok/s.
    assert final["eval_duration"] == 3_000_000
    assert final["prompt_eval_duration"] == final["prompt_eval_count"] * 2_000_000
    assert final["total_duration"] >= final["load_duration"] > 0


def test_stream_false_returns_one_json_object(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(Script(text="Whole reply at once."))
    response = chat(http, stream=False)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["message"] == {"role": "assistant", "content": "Whole reply at once."}
    assert body["done"] is True
    assert body.keys() >= METRICS


def test_lines_are_flushed_as_they_are_generated(ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(Script(text="a b c d e f g h i j", tokens_per_second=25))
    started = time.perf_counter()
    arrivals = []
    with (
        httpx.Client(base_url=ollama_server.url, timeout=5.0) as http,
        http.stream(
            "POST", "/api/chat", json={"model": Q4, "messages": [{"role": "user", "content": "x"}]}
        ) as r,
    ):
        for _ in r.iter_lines():
            arrivals.append(time.perf_counter() - started)
    assert arrivals[-1] >= 0.35  # ten pieces at 25/s
    assert arrivals[0] < arrivals[-1] - 0.2, "the first line must not wait for the whole reply"


def test_created_at_looks_like_go(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(Script(text=" ".join(["word"] * 40)))
    for line in ndjson(chat(http)):
        assert GO_TIME_UTC.match(line["created_at"]), line["created_at"]


def test_thinking_model_streams_thinking_first(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(Script(text="Answer.", thinking="Hmm, let me see."))
    lines = ndjson(chat(http, model="qwen3:0.6b"))
    kinds = ["thinking" if line["message"].get("thinking") else "content" for line in lines[:-1]]
    assert kinds == sorted(kinds, key=lambda k: k != "thinking")
    assert "".join(line["message"].get("thinking", "") for line in lines) == "Hmm, let me see."
    assert "".join(line["message"]["content"] for line in lines) == "Answer."
    # think:false switches it off.
    lines = ndjson(chat(http, model="qwen3:0.6b", think=False))
    assert not any(line["message"].get("thinking") for line in lines)


def test_think_on_a_model_without_the_capability_is_400(http: httpx.Client) -> None:
    response = chat(http, think=True)
    assert response.status_code == 400
    assert response.json() == {"error": f'"{Q4}" does not support thinking'}
    assert chat(http, think="sideways", model="qwen3:0.6b").status_code == 400


def test_generate_streams_response_and_context(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(Script(text="Generated text."))
    lines = ndjson(http.post("/api/generate", json={"model": Q4, "prompt": "Say something"}))
    *chunks, final = lines
    assert "".join(c["response"] for c in chunks) == "Generated text."
    assert all("context" not in c and not METRICS & c.keys() for c in chunks)
    assert final["response"] == ""
    assert final["done_reason"] == "stop"
    assert final["context"]
    assert all(isinstance(t, int) for t in final["context"])
    # Raw mode sends no context; stream:false sends the whole response in one object.
    body = http.post("/api/generate", json={"model": Q4, "prompt": "x", "raw": True, "stream": False}).json()
    assert body["response"] == Script().text
    assert "context" not in body


# -- load, unload, keep_alive -------------------------------------------------------------------


def test_empty_messages_load_and_keep_alive_zero_unloads(
    http: httpx.Client, ollama_server: OllamaTestServer
) -> None:
    loaded = http.post("/api/chat", json={"model": Q4, "messages": []})
    assert loaded.headers["content-type"] == "application/json; charset=utf-8"
    body = loaded.json()
    assert body["done_reason"] == "load"
    assert body["done"] is True
    assert body["message"] == {"role": "assistant", "content": ""}
    assert not METRICS & body.keys()
    assert [m["name"] for m in http.get("/api/ps").json()["models"]] == [Q4]

    unloaded = http.post("/api/chat", json={"model": Q4, "messages": [], "keep_alive": 0}).json()
    assert unloaded["done_reason"] == "unload"
    assert http.get("/api/ps").json() == {"models": []}


def test_empty_prompt_loads_and_unloads_on_generate(http: httpx.Client) -> None:
    body = http.post("/api/generate", json={"model": Q4}).json()
    assert body == {
        "model": Q4,
        "created_at": body["created_at"],
        "response": "",
        "done": True,
        "done_reason": "load",
    }
    body = http.post("/api/generate", json={"model": Q4, "keep_alive": "0"}).json()
    assert body["done_reason"] == "unload"
    assert body["response"] == ""
    assert http.get("/api/ps").json()["models"] == []


@pytest.mark.parametrize(
    ("keep_alive", "seconds"),
    [(300, 300), (0.5, 0.5), ("5m", 300), ("1h30m", 5400), ("300ms", 0.3), ("90s", 90), ("2h", 7200)],
)
def test_keep_alive_sets_expires_at(http: httpx.Client, keep_alive: Any, seconds: float) -> None:
    before = time.time()
    assert (
        http.post("/api/chat", json={"model": Q4, "messages": [], "keep_alive": keep_alive}).status_code
        == 200
    )
    (entry,) = http.get("/api/ps").json()["models"]
    assert GO_TIME.match(entry["expires_at"])
    expires = datetime.fromisoformat(entry["expires_at"]).timestamp()
    assert before + seconds - 1 <= expires <= time.time() + seconds + 1


@pytest.mark.parametrize("keep_alive", [-1, "-1m", "-5s"])
def test_negative_keep_alive_means_forever(http: httpx.Client, keep_alive: Any) -> None:
    http.post("/api/chat", json={"model": Q4, "messages": [], "keep_alive": keep_alive})
    (entry,) = http.get("/api/ps").json()["models"]
    assert int(entry["expires_at"][:4]) > 2300


@pytest.mark.parametrize(
    ("keep_alive", "error"),
    [
        ("300", 'time: missing unit in duration "300"'),
        ("-1", 'time: missing unit in duration "-1"'),
        ("5 minutes", 'time: unknown unit " minutes" in duration "5 minutes"'),
        ("", 'time: invalid duration ""'),
        (True, "unsupported duration type: 'bool'"),
    ],
)
def test_bad_keep_alive_is_400(http: httpx.Client, keep_alive: Any, error: str) -> None:
    response = http.post("/api/chat", json={"model": Q4, "messages": [], "keep_alive": keep_alive})
    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_keep_alive_zero_with_a_prompt_unloads_after_the_reply(http: httpx.Client) -> None:
    response = chat(http, keep_alive=0, stream=False)
    assert response.json()["done_reason"] == "stop"
    assert http.get("/api/ps").json()["models"] == []


# -- /api/ps and reloads ------------------------------------------------------------------------


def test_ps_reflects_the_load_options(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    http.post("/api/chat", json={"model": Q4, "messages": [], "options": {"num_gpu": 11, "num_ctx": 1024}})
    (entry,) = http.get("/api/ps").json()["models"]
    assert entry["context_length"] == 1024
    assert entry["size_vram"] == entry["size"] * 11 // 22  # 11 of tinyllama's 22 layers
    assert entry["details"]["quantization_level"] == "Q4_K_M"

    http.post("/api/chat", json={"model": Q4, "messages": [], "options": {"num_gpu": 0}})
    (entry,) = http.get("/api/ps").json()["models"]
    assert entry["size_vram"] == 0
    assert entry["context_length"] == 2048  # default 4096, clamped to the trained context

    http.post("/api/chat", json={"model": Q4, "messages": [], "options": {"num_gpu": 999}})
    (entry,) = http.get("/api/ps").json()["models"]
    assert entry["size_vram"] == entry["size"]
    assert ollama_server.reload_count == 2


def test_reload_only_when_runner_options_differ(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    runner = {"num_gpu": 4, "num_ctx": 1024, "num_batch": 256, "num_thread": 2}
    http.post("/api/chat", json={"model": Q4, "messages": [], "options": runner})
    for temperature in (0.1, 0.5, 0.9):  # sampling options never reload
        chat(http, options={**runner, "temperature": temperature}, stream=False)
    chat(http, options={"num_ctx": 1024, "num_batch": 256, "num_thread": 2}, stream=False)  # num_gpu left out
    assert ollama_server.reload_count == 0
    chat(http, options={**runner, "num_gpu": 5}, stream=False)
    assert ollama_server.reload_count == 1
    assert ollama_server.loads[-1].options.num_gpu == 5
    chat(http, options={**runner, "num_gpu": 5, "use_mmap": False}, stream=False)
    assert ollama_server.reload_count == 2


def test_ps_and_tags_are_empty_lists_not_null() -> None:
    with OllamaTestServer(installed=[], library=[]) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/api/tags").json() == {"models": []}
        assert http.get("/api/ps").json() == {"models": []}


# -- catalog endpoints --------------------------------------------------------------------------


def test_tags_lists_quantizations_with_details(http: httpx.Client) -> None:
    models = {m["name"]: m for m in http.get("/api/tags").json()["models"]}
    assert set(models) == {spec.name for spec in default_installed()}
    levels = {
        name: m["details"]["quantization_level"] for name, m in models.items() if name.startswith("tinyllama")
    }
    assert levels == {Q4: "Q4_K_M", "tinyllama:1b-q8_0": "Q8_0", "tinyllama:1b-fp16": "F16"}
    entry = models[Q4]
    assert entry["model"] == Q4
    assert re.fullmatch(r"[0-9a-f]{64}", entry["digest"])
    assert entry["details"]["parameter_size"] == "1.1B"
    assert models["qwen3:0.6b"]["details"]["parameter_size"] == "751.63M"
    assert GO_TIME.match(entry["modified_at"])
    assert entry["size"] > 667_815_104  # weights plus the manifest's other layers


def test_show_always_has_model_info(http: httpx.Client) -> None:
    response = http.post("/api/show", json={"model": Q4})
    body = response.json()
    info = body["model_info"]
    assert info["general.architecture"] == "llama"
    for key in ("block_count", "context_length", "embedding_length", "attention.head_count"):
        assert isinstance(info[f"llama.{key}"], int)
    assert info["tokenizer.ggml.tokens"] == []  # long arrays are emptied unless verbose
    assert "general.name" not in info
    assert body["capabilities"] == ["completion"]
    assert body["details"]["family"] == "llama"
    assert body["parameters"].startswith('stop                           "<|im_start|>"')
    assert body["template"]
    # Go's encoder escapes <, > and & inside strings.
    assert b"\\u003c|im_start|\\u003e" in response.content
    thinker = http.post("/api/show", json={"name": "qwen3:0.6b"}).json()  # the old key still works
    assert "thinking" in thinker["capabilities"]
    assert thinker["model_info"]["qwen3.block_count"] == 28


def test_pull_streams_progress_in_order(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    lines = ndjson(http.post("/api/pull", json={"model": "smollm2:135m"}))
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layers = [
        line
        for line in lines
        if line["status"].startswith("pulling ") and line["status"] != "pulling manifest"
    ]
    assert layers
    for line in layers:
        assert line["status"] == f"pulling {line['digest'][7:19]}"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", line["digest"])
        assert line["total"] > 0
        assert line.get("completed", 0) <= line["total"]
    assert "completed" not in layers[0]  # omitempty drops the initial 0
    assert "smollm2:135m" in ollama_server.installed_names()


def test_pull_errors(http: httpx.Client) -> None:
    lines = ndjson(http.post("/api/pull", json={"model": "no-such-model"}))
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    response = http.post("/api/pull", json={"model": "no-such-model", "stream": False})
    assert response.status_code == 500
    assert response.json() == {"error": "pull model manifest: file does not exist"}
    response = http.post("/api/pull", json={"model": "smollm2:135m", "stream": False})
    assert response.json() == {"status": "success"}


def test_delete(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    response = http.request("DELETE", "/api/delete", json={"model": "tinyllama:1b-fp16"})
    assert response.status_code == 200
    assert response.content == b""
    assert "tinyllama:1b-fp16" not in ollama_server.installed_names()
    response = http.request("DELETE", "/api/delete", json={"model": "tinyllama:1b-fp16"})
    assert response.status_code == 404
    assert response.json() == {"error": "model 'tinyllama:1b-fp16' not found"}


def test_version_root_and_routing(http: httpx.Client) -> None:
    assert http.get("/api/version").json() == {"version": "0.33.0"}
    assert http.head("/api/version").status_code == 200
    root = http.get("/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert root.headers["content-type"].startswith("text/plain")
    assert http.head("/").status_code == 200
    wrong_method = http.get("/api/chat")
    assert (wrong_method.status_code, wrong_method.text) == (405, "405 method not allowed")
    unknown = http.get("/api/nothing-here")
    assert (unknown.status_code, unknown.text) == (404, "404 page not found")


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("POST", "/api/chat", {"model": "nope", "messages": []}, 404, "model 'nope' not found"),
        ("POST", "/api/generate", {"model": "nope", "prompt": "x"}, 404, "model 'nope' not found"),
        ("POST", "/api/show", {"model": "nope"}, 404, "model 'nope' not found"),
        ("POST", "/api/chat", {"messages": []}, 400, "model is required"),
        ("POST", "/api/generate", {"prompt": "x"}, 404, "model '' not found"),
        ("POST", "/api/show", {}, 400, "model is required"),
        (
            "POST",
            "/api/chat",
            {"model": Q4, "options": {"num_ctx": "x"}},
            500,
            'option "num_ctx" must be of type integer',
        ),
        (
            "POST",
            "/api/chat",
            {"model": 5},
            400,
            "json: cannot unmarshal number into Go struct field ChatRequest.model of type string",
        ),
    ],
)
def test_error_bodies(
    http: httpx.Client, method: str, path: str, body: dict[str, Any], status: int, error: str
) -> None:
    response = http.request(method, path, json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"error": error}


def test_missing_and_malformed_bodies_are_400(http: httpx.Client) -> None:
    response = http.post("/api/chat", content=b"")
    assert (response.status_code, response.json()) == (400, {"error": "missing request body"})
    response = http.post("/api/chat", content=b"not json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("invalid character 'n'")


def test_unknown_options_are_ignored(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    response = chat(http, stream=False, options={"no_such_option": 1, "f16_kv": True, "min_p": 0.1})
    assert response.status_code == 200
    assert ollama_server.generations[-1].options == {"no_such_option": 1, "f16_kv": True, "min_p": 0.1}


def test_injected_mid_stream_error_is_a_line_in_a_200_stream(
    http: httpx.Client, ollama_server: OllamaTestServer
) -> None:
    ollama_server.fail_stream("runner crashed", after=2)
    response = chat(http)
    assert response.status_code == 200
    lines = ndjson(response)
    assert len(lines) == 3
    assert lines[-1] == {"error": "runner crashed"}
    assert not any(line.get("done") for line in lines[:-1])


def test_an_error_before_the_first_byte_is_a_500(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    ollama_server.fail_stream("runner crashed", after=0)
    response = chat(http)
    assert (response.status_code, response.json()) == (500, {"error": "runner crashed"})


def test_injected_load_failure_is_a_500(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    ollama_server.fail_next_load("llama runner process has terminated: error loading model")
    response = http.post("/api/chat", json={"model": Q4, "messages": []})
    assert response.status_code == 500
    assert response.json() == {"error": "llama runner process has terminated: error loading model"}
    assert http.post("/api/chat", json={"model": Q4, "messages": []}).status_code == 200


def test_too_many_gpu_layers_for_the_vram_fail_to_load() -> None:
    with OllamaTestServer(vram_bytes=200 * 1024**2) as server, httpx.Client(base_url=server.url) as http:
        response = http.post("/api/chat", json={"model": Q4, "messages": [], "options": {"num_gpu": 22}})
        assert response.status_code == 500
        assert "out of memory" in response.json()["error"]
        auto = http.post("/api/chat", json={"model": Q4, "messages": []})  # num_gpu left to the server
        assert auto.status_code == 200
        (entry,) = http.get("/api/ps").json()["models"]
        assert 0 < entry["size_vram"] <= 200 * 1024**2 < entry["size"]


# -- disconnects --------------------------------------------------------------------------------


def test_a_client_that_goes_away_is_recorded(ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(Script(text=" ".join(["token"] * 100), tokens_per_second=50))
    with (
        httpx.Client(base_url=ollama_server.url, timeout=5.0) as http,
        http.stream(
            "POST", "/api/chat", json={"model": Q4, "messages": [{"role": "user", "content": "x"}]}
        ) as r,
    ):
        lines = r.iter_lines()
        next(lines)
        next(lines)
    (gone,) = ollama_server.wait_for(lambda: ollama_server.disconnects)
    sent = gone.pieces_sent
    assert 2 <= sent < 100
    time.sleep(0.1)
    assert gone.pieces_sent == sent, "the server must stop generating"
    assert not gone.done


def test_scripted_counts_can_be_overridden(http: httpx.Client, ollama_server: OllamaTestServer) -> None:
    ollama_server.queue_reply(Script(text="two words", prompt_eval_count=1234, eval_count=7))
    final = chat(http, stream=False).json()
    assert (final["prompt_eval_count"], final["eval_count"]) == (1234, 7)
