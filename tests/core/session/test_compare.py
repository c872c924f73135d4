"""/compare over the stats of real replies from both backends."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest
from swap_support import Factory, ask

from lollma_tui.core.backends.base import LoadedModel, ReplyStats, RunSetup
from lollma_tui.core.backends.llamacpp_worker import default_threads
from lollma_tui.core.session import (
    ModelSession,
    SetupUnavailableError,
    format_comparison,
    settings_for,
    summarise_replies,
)
from lollma_tui.core.settings import BackendKind, LoadSettings

MakeSession = Callable[..., ModelSession]


async def test_replies_are_grouped_by_set_up_with_median_speeds(
    make_session: MakeSession, both_backends: Factory, tiny_f16: Path
) -> None:
    session = make_session(both_backends, LoadSettings(model=str(tiny_f16), n_ctx=512))
    await session.load()
    replies: list[ReplyStats] = []
    for _ in range(2):
        _, done = await ask(session, "the same question")  # the second reuses the prompt cache
        replies.append(done.stats)
    await session.swap(session.settings.with_changes(n_ctx=1024))
    replies.append((await ask(session))[1].stats)
    await session.swap(LoadSettings(backend=BackendKind.OLLAMA, model="tinyllama:1b-q4_K_M", n_ctx=2048))
    replies.append((await ask(session))[1].stats)

    summaries = summarise_replies(replies)
    assert [(s.setup.backend, s.setup.n_ctx, s.replies) for s in summaries] == [
        (BackendKind.LLAMA_CPP, 512, 2),
        (BackendKind.LLAMA_CPP, 1024, 1),
        (BackendKind.OLLAMA, 2048, 1),
    ]
    first = summaries[0]
    assert first.gen_tps == statistics.median([r.gen_tps for r in replies[:2]])  # type: ignore[type-var]
    # The second's first token came quickly off the cache: counted, it made this set-up look
    # faster than one whose first reply evaluated the whole chat again (as after every swap).
    assert first.ttft_s == replies[0].ttft_s
    assert first.gen_tokens == replies[0].gen_tokens + replies[1].gen_tokens
    # The cached second prompt says nothing about prompt speed: only the first one counts.
    assert replies[1].prompt_cached and not replies[0].prompt_cached
    assert first.prompt_tps == replies[0].prompt_tps
    assert summaries[2].setup.gpu_share is not None  # Ollama reports its placement

    table = format_comparison(summaries).splitlines()
    assert table[1].split() == ["#", "n", "gen", "t/s", "pp", "t/s", "ttft", "set-up"]
    rows = table[3:6]
    assert [row.split()[1] for row in rows] == ["2", "1", "1"]
    assert "llama.cpp" in rows[0] and "ctx 512" in rows[0]
    assert "llama.cpp" in rows[1] and "ctx 1024" in rows[1]
    assert "ollama" in rows[2] and "tinyllama:1b-q4_K_M" in rows[2] and "% GPU" in rows[2]
    fastest = max(range(3), key=lambda i: summaries[i].gen_tps or 0.0)
    assert [("*" in row) for row in rows] == [i == fastest for i in range(3)]
    assert all(len(row) <= 80 for row in table[1:3])
    assert "medians" in table[-1]


async def test_each_row_names_the_one_setting_changed_and_only_that(
    make_session: MakeSession, llama_only: Factory, tiny_f16: Path
) -> None:
    """The experiment loop: change one knob, chat, /compare. Batch and KV cache type never
    showed in the set-up text, and a KV cache change was not even a set-up of its own: its
    replies were averaged with the ones before it."""
    start = LoadSettings(model=str(tiny_f16), n_ctx=512, flash_attn=True)
    session = make_session(llama_only, start)
    await session.load()
    replies = [(await ask(session))[1].stats]
    await session.swap(start.with_changes(n_batch=128))
    replies.append((await ask(session))[1].stats)
    await session.swap(start.with_changes(n_batch=128, kv_cache_type="q8_0"))
    replies.append((await ask(session))[1].stats)

    summaries = summarise_replies(replies)
    assert [(s.setup.n_batch, s.setup.kv_cache_type) for s in summaries] == [
        (512, "f16"),
        (128, "f16"),
        (128, "q8_0"),
    ]
    shared, header, _, *rows, _legend = format_comparison(summaries).splitlines()
    assert header.split()[-1] == "set-up"
    assert shared.startswith("shared: ") and "ctx 512" in shared and "flash attention on" in shared
    assert "batch" not in shared and "KV cache" not in shared
    assert [row.split(maxsplit=5)[5] for row in rows] == [
        "batch 512 · KV cache f16",
        "batch 128 · KV cache f16",
        "batch 128 · KV cache q8_0",
    ]


def test_one_set_up_is_said_once_above_its_figures() -> None:
    setup = RunSetup(BackendKind.LLAMA_CPP, "tiny", "F16", 0, 2, 512, 2, 512, False, "f16", True)
    stats = ReplyStats(
        setup=setup,
        ttft_s=0.1,
        prompt_tokens=10,
        prompt_tokens_evaluated=10,
        prompt_tps=100.0,
        gen_tokens=20,
        gen_tps=50.0,
        total_s=0.5,
    )
    shared, header, _rule, row, _ = format_comparison(summarise_replies([stats])).splitlines()
    assert shared == (
        "set-up: tiny · F16 · llama.cpp · ngl 0/3 · ctx 512 · 2 threads · batch 512 · "
        "flash attention off · KV cache f16 · repacked weights"
    )
    assert header.split()[-1] == "ttft" and row == row.rstrip() and row.endswith("ms")


def test_the_same_model_on_two_servers_is_two_set_ups() -> None:
    # /host two smol after /host one smol: one row, the two servers' speeds in one median.
    one = RunSetup(BackendKind.OPENAI, "smol", "Q4_1", 0, None, 4096, None, None, None, None, None)
    one = dataclasses.replace(one, server="http://one:8080/v1")
    two = dataclasses.replace(one, server="http://two:8080/v1")
    stats = [
        ReplyStats(setup=setup, ttft_s=0.1, prompt_tokens=9, prompt_tokens_evaluated=9, prompt_tps=90.0,
                   gen_tokens=30, gen_tps=speed, total_s=1.0)
        for setup, speed in ((one, 120.0), (two, 15.0))
    ]  # fmt: skip
    assert [(s.setup.server, s.gen_tps) for s in summarise_replies(stats)] == [
        ("http://one:8080/v1", 120.0),
        ("http://two:8080/v1", 15.0),
    ]


def test_nothing_to_compare_says_how_to_get_something() -> None:
    assert summarise_replies([]) == []
    assert "No replies to compare yet" in format_comparison([])


def test_a_llama_cpp_set_up_is_loaded_again_with_every_knob_it_recorded() -> None:
    setup = RunSetup(
        BackendKind.LLAMA_CPP,
        "Tiny",
        "Q8_0",
        0,
        2,
        1024,
        default_threads() + 1,
        128,
        True,
        "q8_0",
        False,
        source="/m/tiny-Q8_0.gguf",
    )
    current = LoadSettings(model="/m/tiny-F16.gguf", n_ctx=4096, repack="auto", keep_alive="1h")
    again = settings_for(setup, current)
    assert (again.model, again.n_ctx, again.n_batch) == ("/m/tiny-Q8_0.gguf", 1024, 128)
    assert again.n_threads == default_threads() + 1
    assert (again.flash_attn, again.kv_cache_type, again.repack) == (True, "q8_0", "off")
    assert again.keep_alive == "1h"  # what a set-up does not record stays as it is
    # Repacked under "auto" stays "auto", which keeps its fallback should repacking crash.
    assert settings_for(dataclasses.replace(setup, repack=True), current).repack == "auto"
    assert (
        settings_for(dataclasses.replace(setup, repack=True), current.with_changes(repack="off")).repack
        == "on"
    )
    # Threads as "auto" gives them here: "auto" (a count would be pinned in config.toml by /keep),
    # also after /threads 1 (it wrote the count); any other count is that count.
    auto = default_threads()
    assert settings_for(dataclasses.replace(setup, n_threads=auto), current).n_threads is None
    assert settings_for(dataclasses.replace(setup, n_threads=auto + 1), current).n_threads == auto + 1
    pinned = current.with_changes(n_threads=1)
    assert settings_for(dataclasses.replace(setup, n_threads=auto), pinned).n_threads is None


def loaded_from(settings: LoadSettings, **actual: object) -> LoadedModel:
    """The model in use as the worker reports it: what was asked, and what it ran with."""
    fields: dict[str, object] = {
        "name": "Tiny", "architecture": "llama", "quant": "F16", "n_layers": 8, "n_ctx": settings.n_ctx,
        "n_ctx_train": 2048, "n_gpu_layers": 0, "gpu_offload_supported": False, "chat_format": "chatml",
        "chat_format_source": "gguf", "size_bytes": 1, "n_params": 1, "load_s": 0.1,
    }  # fmt: skip
    return LoadedModel(settings=settings, **{**fields, **actual})  # type: ignore[arg-type]


def test_what_was_asked_as_auto_stays_auto_where_it_gives_the_rows_figures_again() -> None:
    # /compare N then /keep wrote n_gpu_layers = 0 over "auto", repack = "off" for a file auto
    # does not repack (for every model), and the batch the context had cut (256 at ctx 256).
    setup = RunSetup(
        BackendKind.LLAMA_CPP, "Tiny", "F16", 0, 8, 256, None, 256, False, "f16", False, source="/m/tiny.gguf"
    )  # fmt: skip
    current = LoadSettings(model="/m/tiny.gguf", n_ctx=2048, n_gpu_layers="auto", repack="auto", n_batch=512)
    cpu_only = loaded_from(current, repack=False)
    again = settings_for(setup, current, cpu_only)
    assert (again.n_gpu_layers, again.repack, again.n_batch, again.n_ctx) == ("auto", "auto", 512, 256)
    # Where the figures would differ, the row's own are taken.
    assert settings_for(setup, current.with_changes(n_batch=128), cpu_only).n_batch == 256
    assert settings_for(dataclasses.replace(setup, n_batch=64), current, cpu_only).n_batch == 64
    on_gpu = loaded_from(current, gpu_offload_supported=True, n_gpu_layers=5, n_ctx=256)
    assert settings_for(setup, current, on_gpu).n_gpu_layers == 0  # auto gives 5 here
    assert settings_for(dataclasses.replace(setup, n_gpu_layers=5), current, on_gpu).n_gpu_layers == "auto"
    every = dataclasses.replace(setup, n_gpu_layers=9)
    assert settings_for(every, current.with_changes(n_gpu_layers=-1), on_gpu).n_gpu_layers == -1
    # Another file, or auto that repacked the one in use: nothing says auto leaves it unpacked.
    assert settings_for(setup, current, loaded_from(current, repack=True)).repack == "off"
    elsewhere = loaded_from(current.with_changes(model="/m/other.gguf"), repack=False)
    assert settings_for(setup, current, elsewhere).repack == "off"


def test_a_set_up_that_cannot_be_loaded_again_says_why() -> None:
    ollama = RunSetup(BackendKind.OLLAMA, "tinyllama:1b", "Q4_K_M", -1, None, 2048, None, 512)
    with pytest.raises(SetupUnavailableError, match=r"only llama\.cpp set-ups"):
        settings_for(ollama, LoadSettings())
    recorded_before = RunSetup(BackendKind.LLAMA_CPP, "Tiny", "F16", 0, 2, 512, 2)
    with pytest.raises(SetupUnavailableError, match="recorded before"):
        settings_for(recorded_before, LoadSettings())


def test_a_row_auto_ran_without_repacking_after_a_crash_is_loaded_again_as_auto(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On an AMX Xeon most files crash with repacking and auto runs them without it: /compare N
    # set "off" for such a row, and /keep wrote repack = "off" for every model.
    from importlib.metadata import version

    monkeypatch.setenv("LOLLMA_CACHE_DIR", str(tmp_path / "cache"))  # the crash is this test's

    from lollma_tui.core.backends import repack

    setup = RunSetup(
        BackendKind.LLAMA_CPP,
        "Tiny",
        "F16",
        0,
        2,
        1024,
        None,
        128,
        False,
        "f16",
        False,
        source=str(tiny_gguf),
    )
    current = LoadSettings(model=str(tiny_gguf), repack="auto")
    assert settings_for(setup, current).repack == "off"  # nothing says auto would not repack it
    key = repack.key_for(str(tiny_gguf), version("llama-cpp-python"))
    assert key is not None
    repack.RepackMemory().remember_crash(key, "Tiny")
    assert settings_for(setup, current).repack == "auto"
    assert settings_for(setup, current.with_changes(repack="on")).repack == "off"


def test_a_continued_reply_counts_as_one_of_its_set_up_and_another_set_up_s_part_stands_alone() -> None:
    setup = RunSetup(BackendKind.LLAMA_CPP, "m", "Q4_0", n_gpu_layers=0, n_layers=2, n_ctx=512, n_threads=2)
    first = ReplyStats(setup, 0.5, 100, 100, 200.0, gen_tokens=11, gen_tps=10.0, total_s=1.6)
    more = ReplyStats(setup, 0.1, 111, 1, None, gen_tokens=21, gen_tps=20.0, total_s=1.2)
    whole = first.followed_by(more)
    # 10 steps in 1 s, then 20 in 1 s: 15 tok/s over the reply, not the last part's 20.
    assert (whole.gen_tokens, whole.gen_tps, whole.total_s) == (32, 15.0, pytest.approx(2.8))
    assert (whole.ttft_s, whole.prompt_tokens, whole.prompt_tps) == (0.5, 100, 200.0)
    (summary,) = summarise_replies([whole])
    assert summary.gen_tokens == 32
    other = dataclasses.replace(more, setup=dataclasses.replace(setup, n_ctx=1024))
    assert first.followed_by(other) == other
