"""Keeping the settings in use as the start-up defaults: `/keep` writes them into config.toml,
and a theme picked with /theme or the palette goes into its ``[ui]`` table.

The end of the user's loop (change one setting, chat, compare) is keeping the best set-up. The
file is edited, not rewritten: comments, the ``[[hosts]]`` tables and the order of keys stay as
the user wrote them (tomlkit keeps them). In ``[settings]`` a setting already there is updated
under the key it was written with (``ctx`` stays ``ctx``); one that is not there is added only
when its value differs from the built-in default, so the file stays short and says what was
chosen. Values are written as `read_config` reads them back: numbers as TOML numbers, stop
strings as a list, the rest as the text `/set` takes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from lollma_tui.core.config_file import ConfigReadError, config_path, config_text
from lollma_tui.core.safe_files import write_private_file
from lollma_tui.core.settings import LoadSettings, SamplingSettings, SettingsError
from lollma_tui.core.settings_table import SETTINGS, Setting, find_setting


class KeepError(Exception):
    """The settings could not be kept; `str(error)` says why, and the file is unchanged."""


@dataclass(frozen=True, slots=True)
class Kept:
    path: Path
    written: tuple[str, ...]
    """``key value`` for each setting written, in the file's order."""
    removed: tuple[str, ...] = ()
    """Keys taken out (a model when the demo model is in use: it is the default)."""
    duplicates: tuple[str, ...] = ()
    """Keys taken out because another key of the file set the same setting (ctx and n_ctx):
    the file then said two things, and the next start read the last."""


def keep_settings(
    load: LoadSettings,
    sampling: SamplingSettings,
    *,
    path: Path | None = None,
    model_is_default: bool = False,
    sampling_defaults: SamplingSettings | None = None,
) -> Kept:
    """Write `load` and `sampling` into the ``[settings]`` table of the config file.

    `model_is_default`: the model in use is what starts without one (the demo model), so the
    file names none; a model it named is taken out. `sampling_defaults`: what the next start
    samples with unless the file says otherwise (the demo model has its own).
    """
    path = (path or config_path()).resolve()  # a config symlinked from dotfiles stays a symlink
    document = _read(path)
    table = document.get("settings")
    if table is None:
        table = tomlkit.table()
        document.add("settings", table)
    elif not isinstance(table, MutableMapping):  # `settings = { ctx = 2048 }` and dotted keys too
        raise KeepError(f"{path}: settings is not a table ([settings]); fix it by hand first")
    keys = _keys_by_setting(table.keys())
    written: list[str] = []
    removed: list[str] = []
    duplicates = [key for found in keys.values() for key in found[1:]]
    for duplicate in duplicates:
        del table[duplicate]
    values = {**_fields(load), **_fields(sampling)}
    defaults = {**_fields(LoadSettings()), **_fields(sampling_defaults or SamplingSettings())}
    for setting in SETTINGS:
        value = values[setting.name]
        key = keys[setting.name][0] if setting.name in keys else None
        if setting.name == "model" and model_is_default:
            if key is not None:
                del table[key]
                removed.append(key)
            continue
        if key is None and value == defaults[setting.name]:
            continue
        key = key or setting.name
        table[key] = _toml_value(setting, value)
        written.append(f"{key} {setting.format(value)}")
    _write(path, tomlkit.dumps(document))
    return Kept(path, tuple(written), tuple(removed), tuple(duplicates))


def keep_theme(name: str, path: Path | None = None) -> Path:
    """Write ``[ui] theme``, so the next start has the theme picked now; returns the file."""
    path = (path or config_path()).resolve()
    document = _read(path)
    table = document.get("ui")
    if table is None:
        table = tomlkit.table()
        document.add("ui", table)
    elif not isinstance(table, MutableMapping):
        raise KeepError(f"{path}: ui is not a table ([ui]); fix it by hand first")
    table["theme"] = name
    _write(path, tomlkit.dumps(document))
    return path


def _read(path: Path) -> tomlkit.TOMLDocument:
    try:
        text = config_text(path)
    except ConfigReadError as error:
        raise KeepError(f"{error}; nothing was written") from None
    if text is None:
        return tomlkit.document()
    try:
        return tomlkit.parse(text)
    except TOMLKitError as error:
        raise KeepError(f"{path}: not valid TOML ({error}); fix it first, nothing was written") from None


def _keys_by_setting(keys: Iterable[str]) -> dict[str, list[str]]:
    """Setting name → the keys the file writes it under, in the file's order."""
    found: dict[str, list[str]] = {}
    for key in keys:
        try:
            name = find_setting(key).name
        except SettingsError:
            continue  # an unknown key is the user's; read_config reports it
        found.setdefault(name, []).append(key)
    return found


def _fields(settings: LoadSettings | SamplingSettings) -> dict[str, Any]:
    return {
        setting.name: getattr(settings, setting.name)
        for setting in SETTINGS
        if hasattr(settings, setting.name)
    }


def _toml_value(setting: Setting, value: Any) -> Any:
    if isinstance(value, bool):
        return setting.format(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, tuple):
        return list(value)
    return setting.format(value)


def _write(path: Path, text: str) -> None:
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = None
    try:
        write_private_file(path, text)
        if mode is not None:
            os.chmod(path, mode)  # the user's own file keeps the mode it had
    except OSError as error:
        raise KeepError(f"{path}: could not be written ({error.strerror or error})") from None
