"""The models the active backend can load, as one `Catalog` for the model menu, /model and /quant.

llama.cpp: the app's scan of model folders, widened to the current model's own folder when the
scan does not include it (a model opened by path from elsewhere still lists its siblings).
Ollama: the server's installed tags. An OpenAI-compatible server: its /v1/models.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from lollma_tui.core.backends.base import Backend, BackendError
from lollma_tui.core.models.catalog import Catalog, HeaderCache, scan_models
from lollma_tui.core.paths import user_path
from lollma_tui.core.session.models import ollama_catalog, openai_catalog
from lollma_tui.core.settings import BackendKind


async def backend_catalog(
    backend: Backend, model: str, headers: HeaderCache, gguf_catalog: Catalog | None = None
) -> Catalog:
    """The catalog for `backend`, whose current model is `model`; raises `BackendError` when
    Ollama cannot be asked. The folder scan runs off the loop, reading headers through `headers`."""
    if backend.kind in (BackendKind.OLLAMA, BackendKind.OPENAI):
        return await server_catalog(backend)
    current = model.strip()
    if gguf_catalog is not None and (not current or gguf_catalog.find(current) is not None):
        return gguf_catalog
    if not current:
        return Catalog()
    known = [p for g in gguf_catalog.groups for v in g.variants for p in v.paths] if gguf_catalog else []
    return await asyncio.to_thread(_scan_around, current, known, headers)


async def server_catalog(backend: Backend) -> Catalog:
    """What an Ollama or OpenAI-compatible server offers; raises `BackendError` when it cannot
    be asked. Empty for a llama.cpp backend (its models are files: the folder scan finds them)."""
    list_models = getattr(backend, "list_models", None)
    if list_models is None:
        return Catalog()
    listed = await list_models()
    return ollama_catalog(listed) if backend.kind is BackendKind.OLLAMA else openai_catalog(listed)


SWITCH_PROBE_S = 10.0
"""How long a server may take to list its models before a switch to it is refused."""


async def switch_refusal(backend: Backend, model: str) -> str | None:
    """Why a switch to a server `backend` for `model` would fail, asked before the model in use
    is unloaded (reloading it can take minutes); None when the switch may go ahead."""
    if backend.kind not in (BackendKind.OLLAMA, BackendKind.OPENAI):
        return None
    try:
        catalog = await asyncio.wait_for(server_catalog(backend), SWITCH_PROBE_S)
    except TimeoutError:
        return f"the server did not list its models within {SWITCH_PROBE_S:.0f} s"
    except BackendError as error:
        return str(error)
    name = model.strip()
    if backend.kind is BackendKind.OLLAMA:
        if name and catalog.find(name) is None:
            return f"the server has no model {name!r} (/pull {name} downloads it)"
        return None
    # As the backend's load: a listed id, or none when the server lists only one.
    ids = [group.name for group in catalog.groups]
    if name not in ids and (name or len(ids) != 1):
        offered = ", ".join(ids[:8]) + ("…" if len(ids) > 8 else "") or "none"
        return (
            f"the server has no model {name!r} (it offers: {offered})"
            if name
            else f"which model? it offers: {offered}"
        )
    return None


def _scan_around(model: str, known: list[Path], headers: HeaderCache) -> Catalog:
    path = user_path(model)
    return scan_models([path.parent], [path, *known], cache=headers)
