"""Where lollma-tui keeps its files, resolved lazily (nothing is created at import time)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "lollma-tui"


def _override(env: str) -> Path | None:
    # One switch for tests and for users who want everything in one place.
    value = os.environ.get(env)
    return Path(value) if value else None


def data_dir() -> Path:
    return _override("LOLLMA_DATA_DIR") or platformdirs.user_data_path(APP_NAME, appauthor=False)


def state_dir() -> Path:
    return _override("LOLLMA_STATE_DIR") or platformdirs.user_state_path(APP_NAME, appauthor=False)


def cache_dir() -> Path:
    return _override("LOLLMA_CACHE_DIR") or platformdirs.user_cache_path(APP_NAME, appauthor=False)


def config_dir() -> Path:
    return _override("LOLLMA_CONFIG_DIR") or platformdirs.user_config_path(APP_NAME, appauthor=False)


def log_dir() -> Path:
    return state_dir() / "logs"


def llama_log_path() -> Path:
    return log_dir() / "llama.cpp.log"


def header_cache_path() -> Path:
    """Parsed GGUF headers from earlier scans (a cache: safe to delete)."""
    return cache_dir() / "gguf-headers.json"


# Paths the user types. `Path.expanduser` raises for `~name` of no user (a typo of `~/`), and
# `Path.is_file` for a name too long or a folder that cannot be entered: in the app that would
# end it, on the command line print a traceback. These say "not there" instead, and what reads
# the file next says why it cannot (its own message, with the path as typed).


def user_path(text: str | os.PathLike[str]) -> Path:
    """`text` with a leading `~` or `~user` expanded; an unknown user's `~name` stays as written."""
    return Path(os.path.expanduser(text))


def unknown_home(text: str) -> str | None:
    """The `~name` that `text` starts with when no user has that name (a typo of `~/`), else
    None. Written as is, such a path makes a folder called `~name` in the working folder."""
    if not text.startswith("~") or os.path.expanduser(text) != text:
        return None
    return text.split("/", 1)[0].split(os.sep, 1)[0]


def is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False
