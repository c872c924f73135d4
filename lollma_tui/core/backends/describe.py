"""One-line descriptions of a run's set-up, a reply's speed, a loaded model and a model server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lollma_tui.core.backends.base import LoadedModel, ReplyStats, RunSetup, StatsSource
from lollma_tui.core.formatting import counted, rate, seconds, share
from lollma_tui.core.settings import BackendKind

if TYPE_CHECKING:
    from lollma_tui.core.backends.openai_extras import ServerExtras


def format_gpu_layers(n_gpu_layers: int, n_layers: int | None) -> str:
    """`ngl 12/19`: offloaded / offloadable (repeating layers plus the output head)."""
    if n_layers is None:
        return "ngl all" if n_gpu_layers < 0 else f"ngl {n_gpu_layers}"
    total = n_layers + 1
    shown = total if n_gpu_layers < 0 else min(n_gpu_layers, total)
    return f"ngl {shown}/{total}"


def placed_layers(backend: BackendKind, n_gpu_layers: int, n_layers: int | None, *, placed: bool) -> str:
    """`format_gpu_layers`, or `ngl ?/23` for an Ollama model whose placement is not known:
    Ollama places the layers itself and says where only while the model is loaded, which it
    never is between replies at keep_alive 0 ("ngl 0/23" then hid a model run on the GPU)."""
    if backend is BackendKind.OLLAMA and not placed:
        return "ngl ?" + (f"/{n_layers + 1}" if n_layers is not None else "")
    return format_gpu_layers(n_gpu_layers, n_layers)


def loaded_layers(model: LoadedModel) -> str:
    """`placed_layers` of a loaded model: known once its server said where it put it."""
    backend = model.settings.backend
    return placed_layers(backend, model.n_gpu_layers, model.n_layers, placed=model.placement is not None)


def setup_layers(setup: RunSetup) -> str:
    """`placed_layers` of a reply's set-up: Ollama's share of GPU memory says it was placed."""
    placed = setup.gpu_share is not None
    return placed_layers(setup.backend, setup.n_gpu_layers, setup.n_layers, placed=placed)


def model_label(name: str) -> str:
    """A model as it is shown: a server that names its model by the GGUF file's path
    (llama-cpp-python's server without --model_alias) is shown the file's name; any other id
    (an Ollama tag, a Hugging Face repo id) as it is."""
    last = name.replace("\\", "/").rstrip("/").rpartition("/")[2]
    return last if last != name and last.lower().endswith(".gguf") else name


_LOCAL_OLLAMA = frozenset({"http://127.0.0.1:11434", "http://localhost:11434"})
"""The server a plain `ollama` means: not named in headings, as the live heading does not."""

HEADING_PARTS = ("model", "quant", "server", "backend", "gpu layers", "gpu share", "ctx", "threads")
"""What a reply's heading and the history list show of its set-up; the rest is for /compare
and exports."""


def setup_parts(setup: RunSetup) -> dict[str, str]:
    """Every known part of a set-up, by name, in reading order.

    /compare shows only the parts that differ between set-ups, so a part is left out where the
    app does not know it (a server's own flags) rather than guessed.
    """
    parts = {"model": model_label(setup.model), "quant": setup.quant}
    if setup.backend is BackendKind.OPENAI:
        # The server's own start-up flags decide layers and threads; only it knows them.
        parts["server"] = " ".join(w for w in (setup.server_kind, setup.server) if w) or str(setup.backend)
    else:
        parts["backend"] = str(setup.backend)
        if setup.backend is BackendKind.OLLAMA and setup.server and setup.server not in _LOCAL_OLLAMA:
            # Two Ollama machines serve the same tags: which one wrote a reply is part of it.
            parts["backend"] += f" on {setup.server.partition('://')[2] or setup.server}"
        parts["gpu layers"] = setup_layers(setup)
        if setup.gpu_share is not None:
            parts["gpu share"] = f"{share(setup.gpu_share)} GPU"
    parts["ctx"] = f"ctx {setup.n_ctx}"
    if setup.n_threads:
        parts["threads"] = counted(setup.n_threads, "thread")
    parts.update(tuning_parts(setup))
    return {name: text for name, text in parts.items() if text}


def tuning_parts(setup: RunSetup) -> dict[str, str]:
    """The llama.cpp knobs a speed experiment turns besides layers, context and threads."""
    parts = {}
    if setup.n_batch is not None:
        parts["batch"] = f"batch {setup.n_batch}"
    if setup.flash_attn is not None:
        parts["flash attention"] = f"flash attention {'on' if setup.flash_attn else 'off'}"
    if setup.kv_cache_type is not None:
        parts["kv cache"] = f"KV cache {setup.kv_cache_type}"
    if setup.repack is not None:
        parts["repack"] = "repacked weights" if setup.repack else "weights not repacked"
    return parts


def format_setup(setup: RunSetup) -> str:
    parts = setup_parts(setup)
    return " · ".join(parts[name] for name in HEADING_PARTS if name in parts)


def format_stats(stats: ReplyStats) -> str:
    parts = [f"{seconds(stats.ttft_s)} to first token"]
    if stats.prompt_tokens is not None:
        prompt = f"prompt {stats.prompt_tokens} tok"
        if stats.prompt_cached and stats.prompt_tokens_evaluated is not None:
            prompt += f" ({stats.prompt_tokens - stats.prompt_tokens_evaluated} cached)"
        elif stats.prompt_tps is not None:
            prompt += f" @ {rate(stats.prompt_tps)} tok/s"
        parts.append(prompt)
    parts.append(f"{rate(stats.gen_tps)} tok/s")
    parts.append(counted(stats.gen_tokens, "token"))
    parts.append(seconds(stats.total_s))
    if stats.source.measured_here:
        parts.append("measured here" if stats.source is StatsSource.CLIENT_CLOCK else "measured here, chunks")
    return " · ".join(parts)


def format_context(model: LoadedModel) -> str:
    """``ctx 4096``, said to be a guess where the server does not tell its context size."""
    return f"ctx {model.n_ctx}" + (" (assumed)" if model.n_ctx_assumed else "")


def format_loaded(model: LoadedModel) -> str:
    if model.settings.backend is BackendKind.OPENAI:
        ready = f"ready on the server in {seconds(model.load_s)}"
        return f"{model_label(model.name)} {ready} · {format_context(model)}"
    context = f"ctx {model.n_ctx}"
    if model.n_ctx != model.settings.n_ctx:
        # llama.cpp rounds the context up (to a multiple of 256): without this the user who
        # asked for 100 reads 256 and wonders whether the setting was taken.
        context += f" (asked {model.settings.n_ctx})"
    quant = f" ({model.quant})" if model.quant else ""  # a server that does not say it: no "()"
    return f"{model.name}{quant} loaded in {seconds(model.load_s)} · {loaded_layers(model)} · {context}" + (
        " · CPU-only llama.cpp build"
        if model.settings.backend is BackendKind.LLAMA_CPP and not model.gpu_offload_supported
        else ""
    )


def format_reply_heading(model: LoadedModel, host_name: str) -> str:
    """The heading of a reply being written: the model, its quant and where it runs."""
    backend = model.settings.backend
    if backend is not BackendKind.LLAMA_CPP:
        # A server's own flags decide its layers; which server it is matters more.
        # The host OLLAMA_HOST names is called "ollama": "ollama on ollama" would say nothing.
        where = str(backend) if host_name == str(backend) else f"{backend} on {host_name}"
        # A server that does not say its model's quantization: no empty part ("smol ·  · openai").
        return " · ".join(part for part in (model_label(model.name), model.quant, where) if part)
    layers = format_gpu_layers(model.n_gpu_layers, model.n_layers)
    return " · ".join((model.name, model.quant, str(backend), layers))


def format_server(extras: ServerExtras, model: str | None = None) -> tuple[str, ...]:
    """Short lines on what an OpenAI-compatible server said about itself, for the model card.

    Only what it said: a line is left out when the server has no endpoint that tells it.
    """
    lines = [extras.label]
    slot_parts: list[str] = []
    per_slot = extras.n_ctx or next((s.n_ctx for s in extras.slots if s.n_ctx), None)
    if per_slot:
        slot_parts.append(f"ctx {per_slot} per slot")
    total = extras.total_slots or len(extras.slots) or None
    if total:
        busy = sum(1 for s in extras.slots if s.processing)
        slot_parts.append(f"{busy}/{total} slots busy" if extras.slots else f"{total} slots")
    if slot_parts:
        lines.append(" · ".join(slot_parts))
    metrics = extras.metrics
    if metrics is not None:
        load_parts = []
        if metrics.kv_cache_usage is not None:
            load_parts.append(f"KV cache {share(metrics.kv_cache_usage)}")
        if metrics.requests_running is not None:
            load_parts.append(f"{metrics.requests_running} running")
        if metrics.requests_waiting:
            load_parts.append(f"{metrics.requests_waiting} waiting")
        if load_parts:
            lines.append(" · ".join(load_parts))
    served = extras.model(model) if model else None
    if served is not None:
        state = None if served.loaded is None else ("loaded" if served.loaded else "not loaded")
        details = (state, served.quantization, served.architecture)
        lines.append(" · ".join(d for d in details if d))
    if extras.loading:
        lines.append("the server is loading its model…")
    if extras.silent:
        lines.append("not answering: its figures are gone")
    return tuple(line for line in lines if line)
