"""Surviving llama.cpp's repacked-weight crash (llama.cpp#20824) with the real worker.

On Intel Xeons with AMX, llama.cpp segfaults in its repacked (AMX) matmul on many models; the
same files run with repacking off. The crash cannot be had on every CPU, so the worker's
test-only fault seam (`repack.FAULT_ENV`) makes it segfault itself at the same point while
repacked weights are on: the backend must fall back, say so once, remember it per model file,
CPU and llama.cpp version, and go straight to the working path next time.
"""

from __future__ import annotations

import platform
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from gguf import LlamaFileType
from gguf_factory import quantize_gguf

from lollma_tui.core.backends import repack
from lollma_tui.core.backends.base import BackendCrashedError, ChatMessage, ModelLoadError, ReplyDone
from lollma_tui.core.backends.llamacpp import LlamaCppBackend
from lollma_tui.core.settings import LoadSettings, SamplingSettings

GREEDY = SamplingSettings(temperature=0.0, seed=1, max_tokens=8)
CRASH_LINE = "fault injection: crashing"


@pytest.fixture
def memory(tmp_path: Path) -> repack.RepackMemory:
    return repack.RepackMemory(tmp_path / "repack-choices.json")


@pytest.fixture
async def make_backend(
    tmp_path: Path, memory: repack.RepackMemory
) -> AsyncIterator[Callable[[], LlamaCppBackend]]:
    made: list[LlamaCppBackend] = []

    def make() -> LlamaCppBackend:
        backend = LlamaCppBackend(log_path=tmp_path / "llama.log", repack_memory=memory, keep_spare=False)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()


async def reply(backend: LlamaCppBackend) -> ReplyDone:
    done: ReplyDone | None = None
    async for event in backend.stream_chat([ChatMessage("user", "hello there")], GREEDY):
        if isinstance(event, ReplyDone):
            done = event
    assert done is not None
    return done


def crashes_in_log(log: Path) -> int:
    return log.read_text(errors="replace").count(CRASH_LINE)


async def test_a_crash_while_loading_falls_back_once_and_is_remembered(
    make_backend: Callable[[], LlamaCppBackend],
    tiny_gguf: Path,
    tmp_path: Path,
    memory: repack.RepackMemory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(repack.FAULT_ENV, "load")
    settings = LoadSettings(model=str(tiny_gguf), n_ctx=512)
    log = tmp_path / "llama.log"

    first = make_backend()
    loaded = await first.load(settings)
    # It answers, with repacking off, and says why in plain words once.
    assert loaded.repack is False
    assert [n for n in loaded.notes if "repacking off" in n] == [repack.fallback_note()]
    assert "llama.cpp#20824" in repack.fallback_note()
    assert (await reply(first)).stats.gen_tokens > 0
    assert crashes_in_log(log) == 1
    assert memory.path.exists()
    await first.close()

    # The next start (a new backend, as after a restart of the app) goes straight to the path
    # that works: no second crash in the worker's log, and no crash note.
    second = make_backend()
    again = await second.load(settings)
    assert again.repack is False
    assert not any("crashed" in n for n in again.notes)
    assert (await reply(second)).stats.gen_tokens > 0
    assert crashes_in_log(log) == 1


async def test_a_crash_repacking_did_not_cause_is_not_remembered(
    make_backend: Callable[[], LlamaCppBackend],
    tiny_gguf: Path,
    tmp_path: Path,
    memory: repack.RepackMemory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The load crashes with repacking off too: the retry shows repacking was not the cause, so
    # later loads of this file must not lose the fast path over it.
    monkeypatch.setenv(repack.FAULT_ENV, "load:always")
    with pytest.raises(ModelLoadError):
        await make_backend().load(LoadSettings(model=str(tiny_gguf), n_ctx=512))
    assert crashes_in_log(tmp_path / "llama.log") == 2
    assert not memory.path.exists()


async def test_the_model_says_whether_its_weights_were_repacked_not_whether_they_might_be(
    make_backend: Callable[[], LlamaCppBackend], tiny_gguf: Path, repacked_gguf: Path, tmp_path: Path
) -> None:
    # llama.cpp repacks only what its CPU kernels take: IQ4_NL, never F32 (F16 depends on the
    # CPU: the AMX buffer of a recent Xeon takes it, the interleaved one of other x86 CPUs does
    # not). Both were labelled "repacked weights", and /compare set "repack on" against "off"
    # where nothing differed.
    f32 = quantize_gguf(tiny_gguf, tmp_path / "tiny-llama-F32.gguf", LlamaFileType.ALL_F32)
    backend = make_backend()
    f32_loaded = await backend.load(LoadSettings(model=str(f32), n_ctx=512, repack="on"))
    assert f32_loaded.repack is False
    repacked = await backend.load(LoadSettings(model=str(repacked_gguf), n_ctx=512, repack="on"))
    assert repacked.repack is True
    off = await backend.load(LoadSettings(model=str(repacked_gguf), n_ctx=512, repack="off"))
    assert off.repack is False


async def test_a_new_llama_cpp_version_tries_the_fast_path_again(
    tiny_gguf: Path, memory: repack.RepackMemory
) -> None:
    old = repack.key_for(str(tiny_gguf), "0.3.36")
    new = repack.key_for(str(tiny_gguf), "0.3.37")
    assert old is not None and new is not None
    memory.remember_crash(old, "tiny")
    assert memory.crashes_with_repack(old)
    assert not memory.crashes_with_repack(new)
    # The identity follows the file's content, not its name.
    copy = tiny_gguf.parent / "renamed-copy.gguf"
    copy.write_bytes(tiny_gguf.read_bytes())
    try:
        assert memory.crashes_with_repack(repack.key_for(str(copy), "0.3.36"))  # type: ignore[arg-type]
    finally:
        copy.unlink()


async def test_repack_on_is_obeyed_and_a_crash_shows_the_log_not_our_own_notes(
    make_backend: Callable[[], LlamaCppBackend],
    tiny_gguf_no_template: Path,
    memory: repack.RepackMemory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(repack.FAULT_ENV, "load")
    backend = make_backend()
    with pytest.raises(ModelLoadError) as caught:
        await backend.load(LoadSettings(model=str(tiny_gguf_no_template), n_ctx=512, repack="on"))
    message = str(caught.value)
    # The crash and where it happened, from the worker's own log (faulthandler's record) ...
    assert "segmentation fault" in message.lower()
    assert "Fatal Python error" in message
    assert "in _warm_up" in message or "in crash_if_asked" in message
    # ... never the unrelated chat-template note the worker printed just before.
    assert "chat template" not in message
    # "on" is the user's explicit choice: nothing falls back and nothing is remembered, but the
    # likely cause and the way out are said.
    assert "repack auto runs the model without them" in message and repack.UPSTREAM_ISSUE in message
    assert not memory.path.exists()


async def test_repack_off_never_takes_the_crashing_path(
    make_backend: Callable[[], LlamaCppBackend],
    tiny_gguf: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(repack.FAULT_ENV, "load")
    backend = make_backend()
    loaded = await backend.load(LoadSettings(model=str(tiny_gguf), n_ctx=512, repack="off"))
    assert loaded.repack is False and loaded.notes == ()
    assert crashes_in_log(tmp_path / "llama.log") == 0


async def test_a_crash_in_a_reply_restarts_with_repacking_off(
    make_backend: Callable[[], LlamaCppBackend],
    repacked_gguf: Path,
    tmp_path: Path,
    memory: repack.RepackMemory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A larger prompt batch can take another kernel path than the load did: the crash comes in
    # a reply. The conversation is kept; the restart that follows runs without repacking.
    monkeypatch.setenv(repack.FAULT_ENV, "reply")
    backend = make_backend()
    loaded = await backend.load(LoadSettings(model=str(repacked_gguf), n_ctx=512))
    assert loaded.repack is True
    with pytest.raises(BackendCrashedError, match="repacking off"):
        await reply(backend)
    done = await reply(backend)
    assert done.stats.gen_tokens > 0
    restarted = backend.status.loaded
    assert restarted is not None and restarted.repack is False
    assert repack.fallback_note() in restarted.notes
    assert crashes_in_log(tmp_path / "llama.log") == 1
    assert memory.path.exists()


def test_the_cpu_identity_names_the_kernel_flags() -> None:
    identity = repack.cpu_identity()
    # The flags that pick llama.cpp's kernels are part of it (this llama.cpp build needs AVX2).
    if platform.machine() == "x86_64":
        assert "avx2" in identity
    assert repack.cpu_has_amx() == ("amx_" in Path("/proc/cpuinfo").read_text())


async def test_a_reply_crash_on_a_file_with_nothing_repacked_is_not_blamed_on_repacking(
    make_backend: Callable[[], LlamaCppBackend],
    tiny_gguf: Path,
    tmp_path: Path,
    memory: repack.RepackMemory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # F32 weights are repacked on no CPU, yet a crash in a reply said "with repacked weights on"
    # and turned repacking off for that file for good: the request was looked at, not the load.
    f32 = quantize_gguf(tiny_gguf, tmp_path / "tiny-llama-F32.gguf", LlamaFileType.ALL_F32)
    monkeypatch.setenv(repack.FAULT_ENV, "reply:always")
    backend = make_backend()
    loaded = await backend.load(LoadSettings(model=str(f32), n_ctx=512))
    assert loaded.repack is False
    with pytest.raises(BackendCrashedError) as crashed:
        await reply(backend)
    said = str(crashed.value)
    assert "with repacked weights on" not in said and "repacking off" not in said
    assert not memory.path.exists()


async def test_a_working_load_with_repacking_on_forgets_the_crash_remembered_for_the_file(
    make_backend: Callable[[], LlamaCppBackend], repacked_gguf: Path, memory: repack.RepackMemory
) -> None:
    # Once remembered, a crash held until llama.cpp's next version: "auto" never tried the fast
    # path again, even after the user saw it work with "on".
    backend = make_backend()
    assert (await backend.load(LoadSettings(model=str(repacked_gguf), n_ctx=512))).repack is True
    key = repack.key_for(str(repacked_gguf), backend_llama_cpp_version())
    assert key is not None
    memory.remember_crash(key, "tiny")
    assert (await backend.load(LoadSettings(model=str(repacked_gguf), n_ctx=512))).repack is False
    assert (await backend.load(LoadSettings(model=str(repacked_gguf), n_ctx=512, repack="on"))).repack
    assert not memory.crashes_with_repack(key)
    assert (await backend.load(LoadSettings(model=str(repacked_gguf), n_ctx=512))).repack is True


def backend_llama_cpp_version() -> str:
    from importlib.metadata import version

    return version("llama-cpp-python")
