"""llama.cpp's repacked weight buffers: whether to use them, and remembering where they crash.

llama.cpp repacks weights at load time into layouts its fastest CPU kernels want (AMX tiles on
recent Intel Xeons, interleaved blocks elsewhere). On some CPUs that path crashes
(ggml-org/llama.cpp#20824: a segfault in the AMX matmul on Sapphire Rapids-class Xeons), while
the same model runs fine with repacking off (llama.cpp's ``--no-repack``). In ``auto`` mode the
backend tries repacking, and when the worker crashes with it on, runs the model with it off and
records that here, per model file, CPU and llama.cpp version, so the next load goes straight to
the path that works. A new llama.cpp version tries the fast path again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import signal
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lollma_tui.core import paths
from lollma_tui.core.safe_files import write_private_file

UPSTREAM_ISSUE = "llama.cpp#20824"
_MAX_ENTRIES = 500
_MAX_FILE_BYTES = 1 << 20
_IDENTITY_BYTES = 1 << 20
_CPU_FLAGS = ("amx", "avx512", "avx_vnni", "avx2", "f16c", "fma")
"""Flags that pick llama.cpp's CPU kernels; a machine that differs in them may behave otherwise."""


def memory_path() -> Path:
    return paths.cache_dir() / "repack-choices.json"


@cache
def cpu_identity() -> str:
    """The CPU model and the instruction-set flags that decide llama.cpp's kernel paths."""
    model = platform.processor() or platform.machine()
    flags: list[str] = []
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
        for line in cpuinfo:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                model = value.strip()
            elif key == "flags":
                flags = sorted(f for f in value.split() if f.startswith(_CPU_FLAGS))
                break
    return f"{platform.machine()} {model} [{' '.join(flags)}]"


@cache
def cpu_has_amx() -> bool:
    return "amx_" in cpu_identity()


def model_identity(model_path: str) -> str | None:
    """Size and a hash of the file's first MiB (its header): survives a rename, not a change."""
    try:
        with open(model_path, "rb") as model:
            size = os.fstat(model.fileno()).st_size
            head = model.read(_IDENTITY_BYTES)
    except OSError:
        return None
    return f"{size}:{hashlib.sha256(head).hexdigest()[:32]}"


@dataclass(frozen=True, slots=True)
class RepackKey:
    model: str
    cpu: str
    llama_cpp_version: str

    @property
    def digest(self) -> str:
        text = f"{self.model}|{self.cpu}|{self.llama_cpp_version}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def key_for(model_path: str, llama_cpp_version: str) -> RepackKey | None:
    model = model_identity(model_path)
    if model is None:
        return None
    return RepackKey(model, cpu_identity(), llama_cpp_version)


class RepackMemory:
    """The remembered "repacking crashes here" choices, in the cache folder (safe to delete)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or memory_path()

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            with open(self.path, "rb") as file:
                raw = json.loads(file.read(_MAX_FILE_BYTES + 1)[:_MAX_FILE_BYTES])
        except (OSError, ValueError, RecursionError):
            return {}
        entries = raw.get("entries") if isinstance(raw, dict) else None
        if not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, dict)}

    def crashes_with_repack(self, key: RepackKey) -> bool:
        return self._read().get(key.digest, {}).get("repack") is False

    def remember_crash(self, key: RepackKey, model_name: str) -> None:
        entries = self._read()
        entries[key.digest] = {
            "repack": False,
            "model": model_name[:200],
            "cpu": key.cpu[:300],
            "llama_cpp": key.llama_cpp_version[:40],
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        newest = dict(sorted(entries.items(), key=lambda kv: str(kv[1].get("when", "")))[-_MAX_ENTRIES:])
        self._write({"version": 1, "entries": newest})

    def forget(self, key: RepackKey) -> None:
        entries = self._read()
        if entries.pop(key.digest, None) is not None:
            self._write({"version": 1, "entries": entries})

    def _write(self, document: dict[str, object]) -> None:
        with contextlib.suppress(OSError):
            write_private_file(self.path, json.dumps(document, indent=1))


def fallback_note(retry: str = "`/set repack on`") -> str:
    """What the user reads once when a crash made us turn repacking off; `retry` is how to ask
    for it again where the note is read (a chat command, a bench option)."""
    where = "AMX/repacked weight path" if cpu_has_amx() else "repacked weight path"
    return (
        f"llama.cpp crashed in its {where} on this CPU; running with repacking off "
        f"(slower prompt processing). See {UPSTREAM_ISSUE}. {retry} tries it again."
    )


# -- inside a worker process ----------------------------------------------------------------

_REPACK_BUFFER = re.compile(r"\b(CPU_REPACK|AMX|CPU_KLEIDIAI) model buffer size")


def log_position() -> int:
    """Where the worker's log (its stderr, where llama.cpp writes) ends now."""
    try:
        return os.lseek(2, 0, os.SEEK_END)
    except OSError:
        return 0


def repacked_since(position: int, limit: int = 1 << 20) -> bool:
    """Whether llama.cpp made a repacked weight buffer since `position` in the log. Allowed is
    not done: it repacks only the types its CPU kernels take, and says which buffers it made."""
    try:
        with open("/proc/self/fd/2", "rb") as log:
            log.seek(position)
            text = log.read(limit).decode("utf-8", "replace")
    except OSError:
        return False
    return _REPACK_BUFFER.search(text) is not None


def set_repack(llama_cpp: Any, enabled: bool) -> None:
    """Turn llama.cpp's repacked weight buffers (its ``--no-repack``) on or off for the next load.

    `Llama()` has no argument for `llama_model_params.use_extra_bufts`; it takes its model
    params from `llama_model_default_params()`, so that is where the choice goes in.
    """
    module = llama_cpp.llama_cpp
    original = getattr(module, "_lollma_default_params", None)
    if original is None:
        original = module.llama_model_default_params
        module._lollma_default_params = original

    def default_params() -> Any:
        params = original()
        params.use_extra_bufts = enabled
        return params

    module.llama_model_default_params = default_params


FAULT_ENV = "LOLLMA_FAULT_REPACK_CRASH"
"""Test-only: "load" or "reply" makes a worker crash (SIGSEGV) there while repacked weights
are on, as llama.cpp's AMX path does on some CPUs, so the fallback is tested on any machine.
"load:always" crashes every load, repacked or not: a crash repacking did not cause."""


def crash_if_asked(where: str, repack_on: bool) -> None:
    fault = os.environ.get(FAULT_ENV)
    if (repack_on and fault == where) or fault == f"{where}:always":
        state = "on" if repack_on else "off"
        print(f"fault injection: crashing in {where} (repacked weights {state})", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
