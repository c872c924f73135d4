"""The settings drawer: change one setting, apply, chat, compare.

Data comes down from the app as attributes (the settings in effect, the model catalogs, a fit
checker, a busy message). The drawer keeps a draft of the load settings and sends intents up:
`ApplyRequested` when Apply is pressed, `SamplingChanged` at once for every valid sampling edit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, Input, Select, Static, Switch

from lollma_tui.core.models.catalog import Catalog
from lollma_tui.core.settings import (
    KV_CACHE_TYPES,
    REPACK_CHOICES,
    BackendKind,
    LoadSettings,
    SamplingSettings,
    SettingsError,
)
from lollma_tui.core.settings_table import QUANT_HELP, Setting, setting
from lollma_tui.ui.literal import literal_options, plain
from lollma_tui.ui.widgets.model_menu import ModelMenu, Options, n_ctx_train_of, n_layers_of
from lollma_tui.ui.widgets.sampling_section import SamplingSection
from lollma_tui.ui.widgets.settings_form import (
    BACKEND_LABELS,
    LOAD_TEXT_FIELDS,
    REMOTE_FIT_NOTE,
    FitChecker,
    ReadOnlyFields,
    ReloadFields,
    applied_changes,
    changed_fields,
    default_reload_fields,
    no_read_only,
    pending_line,
    read_only_summary,
    rebase,
    shown_errors,
)
from lollma_tui.ui.widgets.settings_rows import ApplyBar, FieldRow, FitLine, compact_select, text_row
from lollma_tui.ui.widgets.stepper import ContextScale, LayerScale, Stepper

_SWITCHES = ("flash_attn", "use_mmap", "use_mlock")
_TEXT_FIELDS = {f.name: f for f in LOAD_TEXT_FIELDS}


def _row(name: str, control: Widget) -> FieldRow:
    return FieldRow(setting(name).row_label, control, field=name, help=setting(name).help)


@dataclass
class DrawerMessage(Message):
    """What the drawer posts: `control` is the drawer, for `@on(…, "#settings-drawer")`."""

    drawer: SettingsDrawer

    @property
    def control(self) -> SettingsDrawer:
        return self.drawer


class SettingsDrawer(Vertical):
    """Every load and sampling setting in one scrolling column; shown while it has `-open`.

    | Key | Description |
    | :- | :- |
    | escape | Close the drawer (posts `Closed`); left to the screen while `reply_running`. |
    """

    # The drawer is built the first time it opens; reading its stylesheet then (not in the app's
    # CSS_PATH) keeps it off the first frame. Not scoped: its rules are written as app rules.
    DEFAULT_CSS = (Path(__file__).resolve().parent.parent / "settings_drawer.tcss").read_text("utf-8")
    SCOPED_CSS = False

    BINDINGS = [Binding("escape", "close", "Close", id="settings.close")]

    applied_load: reactive[LoadSettings] = reactive(LoadSettings, init=False)
    """The load settings in effect; edits that differ from them are pending until applied."""
    applied_sampling: reactive[SamplingSettings] = reactive(SamplingSettings, init=False)
    """The sampling settings in effect."""
    backends: reactive[tuple[BackendKind, ...]] = reactive(tuple(BackendKind), init=False)
    """Backends offered in the Backend list (the applied one is always offered)."""
    catalogs: reactive[Mapping[BackendKind, Catalog]] = reactive(dict, init=False)
    """Models per backend; assign a new mapping to update (mutating it is not noticed)."""
    unlisted: reactive[Mapping[BackendKind, str]] = reactive(dict, init=False)
    """Backends whose server could not be asked for its models, with the reason."""
    busy: reactive[str | None] = reactive(None, init=False)
    """What a running swap is doing ("loading Q8_0…"), or None when idle; Apply waits for None."""
    reply_running: reactive[bool] = reactive(False, init=False, bindings=True)
    """A reply is being written: Esc stops it, wherever the focus is, rather than closing this."""
    last_models: Mapping[BackendKind, str] = {}
    """The model last loaded with each backend: choosing that backend again drafts it, as
    `/backend KIND` loads it (not the first model its server lists)."""

    @dataclass
    class ApplyRequested(DrawerMessage):
        """Apply was pressed: load `load`. `reload_fields` names the changes that need a reload
        (empty when only keep_alive changed, which Ollama takes with the next request)."""

        load: LoadSettings
        reload_fields: tuple[str, ...]

    @dataclass
    class SamplingChanged(DrawerMessage):
        """A new valid combination of sampling settings; it applies to the next reply."""

        sampling: SamplingSettings

    @dataclass
    class QuantizeRequested(DrawerMessage):
        """Quantize… was pressed for `model`, a GGUF file (llama.cpp models only)."""

        model: str

    @dataclass
    class CatalogWanted(DrawerMessage):
        """A server backend was chosen: ask its server what it offers (the answer comes back
        as `catalogs` or `unlisted`)."""

        kind: BackendKind

    @dataclass
    class Closed(DrawerMessage):
        """The drawer was closed (Esc or `close()`); the app may move focus back."""

    def __init__(
        self,
        load: LoadSettings | None = None,
        sampling: SamplingSettings | None = None,
        *,
        backends: Sequence[BackendKind] = tuple(BackendKind),
        catalogs: Mapping[BackendKind, Catalog] | None = None,
        fit_checker: FitChecker | None = None,
        reload_fields: ReloadFields = default_reload_fields,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        load = load or LoadSettings()
        self.set_reactive(SettingsDrawer.applied_load, load)
        self.set_reactive(SettingsDrawer.applied_sampling, sampling or SamplingSettings())
        self.set_reactive(SettingsDrawer.backends, tuple(backends))
        self.set_reactive(SettingsDrawer.catalogs, dict(catalogs or {}))
        self._fit_checker = fit_checker
        self._reload_fields = reload_fields
        self._read_only: ReadOnlyFields = no_read_only
        self._draft = load
        self._errors: dict[str, str] = {}
        self._requested: LoadSettings | None = None
        """The draft last sent with ApplyRequested; it is not sent twice while the app works on it."""
        self._asking: set[BackendKind] = set()
        """Backends whose server was asked for its models and has not answered yet."""
        self._fit_for: LoadSettings | None = None
        self._menu = ModelMenu(None, ())
        self._update_menu()
        self._options_shown: dict[str, Options] = {}
        self._ready = False
        """Set once the controls exist (during the Mount event `is_mounted` is still False)."""

    # -- what the app sets, reads and calls -----------------------------------------------------

    def configure(
        self, *, fit_checker: FitChecker | None, reload_fields: ReloadFields, read_only: ReadOnlyFields
    ) -> None:
        """What the app decides for the drawer: the fit check (called with the draft after each
        change of a load field; pure and fast), (applied, draft) → the load fields whose change
        needs a reload, and backend → the settings it fixes with the reasons (their controls are
        disabled)."""
        self._fit_checker = fit_checker
        self._reload_fields = reload_fields
        self._read_only = read_only
        self._fit_for = None
        self._refresh_status()

    @property
    def draft_load(self) -> LoadSettings:
        """The load settings as edited; a field whose entry is invalid keeps its last valid value."""
        return self._draft

    @property
    def errors(self) -> Mapping[str, str]:
        """Field name → what is wrong with its entry, for load and sampling fields."""
        errors = dict(self._errors)
        if self._ready:
            errors.update(self._sampling.errors)
        return errors

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self) -> None:
        """Show the drawer and focus its first control."""
        self.add_class("-open")
        draft = self._draft
        if not draft.model:
            # A server chosen before that had no list then (down, say) is asked again.
            self._ask_for_models(draft.backend)
        if self._ready:
            # Focus once the drawer is displayed: hidden widgets cannot take focus.
            self.call_after_refresh(self.query_one("#backend", Select).focus)

    def close(self) -> None:
        """Hide the drawer; posts `Closed` if it was open."""
        if self.is_open:
            self.remove_class("-open")
            self.post_message(self.Closed(self))

    def reset(self) -> None:
        """Discard pending edits: every field shows the settings in effect again."""
        self._draft = self.applied_load
        if not self._ready:
            return
        for name in list(self._errors):
            self._set_error(name, None)
        self._update_menu()
        self._show_draft(force=True)
        self._sampling.reset()
        self._refresh_status()

    # -- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        draft = self._draft
        variant = self._menu.variant(draft.model)
        (model_options, model_value), (quant_options, quant_value) = self._menu.options(draft.model)
        self._options_shown = {"model": model_options, "quant": quant_options}
        threads, batch, keep_alive = (_TEXT_FIELDS[n] for n in ("n_threads", "n_batch", "keep_alive"))
        with Horizontal(id="drawer-head"):
            yield Static("Settings", id="drawer-title")
            yield Static("Esc closes", id="drawer-hint")
        yield Static("", id="drawer-busy", markup=False)
        with VerticalScroll(id="drawer-body", can_focus=False):
            yield Static("Model · changes marked ⟳ reload it", classes="drawer-section")
            backend = compact_select(self._backend_options(), draft.backend, id="backend")
            yield _row("backend", backend)
            yield _row("model", compact_select(model_options, model_value, id="model"))
            quant = compact_select(quant_options, quant_value, id="quant")
            yield FieldRow("Quant", quant, field="quant", help=QUANT_HELP)
            yield Static("", id="drawer-read-only", markup=False)
            layers = Stepper(draft.n_gpu_layers, LayerScale(n_layers_of(variant)), id="n_gpu_layers")
            yield _row("n_gpu_layers", layers)
            yield FitLine(id="fit")
            context = Stepper(draft.n_ctx, ContextScale(n_ctx_train_of(variant)), id="n_ctx")
            yield _row("n_ctx", context)
            yield text_row(threads, draft.n_threads, classes="load-input")
            yield text_row(batch, draft.n_batch, classes="load-input")
            yield self._switch_row("flash_attn")
            kv_options = [(kind, kind) for kind in KV_CACHE_TYPES]
            kv_select = compact_select(kv_options, draft.kv_cache_type, id="kv_cache_type")
            yield _row("kv_cache_type", kv_select)
            repack_options = [(choice, choice) for choice in REPACK_CHOICES]
            yield _row("repack", compact_select(repack_options, draft.repack, id="repack"))
            yield self._switch_row("use_mmap")
            yield self._switch_row("use_mlock")
            yield text_row(keep_alive, draft.keep_alive, classes="load-input")
            yield SamplingSection(self.applied_sampling, id="sampling")
        yield ApplyBar(id="apply-bar")

    def _switch_row(self, name: str) -> FieldRow:
        return _row(name, Switch(getattr(self._draft, name), id=name))

    def on_mount(self) -> None:
        self._ready = True
        # What was handed over between compose and now (the catalogs, the settings in effect:
        # the screen sets them right after mounting) is shown now; the watchers skipped it.
        self._show_draft(force=False)
        self._refresh_status()

    @property
    def _sampling(self) -> SamplingSection:
        return self.query_one(SamplingSection)

    # -- data from the app ----------------------------------------------------------------------

    def watch_applied_load(self, old: LoadSettings, new: LoadSettings) -> None:
        self._draft = rebase(old, new, self._draft)
        self._requested = None
        self._update_menu()
        if self._ready:
            # A bad entry left in a field that a command has since set shows what is in effect.
            for name in set(self._errors).intersection(changed_fields(old, new)):
                self._set_error(name, None)
            self._show_draft(force=False)
            self._refresh_status()

    def watch_applied_sampling(self, sampling: SamplingSettings) -> None:
        if self._ready:
            self._sampling.sampling = sampling

    def watch_catalogs(self, old: Mapping[BackendKind, Catalog], new: Mapping[BackendKind, Catalog]) -> None:
        self._asking -= {kind for kind in new if new[kind] is not old.get(kind)}
        self._fit_for = None  # a model the last catalog did not list may have a verdict now
        self._update_menu()
        draft, first = self._draft, self._menu.first_ref()
        if self._ready and first and not draft.model and draft.backend is not self.applied_load.backend:
            # The server chosen a moment ago has answered: its first model, as if it had been
            # known when the backend was chosen.
            self._change_model(first)
        if self._ready:
            self._show_draft(force=False)
            self._refresh_status()

    def watch_unlisted(self, unlisted: Mapping[BackendKind, str]) -> None:
        self._asking -= set(unlisted)
        self._refresh_status()

    def watch_backends(self) -> None:
        if self._ready:
            backend = self.query_one("#backend", Select)
            backend.set_options(literal_options(self._backend_options()))
            backend.value = self._draft.backend

    def watch_busy(self, busy: str | None) -> None:
        if busy is None:
            self._requested = None
        self._refresh_status()

    # -- draft → controls -----------------------------------------------------------------------

    def _backend_options(self) -> list[tuple[str, BackendKind]]:
        kinds = dict.fromkeys((*self.backends, self.applied_load.backend, self._draft.backend))
        return [(BACKEND_LABELS.get(kind, str(kind)), kind) for kind in kinds]

    def _update_menu(self) -> None:
        backend = self._draft.backend
        keep = [self._draft.model]
        if self.applied_load.backend == backend:
            keep.append(self.applied_load.model)
        self._menu = ModelMenu.build(self.catalogs.get(backend), backend, tuple(keep))

    def _show_draft(self, *, force: bool) -> None:
        """Make the load controls show the draft; `force` also overwrites entries being fixed."""
        draft = self._draft
        self.query_one("#backend", Select).value = draft.backend
        for control_id, (options, value) in zip(
            ("model", "quant"), self._menu.options(draft.model), strict=True
        ):
            select: Select[int] = self.query_one(f"#{control_id}", Select)
            # set_options resets the selection, so it is only called when the list changed.
            if self._options_shown.get(control_id) != options:
                self._options_shown[control_id] = options
                select.set_options(literal_options(options))
                if select.value == value:
                    # set_options keeps the old label when the selected value stays the same.
                    select.mutate_reactive(Select.value)  # type: ignore[misc]
            select.value = value
        variant = self._menu.variant(draft.model)
        layers = self.query_one("#n_gpu_layers", Stepper)
        context = self.query_one("#n_ctx", Stepper)
        if force:
            layers.discard_typing()
            context.discard_typing()
        with layers.prevent(Stepper.Changed):
            # Shown on this model's scale, not an edit: `--ngl 99` ("all") stays 99 in the draft.
            layers.scale = LayerScale(n_layers_of(variant))
            if layers.error is None:
                layers.value = layers.scale.fit(draft.n_gpu_layers)
        context.scale = ContextScale(n_ctx_train_of(variant))
        if context.error is None:
            context.value = context.scale.fit(draft.n_ctx)
        for name in _SWITCHES:
            self.query_one(f"#{name}", Switch).value = getattr(draft, name)
        self.query_one("#kv_cache_type", Select).value = draft.kv_cache_type
        self.query_one("#repack", Select).value = draft.repack
        for text_field in LOAD_TEXT_FIELDS:
            if force or text_field.name not in self._errors:
                self._show_text(text_field, getattr(draft, text_field.name), force=force)

    def _show_text(self, text_field: Setting, value: Any, *, force: bool) -> None:
        text_input = self.query_one(f"#{text_field.name}", Input)
        try:
            same = text_field.parse_entry(text_input.value) == value
        except SettingsError:
            same = False
        # An entry that already means this value stays as typed ("08" is not rewritten to "8").
        if force or not same:
            text_input.value = text_field.entry_text(value)

    def _set_error(self, name: str, error: str | None) -> None:
        if error is None:
            self._errors.pop(name, None)
        else:
            self._errors[name] = error
        self.query_one(f"#row-{name}", FieldRow).show_error(error)

    def _change_model(self, ref: str) -> None:
        self._draft = replace(self._draft, model=ref)
        self._update_menu()
        self._show_draft(force=False)
        self._refresh_status()

    # -- controls → draft -----------------------------------------------------------------------
    # Updating a control from code posts the same events as the user does, so every handler
    # reads the control's current value and acts only on a real difference from the draft.

    @on(Select.Changed, "#backend")
    def _backend_chosen(self, event: Select.Changed) -> None:
        event.stop()
        kind = event.select.value
        if not isinstance(kind, BackendKind) or kind == self._draft.backend:
            return
        applied = self.applied_load
        # The model drafted for the old backend means nothing to the new one (an Ollama tag is not
        # a GGUF file): the new backend's menu is built without it.
        self._draft = replace(self._draft, backend=kind, model="")
        self._update_menu()
        self._ask_for_models(kind)
        remembered = applied.model if applied.backend == kind else self.last_models.get(kind, "")
        self._change_model(remembered or self._menu.first_ref())

    def _ask_for_models(self, kind: BackendKind) -> None:
        """Have the app ask the server of `kind` (another backend's) what it offers; asked each
        time, as what a server has installed changes behind the app's back."""
        if kind is not BackendKind.LLAMA_CPP and kind is not self.applied_load.backend:
            self._asking.add(kind)
            self.post_message(self.CatalogWanted(self, kind))
            self._refresh_status()

    @on(Select.Changed, "#model")
    def _model_chosen(self, event: Select.Changed) -> None:
        event.stop()
        index = event.select.value
        if isinstance(index, int):
            ref = self._menu.ref_for_model(index, self._draft.model, self.applied_load.model)
            if ref is not None:
                self._change_model(ref)

    @on(Select.Changed, "#quant")
    def _quant_chosen(self, event: Select.Changed) -> None:
        event.stop()
        index = event.select.value
        if isinstance(index, int):
            ref = self._menu.ref_for_quant(self._draft.model, index)
            if ref is not None:
                self._change_model(ref)

    @on(Stepper.Changed)
    def _stepped(self, event: Stepper.Changed) -> None:
        event.stop()
        name = event.stepper.id or ""
        self._set_error(name, event.stepper.error)
        self._edit(name, event.stepper.value)

    @on(Switch.Changed)
    def _switched(self, event: Switch.Changed) -> None:
        event.stop()
        self._edit(event.switch.id or "", event.switch.value)

    @on(Select.Changed, "#kv_cache_type, #repack")
    def _choice_made(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.select.value, str) and event.select.id:
            self._edit(event.select.id, event.select.value)

    @on(Input.Changed, ".load-input")
    def _load_typed(self, event: Input.Changed) -> None:
        event.stop()
        text_field = _TEXT_FIELDS[event.input.id or ""]
        try:
            value = text_field.parse_entry(event.input.value)
        except SettingsError as error:
            self._set_error(text_field.name, str(error))
            self._refresh_status()
            return
        self._set_error(text_field.name, None)
        self._edit(text_field.name, value)

    @on(Input.Changed, ".sampling-input")
    def _sampling_typed(self, event: Input.Changed) -> None:
        event.stop()
        self._refresh_status()

    def _edit(self, name: str, value: Any) -> None:
        if getattr(self._draft, name) != value:
            self._draft = replace(self._draft, **{name: value})
        self._refresh_status()

    @on(SamplingSection.Changed)
    def _sampling_changed(self, event: SamplingSection.Changed) -> None:
        event.stop()
        # The section already shows these values; keep our copy in step without a round trip.
        self.set_reactive(SettingsDrawer.applied_sampling, event.sampling)
        self.post_message(self.SamplingChanged(self, event.sampling))

    @on(Button.Pressed, "#apply")
    def _apply_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_apply()

    @on(Button.Pressed, "#quantize")
    def _quantize_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        draft = self.draft_load
        if draft.backend is BackendKind.LLAMA_CPP and draft.model:
            self.post_message(self.QuantizeRequested(self, draft.model))
        else:
            self.notify("Quantizing works on GGUF files (the llama.cpp backend).", severity="warning")

    @on(Button.Pressed, "#reset")
    def _reset_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.reset()

    def action_apply(self) -> None:
        if not self._can_apply():
            return
        self._requested = self._draft
        reload = self._reload_fields(self.applied_load, self._draft)
        self.post_message(self.ApplyRequested(self, self._draft, reload))
        self._refresh_status()

    def action_close(self) -> None:
        self.close()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Declined, the key goes on to the screen's own Esc.
        return not (action == "close" and self.reply_running)

    # -- status ---------------------------------------------------------------------------------

    def _can_apply(self) -> bool:
        return (
            self.busy is None
            and not shown_errors(self._errors, self._draft.backend)
            and bool(self._draft.model)
            and bool(applied_changes(self.applied_load, self._draft, self._read_only(self._draft.backend)))
            and self._draft != self._requested
        )

    def _refresh_status(self) -> None:
        if not self._ready:
            return
        applied, draft = self.applied_load, self._draft
        changed = applied_changes(applied, draft, self._read_only(draft.backend))
        reload = self._reload_fields(applied, draft)
        self._mark_rows(changed, reload)
        self.query_one("#row-keep_alive").display = draft.backend == BackendKind.OLLAMA
        self._show_read_only(draft.backend)
        if draft != self._fit_for:
            self._fit_for = draft
            checker = self._fit_checker
            fit = self.query_one(FitLine)
            fit.verdict = checker(draft) if checker is not None and draft.model else None
            fit.note = REMOTE_FIT_NOTE if draft.backend is BackendKind.OPENAI else None

        busy = self.query_one("#drawer-busy", Static)
        busy.display = self.busy is not None
        busy.update(plain(f"⟳ {self.busy or 'applying…'}"))
        text, state = pending_line(
            draft,
            errors=shown_errors(self._errors, draft.backend),
            reload=reload,
            changed=changed,
            asking=draft.backend in self._asking,
            unlisted=self.unlisted.get(draft.backend),
        )
        self.query_one(ApplyBar).show(
            text,
            state,
            reload=bool(reload),
            can_apply=self._can_apply(),
            can_reset=bool(changed or self.errors),
        )

    def _show_read_only(self, backend: BackendKind) -> None:
        reasons = {name: why for name, why in self._read_only(backend).items() if name != "keep_alive"}
        for row in self.query(FieldRow):
            row.show_read_only(reasons.get((row.id or "").removeprefix("row-")))
        summary = self.query_one("#drawer-read-only", Static)
        summary.update(read_only_summary(reasons))
        summary.display = bool(reasons)

    def _mark_rows(self, changed: tuple[str, ...], reload: tuple[str, ...]) -> None:
        """Mark each changed field's row; the model field has two rows, Model and Quant."""
        marks = {name: name for name in changed if name != "model"}
        if "model" in changed:
            marks["quant"] = "model"
            if not self._menu.same_model(self.applied_load.model, self._draft.model):
                marks["model"] = "model"
        for row in self.query(FieldRow):
            field_name = marks.get((row.id or "").removeprefix("row-"))
            row.mark(changed=field_name is not None, reload=field_name in reload)
