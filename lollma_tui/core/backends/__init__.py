"""Inference backends. Import the concrete ones from their modules: each pulls in its own
dependencies (httpx for Ollama), which the start-up path should not pay for."""

import os

if os.environ.get("OLLAMA_HOST", "").strip():
    # Only then can the ollama package's own import fail (see `import_ollama_package`).
    from lollma_tui.core.backends.ollama_host import import_ollama_package

    import_ollama_package()
