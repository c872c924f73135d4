"""Run settings: what a model is loaded with and how replies are sampled.

Load settings need a model reload when they change; sampling settings apply to the next reply.
Both are frozen so a reply can keep the exact settings that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

AUTO: Literal["auto"] = "auto"
"""Sentinel for "let the fit estimator (llama.cpp) or the server (Ollama) decide"."""

GpuLayers = int | Literal["auto"]
"""Number of layers to offload; -1 means all of them."""


class BackendKind(StrEnum):
    LLAMA_CPP = "llama.cpp"
    OLLAMA = "ollama"
    OPENAI = "openai"
    """Any server speaking the OpenAI chat API: llama-server, vLLM, LM Studio, llamafile, …"""


KV_CACHE_TYPES: tuple[str, ...] = ("f16", "q8_0", "q4_0", "f32")
REPACK_CHOICES: tuple[str, ...] = ("auto", "on", "off")
MAX_THREADS = 1024
"""Far past any CPU's cores; counts much larger make llama.cpp abort while it sets up threads."""


class SettingsError(ValueError):
    """A settings value is out of range; the message names the field and the allowed range."""


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """Settings that only take effect when the model is (re)loaded."""

    backend: BackendKind = BackendKind.LLAMA_CPP
    model: str = ""
    """A GGUF path for llama.cpp, a tag (``name:tag``) for Ollama, a model id for an OpenAI server."""
    n_gpu_layers: GpuLayers = 0
    n_ctx: int = 4096
    n_threads: int | None = None
    """None lets the backend choose (llama.cpp: half the logical cores)."""
    n_batch: int = 512
    flash_attn: bool = False
    kv_cache_type: str = "f16"
    use_mmap: bool = True
    use_mlock: bool = False
    keep_alive: str = "5m"
    """Ollama only: how long the server keeps the model loaded after a request."""
    repack: str = "auto"
    """llama.cpp only: repacked weight buffers (its fast CPU kernels, AMX included). "auto" uses
    them unless they crashed for this model on this CPU before (see backends.repack)."""

    def __post_init__(self) -> None:
        if self.n_gpu_layers != AUTO and (not isinstance(self.n_gpu_layers, int) or self.n_gpu_layers < -1):
            raise SettingsError(
                f"n_gpu_layers must be -1 (all), 0 or more, or 'auto', not {self.n_gpu_layers!r}"
            )
        if not 64 <= self.n_ctx <= 1 << 22:
            raise SettingsError(f"n_ctx must be between 64 and 4194304, not {self.n_ctx}")
        if self.n_threads is not None and not 1 <= self.n_threads <= MAX_THREADS:
            raise SettingsError(f"n_threads must be between 1 and {MAX_THREADS}, not {self.n_threads}")
        if not 1 <= self.n_batch <= 1 << 16:
            raise SettingsError(f"n_batch must be between 1 and 65536, not {self.n_batch}")
        if self.kv_cache_type not in KV_CACHE_TYPES:
            raise SettingsError(
                f"kv_cache_type must be one of {', '.join(KV_CACHE_TYPES)}, not {self.kv_cache_type!r}"
            )

        if self.repack not in REPACK_CHOICES:
            raise SettingsError(f"repack must be one of {', '.join(REPACK_CHOICES)}, not {self.repack!r}")

    def with_changes(self, **changes: Any) -> LoadSettings:
        return replace(self, **changes)


MAX_SEED = 2**32 - 2
"""llama.cpp takes a 32-bit seed, and reads 2**32 - 1 as "draw a random one"."""
MAX_COUNT = 2**31 - 1
"""Token counts pass through C ints."""


@dataclass(frozen=True, slots=True)
class SamplingSettings:
    """Settings applied per reply; changing them never reloads the model."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int | None = None
    """None means a fresh random seed for every reply."""
    max_tokens: int | None = None
    """None means until the model stops or the context is full."""
    stop: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 5.0:
            raise SettingsError(f"temperature must be between 0 and 5, not {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise SettingsError(f"top_p must be in (0, 1], not {self.top_p}")
        if self.top_k < 0:
            raise SettingsError(f"top_k must be 0 (off) or more, not {self.top_k}")
        if not 0.0 <= self.min_p < 1.0:
            raise SettingsError(f"min_p must be in [0, 1), not {self.min_p}")
        if not 0.0 < self.repeat_penalty <= 5.0:
            raise SettingsError(f"repeat_penalty must be in (0, 5], not {self.repeat_penalty}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise SettingsError(f"max_tokens must be 1 or more (or unset), not {self.max_tokens}")
        for name in ("top_k", "max_tokens"):
            count = getattr(self, name)
            if count is not None and count > MAX_COUNT:
                raise SettingsError(f"{name} must be at most {MAX_COUNT}, not {count}")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise SettingsError(f"seed must be between 0 and {MAX_SEED} (or random), not {self.seed}")

    def with_changes(self, **changes: Any) -> SamplingSettings:
        return replace(self, **changes)


def sampling_field_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(SamplingSettings))


@dataclass(frozen=True, slots=True)
class StartupOptions:
    """What the command line asked for, handed to the app."""

    load: LoadSettings
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    system_prompt: str = ""
    theme: str = "lollma-dark"
    theme_from: str | None = None
    """The config file that named `theme` (not a flag): a theme that is none is its problem."""
    demo: bool = False
    """The model is the bundled demo; it is assembled (once) before the first load."""
    ollama_host: str | None = None
    """Ollama server address; None means OLLAMA_HOST or the default 127.0.0.1:11434."""
    openai_base_url: str | None = None
    """OpenAI-compatible server (…/v1); None means OPENAI_BASE_URL or http://127.0.0.1:8080/v1."""
    openai_api_key_env: str | None = None
    """Name of the environment variable holding that server's API key; None means OPENAI_API_KEY."""
    hw_host: str | None = None
    """Watch this machine's hardware over ssh (``[user@]host[:port]``) instead of this one's."""
    hw_command: str | None = None
    """The command run there; None means `lollma-tui monitor --jsonl` at the panel's interval."""
    ssh_options: tuple[str, ...] = ()
    """Options given to ssh before the host (e.g. ``-F CONFIG``), for every remote-hardware link."""
    hardware_interval_s: float = 1.0
    """How often the hardware panel samples (0.25–5 s)."""
    new_conversation: bool = False
    """Start with a fresh conversation instead of resuming the last one."""
    conversation_id: str | None = None
    """Resume this conversation (an id or a unique prefix of one)."""
    history_path: Path | None = None
    """Where the chat history lives; None means the default under the user's data folder."""
    config_problems: tuple[str, ...] = ()
    """What the config file said that could not be used (file, key, reason), for the app to show."""
    model_note: str = ""
    """Which of several quantizations a model's name was taken as, as `/model` says it."""

    @property
    def start_notices(self) -> tuple[tuple[str, Literal["info", "warning"]], ...]:
        """What the chat says as it opens, each with its kind: the config file's problems and
        the model's note."""
        notices: list[tuple[str, Literal["info", "warning"]]] = [(p, "warning") for p in self.config_problems]
        if self.model_note:
            notices.append((self.model_note, "info"))
        return tuple(notices)
