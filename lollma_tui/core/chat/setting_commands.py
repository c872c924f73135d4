"""What /model, /quant, /ngl, /ctx, /threads, /batch, /backend and /set do to the settings.

Pure: a command and the current settings in, new settings out (`SettingsChange`), or a
`CommandError` with a message the user can act on. Values are read from text by the settings
table (`core.settings_table`), as the drawer, the flags and the config file read them. The app
then hands `change.load` to `ModelSession.swap` when `change.load_changed`, and
`change.sampling` to `set_sampling`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from lollma_tui.core.backends.base import BackendError, LoadedModel
from lollma_tui.core.backends.describe import loaded_layers
from lollma_tui.core.chat.commands import BY_NAME, Command, CommandError, CompletionContext
from lollma_tui.core.models.catalog import Catalog
from lollma_tui.core.session.models import (
    ModelChoiceError,
    NoModelMatchError,
    missing_file,
    model_names,
    quant_variants,
    resolve_model,
    settings_for_quant,
)
from lollma_tui.core.session.reload import (
    applied_without_reload,
    fixed_fields,
    ignored_fields,
    reload_needed,
)
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, SettingsError
from lollma_tui.core.settings_table import SETTING_NAMES, find_setting, format_value, setting

if TYPE_CHECKING:
    from lollma_tui.core.session.session import ModelSession

_LOAD_NAMES = frozenset(f.name for f in fields(LoadSettings))

CATALOG_WAIT_S = 5.0
"""How long a setting command waits for a server's model list before it takes the last one."""


@dataclass(frozen=True, slots=True)
class CommandState:
    """What a setting command works on."""

    load: LoadSettings
    sampling: SamplingSettings
    catalog: Catalog | None = None
    """Models the current backend can load (GGUF files or Ollama tags); None if unknown."""
    last_models: Mapping[BackendKind, str] = field(default_factory=dict)
    """The model last used with each backend, for /backend without a model."""
    loaded: LoadedModel | None = None
    gguf: Catalog | None = None
    """The GGUF files found in the models folders, whatever the backend: what `/backend
    llama.cpp NAME` picks from."""
    others: Mapping[BackendKind, Catalog] = field(default_factory=dict)
    """What the servers of the other backends offer, where they were asked: what `/backend
    ollama NAME` picks from and lists."""
    unlisted: Mapping[BackendKind, str] = field(default_factory=dict)
    """Why another backend's server could not be asked for its models, where it could not."""


@dataclass(frozen=True, slots=True)
class SettingsChange:
    load: LoadSettings
    sampling: SamplingSettings
    changed: tuple[str, ...]
    """Names of the fields whose value changed (load fields first)."""
    reload: tuple[str, ...]
    """The changed load fields that need a model reload."""
    message: str

    @property
    def load_changed(self) -> bool:
        """True when `load` differs: hand it to `ModelSession.swap` (it reloads only if needed)."""
        return any(name in _LOAD_NAMES for name in self.changed)

    @property
    def needs_reload(self) -> bool:
        return bool(self.reload)


# --- applying -------------------------------------------------------------------------------


def apply_setting_command(command: Command, state: CommandState) -> SettingsChange:
    """The settings after `command` (one of `SETTING_COMMANDS`); raises `CommandError`."""
    name, argument = command.name, command.argument.strip()
    if name == "set":
        return _apply_set(argument, state)
    if name == "model":
        return _apply_model(argument, state)
    if name == "quant":
        return _apply_quant(argument, state)
    if name == "backend":
        return _apply_backend(argument, state)
    field_name = BY_NAME[name].setting if name in BY_NAME else ""
    if not field_name:
        raise CommandError(f"/{name} does not change settings")
    if not argument:
        return _unchanged(
            state, f"{field_name} is {format_value(field_name, getattr(state.load, field_name))}"
        )
    return set_value(state, field_name, argument)


def set_value(state: CommandState, name: str, text: str) -> SettingsChange:
    """``/set NAME TEXT``: convert, validate, and report what changes."""
    if name == "model":
        return _apply_model(text.strip(), state)
    if name == "backend":
        return _apply_backend(text.strip(), state)
    try:
        value = setting(name).parse(text)
        fixed = fixed_fields(state.load.backend).get(name)
        if fixed is not None and value != getattr(state.load, name):
            # Accepted, it read "0 → 20", and the load that followed "not changed".
            raise CommandError(f"{name} not changed: {fixed}")
        if name in _LOAD_NAMES:
            change = _change(state, load=state.load.with_changes(**{name: value}))
        else:
            change = _change(state, sampling=state.sampling.with_changes(**{name: value}))
    except SettingsError as error:
        raise CommandError(str(error)) from None
    if not change.changed:
        return _unchanged(state, f"{name} is already {format_value(name, value)}")
    return change


def _split(argument: str) -> tuple[str, str]:
    """The first word and the rest: a word ends at any white space (Ctrl+J, a pasted tab), as
    a command's name does."""
    first, *rest = argument.split(maxsplit=1) or [""]
    return first, rest[0] if rest else ""


def _apply_set(argument: str, state: CommandState) -> SettingsChange:
    key, value = _split(argument)
    if not key:
        raise CommandError(f"usage: /set KEY VALUE — keys: {', '.join(SETTING_NAMES)}")
    try:
        name = find_setting(key).name
    except SettingsError as error:
        raise CommandError(str(error)) from None
    if not value.strip() and name != "stop":
        current = getattr(state.load if name in _LOAD_NAMES else state.sampling, name)
        return _unchanged(state, f"{name} is {format_value(name, current)}")
    return set_value(state, name, value)


def _apply_model(argument: str, state: CommandState) -> SettingsChange:
    catalog = state.catalog
    if not argument:
        if catalog is None or not catalog.groups:
            raise CommandError("usage: /model NAME — part of a model's name, a GGUF path or an Ollama tag")
        names = ", ".join(g.name for g in catalog.groups)
        return _unchanged(state, f"models: {names}")
    if catalog is None and state.load.backend in (BackendKind.OLLAMA, BackendKind.OPENAI):
        # Without the server's list, trust the name: loading it will say if it is missing.
        return _change(state, load=state.load.with_changes(model=argument))
    prefer = state.loaded.quant if state.loaded is not None else None
    try:
        choice = resolve_model(argument, catalog or Catalog(), prefer_quant=prefer)
    except NoModelMatchError as error:
        # A path is a file or nothing: the names it did not match would only confuse.
        local = state.load.backend is BackendKind.LLAMA_CPP
        raise CommandError((local and missing_file(argument)) or str(error)) from None
    except ModelChoiceError as error:
        raise CommandError(str(error)) from None
    return _change(state, load=state.load.with_changes(model=choice.ref), note=choice.note)


def _apply_quant(argument: str, state: CommandState) -> SettingsChange:
    catalog = state.catalog
    if catalog is None:
        raise CommandError("the model list is not available yet, so the quantizations are unknown")
    if state.load.backend is BackendKind.OPENAI:
        # A server's ids are not grouped into quantizations: its answer was "quantizations: ?".
        offered = ", ".join(group.name for group in catalog.groups[:8]) or "nothing"
        raise CommandError(
            f"an OpenAI-compatible server serves each quantization as a model of its own: "
            f"/model NAME picks one (it offers {offered})"
        )
    if not argument:
        variants = quant_variants(catalog, state.load.model)
        if not variants:
            raise CommandError("the current model is not in the model list; its quantizations are unknown")
        return _unchanged(state, "quantizations: " + ", ".join(dict.fromkeys(v.quant for v in variants)))
    try:
        load = settings_for_quant(state.load, argument, catalog)
    except ModelChoiceError as error:
        raise CommandError(str(error)) from None
    return _change(state, load=load)


def _apply_backend(argument: str, state: CommandState) -> SettingsChange:
    word, model = _split(argument)
    if not word:
        raise CommandError(f"usage: /backend llama.cpp|ollama|openai [MODEL] — now: {state.load.backend}")
    try:
        kind = setting("backend").parse(word)
    except SettingsError as error:
        raise CommandError(str(error)) from None
    model = model.strip()
    if kind is state.load.backend:
        if not model:
            return _unchanged(state, f"backend is already {kind}")
        return _apply_model(model, state)
    chosen = model or state.last_models.get(kind, "")
    offered = state.gguf if kind is BackendKind.LLAMA_CPP else state.others.get(kind)
    only = offered.groups[0].variants if offered is not None and len(offered.groups) == 1 else ()
    if not chosen and kind is not BackendKind.LLAMA_CPP and len(only) == 1:
        chosen = only[0].ref  # a server's only model: loaded, as at start-up
    if not chosen:
        if offered is not None and offered.groups:
            found = ", ".join(group.name for group in offered.groups)
            raise CommandError(f"which model with {kind}? /backend {kind} NAME (found: {found})")
        if kind in state.unlisted:
            why = state.unlisted[kind]
            raise CommandError(f"which model with {kind}? Its server could not be asked: {why}")
        example = "PATH/TO/model.gguf" if kind is BackendKind.LLAMA_CPP else "NAME:TAG (see `ollama list`)"
        raise CommandError(f"which model with {kind}? /backend {kind} {example}")
    note = ""
    if model and offered is not None and offered.groups:
        # Part of a name, as /model takes it.
        try:
            choice = resolve_model(model, offered)
            chosen, note = choice.ref, choice.note
        except NoModelMatchError as error:
            if kind is BackendKind.LLAMA_CPP:
                raise CommandError(missing_file(model) or str(error)) from None
            if kind is BackendKind.OLLAMA:
                # Its chat API does not pull a missing model (`ollama run` does): refused here,
                # before the model in use is unloaded for a load that cannot work.
                raise CommandError(f"{error} · /pull {model} downloads it") from None
            # An OpenAI-compatible server may serve names it does not list (LM Studio loads
            # any model it has on request).
        except ModelChoiceError as error:
            raise CommandError(str(error)) from None
    return _change(state, load=state.load.with_changes(backend=kind, model=chosen), note=note)


def backend_named(command: Command) -> BackendKind | None:
    """The backend `/backend KIND …` (or `/set backend KIND …`) moves to; None for any other
    command or a name that is no backend's."""
    argument = command.argument.strip()
    if command.name == "set":
        key, _, argument = argument.partition(" ")
        try:
            if find_setting(key).name != "backend":
                return None
        except SettingsError:
            return None
    elif command.name != "backend":
        return None
    try:
        kind = setting("backend").parse(argument.strip().partition(" ")[0])
    except SettingsError:
        return None
    return kind if isinstance(kind, BackendKind) else None


def _diff(old: LoadSettings | SamplingSettings, new: LoadSettings | SamplingSettings) -> list[str]:
    return [f.name for f in fields(old) if getattr(old, f.name) != getattr(new, f.name)]


def load_changes(old: LoadSettings, new: LoadSettings) -> str:
    """What loading `new` instead of `old` changes, as /set says it ("n_threads: auto → 2")."""
    values = (
        (name, format_value(name, getattr(old, name)), format_value(name, getattr(new, name)))
        for name in _diff(old, new)
    )
    return "; ".join(f"{name}: {before or 'none'} → {after}" for name, before, after in values) or "no change"


def _unchanged(state: CommandState, message: str) -> SettingsChange:
    return SettingsChange(state.load, state.sampling, (), (), message)


def _cpu_only_build(state: CommandState, new_load: LoadSettings) -> bool:
    loaded = state.loaded
    return (
        loaded is not None
        and not loaded.gpu_offload_supported
        and loaded.settings.backend is BackendKind.LLAMA_CPP
        and new_load.backend is BackendKind.LLAMA_CPP
    )


def _change(
    state: CommandState,
    *,
    load: LoadSettings | None = None,
    sampling: SamplingSettings | None = None,
    note: str = "",
) -> SettingsChange:
    new_load = load if load is not None else state.load
    new_sampling = sampling if sampling is not None else state.sampling
    old_load, old_sampling = state.load, state.sampling
    load_changed = [
        f.name for f in fields(LoadSettings) if getattr(old_load, f.name) != getattr(new_load, f.name)
    ]
    sampling_changed = [
        f.name
        for f in fields(SamplingSettings)
        if getattr(old_sampling, f.name) != getattr(new_sampling, f.name)
    ]
    reload = reload_needed(old_load, new_load)
    in_place = set(applied_without_reload(old_load, new_load))
    ignored = ignored_fields(new_load.backend)
    parts = []
    for name in load_changed:
        before = format_value(name, getattr(old_load, name)) or "none"
        after = format_value(name, getattr(new_load, name))
        if name == "n_gpu_layers" and _cpu_only_build(state, new_load):
            effect = (
                "no reload: every layer already runs on the CPU"
                if new_load.n_gpu_layers == 0
                else "ignored: this llama.cpp build runs every layer on the CPU"
            )
        elif name in reload or name == "backend":
            effect = "reloads the model" if old_load.model else "loads the model"
        elif name in in_place:
            effect = "applies without a reload"
        elif name in ignored:
            effect = f"not used by {new_load.backend}"
        else:
            effect = "no reload needed"
        parts.append(f"{name}: {before} → {after} ({effect})")
    for name in sampling_changed:
        before = format_value(name, getattr(old_sampling, name))
        after = format_value(name, getattr(new_sampling, name))
        parts.append(f"{name}: {before} → {after} (next reply)")
    if not parts:
        parts.append("no change")
    if note:
        parts.append(note)
    return SettingsChange(
        new_load, new_sampling, tuple(load_changed + sampling_changed), reload, "; ".join(parts)
    )


# --- showing --------------------------------------------------------------------------------


def describe_settings(
    load: LoadSettings, sampling: SamplingSettings, loaded: LoadedModel | None = None
) -> str:
    """/settings: every field, one per line, with what the backend actually applied."""
    ignored = ignored_fields(load.backend)
    width = max(len(n) for n in SETTING_NAMES)
    lines = ["load (changing these reloads the model):"]
    for f in fields(LoadSettings):
        value = format_value(f.name, getattr(load, f.name))
        extra = ""
        if f.name in ignored:
            extra = f"  (not used by {load.backend})"
        elif loaded is not None:
            extra = _actual(f.name, load, loaded)
        lines.append(f"  {f.name.ljust(width)}  {value}{extra}")
    lines.append("sampling (next reply):")
    for f in fields(SamplingSettings):
        lines.append(f"  {f.name.ljust(width)}  {format_value(f.name, getattr(sampling, f.name))}")
    return "\n".join(lines)


def _actual(name: str, load: LoadSettings, loaded: LoadedModel) -> str:
    if name == "model":
        return f"  ({loaded.name}, {loaded.quant})"
    if name == "n_gpu_layers":
        return f"  (on GPU: {loaded_layers(loaded).removeprefix('ngl ')})"
    if name == "n_ctx" and loaded.n_ctx != load.n_ctx:
        return f"  (actual: {loaded.n_ctx})"
    if name == "n_threads" and load.n_threads is None and loaded.n_threads is not None:
        return f"  ({loaded.n_threads})"
    if name == "n_batch" and loaded.n_batch is not None and loaded.n_batch != load.n_batch:
        return f"  (actual: {loaded.n_batch}, at most the context)"
    if name == "repack" and loaded.repack is False and load.repack != "off":
        return "  (actual: off)"
    return ""


# --- glue for the app ------------------------------------------------------------------------


def completion_context(state: CommandState, themes: tuple[str, ...] = ()) -> CompletionContext:
    """Argument completions from what the state knows (models, the current model's quants)."""
    catalog = state.catalog
    listed = {kind: model_names(offered) for kind, offered in state.others.items()}
    if state.gguf is not None:
        listed[BackendKind.LLAMA_CPP] = model_names(state.gguf)
    backend_models = {kind.value: names for kind, names in listed.items()}
    if catalog is None:
        return CompletionContext(themes=themes, backend_models=backend_models)
    quants = tuple(dict.fromkeys(v.quant for v in quant_variants(catalog, state.load.model)))
    return CompletionContext(
        models=model_names(catalog), quants=quants, themes=themes, backend_models=backend_models
    )


async def command_state(
    session: ModelSession,
    gguf_catalog: Catalog | None = None,
    others: Mapping[BackendKind, Catalog] | None = None,
    unlisted: Mapping[BackendKind, str] | None = None,
) -> CommandState:
    """The session's settings and catalog as a `CommandState` (catalog None if Ollama is down).

    A server that does not answer its model list within `CATALOG_WAIT_S` (hung, or a network
    gone quiet) gets the list it gave last, from `others`: the command runs on the screen's
    turn, and waited the whole HTTP timeout with the screen frozen.
    """
    try:
        catalog: Catalog | None = await asyncio.wait_for(session.catalog(gguf_catalog), CATALOG_WAIT_S)
    except BackendError:
        catalog = None
    except TimeoutError:
        catalog = (others or {}).get(session.kind)
    return CommandState(
        load=session.settings,
        sampling=session.sampling,
        catalog=catalog,
        last_models=session.last_models,
        loaded=session.loaded,
        gguf=gguf_catalog,
        others={kind: catalog for kind, catalog in (others or {}).items() if kind is not session.kind},
        unlisted={kind: why for kind, why in (unlisted or {}).items() if kind is not session.kind},
    )
