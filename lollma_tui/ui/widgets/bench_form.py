"""The bench screen's sweep form: which model and quant variants, GPU layers, threads, -p/-n/-r.

`SweepForm` holds what the user typed; `spec_from_form` turns it into a `SweepSpec` or a
`SweepInputError` whose one line names the field, so the checks stay testable without widgets.
`BenchSetup` shows the form; it reads the catalog it is given and never scans anything itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Checkbox, Input, Label, Select, SelectionList
from textual.widgets.select import NoSelection
from textual.widgets.selection_list import Selection

from lollma_tui.core import formatting as fmt
from lollma_tui.core.bench.sweep import (
    DEFAULT_N_GEN,
    DEFAULT_N_PROMPT,
    DEFAULT_REPETITIONS,
    GpuLayersChoice,
    SweepInputError,
    SweepSpec,
)
from lollma_tui.core.models.catalog import Catalog, ModelGroup
from lollma_tui.core.settings import AUTO
from lollma_tui.ui.literal import literal_options, literal_text
from lollma_tui.ui.widgets.ticks import TickBox, TickList

NO_MODELS: Final = "no GGUF models found"


@dataclass(frozen=True, slots=True)
class SweepForm:
    """The form's text as typed; the defaults are llama-bench's."""

    gpu_layers: str = "auto"
    threads: str = ""
    """Empty: the physical core count, as llama-bench does."""
    n_prompt: str = "512"
    n_gen: str = "128"
    repetitions: str = "5"
    chat: bool = True
    all_quants: bool = True


def _parts(text: str) -> list[str]:
    return [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]


def parse_gpu_layers(text: str) -> tuple[GpuLayersChoice, ...]:
    values: list[GpuLayersChoice] = []
    for part in _parts(text.lower()):
        if part in ("auto", "a"):
            values.append(AUTO)
        elif part in ("all", "max", "-1"):
            values.append(-1)
        elif part.isdecimal():
            values.append(int(part))
        else:
            raise SweepInputError(f"GPU layers: expected counts, 'all' or 'auto', not {part!r}")
    if not values:
        raise SweepInputError("GPU layers: give a count, 'all' or 'auto'")
    return tuple(dict.fromkeys(values))


def parse_counts(name: str, text: str, *, minimum: int) -> tuple[int, ...]:
    values: list[int] = []
    for part in _parts(text):
        if not part.isdecimal() or int(part) < minimum:
            raise SweepInputError(f"{name}: expected numbers of {minimum} or more, not {part!r}")
        values.append(int(part))
    return tuple(dict.fromkeys(values))


def spec_from_form(form: SweepForm, models: Sequence[str]) -> SweepSpec:
    """The sweep over the model files `models` (one per quant variant) the form asks for."""
    if not models:
        raise SweepInputError("choose at least one quant variant to measure")
    threads = parse_counts("threads", form.threads, minimum=1)
    # Empty is the default the field shows greyed out; 0 leaves the test out.
    n_prompt = parse_counts("-p", form.n_prompt, minimum=0) or (DEFAULT_N_PROMPT,)
    n_gen = parse_counts("-n", form.n_gen, minimum=0) or (DEFAULT_N_GEN,)
    repetitions = parse_counts("-r", form.repetitions, minimum=1)
    if len(repetitions) > 1:
        raise SweepInputError("-r: one repetition count")
    spec = SweepSpec(
        models=tuple(models),
        # Each file is named, so no folder is searched again for its siblings.
        quants=None,
        gpu_layers=parse_gpu_layers(form.gpu_layers),
        threads=threads or None,
        n_prompt=n_prompt,
        n_gen=n_gen,
        repetitions=repetitions[0] if repetitions else DEFAULT_REPETITIONS,
        chat=form.chat,
    )
    spec.validate()
    return spec


def model_option(group: ModelGroup) -> str:
    count = len(group.variants)
    variants = f"{count} quant{'s' if count != 1 else ''}"
    return " · ".join(part for part in (group.name, group.parameter_label, variants) if part)


def file_groups(catalog: Catalog) -> tuple[ModelGroup, ...]:
    """Groups with GGUF files (llama.cpp can bench them; Ollama tags cannot be run here)."""
    return tuple(g for g in catalog.groups if any(v.path is not None for v in g.variants))


class BenchSetup(Vertical):
    """The sweep to run. The screen reads `form` and `selected_models`, or `spec()`."""

    catalog: reactive[Catalog] = reactive(Catalog, init=False)
    """The GGUF models offered; assign a new catalog (after a rescan) to refresh the list."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        model: str | None = None,
        form: SweepForm | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.set_reactive(BenchSetup.catalog, catalog)
        self._initial_model = model
        self._initial_form = form or SweepForm()
        self._groups = file_groups(catalog)
        self._listed: str | None = None
        """The model whose variants the quant list shows."""

    def compose(self) -> ComposeResult:
        form = self._initial_form
        with Horizontal(classes="bench-line"):
            yield Label("model", classes="bench-label")
            yield Select[int](
                literal_options(self._model_options()),
                prompt=NO_MODELS,
                allow_blank=not self._groups,
                value=self._group_index(self._initial_model),
                compact=True,
                id="bench-model",
            )
        with Horizontal(classes="bench-line", id="bench-quant-line"):
            yield Label("quants", classes="bench-label")
            yield TickBox("all", form.all_quants, compact=True, id="bench-all-quants")
            yield TickList[str](compact=True, id="bench-quants")
        with Horizontal(classes="bench-line"):
            yield Label("layers", classes="bench-label")
            yield self._input(
                form.gpu_layers, "auto", "bench-ngl", "GPU layers (-ngl): counts, 'all' or 'auto'"
            )
            yield Label("-t", classes="bench-label-short")
            yield self._input(form.threads, "cores", "bench-threads", "CPU threads, e.g. 1,2,4")
            yield Label("-p", classes="bench-label-short")
            yield self._input(
                form.n_prompt, str(DEFAULT_N_PROMPT), "bench-p", "prompt tokens (pp tests; 0: none)"
            )
            yield Label("-n", classes="bench-label-short")
            yield self._input(
                form.n_gen, str(DEFAULT_N_GEN), "bench-n", "generated tokens (tg tests; 0: none)"
            )
            yield Label("-r", classes="bench-label-short")
            yield self._input(form.repetitions, str(DEFAULT_REPETITIONS), "bench-r", "timed runs per test")
            yield TickBox(
                "chat",
                form.chat,
                compact=True,
                id="bench-chat",
                tooltip="also time a chat reply through the app's own backend",
            )

    @staticmethod
    def _input(value: str, placeholder: str, id: str, tooltip: str) -> Input:
        field = Input(value, placeholder=placeholder, compact=True, id=id, tooltip=tooltip)
        # Without blinking the field only repaints on input, which keeps SSH sessions quiet.
        field.cursor_blink = False
        return field

    def on_mount(self) -> None:
        self._fill_quants(keep=None)

    # -- what the screen reads ------------------------------------------------------------------

    @property
    def group(self) -> ModelGroup | None:
        value = self.query_one("#bench-model", Select).value
        if isinstance(value, int) and 0 <= value < len(self._groups):
            return self._groups[value]
        return None

    @property
    def selected_models(self) -> tuple[str, ...]:
        """The chosen variants' files, smallest first (the catalog's order)."""
        group = self.group
        if group is None:
            return ()
        paths = [str(v.path) for v in group.variants if v.path is not None]
        if self.query_one("#bench-all-quants", Checkbox).value:
            return tuple(paths)
        chosen = set(self.query_one("#bench-quants", SelectionList).selected)
        return tuple(p for p in paths if p in chosen)

    @property
    def form(self) -> SweepForm:
        def text(id: str) -> str:
            return self.query_one(f"#{id}", Input).value

        return SweepForm(
            gpu_layers=text("bench-ngl"),
            threads=text("bench-threads"),
            n_prompt=text("bench-p"),
            n_gen=text("bench-n"),
            repetitions=text("bench-r"),
            chat=self.query_one("#bench-chat", Checkbox).value,
            all_quants=self.query_one("#bench-all-quants", Checkbox).value,
        )

    def spec(self) -> SweepSpec:
        """The sweep as filled in (SweepInputError with one line for the user)."""
        if self.group is None:
            raise SweepInputError(f"{NO_MODELS}: put .gguf files in a model folder")
        return spec_from_form(self.form, self.selected_models)

    # -- keeping the lists in step --------------------------------------------------------------

    def _model_options(self) -> list[tuple[str, int]]:
        return [(model_option(group), index) for index, group in enumerate(self._groups)]

    def _group_index(self, model: str | None) -> int | NoSelection:
        if not self._groups:
            return Select.NULL
        if model is not None:
            found = self.catalog.find(model)
            if found is not None and found[0] in self._groups:
                return self._groups.index(found[0])
        return 0

    def watch_catalog(self, catalog: Catalog) -> None:
        current = self.group
        keep = self.selected_models
        self._groups = file_groups(catalog)
        select = self.query_one("#bench-model", Select)
        select.set_options(literal_options(self._model_options()))
        names = [g.name for g in self._groups]
        if current is not None and current.name in names:
            select.value = names.index(current.name)
        elif self._groups:
            select.value = self._group_index(self._initial_model)  # the first catalog: the model in use
        self._fill_quants(keep=set(keep))

    @on(Select.Changed, "#bench-model")
    def _model_changed(self, event: Select.Changed) -> None:
        event.stop()
        group = self.group
        # A rescan can move the same model to another position; its list is already refreshed.
        if (group.name if group is not None else None) != self._listed:
            self._fill_quants(keep=None)

    @on(Checkbox.Changed, "#bench-all-quants")
    def _all_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        quants = self.query_one("#bench-quants", SelectionList)
        if event.value:
            quants.select_all()
        quants.disabled = event.value
        if not event.value and quants.highlighted is None and quants.option_count:
            quants.highlighted = 0  # or Space, once in the list, ticked nothing until Down was pressed

    def _fill_quants(self, keep: set[str] | None) -> None:
        """List the model's variants; `keep` names the files to leave ticked (None: all)."""
        quants: SelectionList[str] = self.query_one("#bench-quants", SelectionList)
        group = self.group
        self._listed = group.name if group is not None else None
        quants.clear_options()
        if group is not None:
            quants.add_options(
                Selection(
                    literal_text(f"{variant.quant} {fmt.size(variant.size_bytes)}", one_line=True),
                    str(variant.path),
                    keep is None or str(variant.path) in keep,
                )
                for variant in group.variants
                if variant.path is not None
            )
        all_quants = self.query_one("#bench-all-quants", Checkbox).value
        if all_quants:
            quants.select_all()
        quants.disabled = all_quants
