"""Fixtures for the hardware tests (the fakes themselves are in hw_fakes.py; the sshd for remote
hardware is in sshd_fixtures.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hw_fakes import FAKE_MACMON, FakeMacmon, FakeNvml

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
