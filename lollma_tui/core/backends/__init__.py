"""Inference backends. Import the concrete ones from their modules: each pulls in its own
dependencies (httpx for Ollama), which the start-up path should not pay for."""
