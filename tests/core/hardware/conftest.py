"""Fixtures for the hardware tests (the fakes themselves are in hw_fakes.py), and for remote
hardware: a real sshd on 127.0.0.1, and the fake NVML for the far side."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hw_fakes import FAKE_MACMON, FakeMacmon, FakeNvml
from sshd_server import SshServer, fake_nvml_env, running_sshd

from lollma_tui.core.hardware.macmon import MacmonSource


@pytest.fixture
def fake_nvml() -> FakeNvml:
    return FakeNvml()


@pytest.fixture
def drm_root(tmp_path: Path) -> Path:
    root = tmp_path / "sys/class/drm"
    root.mkdir(parents=True)
    return root


@pytest.fixture
def fake_macmon(tmp_path: Path) -> FakeMacmon:
    script = tmp_path / "fake_macmon.py"
    script.write_text(FAKE_MACMON)
    return FakeMacmon(script=script, config=tmp_path / "macmon.json", stamps=tmp_path / "starts.ndjson")


@pytest.fixture
def macmon_source(fake_macmon: FakeMacmon) -> Iterator[Callable[..., MacmonSource]]:
    """Builds MacmonSources that run the fake script; closes them (and their child) afterwards."""
    made: list[MacmonSource] = []

    def build(**kwargs: Any) -> MacmonSource:
        kwargs.setdefault("backoff_initial_s", 0.05)
        kwargs.setdefault("backoff_max_s", 0.4)
        source = MacmonSource(sys.executable, extra_args=fake_macmon.extra_args, **kwargs)
        made.append(source)
        return source

    yield build
    for source in made:
        source.close()


@pytest.fixture
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def fake_nvml_site(tmp_path: Path) -> Path:
    return fake_nvml_env(tmp_path / "fake-nvml-site")
