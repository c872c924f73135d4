from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from gguf import LlamaFileType
from gguf_factory import TinyModelSpec, write_tiny_gguf
from gguf_model_writer import ModelSpec, write_model

from lollma_tui.core.backends.base import LoadedModel
from lollma_tui.core.backends.openai_extras import ServedModel
from lollma_tui.core.chat.commands import (
    COMMANDS,
    SETTING_COMMANDS,
    Command,
    CommandError,
    CommandSpec,
    CompletionContext,
    complete,
    default_setting_values,
    is_command,
    parse_command,
    unescape_message,
)
from lollma_tui.core.chat.setting_commands import (
    CommandState,
    SettingsChange,
    apply_setting_command,
    backend_named,
    completion_context,
    describe_settings,
    set_value,
)
from lollma_tui.core.models.catalog import build_catalog, scan_models
from lollma_tui.core.models.ollama_tags import group_ollama_models
from lollma_tui.core.session.models import openai_catalog
from lollma_tui.core.session.reload import LOAD_FIELDS
from lollma_tui.core.settings import AUTO, BackendKind, LoadSettings, SamplingSettings
from lollma_tui.core.settings_table import SETTING_NAMES, format_value

LOAD_NAMES = frozenset(LOAD_FIELDS)


def test_parse_with_argument() -> None:
    command = parse_command("/system  You are terse.  ")
    assert (command.name, command.argument) == ("system", "You are terse.")
    # A new line (Ctrl+J) after the name ends it as a space does: it was "unknown command".
    command = parse_command("/system\nYou are terse.\nVery.")
    assert (command.name, command.argument) == ("system", "You are terse.\nVery.")


def test_unique_prefix_is_accepted() -> None:
    assert parse_command("/cl").name == "clear"


def test_ambiguous_prefix_lists_candidates() -> None:
    # /s could be /system or /stop
    with pytest.raises(CommandError, match=r"/stop.*/system|/system.*/stop"):
        parse_command("/s")


def test_unknown_command_points_at_help() -> None:
    with pytest.raises(CommandError, match="/help"):
        parse_command("/frobnicate")


def test_a_setting_typed_as_a_command_points_at_set() -> None:
    # /ctx and /ngl are commands, so /temp 0.3 looked like one too.
    with pytest.raises(CommandError, match=r"unknown command /temp — /set temp 0.3 changes that setting"):
        parse_command("/temp 0.3")
    with pytest.raises(CommandError, match=r"/set top_p VALUE changes that setting"):
        parse_command("/top-p")


def test_an_argument_to_a_command_that_takes_none_is_refused() -> None:
    # "/clear now" cleared the chat and "/edit better words" dropped the words, unsaid.
    with pytest.raises(CommandError, match=r"^/clear takes no argument \(usage: /clear\)$"):
        parse_command("/clear now")
    with pytest.raises(CommandError, match=r"^/edit takes no argument"):
        parse_command("/ed better words")
    assert parse_command("/help model") == Command("help", "model")
    assert parse_command("/clear  ") == Command("clear", "")


def test_double_slash_sends_text() -> None:
    assert not is_command("//not a command")
    assert unescape_message("//etc/hosts is a file") == "/etc/hosts is a file"
    assert is_command("  /clear")


def test_completion() -> None:
    assert [c.name for c in complete("/the")] == ["theme"]
    assert [c.name for c in complete("/th")] == ["threads", "theme"]
    assert complete("/theme dark") == []
    assert complete("hello") == []


# --- model-setting commands -----------------------------------------------------------------

GGUF = LoadSettings(model="/models/tiny-llama-F16.gguf", n_ctx=4096)
STATE = CommandState(GGUF, SamplingSettings())


def run(text: str, state: CommandState = STATE) -> SettingsChange:
    return apply_setting_command(parse_command(text), state)


def tag_record(name: str, digest: str, quant: str, size: int) -> dict[str, object]:
    details = {"family": "llama", "parameter_size": "1.1B", "quantization_level": quant}
    return {"model": name, "size": size, "digest": digest * 64, "details": details}


OLLAMA_TAGS = group_ollama_models(
    [
        tag_record("tinyllama:1b-q4_K_M", "a", "Q4_K_M", 600),
        tag_record("tinyllama:1b-q8_0", "b", "Q8_0", 1100),
        tag_record("tinyllama:1b-fp16", "c", "F16", 2200),
        tag_record("qwen3:0.6b", "d", "Q4_K_M", 500),
    ]
)
OLLAMA_STATE = CommandState(
    LoadSettings(backend=BackendKind.OLLAMA, model="tinyllama:1b-q4_K_M"),
    SamplingSettings(),
    catalog=OLLAMA_TAGS,
    last_models={BackendKind.LLAMA_CPP: "/models/tiny-llama-F16.gguf"},
)


def test_every_new_command_parses() -> None:
    for name in ("model", "quant", "ngl", "ctx", "threads", "batch", "backend", "set", "compare"):
        assert parse_command(f"/{name} x").name == name
    assert parse_command("/settings").name == "settings"
    assert {"model", "quant", "ngl", "ctx", "threads", "batch", "backend", "set"} == SETTING_COMMANDS
    assert {spec.name for spec in COMMANDS} >= SETTING_COMMANDS | {"settings", "compare"}


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("/ngl 20", "n_gpu_layers", 20),
        ("/ngl auto", "n_gpu_layers", AUTO),
        ("/ngl all", "n_gpu_layers", -1),
        ("/ctx 8192", "n_ctx", 8192),
        ("/ctx 32k", "n_ctx", 32768),
        ("/threads 8", "n_threads", 8),
        ("/batch 1024", "n_batch", 1024),
    ],
)
def test_load_commands_change_one_field_and_need_a_reload(text: str, field: str, value: object) -> None:
    change = run(text)
    assert getattr(change.load, field) == value
    assert change.changed == (field,) and change.reload == (field,)
    assert change.needs_reload and change.load_changed
    assert "reloads the model" in change.message and change.sampling == STATE.sampling


def test_choosing_the_first_model_says_it_loads_one() -> None:
    # Ollama starts with no model chosen: there is nothing to reload, and no blank "before".
    state = CommandState(
        LoadSettings(backend=BackendKind.OLLAMA, model=""), SamplingSettings(), catalog=OLLAMA_TAGS
    )
    change = run("/model qwen3:0.6b", state)
    assert change.message == "model: none → qwen3:0.6b (loads the model)"


def loaded_on(settings: LoadSettings, *, gpu_offload: bool) -> LoadedModel:
    return LoadedModel(
        settings=settings,
        name="tiny",
        architecture="llama",
        quant="F16",
        n_layers=2,
        n_ctx=settings.n_ctx,
        n_ctx_train=4096,
        n_gpu_layers=0,
        gpu_offload_supported=gpu_offload,
        chat_format="chatml",
        chat_format_source="gguf",
        size_bytes=1,
        n_params=1,
        load_s=0.1,
    )


def test_gpu_layers_on_a_cpu_only_build_are_said_to_be_ignored() -> None:
    cpu_only = CommandState(GGUF, SamplingSettings(), loaded=loaded_on(GGUF, gpu_offload=False))
    assert run("/ngl all", cpu_only).message == (
        "n_gpu_layers: 0 → all (ignored: this llama.cpp build runs every layer on the CPU)"
    )
    all_layers = GGUF.with_changes(n_gpu_layers=-1)
    back = CommandState(all_layers, SamplingSettings(), loaded=loaded_on(all_layers, gpu_offload=False))
    assert (
        run("/ngl 0", back).message
        == "n_gpu_layers: all → 0 (no reload: every layer already runs on the CPU)"
    )
    gpu_build = CommandState(GGUF, SamplingSettings(), loaded=loaded_on(GGUF, gpu_offload=True))
    assert run("/ngl all", gpu_build).message == "n_gpu_layers: 0 → all (reloads the model)"


def test_threads_auto_goes_back_to_the_backends_choice() -> None:
    state = CommandState(GGUF.with_changes(n_threads=4), SamplingSettings())
    assert run("/threads auto", state).load.n_threads is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("/ngl -3", "layer count, auto or all"),
        ("/ngl lots", "whole number"),
        ("/ctx 10", "n_ctx must be between 64"),
        ("/ctx big", "whole number"),
        ("/threads 0", "n_threads must be between 1"),
        ("/batch 0", "n_batch must be between 1"),
        ("/set temperature hot", "must be a number"),
        ("/set temperature 9", "temperature must be between 0 and 5"),
        ("/set top_k -1", "top_k must be 0"),
        ("/set flash_attn maybe", "on or off"),
        ("/set kv_cache_type q5", "kv_cache_type must be one of"),
        ("/set keep_alive soon", "duration like 5m"),
        ("/set max_tokens 0", "max_tokens must be 1 or more"),
        ("/set stop ,,", "strings separated by commas"),
        ("/set tempature 1", r"no setting called 'tempature'"),
        ("/set", "usage: /set KEY VALUE"),
        ("/backend vllm", "llama.cpp, ollama or openai"),
        ("/backend", "usage: /backend"),
        ("/backend ollama", "which model with ollama"),
        ("/quant Q8_0", "model list is not available"),
    ],
)
def test_bad_values_are_refused_with_a_reason(text: str, error: str) -> None:
    with pytest.raises(CommandError, match=error):
        run(text)


def test_an_unknown_setting_suggests_close_names() -> None:
    with pytest.raises(CommandError, match="did you mean n_ctx"):
        run("/set n_ct 100")


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("/set temperature 0.7", "temperature", 0.7),
        ("/set temp 0", "temperature", 0.0),
        ("/set top_p 0.5", "top_p", 0.5),
        ("/set top_k 0", "top_k", 0),
        ("/set min_p 0.1", "min_p", 0.1),
        ("/set repeat_penalty 1.3", "repeat_penalty", 1.3),
        ("/set seed 42", "seed", 42),
        ("/set max_tokens 64", "max_tokens", 64),
        ("/set stop </s>,###", "stop", ("</s>", "###")),
        ("/set stop a\\,b,\\n\\n", "stop", ("a,b", "\n\n")),
    ],
)
def test_sampling_values_apply_to_the_next_reply(text: str, field: str, value: object) -> None:
    change = run(text)
    assert getattr(change.sampling, field) == value
    assert change.load == STATE.load and not change.load_changed and not change.needs_reload
    assert change.changed == (field,) and "(next reply)" in change.message


def test_sampling_values_that_clear() -> None:
    state = CommandState(GGUF, SamplingSettings(seed=5, max_tokens=10, stop=("x",)))
    assert run("/set seed random", state).sampling.seed is None
    assert run("/set max_tokens none", state).sampling.max_tokens is None
    assert run("/set stop none", state).sampling.stop == ()


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("/set flash_attn on", "flash_attn", True),
        ("/set fa yes", "flash_attn", True),
        ("/set kv_cache_type q8_0", "kv_cache_type", "q8_0"),
        ("/set kv Q4_0", "kv_cache_type", "q4_0"),
        ("/set use-mmap off", "use_mmap", False),
        ("/set mlock on", "use_mlock", True),
        ("/set ngl auto", "n_gpu_layers", AUTO),
        ("/set n_ctx 2k", "n_ctx", 2048),
    ],
)
def test_set_reaches_every_load_field(text: str, field: str, value: object) -> None:
    change = run(text)
    assert getattr(change.load, field) == value
    assert change.reload == (field,)


def test_keep_alive_needs_no_reload_and_ollama_ignores_server_settings() -> None:
    llama = run("/set keep_alive 30m")
    assert llama.load.keep_alive == "30m" and llama.load_changed and not llama.needs_reload
    assert "not used by llama.cpp" in llama.message
    ollama = run("/set keep_alive 1h30m", OLLAMA_STATE)
    assert ollama.load.keep_alive == "1h30m" and not ollama.needs_reload
    assert "applies without a reload" in ollama.message
    fa = run("/set flash_attn on", OLLAMA_STATE)
    assert fa.load.flash_attn and not fa.needs_reload and "not used by ollama" in fa.message
    assert run("/ngl 10", OLLAMA_STATE).reload == ("n_gpu_layers",)


def test_a_server_start_up_flag_is_refused_on_an_openai_server() -> None:
    # "/ngl 20" read "n_gpu_layers: 0 → 20 (not used by openai)", then the load "not changed".
    state = CommandState(LoadSettings(backend=BackendKind.OPENAI, model="qwen"), SamplingSettings())
    for text in ("/ngl 20", "/set n_ctx 8192", "/threads 3"):
        with pytest.raises(CommandError, match="not changed: set when the OpenAI-compatible server starts"):
            run(text, state)
    with pytest.raises(CommandError, match="keep_alive not changed: Ollama's native API only"):
        run("/set keep_alive 1h", state)
    assert run("/ngl 0", state).changed == ()  # what it already is is no change to refuse
    assert run("/set temperature 0.3", state).sampling.temperature == 0.3
    assert run("/model other", state).load.model == "other"


def test_an_unchanged_value_says_so() -> None:
    change = run("/ctx 4096")
    assert change.changed == () and change.message == "n_ctx is already 4096"
    assert run("/ctx").message == "n_ctx is 4096"
    assert run("/set seed").message == "seed is random"


def test_quant_switches_the_ollama_tag() -> None:
    change = run("/quant q8_0", OLLAMA_STATE)
    assert change.load.model == "tinyllama:1b-q8_0" and change.reload == ("model",)
    assert run("/quant", OLLAMA_STATE).message == "quantizations: Q4_K_M, Q8_0, F16"
    with pytest.raises(CommandError, match="no Q6_K variant here; available: Q4_K_M, Q8_0, F16"):
        run("/quant Q6_K", OLLAMA_STATE)


def test_quant_on_a_server_says_each_quantization_is_a_model_of_its_own() -> None:
    # It answered "quantizations: ?" and "smol has no Q8_0 variant here; available: ?".
    catalog = openai_catalog([ServedModel("smol"), ServedModel("qwen2.5-7b-instruct-q4_k_m")])
    state = CommandState(
        LoadSettings(backend=BackendKind.OPENAI, model="smol"), SamplingSettings(), catalog=catalog
    )
    for asked in ("/quant", "/quant Q8_0"):
        with pytest.raises(CommandError) as refused:
            run(asked, state)
        said = str(refused.value)
        assert "?" not in said and "/model NAME" in said
        assert "it offers smol, qwen2.5-7b-instruct-q4_k_m" in said


def test_quant_switches_the_gguf_file(tiny_gguf: Path, tmp_path: Path) -> None:
    # The catalog takes the quantization from general.file_type, so a file that declares
    # Q8_0 stands in for a real second quantization here.
    q8 = write_tiny_gguf(
        tmp_path / "tiny-llama-Q8_0.gguf", TinyModelSpec(file_type=LlamaFileType.MOSTLY_Q8_0)
    )
    catalog = build_catalog([tiny_gguf, q8])
    state = CommandState(LoadSettings(model=str(tiny_gguf)), SamplingSettings(), catalog=catalog)
    assert run("/quant Q8_0", state).load.model == str(q8)


def test_a_copy_of_the_same_quant_elsewhere_is_no_change_and_is_named_by_its_folder(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    # `/quant F16` while on F16 loaded the other folder's copy, and `/model tiny` said
    # "took F16 (also: F16)".
    (tmp_path / "copy").mkdir()
    copy = tmp_path / "copy" / tiny_gguf.name
    shutil.copy(tiny_gguf, copy)
    catalog = build_catalog([tiny_gguf, copy])
    state = CommandState(LoadSettings(model=str(tiny_gguf)), SamplingSettings(), catalog=catalog)
    assert run("/quant F16", state).changed == ()
    state = CommandState(LoadSettings(model=str(copy)), SamplingSettings(), catalog=catalog)
    assert run("/quant f16", state).changed == ()
    note = run("/model tiny-llama", CommandState(GGUF, SamplingSettings(), catalog=catalog)).message
    assert f"took F16 in {tiny_gguf.parent} (also: F16 in {copy.parent})" in note


def test_a_file_the_scan_left_out_is_named_with_its_reason(tiny_gguf: Path, tmp_path: Path) -> None:
    # "no model matches 'halfway'", with the half-downloaded file right there in the folder.
    shutil.copy(tiny_gguf, tmp_path / "good-F16.gguf")
    (tmp_path / "halfway-Q8_0.gguf").write_bytes(tiny_gguf.read_bytes()[:5000])
    catalog = scan_models([tmp_path])
    state = CommandState(GGUF, SamplingSettings(), catalog=catalog)
    with pytest.raises(
        CommandError, match=r"'halfway' is no model that can be loaded: .*halfway-Q8_0\.gguf \("
    ) as caught:
        run("/model halfway", state)
    assert str(tmp_path) in str(caught.value)
    with pytest.raises(CommandError, match="no model matches 'elsewhere'"):
        run("/model elsewhere", state)


def test_model_resolves_part_of_a_name() -> None:
    change = run("/model qwen", OLLAMA_STATE)
    assert change.load.model == "qwen3:0.6b" and change.reload == ("model",)
    with pytest.raises(CommandError, match="no model matches 'mistral'"):
        run("/model mistral", OLLAMA_STATE)
    assert run("/model", OLLAMA_STATE).message == "models: qwen3:0.6b, tinyllama:1b"
    # Without the server's list the tag is taken as typed; loading it will tell.
    bare = CommandState(OLLAMA_STATE.load, SamplingSettings())
    assert run("/model llama3.2:1b", bare).load.model == "llama3.2:1b"


def test_model_takes_a_gguf_path(tiny_gguf: Path, tmp_path: Path) -> None:
    change = run(f"/model {tiny_gguf}")
    assert change.load.model == str(tiny_gguf)
    # Ollama keeps its GGUFs as blobs with no suffix; the path is enough.
    blob = tmp_path / "blobs" / "sha256-4f2a"
    blob.parent.mkdir()
    blob.write_bytes(tiny_gguf.read_bytes())
    assert run(f"/model {blob}").load.model == str(blob)
    # A path relative to where the app started is kept whole: the worker runs elsewhere.
    with pytest.MonkeyPatch.context() as patched:
        patched.chdir(tmp_path)
        assert run("/model blobs/sha256-4f2a").load.model == str(blob)
    # A path that names no file says so, not which model names it failed to match.
    with pytest.raises(CommandError, match=f"^{re.escape('no file at /nowhere/missing.gguf')}$"):
        run("/model /nowhere/missing.gguf")
    with pytest.raises(
        CommandError, match=f"^{re.escape(f'{blob.parent} is a folder: name a .gguf file in it')}$"
    ):
        run(f"/model {blob.parent}")
    # `~models/…` (a typo of ~/: no such user) and a name too long for the file system raised
    # out of pathlib and ended the app.
    with pytest.raises(CommandError, match=f"^{re.escape('no file at ~nosuchuser/x.gguf')}$"):
        run("/model ~nosuchuser/x.gguf")
    with pytest.raises(CommandError, match=r"^no file at /tmp/aaaa"):
        run("/model /tmp/" + "a" * 300 + ".gguf")
    # Any part of a split model outside the model folders loads it from its first part (the
    # second made llama.cpp say "illegal split file idx").
    (tmp_path / "split").mkdir()
    parts = write_model(tmp_path / "split" / "parted.gguf", ModelSpec(name="Parted", split_max_tensors=6))
    assert run(f"/model {parts[1]}").load.model == str(parts[0])
    gguf = build_catalog([tiny_gguf])
    with pytest.raises(CommandError, match=f"^{re.escape('no file at /nowhere/missing.gguf')}$"):
        run(
            "/backend llama.cpp /nowhere/missing.gguf",
            CommandState(OLLAMA_STATE.load, SamplingSettings(), gguf=gguf),
        )
    # On a server a name with a slash is a tag (hf.co/…), not a path.
    with pytest.raises(CommandError, match=re.escape("no model matches 'hf.co/org/repo:Q4_K_M'")):
        run("/model hf.co/org/repo:Q4_K_M", OLLAMA_STATE)


def test_backend_switch_uses_the_given_or_the_last_model() -> None:
    to_ollama = run("/backend ollama tinyllama:1b-q8_0")
    assert to_ollama.load.backend is BackendKind.OLLAMA and to_ollama.load.model == "tinyllama:1b-q8_0"
    assert to_ollama.reload[0] == "backend"
    back = run("/backend llama.cpp", OLLAMA_STATE)
    assert back.load.backend is BackendKind.LLAMA_CPP and back.load.model == "/models/tiny-llama-F16.gguf"
    assert run("/backend LLAMA", OLLAMA_STATE).load.backend is BackendKind.LLAMA_CPP
    assert run("/backend ollama", OLLAMA_STATE).changed == ()
    assert run("/set backend ollama tinyllama:1b-fp16").load.model == "tinyllama:1b-fp16"


@pytest.mark.parametrize("space", ["\n", "\t", "  "])
def test_a_key_and_its_value_may_be_parted_by_any_white_space(space: str) -> None:
    # Only a space parted them: "/set temperature" Ctrl+J "0.7" was "no setting called
    # 'temperature\n0.7'", while the command's own name ends at any white space.
    assert run(f"/set temperature{space}0.7").sampling.temperature == 0.7
    assert run(f"/backend ollama{space}qwen3:0.6b").load.model == "qwen3:0.6b"


def test_backend_llama_cpp_picks_from_the_ggufs_found_by_part_of_a_name(tiny_gguf: Path) -> None:
    # An Ollama chat with no llama.cpp model used before: the command used to ask for a path,
    # though the models folders' GGUFs were known (the drawer listed them).
    gguf = build_catalog([tiny_gguf])
    name = gguf.groups[0].name
    state = CommandState(OLLAMA_STATE.load, SamplingSettings(), catalog=OLLAMA_TAGS, gguf=gguf)
    with pytest.raises(CommandError, match=rf"/backend llama.cpp NAME \(found: {name}\)"):
        run("/backend llama.cpp", state)
    change = run(f"/backend llama.cpp {name[:4].lower()}", state)
    assert change.load.backend is BackendKind.LLAMA_CPP and change.load.model == str(tiny_gguf)
    with pytest.raises(CommandError, match="no model matches 'mistral'"):
        run("/backend llama.cpp mistral", state)
    # Tab offers them after the backend's name (and nothing after another backend's).
    context = completion_context(state)
    offered = [c.text for c in complete(f"/backend llama.cpp {name[:2]}", context=context)]
    assert offered == [f"/backend llama.cpp {name}", f"/backend llama.cpp {tiny_gguf.name}"]
    assert complete("/backend ollama t", context=context) == []


def test_settings_are_shown_with_what_the_backend_ignores() -> None:
    text = describe_settings(OLLAMA_STATE.load, SamplingSettings(stop=("</s>", "a,b")))
    lines = text.splitlines()
    assert lines[0].startswith("load") and any(line.startswith("sampling") for line in lines)
    by_name = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert set(by_name) == set(SETTING_NAMES)
    assert "not used by ollama" in by_name["flash_attn"] and "not used" not in by_name["keep_alive"]
    assert by_name["stop"].split()[-1] == "</s>,a\\,b"
    assert by_name["seed"].split()[-1] == "random"


def test_every_offered_value_parses() -> None:
    for name, values in default_setting_values().items():
        for value in values:
            if name in ("backend", "model"):
                continue  # switching backend needs a model; covered above
            change = set_value(STATE, name, value)
            assert format_value(name, getattr(change.load if name in LOAD_NAMES else change.sampling, name))


# --- completion of arguments ----------------------------------------------------------------

CONTEXT = CompletionContext(
    models=("tinyllama:1b", "tinyllama:1b-q8_0", "qwen3:0.6b"),
    quants=("Q4_K_M", "Q8_0", "F16"),
    themes=("dark",),
    hosts=("gpu-box", "den", "local"),
)


def texts(prefix: str) -> list[str]:
    return [c.text for c in complete(prefix, context=CONTEXT)]


def test_completion_offers_argument_values() -> None:
    assert texts("/quant ") == ["/quant Q4_K_M", "/quant Q8_0", "/quant F16"]
    assert texts("/quant q8") == ["/quant Q8_0"]
    assert texts("/backend ") == ["/backend llama.cpp", "/backend ollama", "/backend openai"]
    assert texts("/ngl a") == ["/ngl auto", "/ngl all"]
    # Model names also match in the middle, after those that start with the text.
    assert texts("/model q") == ["/model qwen3:0.6b", "/model tinyllama:1b-q8_0"]
    assert texts("/model q8") == ["/model tinyllama:1b-q8_0"]
    assert texts("/theme ") == ["/theme dark"]
    assert texts("/host g") == ["/host gpu-box"]
    assert texts("/hos") == ["/host ", "/hosts "]
    assert texts("/qu") == ["/quant ", "/quantize ", "/quit "]
    assert texts("/nonsense x") == []


def test_completion_of_set_keys_and_values() -> None:
    assert texts("/set temp") == ["/set temperature "]
    assert "/set n_gpu_layers " in texts("/set ")
    assert len(texts("/set ")) == len(SETTING_NAMES)
    assert texts("/set flash_attn ") == ["/set flash_attn on", "/set flash_attn off"]
    assert texts("/set kv_cache_type q") == ["/set kv_cache_type q8_0", "/set kv_cache_type q4_0"]
    assert texts("/set model qw") == ["/set model qwen3:0.6b"]


def test_completion_context_from_a_command_state() -> None:
    context = completion_context(OLLAMA_STATE, themes=("dark",))
    assert context.quants == ("Q4_K_M", "Q8_0", "F16")
    assert "tinyllama:1b-fp16" in context.models and "qwen3:0.6b" in context.models
    assert completion_context(STATE).models == ()


def test_the_old_completion_call_is_unchanged() -> None:
    assert all(isinstance(c, CommandSpec) for c in complete("/s"))
    assert complete("/quant ") == []


def test_backend_ollama_lists_and_picks_from_the_servers_models_when_it_was_asked() -> None:
    asked = CommandState(GGUF, SamplingSettings(), others={BackendKind.OLLAMA: OLLAMA_TAGS})
    with pytest.raises(CommandError, match=r"/backend ollama NAME \(found: .*qwen3:0\.6b.*tinyllama:1b"):
        run("/backend ollama", asked)
    # Part of a name: the smallest of its quantizations, and the note says which.
    change = run("/backend ollama tinyllama", asked)
    assert change.load.backend is BackendKind.OLLAMA and change.load.model == "tinyllama:1b-q4_K_M"
    assert "took Q4_K_M" in change.message
    assert run("/backend ollama qwen", asked).load.model == "qwen3:0.6b"
    # A name the server does not have is refused before the model in use is unloaded: Ollama's
    # chat API answers 404 for it, it does not pull it.
    with pytest.raises(
        CommandError, match=r"no model matches 'llama3\.2:1b' .* · /pull llama3\.2:1b downloads it"
    ):
        run("/backend ollama llama3.2:1b", asked)
    # Not asked (the server was down): the name is taken as typed.
    assert run("/backend ollama tinyllama").load.model == "tinyllama"
    # Tab offers them after the backend's name.
    offered = [c.text for c in complete("/backend ollama qw", context=completion_context(asked))]
    assert offered == ["/backend ollama qwen3:0.6b"]


def test_backend_on_a_server_with_one_model_loads_it_without_asking() -> None:
    # "/backend openai" against a server with one model asked "which model with openai? (found:
    # smol)", where --backend openai and /host load it.
    one = CommandState(
        GGUF, SamplingSettings(), others={BackendKind.OPENAI: openai_catalog([ServedModel("smol")])}
    )
    change = run("/backend openai", one)
    assert change.load.backend is BackendKind.OPENAI and change.load.model == "smol"
    two = openai_catalog([ServedModel("smol"), ServedModel("other")])
    with pytest.raises(CommandError, match=r"which model with openai\? .*found: smol, other"):
        run("/backend openai", CommandState(GGUF, SamplingSettings(), others={BackendKind.OPENAI: two}))


def test_backend_ollama_says_why_its_server_has_no_list() -> None:
    down = CommandState(GGUF, SamplingSettings(), unlisted={BackendKind.OLLAMA: "Cannot reach Ollama at X"})
    with pytest.raises(CommandError, match=r"with ollama\? Its server could not be asked: Cannot"):
        run("/backend ollama", down)
    # A tag is still taken as typed: loading it says what is wrong, or works if the server is back.
    assert run("/backend ollama tinyllama:1b", down).load.model == "tinyllama:1b"


def test_backend_named_finds_the_target_of_backend_and_set_backend() -> None:
    assert backend_named(parse_command("/backend ollama tinyllama")) is BackendKind.OLLAMA
    assert backend_named(parse_command("/set backend openai")) is BackendKind.OPENAI
    assert backend_named(parse_command("/backend vllm")) is None
    assert backend_named(parse_command("/set n_ctx 2048")) is None
    assert backend_named(parse_command("/model ollama")) is None
