"""/compare over the stats of real replies from both backends."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from swap_support import Factory, ask

from lollma_tui.core.backends.base import ReplyStats
from lollma_tui.core.session import ModelSession, format_comparison, summarise_replies
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
    assert first.ttft_s == statistics.median([r.ttft_s for r in replies[:2]])  # type: ignore[type-var]
    assert first.gen_tokens == replies[0].gen_tokens + replies[1].gen_tokens
    # The cached second prompt says nothing about prompt speed: only the first one counts.
    assert replies[1].prompt_cached and not replies[0].prompt_cached
    assert first.prompt_tps == replies[0].prompt_tps
    assert summaries[2].setup.gpu_share is not None  # Ollama reports its placement

    table = format_comparison(summaries).splitlines()
    assert table[0].split() == ["#", "n", "gen", "t/s", "pp", "t/s", "ttft", "set-up"]
    rows = table[2:5]
    assert [row.split()[1] for row in rows] == ["2", "1", "1"]
    assert "llama.cpp" in rows[0] and "ctx 512" in rows[0]
    assert "llama.cpp" in rows[1] and "ctx 1024" in rows[1]
    assert "ollama" in rows[2] and "tinyllama:1b-q4_K_M" in rows[2] and "% GPU" in rows[2]
    fastest = max(range(3), key=lambda i: summaries[i].gen_tps or 0.0)
    assert [("*" in row) for row in rows] == [i == fastest for i in range(3)]
    assert all(len(row) <= 80 for row in table[:2])
    assert "medians" in table[-1]


def test_nothing_to_compare_says_how_to_get_something() -> None:
    assert summarise_replies([]) == []
    assert "No replies to compare yet" in format_comparison([])
