"""An Ollama-compatible HTTP server for tests (see reference/backends.md §A.10).

    with OllamaTestServer() as server:
        client = ollama.Client(host=server.host)
        server.queue_reply(Script(text="Hi!", tokens_per_second=50))
        server.fail_stream("runner crashed", after=2)
        ...
        assert server.disconnects  # cancellation reached the server

Pytest fixtures live in `tests/ollama_server/fixtures.py`.
"""

from .catalog import (
    QWEN3_THINKING,
    SMOLLM2,
    TINYLLAMA_F16,
    TINYLLAMA_Q4,
    TINYLLAMA_Q8,
    ModelSpec,
    default_installed,
    default_library,
    spec_from_gguf,
)
from .engines import Engine, EngineError, Finish, GenerationJob, Piece, RunnerOptions, Script, ScriptedEngine
from .records import GenerationRecord, LoadRecord, RequestRecord, UnloadRecord
from .server import OllamaTestServer, free_port

__all__ = [
    "QWEN3_THINKING",
    "SMOLLM2",
    "TINYLLAMA_F16",
    "TINYLLAMA_Q4",
    "TINYLLAMA_Q8",
    "Engine",
    "EngineError",
    "Finish",
    "GenerationJob",
    "GenerationRecord",
    "LoadRecord",
    "ModelSpec",
    "OllamaTestServer",
    "Piece",
    "RequestRecord",
    "RunnerOptions",
    "Script",
    "ScriptedEngine",
    "UnloadRecord",
    "default_installed",
    "default_library",
    "free_port",
    "spec_from_gguf",
]
