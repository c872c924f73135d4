"""The small pure pieces: option mapping, error translation, host parsing, cache estimate, and
the test server's Go-compatible encoders."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import ollama
import psutil
import pytest
from ollama_server.server import free_port
from ollama_server.wire import (
    FOREVER_NS,
    GoDurationError,
    go_json,
    go_time,
    human_number,
    parse_go_duration,
    parse_keep_alive,
)
from ollama_test_support import ollama_settings

from lollma_tui.core.backends.base import (
    BackendCrashedError,
    BackendError,
    BackendUnavailableError,
    ModelLoadError,
    ModelNotFoundError,
)
from lollma_tui.core.backends.ollama import offloaded_layers
from lollma_tui.core.backends.ollama_errors import translate
from lollma_tui.core.backends.ollama_host import OllamaHostError, ServerProcessFinder, base_url, is_local
from lollma_tui.core.backends.ollama_models import placement_label, same_model
from lollma_tui.core.backends.ollama_options import (
    ALL_LAYERS,
    keep_alive_value,
    runner_options,
    sampling_options,
    unsupported_settings,
)
from lollma_tui.core.backends.ollama_stats import PromptCacheTracker
from lollma_tui.core.settings import AUTO, SamplingSettings

URL = "http://127.0.0.1:11434"


# -- options ------------------------------------------------------------------------------------


def test_runner_options() -> None:
    assert runner_options(ollama_settings(n_gpu_layers=AUTO)) == {"num_ctx": 4096, "num_batch": 512}
    assert runner_options(ollama_settings(n_gpu_layers=-1))["num_gpu"] == ALL_LAYERS
    assert runner_options(ollama_settings(n_gpu_layers=0))["num_gpu"] == 0
    full = runner_options(
        ollama_settings(n_gpu_layers=7, n_ctx=8192, n_batch=64, n_threads=3, use_mmap=False)
    )
    assert full == {"num_ctx": 8192, "num_batch": 64, "num_gpu": 7, "num_thread": 3, "use_mmap": False}


def test_sampling_options() -> None:
    assert sampling_options(SamplingSettings()) == {
        "temperature": 0.8,
        "top_k": 40,
        "top_p": 0.95,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
    }
    more = sampling_options(SamplingSettings(seed=0, max_tokens=10, stop=("\n\n",)))
    assert (more["seed"], more["num_predict"], more["stop"]) == (0, 10, ["\n\n"])


@pytest.mark.parametrize(
    ("text", "sent"),
    [("5m", "5m"), ("300", 300.0), ("-1", -1.0), ("0", 0.0), (" 1.5 ", 1.5), ("1h30m", "1h30m")],
)
def test_keep_alive_value(text: str, sent: float | str) -> None:
    assert keep_alive_value(text) == sent


def test_settings_ollama_cannot_apply_become_notes() -> None:
    assert unsupported_settings(ollama_settings()) == ()
    notes = unsupported_settings(ollama_settings(flash_attn=True, kv_cache_type="q8_0"))
    assert len(notes) == 2
    assert "OLLAMA_FLASH_ATTENTION" in notes[0]
    assert "OLLAMA_KV_CACHE_TYPE" in notes[1]


# -- placement ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "vram", "label"),
    [
        (100, 100, "100% GPU"),
        (100, 0, "100% CPU"),
        (100, 72, "72% GPU / 28% CPU"),
        (1000, 999, "99% GPU / 1% CPU"),
        (1000, 1, "1% GPU / 99% CPU"),
        (0, 0, "100% CPU"),
    ],
)
def test_placement_label(size: int, vram: int, label: str) -> None:
    assert placement_label(size, vram) == label


@pytest.mark.parametrize(
    ("requested", "layers", "share", "expected"),
    [
        # All on the GPU: 22 repeating layers and the output head, shown "ngl 23/23".
        (AUTO, 22, 1.0, 23),
        (22, 22, 1.0, 23),
        (-1, None, 1.0, -1),
        (5, 22, 0.0, 0),
        (5, 22, 0.23, 5),
        (AUTO, 22, 0.5, 11),
        (AUTO, 22, 0.01, 1),
        (8, 22, None, 8),
    ],
)
def test_offloaded_layers(
    requested: int | str, layers: int | None, share: float | None, expected: int
) -> None:
    assert offloaded_layers(requested, layers, share) == expected  # type: ignore[arg-type]


def test_same_model() -> None:
    assert same_model("llama3.2", "Llama3.2:latest")
    assert same_model("tinyllama:1b-q4_K_M", "tinyllama:1b-Q4_K_M")
    assert not same_model("tinyllama:1b-q4_K_M", "tinyllama:1b-q8_0")


# -- host ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, URL),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        (":5000", "http://127.0.0.1:5000"),
        ("example.com", "http://example.com:11434"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com:8443/ollama/", "https://example.com:8443/ollama"),
        ("[::1]:5000", "http://[::1]:5000"),
    ],
)
def test_base_url(monkeypatch: pytest.MonkeyPatch, host: str | None, url: str) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert base_url(host) == url


def test_is_local() -> None:
    assert is_local("http://127.0.0.1:11434")
    assert is_local("http://localhost:1")
    assert is_local("http://[::1]:2")
    assert is_local("http://0.0.0.0:11434")
    assert not is_local("http://192.168.1.20:11434")
    assert not is_local("https://ollama.example.com:443")


# -- errors -------------------------------------------------------------------------------------


def _translate(error: BaseException, operation: str = "chat", model: str = "m:1") -> BackendError:
    return translate(error, base_url=URL, operation=operation, model=model, timeout_s=30)  # type: ignore[arg-type]


def test_translate_connection_failures() -> None:
    expected = f"Ollama is not reachable at {URL} — is `ollama serve` running?"
    request = httpx.Request("POST", URL)
    for error in (ConnectionError("Failed to connect"), httpx.ConnectError("refused", request=request)):
        translated = _translate(error)
        assert type(translated) is BackendUnavailableError
        assert str(translated) == expected
    assert isinstance(_translate(httpx.ConnectTimeout("slow", request=request)), BackendUnavailableError)


def test_translate_response_errors() -> None:
    def response(status: int, message: str = "boom") -> ollama.ResponseError:
        return ollama.ResponseError(json.dumps({"error": message}), status)

    assert isinstance(_translate(response(404), "load"), ModelNotFoundError)
    assert isinstance(_translate(ollama.ResponseError("boom")), BackendCrashedError)  # error line, status -1
    assert isinstance(_translate(response(500), "load"), ModelLoadError)
    assert isinstance(_translate(response(503)), BackendUnavailableError)
    assert type(_translate(response(400))) is BackendError
    assert str(_translate(response(418, "teapot\nsecond line"))) == "Ollama error 418: teapot second line"


def test_translate_timeouts_and_drops() -> None:
    request = httpx.Request("POST", URL)
    assert str(_translate(httpx.ReadTimeout("t", request=request), "load")) == (
        "Ollama did not finish loading m:1 within 30 s; it may still be loading."
    )
    assert isinstance(_translate(httpx.ReadTimeout("t", request=request)), BackendUnavailableError)
    assert isinstance(
        _translate(httpx.RemoteProtocolError("peer closed", request=request)), BackendCrashedError
    )
    assert isinstance(
        _translate(httpx.RemoteProtocolError("x", request=request), "list"), BackendUnavailableError
    )
    assert type(_translate(json.JSONDecodeError("bad", "x", 0))) is BackendError


# -- prompt cache estimate ----------------------------------------------------------------------


def test_prompt_cache_tracker() -> None:
    tracker = PromptCacheTracker()
    first = (("user", "hi"),)
    assert tracker.cached_tokens(first, 10) == 0
    tracker.record(first, "hello", 10, 3, thought=False)
    follow_up = (*first, ("assistant", "hello"), ("user", "more"))
    assert tracker.cached_tokens(follow_up, 20) == 13  # prompt and reply were both cached
    assert tracker.cached_tokens(first, 10) == 9  # regenerated: all but the last token
    assert tracker.cached_tokens((("user", "other"),), 10) == 0
    tracker.record(first, "hello", 10, 3, thought=True)
    assert tracker.cached_tokens(follow_up, 20) == 10  # thinking tokens are not sent back
    tracker.forget()
    assert tracker.cached_tokens(follow_up, 20) == 0


# -- the test server's Go encoders --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("5m", 300 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("300ms", 300 * 10**6),
        ("-1m", -60 * 10**9),
        ("1.5s", 1_500_000_000),
        ("2h45m30.5s", (2 * 3600 + 45 * 60 + 30) * 10**9 + 500_000_000),
        ("10us", 10_000),
        ("10µs", 10_000),
        ("+3s", 3 * 10**9),
    ],
)
def test_parse_go_duration(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["300", "-1", "", "5 m", "1d", ".s", "m"])
def test_parse_go_duration_rejects(text: str) -> None:
    with pytest.raises(GoDurationError, match=r"^time: "):
        parse_go_duration(text)


def test_parse_keep_alive() -> None:
    assert parse_keep_alive(0.0) == 0
    assert parse_keep_alive(0.25) == 250_000_000
    assert parse_keep_alive(-1) == FOREVER_NS
    assert parse_keep_alive("-1m") == FOREVER_NS
    with pytest.raises(GoDurationError):
        parse_keep_alive([1])


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (8_030_261_248, "8.0B"),
        (3_212_749_888, "3.2B"),
        (70_000_000_000, "70B"),
        (494_032_768, "494.03M"),
        (135_000_000, "135M"),
        (1_100_048_384, "1.1B"),
        (12_345, "12K"),
        (999, "999"),
    ],
)
def test_human_number(count: int, text: str) -> None:
    assert human_number(count) == text


def test_go_time_and_json() -> None:
    assert go_time(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert go_time(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert go_time(1_700_000_000_000_000_001) == "2023-11-14T22:13:20.000000001Z"
    assert go_json({"t": "<a & b>", "n": 1}) == b'{"t":"\\u003ca \\u0026 b\\u003e","n":1}'


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("http://[::1", "http://[::1: not a server address"),
        ("example.com:99999", "example.com:99999: the port is not a number from 1 to 65535"),
        ("example.com:abc", "the port is not a number"),
        ("ftp://example.com", "must start with http:// or https://"),
    ],
)
def test_an_address_that_cannot_be_a_server_says_why(
    monkeypatch: pytest.MonkeyPatch, host: str, reason: str
) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    with pytest.raises(OllamaHostError, match=re.escape(reason)):
        base_url(host)
    monkeypatch.setenv("OLLAMA_HOST", host)
    with pytest.raises(OllamaHostError, match=re.escape(f"OLLAMA_HOST={host}:")):
        base_url()


def test_a_malformed_ollama_host_does_not_stop_the_ollama_package_from_importing() -> None:
    """The ollama package reads OLLAMA_HOST as it is imported; a malformed value made the
    import itself raise ("Invalid IPv6 URL"), wherever it first happened."""
    probe = (
        "from lollma_tui.core.backends.ollama import OllamaBackend\n"
        "import os\n"
        "assert os.environ['OLLAMA_HOST'] == 'http://[::1'\n"
        "print(OllamaBackend('127.0.0.1:5000').base_url)\n"
    )
    env = {**os.environ, "OLLAMA_HOST": "http://[::1"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "http://127.0.0.1:5000"


def test_a_server_that_died_unreaped_gives_way_to_the_next_on_its_port() -> None:
    # A launcher that never reaps its server: the dead pid (same start time) was kept, and the
    # server started after it on the same port was never found.
    port = free_port()
    code = (
        "import socket, sys\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); print('up', flush=True)\n"
        "sys.stdin.readline()\n"
    )

    def listener() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert process.stdout is not None and process.stdout.readline() == b"up\n"
        return process

    first = listener()
    second = None
    try:
        finder = ServerProcessFinder(port, process_names=())
        assert finder.pid() == first.pid
        assert first.stdin is not None
        first.stdin.close()  # it ends; this test, its parent, does not reap it yet
        deadline = time.monotonic() + 10
        while psutil.Process(first.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = listener()
        assert finder.pid() == second.pid
    finally:
        for process in (first, second):
            if process is not None:
                process.kill()
                process.wait()
