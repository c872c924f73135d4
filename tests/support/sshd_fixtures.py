"""Pytest fixtures for remote hardware (registered for the whole tree by `pytest_plugins` in
tests/conftest.py): a real sshd on 127.0.0.1, and the fake NVML for the far side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd_server import SshServer, fake_nvml_env, running_sshd


@pytest.fixture
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def fake_nvml_site(tmp_path: Path) -> Path:
    return fake_nvml_env(tmp_path / "fake-nvml-site")
