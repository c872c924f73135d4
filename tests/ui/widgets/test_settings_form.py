"""The drawer's logic without widgets: parsing entries, stepping scales, model lists, verdicts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lollma_tui.core.models.catalog import Catalog, scan_models
from lollma_tui.core.models.fit import FitParams, FitStatus, check_fit
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings, SamplingSettings, SettingsError
from lollma_tui.ui.widgets.model_menu import NO_MODEL, ModelMenu, n_ctx_train_of, n_layers_of
from lollma_tui.ui.widgets.settings_form import (
    FIT_LEVELS,
    LOAD_TEXT_FIELDS,
    SAMPLING_FIELDS,
    default_reload_fields,
    fit_summary,
    pending_line,
    rebase,
)
from lollma_tui.ui.widgets.stepper import UNKNOWN_LAYER_LIMIT, ContextScale, LayerScale, StepValue

SAMPLING = {f.name: f for f in SAMPLING_FIELDS}
LOAD = {f.name: f for f in LOAD_TEXT_FIELDS}
MiB = 1 << 20
GiB = 1 << 30


def test_reload_fields_are_the_changed_load_fields_except_keep_alive() -> None:
    old = LoadSettings(model="a.gguf")
    new = old.with_changes(n_ctx=8192, keep_alive="1h", n_gpu_layers=AUTO, model="b.gguf")
    assert default_reload_fields(old, new) == ("model", "n_gpu_layers", "n_ctx")
    assert default_reload_fields(old, old.with_changes(keep_alive="-1")) == ()


def test_rebase_keeps_edits_and_follows_the_rest() -> None:
    old = LoadSettings(model="a.gguf")
    draft = old.with_changes(n_ctx=2048)
    new = old.with_changes(model="b.gguf", n_gpu_layers=4)
    assert rebase(old, new, draft) == new.with_changes(n_ctx=2048)
    # An edit the new settings already contain simply stays.
    assert rebase(old, draft, draft) == draft
    assert rebase(
        SamplingSettings(), SamplingSettings(top_k=5), SamplingSettings(seed=3)
    ) == SamplingSettings(top_k=5, seed=3)


def test_rebase_onto_another_backend_drops_a_model_picked_for_the_old_one() -> None:
    # A quantization picked in the drawer, then /backend ollama: the GGUF stayed as a pending
    # model for Ollama, and Apply was refused.
    old = LoadSettings(model="tiny-F16.gguf", n_ctx=2048)
    draft = old.with_changes(model="tiny-Q4_K_M.gguf", n_ctx=4096)
    ollama = LoadSettings(backend=BackendKind.OLLAMA, model="tinyllama:1b")
    assert rebase(old, ollama, draft) == ollama.with_changes(n_ctx=4096)
    # A draft that chose the backend itself keeps its model for it.
    chosen = old.with_changes(backend=BackendKind.OLLAMA, model="qwen3:0.6b")
    assert rebase(old, ollama, chosen).model == "qwen3:0.6b"


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("temperature", "0.3", 0.3),
        ("temperature", " 1 ", 1.0),
        ("top_k", "0", 0),
        ("seed", "", None),
        ("seed", "42", 42),
        ("max_tokens", "", None),
        ("max_tokens", "128", 128),
        ("stop", "", ()),
    ],
)
def test_sampling_entries_parse(name: str, text: str, value: object) -> None:
    assert SAMPLING[name].parse(text) == value


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("temperature", "9", "temperature must be between 0 and 5, not 9.0"),
        ("temperature", "", "temperature must be a number, not ''"),
        ("top_p", "0", "top_p must be in (0, 1], not 0.0"),
        ("top_k", "1.5", "top_k must be a whole number, not '1.5'"),
        ("max_tokens", "0", "max_tokens must be 1 or more (or unset), not 0"),
    ],
)
def test_sampling_entries_refuse_with_the_core_message(name: str, text: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        SAMPLING[name].parse(text)
    assert str(error.value) == message


def test_load_entries() -> None:
    assert LOAD["n_threads"].parse("") is None
    assert LOAD["n_threads"].parse("8") == 8
    assert LOAD["n_batch"].parse("256") == 256
    with pytest.raises(SettingsError, match="n_batch must be between 1 and 65536, not 0"):
        LOAD["n_batch"].parse("0")
    with pytest.raises(SettingsError, match="n_threads must be between 1 and 1024"):
        LOAD["n_threads"].parse("0")
    assert LOAD["n_threads"].entry_text(None) == "" and LOAD["n_batch"].entry_text(512) == "512"


def walk(scale: LayerScale | ContextScale, start: StepValue, delta: int, steps: int) -> list[StepValue]:
    values = [start]
    for _ in range(steps):
        values.append(scale.step(values[-1], delta))
    return values


def test_layer_scale_runs_from_auto_through_every_layer_to_all() -> None:
    scale = LayerScale(n_layers=2)
    assert walk(scale, AUTO, 1, 6) == [AUTO, 0, 1, 2, 3, -1, -1]
    assert walk(scale, -1, -1, 6) == [-1, 3, 2, 1, 0, AUTO, AUTO]
    assert [scale.label(v) for v in (AUTO, 0, 3, -1)] == ["auto", "0/3", "3/3", "all"]
    assert scale.parse("3") == 3
    with pytest.raises(SettingsError, match="GPU layers must be between 0 and 3, not 4"):
        scale.parse("4")
    # A model with fewer layers: a count beyond its top is all of them, as llama.cpp reads
    # `--ngl 99`; auto and all stay.
    assert [scale.fit(v) for v in (10, AUTO, -1, 1, 3)] == [-1, AUTO, -1, 1, 3]


def test_layer_scale_without_a_layer_count() -> None:
    scale = LayerScale(None)
    assert scale.step(41, 1) == 42 and scale.label(42) == "42"
    assert scale.step(UNKNOWN_LAYER_LIMIT, 1) == -1
    assert scale.parse("80") == 80


def test_context_scale_steps_through_powers_of_two_to_the_training_context() -> None:
    assert ContextScale(4096).steps == (512, 1024, 2048, 4096)
    assert ContextScale(3000).steps == (512, 1024, 2048, 3000)
    scale = ContextScale(32768)
    assert walk(scale, 4096, 1, 4) == [4096, 8192, 16384, 32768, 32768]
    # A typed value between steps moves to the neighbouring steps.
    assert scale.step(3000, 1) == 4096 and scale.step(3000, -1) == 2048
    assert scale.step(512, -1) == 512
    assert scale.parse("3000") == 3000
    with pytest.raises(SettingsError, match="n_ctx must be between 64"):
        scale.parse("10")
    assert ContextScale(4096).label(8192) == "8192 > 4096"
    assert ContextScale(None).last() == 1 << 17


def test_menu_lists_groups_and_their_quants(llama_catalog: Catalog, f16_path: str, q8_path: str) -> None:
    menu = ModelMenu.build(llama_catalog, BackendKind.LLAMA_CPP, (f16_path,))
    (models, model), (quants, quant) = menu.options(f16_path)
    assert [label for label, _ in models] == ["tiny-llama 1.44M", "tiny-wide 2.62M"]
    assert model == 0 and quant == 1
    assert [label for label, _ in quants] == ["Q8_0 · 1.5 MiB", "F16 · 2.8 MiB"]
    variant = menu.variant(q8_path)
    assert variant is not None and variant.quant == "Q8_0"
    assert n_layers_of(variant) == 2 and n_ctx_train_of(variant) == 4096
    assert menu.same_model(f16_path, q8_path)
    assert menu.ref_for_quant(f16_path, 0) == q8_path
    assert menu.ref_for_quant(f16_path, 1) is None
    wide = llama_catalog.groups[1].variants[0].ref
    assert not menu.same_model(f16_path, wide)


def test_a_quant_nobody_reported_is_said_in_words() -> None:
    # The drawer's Quant row read "?" for a server's model and for a file not scanned yet.
    from lollma_tui.core.backends.openai_extras import ServedModel
    from lollma_tui.core.session.models import openai_catalog

    served = openai_catalog([ServedModel("smol"), ServedModel("qwen2.5-7b-instruct-q4_k_m")])
    menu = ModelMenu.build(served, BackendKind.OPENAI)
    assert menu.options("smol")[1][0] == [("not reported", 0)]
    assert menu.options("qwen2.5-7b-instruct-q4_k_m")[1][0] == [("Q4_K_M", 0)]
    loose = ModelMenu.build(Catalog(), BackendKind.LLAMA_CPP, ("/models/x.gguf",))
    assert loose.options("/models/x.gguf")[1][0] == [("unknown", 0)]


def test_one_file_name_in_two_folders_is_told_apart_by_its_folder(
    drawer_models: Path, tmp_path: Path
) -> None:
    # The same model's Q8_0 in the source folder and in the app's models folder: the Quant list
    # showed two identical entries, "Q8_0 · 1.5 MiB · tiny-llama-Q8_0.gguf".
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(drawer_models / "tiny-llama-Q8_0.gguf", elsewhere)
    catalog = scan_models([drawer_models, elsewhere])
    menu = ModelMenu.build(catalog, BackendKind.LLAMA_CPP)
    (_, _), (quants, _) = menu.options(str(drawer_models / "tiny-llama-F16.gguf"))
    labels = [label for label, _ in quants]
    assert len(labels) == 3 and len(set(labels)) == 3, labels
    assert f"tiny-llama-Q8_0.gguf in {elsewhere}" in " ".join(labels)
    assert f"tiny-llama-Q8_0.gguf in {drawer_models}" in " ".join(labels)


def test_picking_a_model_prefers_the_file_in_use_then_the_same_quant(
    llama_catalog: Catalog, ollama_catalog: Catalog, f16_path: str, q8_path: str
) -> None:
    menu = ModelMenu.build(llama_catalog, BackendKind.LLAMA_CPP)
    wide = llama_catalog.groups[1].variants[0].ref
    # tiny-wide has only F16: from F16 that is the same quant, from Q8_0 the first one.
    assert menu.ref_for_model(1, f16_path, f16_path) == wide
    assert menu.ref_for_model(1, q8_path, q8_path) == wide
    # Back to the model in effect: its own file, not the smallest one.
    assert menu.ref_for_model(0, wide, f16_path) == f16_path
    assert menu.ref_for_model(0, f16_path, f16_path) is None
    assert menu.ref_for_model(5, f16_path, f16_path) is None

    ollama = ModelMenu.build(ollama_catalog, BackendKind.OLLAMA)
    q4, q8 = "llama3.2:3b-instruct-q4_K_M", "llama3.2:3b-instruct-q8_0"
    assert ollama.locate("llama3.2:latest") == ollama.locate(q4) == (0, 0)
    assert ollama.ref_for_quant(q4, 1) == q8
    (_, _), (quants, _) = ollama.options(q4)
    assert [label for label, _ in quants] == ["Q4_K_M · 2.0 GiB", "Q8_0 · 3.4 GiB"]


def test_a_model_the_scan_did_not_find_stays_selectable(llama_catalog: Catalog) -> None:
    menu = ModelMenu.build(llama_catalog, BackendKind.LLAMA_CPP, ("/elsewhere/mystery-Q5_K_M.gguf",))
    (models, model), (quants, quant) = menu.options("/elsewhere/mystery-Q5_K_M.gguf")
    assert models[-1] == ("mystery-Q5_K_M.gguf (not scanned)", 2) and model == 2
    assert quants == [("Q5_K_M", 0)] and quant == 0  # as its name spells it

    empty = ModelMenu.build(Catalog(), BackendKind.OLLAMA)
    assert empty.options("") == (([("no models found", NO_MODEL)], NO_MODEL), ([("—", NO_MODEL)], NO_MODEL))
    assert empty.first_ref() == ""
    # A server that was never listed (down, or not asked yet) has no list, not an empty one.
    unlisted = ModelMenu.build(None, BackendKind.OLLAMA)
    assert unlisted.options("")[0] == ([("no model list", NO_MODEL)], NO_MODEL)


def test_fit_summary_and_levels(llama_catalog: Catalog, f16_path: str) -> None:
    found = llama_catalog.find(f16_path)
    assert found is not None and found[1].header is not None
    header = found[1].header

    def verdict(layers: int, free_vram: int | None, free_ram: int | None) -> tuple[str, str]:
        params = FitParams.from_settings(LoadSettings(model=f16_path, n_gpu_layers=layers))
        result = check_fit(header, params, free_vram, free_ram)
        return fit_summary(result), FIT_LEVELS[result.status]

    text, level = verdict(0, 8 * GiB, 16 * GiB)
    assert level == "ok" and text.startswith("✓ fits · RAM ") and "VRAM" not in text
    text, level = verdict(-1, 8 * GiB, 16 * GiB)
    assert level == "ok" and text.startswith("✓ fits · VRAM ")
    assert verdict(-1, 100 * MiB, 16 * GiB) == ("▲ fits on the CPU only (0 layers on GPU)", "warm")
    text, level = verdict(0, None, 1 * MiB)
    assert level == "hot" and text.startswith("✗ does not fit: RAM short by")
    assert set(FIT_LEVELS) == set(FitStatus)


def test_a_model_not_in_the_catalog_still_gets_a_valid_selection(llama_catalog: Catalog) -> None:
    menu = ModelMenu.build(llama_catalog, BackendKind.LLAMA_CPP)
    (models, value), _ = menu.options("/elsewhere/unknown.gguf")
    assert value in [option for _, option in models]
    assert len(models) == len(menu.choices) + 1


def test_the_pending_line_puts_what_blocks_apply_first() -> None:
    on_ollama = LoadSettings(backend=BackendKind.OLLAMA, model="")
    none = ()
    assert pending_line(on_ollama, errors=none, reload=("backend",), changed=("backend",), asking=True) == (
        "asking Ollama for its models…",
        "",
    )
    down = pending_line(on_ollama, errors=none, reload=(), changed=(), unlisted="Cannot reach Ollama")
    assert down == ("no model list: Cannot reach Ollama", "-invalid")
    assert pending_line(on_ollama, errors=none, reload=(), changed=()) == ("choose a model", "-invalid")
    # An entry to fix comes before anything else.
    assert pending_line(on_ollama, errors=("n_ctx",), reload=(), changed=(), asking=True)[1] == "-invalid"
    chosen = LoadSettings(backend=BackendKind.OLLAMA, model="qwen3:0.6b")
    reload = ("model",)
    assert pending_line(chosen, errors=none, reload=reload, changed=reload, asking=True)[1] == "-reload"
    assert pending_line(chosen, errors=none, reload=(), changed=()) == ("no pending changes", "")
    # A change that applies without a reload is named beside those that reload (it was left out).
    both = pending_line(chosen, errors=none, reload=("n_ctx",), changed=("n_ctx", "keep_alive"))
    assert both == ("⟳ reload: context · also: keep_alive", "-reload")
