"""The end-to-end chat test: the app's own backend answers a fixed question, and we keep what
the chat pane would show (time to first token, generation tokens/s) from its `ReplyStats`.

Unlike pp/tg this includes templating, tokenization, sampling and the trip through the worker
pipe or HTTP: it is the speed a user sees, not the engine's.
"""

from __future__ import annotations

from dataclasses import replace

from lollma_tui.core.backends.base import Backend, ChatMessage, ReplyDone, ReplyStats
from lollma_tui.core.bench.context import RunContext
from lollma_tui.core.bench.records import CHAT_TEST, BenchRecord
from lollma_tui.core.bench.stats import mean, sample_stddev
from lollma_tui.core.settings import SamplingSettings


class ChatTestFailed(Exception):
    pass


def chat_sampling(max_tokens: int, seed: int) -> SamplingSettings:
    # Greedy: every quantization answers the same question the same way as far as it can,
    # and a reply that runs to max_tokens makes runs comparable.
    return SamplingSettings(temperature=0.0, seed=seed, max_tokens=max_tokens)


def chat_messages(question: str, run: int) -> list[ChatMessage]:
    # Replies reuse the cached prompt prefix when the prompt repeats; a different first line
    # per run keeps time to first token honest (only a few template tokens stay cached).
    return [ChatMessage("system", f"Benchmark run {run}."), ChatMessage("user", question)]


async def one_reply(backend: Backend, question: str, run: int, sampling: SamplingSettings) -> ReplyStats:
    done: ReplyDone | None = None
    async for event in backend.stream_chat(chat_messages(question, run), sampling):
        if isinstance(event, ReplyDone):
            done = event
    if done is None:
        raise ChatTestFailed("the reply ended without its statistics")
    return done.stats


async def run_chat_test(
    ctx: RunContext,
    backend: Backend,
    base: BenchRecord,
    *,
    question: str,
    max_tokens: int,
    repetitions: int,
    warmup: bool,
    seed: int,
    label: str,
) -> BenchRecord:
    """`backend` has the model loaded; returns the chat row (also added to `ctx`)."""
    sampling = chat_sampling(max_tokens, seed)
    if warmup:
        ctx.announce(f"{label} · chat warm-up")
        await one_reply(backend, question, 0, sampling)
    replies: list[ReplyStats] = []
    for run in range(1, repetitions + 1):
        stats = await one_reply(backend, question, run, sampling)
        replies.append(stats)
        ctx.step(f"{label} · chat {run}/{repetitions}")
    rates = [s.gen_tps for s in replies if s.gen_tps is not None]
    if not rates:
        raise ChatTestFailed("the model stopped after one token every time: no generation speed to report")
    ttfts = [round(s.ttft_s * 1e9) for s in replies if s.ttft_s is not None]
    totals = [round(s.total_s * 1e9) for s in replies]
    prompt_rates = [s.prompt_tps for s in replies if s.prompt_tps is not None]
    notes = list(base.notes)
    short = sum(1 for s in replies if s.gen_tokens < max_tokens)
    if short:
        notes.append(f"the reply ended before {max_tokens} tokens in {short} of {len(replies)} runs")
    record = replace(
        base,
        test=CHAT_TEST,
        question=question,
        chat_tokens=max_tokens,
        n_prompt=round(mean([float(s.prompt_tokens or 0) for s in replies])),
        n_gen=round(mean([float(s.gen_tokens) for s in replies])),
        n_depth=0,
        avg_ns=round(mean(totals)),
        stddev_ns=round(sample_stddev(totals)),
        samples_ns=tuple(totals),
        avg_ts=mean(rates),
        stddev_ts=sample_stddev(rates),
        samples_ts=tuple(rates),
        avg_ttft_ns=round(mean(ttfts)) if ttfts else None,
        stddev_ttft_ns=round(sample_stddev(ttfts)) if ttfts else None,
        samples_ttft_ns=tuple(ttfts),
        prompt_ts=mean(prompt_rates) if prompt_rates else None,
        repetitions=len(replies),
        notes=tuple(notes),
    )
    return record
