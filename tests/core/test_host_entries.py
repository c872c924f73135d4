"""Host entries (the future ``[[hosts]]`` tables) and ssh targets."""

from __future__ import annotations

import pytest

from lollma_tui.core.hardware.ssh_target import SshTarget, SshTargetError, default_remote_command
from lollma_tui.core.hosts import HostEntry, HostEntryError, default_hosts, host_for_server, session_hosts
from lollma_tui.core.settings import BackendKind, LoadSettings, StartupOptions


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("gpu-box", SshTarget("gpu-box")),
        ("me@gpu-box", SshTarget("gpu-box", "me")),
        ("me@gpu-box:2222", SshTarget("gpu-box", "me", 2222)),
        ("ssh://me@10.0.0.5:22/", SshTarget("10.0.0.5", "me", 22)),
        ("[fe80::1]:2200", SshTarget("fe80::1", None, 2200)),
        ("::1", SshTarget("::1")),
        ("SSH://box", SshTarget("box")),
    ],
)
def test_ssh_targets_parse(text: str, target: SshTarget) -> None:
    assert SshTarget.parse(text) == target


@pytest.mark.parametrize(
    "text",
    ["", "-oProxyCommand=x", "me@", "box:ssh", "box:70000", "box:²", "a b", "me;rm@box", "abc:22:33", "[::1"],
)
def test_bad_ssh_targets_are_refused(text: str) -> None:
    with pytest.raises(SshTargetError):
        SshTarget.parse(text)


def test_ssh_runs_batch_mode_without_a_terminal() -> None:
    argv = SshTarget("gpu-box", "me", 2222).argv("lollma-tui monitor --jsonl", options=("-F", "cfg"))
    assert argv[:2] == ["ssh", "-T"]
    assert argv[argv.index("BatchMode=yes") - 1] == "-o"
    assert argv[-5:] == ["-p", "2222", "--", "me@gpu-box", "lollma-tui monitor --jsonl"]
    assert default_remote_command(0.5, 8080) == "lollma-tui monitor --jsonl --interval 0.5 --port 8080"


def test_host_entries_from_config_tables() -> None:
    entry = HostEntry.from_mapping(
        {
            "name": "box",
            "kind": "openai",
            "url": "http://box:8000/v1",
            "hw": "ssh://me@box",
            "hw_command": "uvx lollma-tui monitor --jsonl",
        }
    )
    assert (entry.kind, entry.hw, entry.url) == (
        BackendKind.OPENAI,
        SshTarget("box", "me"),
        "http://box:8000/v1",
    )
    with pytest.raises(HostEntryError, match=r"hosts\.kind: 'tgi' is not one of llama\.cpp, ollama, openai"):
        HostEntry.from_mapping({"name": "x", "kind": "tgi"})
    with pytest.raises(HostEntryError, match=r"hosts\.name: expected a string"):
        HostEntry.from_mapping({"kind": "ollama"})
    with pytest.raises(HostEntryError, match="has no URL"):
        HostEntry("local", BackendKind.LLAMA_CPP, url="http://x")
    # A bad hw names its key, and a scheme other than ssh:// is the reason, not "the port".
    with pytest.raises(
        HostEntryError, match=r"^hosts\.hw: 'ftp://gpu-box': an ssh destination, not a ftp:// address"
    ):
        HostEntry.from_mapping({"name": "x", "kind": "ollama", "url": "box", "hw": "ftp://gpu-box"})


def test_environment_variables_give_the_default_hosts() -> None:
    hosts = default_hosts({"OLLAMA_HOST": "box:11434", "OPENAI_BASE_URL": "http://box:8080/v1"})
    assert [(h.name, h.kind, h.url) for h in hosts] == [
        ("local", BackendKind.LLAMA_CPP, None),
        ("ollama", BackendKind.OLLAMA, "box:11434"),
        ("openai", BackendKind.OPENAI, "http://box:8080/v1"),
    ]
    assert [h.name for h in default_hosts({})] == ["local"]


def _options(**kwargs: object) -> StartupOptions:
    load = LoadSettings(backend=kwargs.pop("backend", BackendKind.LLAMA_CPP))  # type: ignore[arg-type]
    return StartupOptions(load=load, **kwargs)  # type: ignore[arg-type]


def test_the_session_starts_on_the_configured_host_with_the_same_server() -> None:
    box = HostEntry("box", BackendKind.OPENAI, "http://box:8080/v1", hw=SshTarget("box"))
    options = _options(backend=BackendKind.OPENAI, openai_base_url="box:8080")
    hosts, start = session_hosts(options, (box,), {})
    assert start == box
    assert [h.name for h in hosts] == ["box", "local"]
    # --hw-host on the command line wins over the entry's own.
    chosen = _options(backend=BackendKind.OPENAI, openai_base_url="box:8080", hw_host="me@other")
    hosts, start = session_hosts(chosen, (box,), {})
    assert start.name == "box" and start.hw == SshTarget("other", "me") and hosts[0] == start


def test_a_server_not_in_the_config_is_added_named_after_its_address() -> None:
    box = HostEntry("box", BackendKind.OLLAMA, "http://box:11434")
    options = _options(backend=BackendKind.OPENAI, openai_base_url="http://10.0.0.5:8000/v1")
    hosts, start = session_hosts(options, (box,), {"OLLAMA_HOST": "box"})
    assert (start.name, start.kind, start.url) == (
        "10.0.0.5:8000",
        BackendKind.OPENAI,
        "http://10.0.0.5:8000/v1",
    )
    # OLLAMA_HOST names the same server as the entry "box": it is not listed twice.
    assert [h.name for h in hosts] == ["box", "local", "10.0.0.5:8000"]
    hosts, start = session_hosts(_options(), (box,), {})
    assert start.name == "local" and start.kind is BackendKind.LLAMA_CPP and len(hosts) == 2


def test_the_api_key_named_on_the_command_line_goes_with_its_server_from_any_backend() -> None:
    # Started on llama.cpp: /backend openai went to the server without the key (a 401).
    options = _options(openai_base_url="http://box:8080/v1", openai_api_key_env="MYKEY")
    hosts, start = session_hosts(options, (), {})
    assert start.kind is BackendKind.LLAMA_CPP
    assert host_for_server(BackendKind.OPENAI, "http://box:8080/v1", hosts).api_key_env == "MYKEY"
    # The environment's server, listed as "openai", gets it too when it is the same one.
    hosts, _ = session_hosts(options, (), {"OPENAI_BASE_URL": "http://box:8080/v1"})
    assert [(h.name, h.api_key_env) for h in hosts if h.kind is BackendKind.OPENAI] == [("openai", "MYKEY")]


def test_a_bad_openai_base_url_in_the_environment_does_not_stop_a_session() -> None:
    hosts, start = session_hosts(_options(), (), {"OPENAI_BASE_URL": "ftp://nowhere"})
    assert start.name == "local" and [h.name for h in hosts] == ["local", "openai"]
    with pytest.raises(HostEntryError, match="must start with http"):
        HostEntry.from_mapping({"name": "x", "kind": "openai", "url": "ftp://nowhere"})
