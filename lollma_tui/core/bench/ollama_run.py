"""Ollama configurations: a tag at a num_gpu / num_thread, measured through /api/generate.

Ollama has no raw-token API, so (reference/backends.md §D) each request sends a raw prompt of
about P tokens with a fresh nonce in front (a repeated prompt would come from the prompt cache
and report a meaningless prompt speed), asks for G tokens at temperature 0, and reads the
server's own counters. The first request after a load is a warm-up and is not counted.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
import ollama

from lollma_tui.core.backends.base import BackendError
from lollma_tui.core.backends.ollama import OllamaBackend
from lollma_tui.core.backends.ollama_errors import CLIENT_ERRORS, translate
from lollma_tui.core.backends.ollama_models import same_model
from lollma_tui.core.backends.ollama_options import runner_options
from lollma_tui.core.bench.context import RunContext
from lollma_tui.core.bench.records import BenchRecord, bench_test_name, utc_now
from lollma_tui.core.bench.stats import mean, summarize
from lollma_tui.core.bench.sweep import Configuration, SweepSpec, ollama_pairs
from lollma_tui.core.net import trust_env_for
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings

OLLAMA_CAVEATS: tuple[str, ...] = (
    "Ollama figures come from the server's counters: tg includes sampling and starts after the "
    "prompt, so compare it with llama-bench's tg @ d<prompt>, not with tg alone.",
    "Each request's prompt starts with a fresh nonce so that Ollama's prompt cache cannot turn "
    "pp into a near-zero measurement; the first request after a load is a warm-up.",
    "The prompt length is calibrated to the model's tokenizer from the warm-up, so n_prompt is "
    "what Ollama counted, which can differ from -p by a few tokens.",
    "An end-of-sequence token can end generation early; rows say so when eval_count < -n.",
)

_WORDS: tuple[str, ...] = (
    "the",
    "people",
    "of",
    "the",
    "town",
    "walked",
    "along",
    "the",
    "river",
    "and",
    "talked",
    "about",
    "the",
    "weather",
    "the",
    "market",
    "the",
    "harvest",
    "and",
    "the",
    "long",
    "winter",
    "that",
    "was",
    "coming",
    "while",
    "children",
    "played",
    "near",
    "the",
    "old",
    "stone",
    "bridge",
    "and",
    "the",
    "bells",
    "of",
    "the",
    "church",
    "rang",
    "out",
    "over",
    "the",
    "fields",
    "at",
    "the",
    "end",
    "of",
    "the",
    "day",
)

KEEP_ALIVE = "10m"


def prompt_text(words: int) -> str:
    nonce = secrets.token_hex(6)
    body = " ".join(_WORDS[i % len(_WORDS)] for i in range(max(0, words)))
    return f"{nonce} {body}"


@dataclass(frozen=True, slots=True)
class Figures:
    prompt_count: int
    prompt_ns: int
    eval_count: int
    eval_ns: int


class OllamaRun:
    """Measures one configuration on an Ollama server."""

    def __init__(self, ctx: RunContext, spec: SweepSpec, config: Configuration, label: str) -> None:
        self.ctx = ctx
        self.spec = spec
        self.config = config
        self.label = label
        self.backend = OllamaBackend(spec.ollama_host, think=False, unload_on_close=True)
        self.client = ollama.AsyncClient(
            host=self.backend.base_url,
            timeout=httpx.Timeout(600.0, connect=5.0),
            trust_env=trust_env_for(self.backend.base_url),
        )
        self.tag = config.model.ref
        self.settings = LoadSettings(
            backend=BackendKind.OLLAMA,
            model=self.tag,
            n_gpu_layers=config.gpu_layers,
            n_threads=config.threads,
            n_ctx=max(64, max((p + g for p, g in ollama_pairs(spec)), default=0) + 64),
            n_batch=spec.batch,
            keep_alive=KEEP_ALIVE,
        )

    async def close(self) -> None:
        try:
            await self.backend.close()
        finally:
            await self.client.close()  # type: ignore[no-untyped-call]

    async def _generate(self, prompt: str, n_gen: int) -> Figures:
        options: dict[str, Any] = {
            **runner_options(self.settings),
            "num_predict": max(1, n_gen),
            "temperature": 0.0,
            "seed": self.spec.seed,
        }
        try:
            response = await self.client.generate(
                model=self.tag, prompt=prompt, raw=True, stream=False, options=options, keep_alive=KEEP_ALIVE
            )
        except CLIENT_ERRORS as error:
            raise translate(
                error, base_url=self.backend.base_url, operation="chat", model=self.tag
            ) from error
        return Figures(
            prompt_count=int(response.prompt_eval_count or 0),
            prompt_ns=int(response.prompt_eval_duration or 0),
            eval_count=int(response.eval_count or 0),
            eval_ns=int(response.eval_duration or 0),
        )

    async def load(self) -> BenchRecord:
        self.ctx.pid_source = self.backend.process_ids
        self.ctx.tracker.reset(self.ctx.latest)
        loaded = await self.backend.load(self.settings)
        info = await self.backend.show(self.tag)
        version = await self.backend.version()
        size = next(
            (m.size_bytes for m in await self.backend.list_models() if same_model(m.name, self.tag)), 0
        )
        running = next((m for m in await self.backend.running() if same_model(m.name, self.tag)), None)
        hardware = self.ctx.hardware
        requested = self.config.gpu_layers
        return BenchRecord(
            cpu_info=hardware.cpu_model or "",
            gpu_info=", ".join(g.name for g in hardware.gpus),
            backends=running.placement if running is not None else "",
            model_filename=self.tag,
            model_type=" ".join(
                w for w in (info.family or info.architecture, info.parameter_size, info.quantization) if w
            ),
            model_size=size,
            model_n_params=info.n_params or 0,
            n_batch=self.settings.n_batch,
            n_ubatch=0,
            n_threads=self.config.threads or 0,
            n_gpu_layers=loaded.n_gpu_layers,
            backend_impl="ollama",
            server=self.backend.base_url,
            ollama_version=version,
            model_name=self.config.model.name,
            quant=info.quantization or self.config.model.quant,
            n_layers=info.n_layers,
            n_gpu_layers_requested="auto"
            if requested == AUTO
            else "all"
            if requested == -1
            else str(requested),
            gpu_offload=running is not None and running.vram_bytes > 0,
        )

    async def measure(self, base: BenchRecord) -> list[BenchRecord]:
        rows: list[BenchRecord] = []
        reps = self.spec.repetitions
        prompts_done: set[int] = set()
        for n_prompt, n_gen in ollama_pairs(self.spec):
            words = n_prompt if n_prompt > 0 else 8
            self.ctx.announce(f"{self.label} · warm-up")
            warm = await self._generate(prompt_text(words), n_gen)
            if n_prompt > 0 and warm.prompt_count > 0:
                # The nonce and the tokenizer make words ≠ tokens; one correction gets close.
                words = max(1, round(words * n_prompt / warm.prompt_count))
            test_time = utc_now()
            figures: list[Figures] = []
            for rep in range(reps):
                figures.append(await self._generate(prompt_text(words), n_gen))
                self.ctx.step(f"{self.label} · pp{n_prompt}/tg{n_gen} {rep + 1}/{reps}")
            peaks = self.ctx.tracker.snapshot()
            common = replace(
                base,
                test_time=test_time,
                peak_rss_bytes=peaks.rss_bytes,
                peak_vram_bytes=peaks.vram_bytes,
                peak_ram_used_bytes=peaks.ram_used_bytes,
                peak_gpu_memory_used_bytes=peaks.gpu_memory_used_bytes,
            )
            counted = round(mean([float(f.prompt_count) for f in figures]))
            if n_prompt > 0 and n_prompt not in prompts_done:
                prompts_done.add(n_prompt)
                rows.append(self._pp_row(common, figures, counted))
            if n_gen > 0:
                rows.append(self._tg_row(common, figures, n_gen, counted))
        return rows

    def _pp_row(self, base: BenchRecord, figures: Sequence[Figures], counted: int) -> BenchRecord:
        if any(f.prompt_ns <= 0 or f.prompt_count <= 0 for f in figures):
            raise BackendError("Ollama reported no prompt evaluation time; cannot give a pp figure")
        summary = summarize([f.prompt_ns for f in figures], [f.prompt_count for f in figures])
        row = replace(base, n_prompt=counted, n_gen=0, n_depth=0, test=bench_test_name(counted, 0))
        return self.ctx.add_row(row.with_summary(summary), self.label)

    def _tg_row(self, base: BenchRecord, figures: Sequence[Figures], n_gen: int, depth: int) -> BenchRecord:
        if any(f.eval_ns <= 0 or f.eval_count <= 0 for f in figures):
            raise BackendError("Ollama generated nothing; cannot give a tg figure")
        summary = summarize([f.eval_ns for f in figures], [f.eval_count for f in figures])
        notes = list(base.notes)
        short = [f.eval_count for f in figures if f.eval_count < n_gen]
        if short:
            notes.append(
                f"generation ended early (end of sequence) in {len(short)} of {len(figures)} runs: "
                f"eval_count {min(short)}–{max(short)} < {n_gen}"
            )
        row = replace(
            base,
            n_prompt=0,
            n_gen=n_gen,
            n_depth=depth,
            test=bench_test_name(0, n_gen, depth),
            notes=tuple(notes),
        )
        return self.ctx.add_row(row.with_summary(summary), self.label)


async def installed_models(host: str | None) -> list[tuple[str, int, str, str, str, str]]:
    """/api/tags as rows for `sweep.resolve_ollama_models`."""
    backend = OllamaBackend(host, unload_on_close=False)
    try:
        models = await backend.list_models()
    finally:
        await backend.close()
    return [(m.name, m.size_bytes, m.digest, m.family, m.parameter_size, m.quantization) for m in models]
