"""/compare: replies grouped by the set-up that produced them, with median speeds.

Medians rather than means: one reply that waited on a cold cache or a busy machine should not
move a set-up's figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lollma_tui.core import formatting as fmt
from lollma_tui.core.backends.base import LoadedModel, ReplyStats, RunSetup
from lollma_tui.core.backends.describe import setup_parts
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings

SetupKey = tuple[object, ...]


def setup_key(setup: RunSetup) -> SetupKey:
    """What makes two replies comparable: everything that was loaded, not Ollama's gpu_share,
    which is a measurement of the same set-up."""
    return (
        setup.backend,
        setup.server,
        setup.model,
        setup.quant,
        setup.n_gpu_layers,
        setup.n_layers,
        setup.n_ctx,
        setup.n_threads,
        setup.n_batch,
        setup.flash_attn,
        setup.kv_cache_type,
        setup.repack,
    )


@dataclass(frozen=True, slots=True)
class SetupSummary:
    setup: RunSetup
    """The first reply's set-up (gpu_share may differ between its replies)."""
    replies: int
    gen_tokens: int
    gen_tps: float | None
    """Median generation tokens/s over replies that measured it."""
    prompt_tps: float | None
    """Median prompt tokens/s over replies whose prompt was fully evaluated (no cached prefix)."""
    ttft_s: float | None
    """Median time to first token."""


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarise_replies(stats: Iterable[ReplyStats]) -> list[SetupSummary]:
    """One summary per distinct set-up, in the order the set-ups were first used."""
    groups: dict[SetupKey, list[ReplyStats]] = {}
    for reply in stats:
        groups.setdefault(setup_key(reply.setup), []).append(reply)
    return [
        SetupSummary(
            setup=replies[0].setup,
            replies=len(replies),
            gen_tokens=sum(r.gen_tokens for r in replies),
            gen_tps=_median(r.gen_tps for r in replies),
            # A reused prefix makes the prompt rate meaningless (few tokens over little time), and
            # the first token quick: the first reply after a swap evaluates the whole chat.
            prompt_tps=_median(r.prompt_tps for r in replies if not r.prompt_cached),
            ttft_s=_median(r.ttft_s for r in replies if not r.prompt_cached),
        )
        for replies in groups.values()
    ]


_HEADERS = ("#", "n", "gen t/s", "pp t/s", "ttft")


def _ttft(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.2f}s"


def split_setups(setups: Sequence[RunSetup]) -> tuple[list[str], list[list[str]]]:
    """The parts every set-up shares, and for each set-up the parts that are its own.

    A part one set-up lacks (a server's flags, unknown here) counts as differing, so that a row
    never looks like another while its figures come from something else.
    """
    described = [setup_parts(setup) for setup in setups]
    names = list(dict.fromkeys(name for parts in described for name in parts))
    shared = {
        name for name in names if len({parts.get(name) for parts in described}) == 1 and name in described[0]
    }
    common = [described[0][name] for name in names if name in shared]
    own = [[parts[name] for name in names if name in parts and name not in shared] for parts in described]
    return common, own


def format_comparison(summaries: Sequence[SetupSummary]) -> str:
    """A plain-text table, one row per set-up; the fastest generation is marked with *.

    What all set-ups share is said once above the table, and each row names only what sets
    it apart (a thread count, a KV cache type), so the one setting a user changed stands out.
    Figures come first so they line up at any width; the set-up, the widest part, goes last
    where wrapping in a narrow chat pane does no harm.
    """
    if not summaries:
        return "No replies to compare yet: chat, change a setting, chat again, then /compare."
    common, own = split_setups([summary.setup for summary in summaries])
    fastest = max((s.gen_tps for s in summaries if s.gen_tps is not None), default=None)
    rows = []
    for index, summary in enumerate(summaries, 1):
        gen = fmt.rate(summary.gen_tps)
        marked = fastest is not None and summary.gen_tps == fastest and len(summaries) > 1
        rows.append(
            (
                str(index),
                str(summary.replies),
                gen + ("*" if marked else " "),
                fmt.rate(summary.prompt_tps),
                _ttft(summary.ttft_s),
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_HEADERS)]
    several = len(summaries) > 1
    last_header = "set-up" if several else ""

    def line(figures: Sequence[str], setup: str) -> str:
        # Figures align right, the set-up left.
        padded = [c.rjust(w) for c, w in zip(figures, widths, strict=True)]
        return "  ".join([*padded, setup]).rstrip()

    out = []
    if common:
        out.append(("shared: " if several else "set-up: ") + " · ".join(common))
    out.append(line(_HEADERS, last_header))
    out.append(line(["-" * w for w in widths], "-" * len(last_header)))
    nothing_own = "—" if several else ""
    out.extend(line(row, " · ".join(parts) or nothing_own) for row, parts in zip(rows, own, strict=True))
    out.append("n: replies · speeds are medians · pp t/s and ttft leave out replies with a cached prompt")
    return "\n".join(out)


class SetupUnavailableError(Exception):
    """A set-up /compare cannot load again; `str()` says why and what to do instead."""


def settings_for(setup: RunSetup, current: LoadSettings, loaded: LoadedModel | None = None) -> LoadSettings:
    """The load settings that bring back `setup`, on top of `current` (what it does not record).

    Only llama.cpp set-ups: every knob of theirs is this app's, while a server's own flags
    (Ollama's, an OpenAI server's) are not recorded, so loading "the same" there would guess.
    A setting asked for as "auto" (or all layers, or a batch the context cuts) stays as asked
    where it gives what the row ran with: /keep would otherwise write a figure that suits this
    machine, this model or this context only. `loaded` (the model in use) tells what "auto"
    gives here.
    """
    if setup.backend is not BackendKind.LLAMA_CPP:
        raise SetupUnavailableError(
            f"only llama.cpp set-ups can be loaded again from /compare; "
            f"on {setup.backend} use /model and /set"
        )
    if not setup.source:
        raise SetupUnavailableError(
            "this set-up was recorded before /compare could load it again; use /model and /set"
        )
    from lollma_tui.core.backends.llamacpp_worker import default_threads

    changes: dict[str, object] = {
        "backend": BackendKind.LLAMA_CPP,
        "model": setup.source,
        "n_ctx": setup.n_ctx,
        "n_threads": None if setup.n_threads == default_threads() else setup.n_threads,
    }
    if not _same_layers(setup, current, loaded):
        changes["n_gpu_layers"] = setup.n_gpu_layers
    if setup.n_batch is not None and min(current.n_batch, setup.n_ctx) != setup.n_batch:
        changes["n_batch"] = setup.n_batch
    if setup.flash_attn is not None:
        changes["flash_attn"] = setup.flash_attn
    if setup.kv_cache_type is not None:
        changes["kv_cache_type"] = setup.kv_cache_type
    # "auto" stays auto where it gives what the row ran with: repacked (it keeps its fallback
    # should repacking crash), or not repacked on a file whose repacked path crashed here or
    # that auto does not repack (the model in use, the same file) (an "off" would be kept by
    # /keep, for every model).
    auto_again = setup.repack or _remembered_crash(setup.source) or _auto_leaves_unpacked(setup, loaded)
    if setup.repack is not None and not (auto_again and current.repack == "auto"):
        changes["repack"] = "on" if setup.repack else "off"
    return current.with_changes(**changes)


def _same_layers(setup: RunSetup, current: LoadSettings, loaded: LoadedModel | None) -> bool:
    """Whether the GPU layers asked now give the row's count again."""
    if loaded is not None and not loaded.gpu_offload_supported:
        return True  # every count is 0 layers on this build
    if current.n_gpu_layers == -1 and setup.n_layers and setup.n_gpu_layers >= setup.n_layers:
        return True
    return (
        current.n_gpu_layers == AUTO
        and loaded is not None
        and loaded.settings.model == setup.source
        and loaded.n_ctx == setup.n_ctx
        and loaded.n_gpu_layers == setup.n_gpu_layers
    )


def _auto_leaves_unpacked(setup: RunSetup, loaded: LoadedModel | None) -> bool:
    return (
        loaded is not None
        and loaded.settings.model == setup.source
        and loaded.settings.repack == "auto"
        and loaded.repack is False
    )


def _remembered_crash(model_path: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    from lollma_tui.core.backends import repack

    try:
        llama_cpp_version = version("llama-cpp-python")  # what the worker reports, unloaded here
    except PackageNotFoundError:
        return False
    key = repack.key_for(model_path, llama_cpp_version)
    return key is not None and repack.RepackMemory().crashes_with_repack(key)
