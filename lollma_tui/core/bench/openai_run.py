"""OpenAI-compatible servers in `lollma-tui bench`: the chat row only (TTFT and tok/s).

The OpenAI API has no raw-token control (no prompt of exactly P tokens, no "generate exactly N
without stopping"), and the server's engine settings are its own start-up flags, so pp/tg rows
would not compare with llama-bench's. The chat row is the speed a user of that server sees.
"""

from __future__ import annotations

from collections.abc import Sequence

from lollma_tui.core.backends.openai import OpenAIBackend
from lollma_tui.core.backends.openai_extras import ServedModel
from lollma_tui.core.bench.chat_run import run_chat_test
from lollma_tui.core.bench.context import RunContext
from lollma_tui.core.bench.records import BenchRecord, utc_now
from lollma_tui.core.bench.sweep import Configuration, ModelChoice, SweepInputError, SweepSpec
from lollma_tui.core.settings import BackendKind, LoadSettings

OPENAI_CAVEATS: tuple[str, ...] = (
    "OpenAI-compatible server: only the chat row is measured (time to first token and tokens/s "
    "as this app sees them); GPU layers, threads and batch are the server's own start-up flags.",
    "tok/s is the server's own figure where it reports one (llama-server timings, LM Studio "
    "stats), otherwise measured here from the arrival of the streamed tokens.",
)


async def served_models(spec: SweepSpec) -> tuple[ServedModel, ...]:
    backend = OpenAIBackend(spec.openai_base_url, api_key_env=spec.openai_api_key_env)
    try:
        return await backend.list_models()
    finally:
        await backend.close()


def resolve_served(spec: SweepSpec, served: Sequence[ServedModel]) -> list[ModelChoice]:
    """Each asked-for model as the server's id: exact, else the one id containing it."""
    ids = [m.id for m in served]
    chosen: dict[str, ModelChoice] = {}
    for ref in spec.models:
        matches = [i for i in ids if i == ref] or [i for i in ids if ref.lower() in i.lower()]
        if len(matches) != 1:
            listed = ", ".join(ids[:6]) or "none"
            how = "matches several" if matches else "is not offered"
            raise SweepInputError(f"{ref} {how} (the server offers: {listed})")
        model = next(m for m in served if m.id == matches[0])
        chosen[model.id] = ModelChoice(model.id, model.id, model.quantization or "", 0)
    return list(chosen.values())


class OpenAIRun:
    """Measures one model on an OpenAI-compatible server."""

    def __init__(self, ctx: RunContext, spec: SweepSpec, config: Configuration, label: str) -> None:
        self.ctx = ctx
        self.spec = spec
        self.config = config
        self.label = label
        self.backend = OpenAIBackend(spec.openai_base_url, api_key_env=spec.openai_api_key_env)

    async def close(self) -> None:
        await self.backend.close()

    async def measure(self) -> BenchRecord:
        self.ctx.pid_source = self.backend.process_ids
        self.ctx.tracker.reset(self.ctx.latest)
        loaded = await self.backend.load(
            LoadSettings(backend=BackendKind.OPENAI, model=self.config.model.ref)
        )
        extras = self.backend.extras
        hardware = self.ctx.hardware
        context = "n_ctx not reported by the server" if loaded.n_ctx_assumed else f"n_ctx {loaded.n_ctx}"
        base = BenchRecord(
            cpu_info=hardware.cpu_model or "",
            gpu_info=", ".join(g.name for g in hardware.gpus),
            backends=extras.label,
            model_filename=extras.model_path or loaded.name,
            model_type=" ".join(w for w in (loaded.architecture, loaded.quant) if w),
            n_batch=0,
            n_ubatch=0,
            backend_impl="openai",
            model_name=loaded.name,
            quant=loaded.quant,
            n_gpu_layers_requested="server",
            test_time=utc_now(),
            server=self.backend.base_url,
            notes=(f"{extras.label} at {self.backend.base_url}, {context}",),
        )
        return await run_chat_test(
            self.ctx,
            self.backend,
            base,
            question=self.spec.question,
            max_tokens=self.spec.reply_tokens,
            repetitions=self.spec.repetitions,
            warmup=self.spec.warmup,
            seed=self.spec.seed,
            label=self.label,
        )
