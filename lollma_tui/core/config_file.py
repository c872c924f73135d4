"""The user's config file: ``config.toml`` in the config folder, read once at start-up.

    [settings]            # defaults for any load or sampling setting, by its name or an alias
    n_gpu_layers = "auto"
    n_ctx = 8192
    temperature = 0.7
    stop = ["</s>", "User:"]

    [ui]
    theme = "lollma-light"    # /theme and the palette write it when you pick one

    [[hosts]]             # servers to move the chat to (/host NAME), as many as you like
    name = "gpu-box"
    kind = "openai"       # ollama, openai or llama.cpp
    url = "http://gpu-box:8080/v1"
    hw = "ssh://me@gpu-box"   # optional: show its hardware, read over your ssh

Values go through the settings table, as typed text does, so the file accepts what /set accepts.
A bad value or an unknown key is reported (file, key, reason) and left out; the rest still
applies. A host entry that cannot be used is reported and left out; the other hosts stay.
Sections other than those in `SECTIONS` are reported too, so a misspelt name shows.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lollma_tui.core import paths
from lollma_tui.core.hosts import HostEntry, HostEntryError
from lollma_tui.core.settings import SettingsError
from lollma_tui.core.settings_table import Setting, find_setting

CONFIG_FILENAME = "config.toml"
SECTIONS: tuple[str, ...] = ("settings", "ui", "hosts")
UI_KEYS: tuple[str, ...] = ("theme",)
MAX_THEME_NAME = 100
MAX_HOSTS = 64
MAX_CONFIG_BYTES = 1 << 20
"""A config file is a few lines; anything this large is not one."""


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """What the file asked for, and what it said that could not be used."""

    path: Path
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Setting name → value, already read through the settings table."""
    hosts: tuple[HostEntry, ...] = ()
    """The ``[[hosts]]`` entries that could be used, in the file's order."""
    problems: tuple[str, ...] = ()
    """One line per problem: the file, the key and the reason."""
    theme: str | None = None
    """``[ui] theme``: the colour theme to start with (whether it exists is the UI's to check)."""


def config_path() -> Path:
    return paths.config_dir() / CONFIG_FILENAME


class ConfigReadError(Exception):
    """The file is there but cannot be used as a whole; `str(error)` names it and says why."""


def config_text(path: Path) -> str | None:
    """The file's text, or None when there is none; raises `ConfigReadError`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigReadError(f"{path}: could not be read ({error.strerror or error})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigReadError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not read")
    try:
        return data.decode("utf-8-sig")  # Notepad's byte order mark is not TOML
    except UnicodeDecodeError as error:
        raise ConfigReadError(f"{path}: not valid TOML ({error}); not used") from None


def read_config(path: Path | None = None) -> ConfigFile:
    """The file at `path` (default `config_path()`); a missing file is an empty config."""
    path = path or config_path()
    try:
        text = config_text(path)
    except ConfigReadError as error:
        return ConfigFile(path, problems=(str(error),))
    if text is None:
        return ConfigFile(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return ConfigFile(path, problems=(f"{path}: not valid TOML ({error}); not used",))
    problems = [
        _unknown_top_level(path, name, value) for name, value in document.items() if name not in SECTIONS
    ]
    table = document.get("settings", {})
    if not isinstance(table, dict):
        problems.append(f"{path}: settings must be a table ([settings])")
        table = {}
    settings: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key, raw in table.items():
        try:
            setting = find_setting(key)
            settings[setting.name] = setting.parse(_as_text(raw, setting))
        except SettingsError as error:
            problems.append(f"{path}: settings.{key}: {error}")
            continue
        if setting.name in keys:
            problems.append(
                f"{path}: settings.{key}: sets {setting.name} as {keys[setting.name]} does; this one is used"
            )
        keys[setting.name] = key
    hosts = _read_hosts(document.get("hosts", []), path, problems)
    theme = _read_ui(document.get("ui", {}), path, problems)
    return ConfigFile(path, settings, hosts, tuple(problems), theme)


def _unknown_top_level(path: Path, name: str, value: object) -> str:
    if isinstance(value, dict | list):
        return f"{path}: unknown section [{name}] (known: {', '.join(SECTIONS)})"
    # A bare key above every table: most likely a setting or the theme without its table.
    return f"{path}: {name}: a key outside any table; settings go under [settings], the theme under [ui]"


def _read_ui(table: object, path: Path, problems: list[str]) -> str | None:
    if not isinstance(table, dict):
        problems.append(f"{path}: ui must be a table ([ui])")
        return None
    problems.extend(
        f"{path}: ui.{key}: unknown key (known: {', '.join(UI_KEYS)})" for key in table if key not in UI_KEYS
    )
    theme = table.get("theme")
    if theme is None:
        return None
    if not isinstance(theme, str) or not theme.strip() or len(theme) > MAX_THEME_NAME:
        problems.append(f"{path}: ui.theme: must be a theme's name, as /theme lists them")
        return None
    return theme.strip()


def _read_hosts(tables: object, path: Path, problems: list[str]) -> tuple[HostEntry, ...]:
    """Each ``[[hosts]]`` table on its own: a bad one is reported, the others are kept."""
    if not isinstance(tables, list):
        problems.append(f"{path}: hosts must be a list of tables ([[hosts]])")
        return ()
    if len(tables) > MAX_HOSTS:
        problems.append(f"{path}: more than {MAX_HOSTS} hosts; the rest are left out")
    hosts: list[HostEntry] = []
    for index, table in enumerate(tables[:MAX_HOSTS]):
        try:
            entry = HostEntry.from_mapping(table, f"hosts[{index}]")
        except HostEntryError as error:
            problems.append(f"{path}: {error}; this host is left out")
            continue
        known = ", ".join(HostEntry.KEYS)
        problems.extend(
            f"{path}: hosts[{index}].{key}: unknown key (known: {known}); not used"
            for key in table
            if key not in HostEntry.KEYS
        )
        if any(h.name == entry.name for h in hosts):
            problems.append(f"{path}: hosts[{index}].name: {entry.name!r} is named twice; the first is kept")
            continue
        hosts.append(entry)
    return tuple(hosts)


def _as_text(raw: object, setting: Setting) -> str:
    """A TOML value as the text a user would type: numbers and booleans as written, a list
    (stop strings) in the comma-separated form."""
    format_value = setting.format
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool) and not isinstance(setting.default(), tuple):
        # As the file has it: `n_batch = true` was refused as "not 'on'".
        return "true" if raw else "false"
    if isinstance(raw, bool | int | float):
        try:
            return format_value(raw)
        except (TypeError, ValueError, AttributeError):
            # `stop = 5`: the setting shows only text, so it cannot take this value either.
            raise SettingsError(f"takes text or a list of strings in quotes, not {raw!r}") from None
    if isinstance(raw, list):
        if not isinstance(setting.default(), tuple):
            raise SettingsError(f"takes one value, not a list: {raw!r}")
        odd = next((item for item in raw if not isinstance(item, str)), None)
        if odd is None:
            return format_value(tuple(raw))
        raise SettingsError(f"a list here holds only text in quotes, not {odd!r}")
    raise SettingsError(f"takes text, a number, on/off or a list of strings, not {type(raw).__name__}")
