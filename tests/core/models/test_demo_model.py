"""The bundled demo models: assembled into the cache folder, with a reason when that fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from lollma_tui.core.models.demo import GEMMA, DemoModelError, ensure_demo_model


def test_a_cache_folder_that_cannot_be_written_is_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Gemma's package ships its file in parts, assembled into the cache folder on first use.
    (tmp_path / "cache").write_text("a file where the cache folder goes")
    monkeypatch.setenv("LOLLMA_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DemoModelError, match=r"Could not assemble the demo model in .*cache/demo"):
        ensure_demo_model(GEMMA)
