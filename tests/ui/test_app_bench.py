"""Bench and quantize from inside the app: the screens open on the current model, and their
results come back as a swap or as new quantizations in the catalog."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from chat_app_support import notices
from gguf_factory import TinyModelSpec, write_tiny_gguf
from pilot_support import wait_until

from lollma_tui.core.backends.base import BackendState
from lollma_tui.core.settings import LoadSettings, SamplingSettings, StartupOptions
from lollma_tui.ui.app import LollmaApp
from lollma_tui.ui.screens.bench import BenchScreen
from lollma_tui.ui.screens.quantize import QuantizeScreen


@pytest.fixture
def model_copy(tmp_path: Path, tiny_gguf: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return Path(shutil.copy(tiny_gguf, folder / "tiny-llama-F16.gguf"))


def make_app(model: Path) -> LollmaApp:
    options = StartupOptions(
        load=LoadSettings(model=str(model), n_ctx=1024), sampling=SamplingSettings(max_tokens=8)
    )
    return LollmaApp(options)


async def test_a_bench_screen_opened_before_the_models_scan_ended_gets_the_models(
    model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lollma_tui.core.models import catalog

    write_tiny_gguf(model_copy.parent / "another-model-F16.gguf", TinyModelSpec(name="another-model"))
    real_scan = catalog.scan_models
    bench_open = threading.Event()

    def slow_scan(*args: object, **kwargs: object) -> catalog.Catalog:
        # A big models folder with a cold header cache: the scan ends after /bench opened.
        bench_open.wait(timeout=30)
        return real_scan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog, "scan_models", slow_scan)
    app = make_app(model_copy)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press(*"/bench", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BenchScreen))
        assert main.catalog.gguf is None
        screen = app.screen
        assert isinstance(screen, BenchScreen)
        bench_open.set()
        await wait_until(pilot, lambda: main.catalog.gguf is not None, within=30)
        await wait_until(pilot, lambda: screen.setup.selected_models != ())
        # The model in use is the one offered, as when the scan had ended first.
        assert screen.setup.selected_models == (str(model_copy),)


async def test_bench_screen_opens_on_the_model_and_apply_best_swaps(model_copy: Path) -> None:
    app = make_app(model_copy)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        await pilot.press(*"/bench", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BenchScreen))
        screen = app.screen
        assert isinstance(screen, BenchScreen)
        assert screen.base_settings == main.models.session.settings
        best = main.models.session.settings.with_changes(n_ctx=2048, n_threads=1)
        screen.post_message(BenchScreen.ApplyBest(screen, best, None))  # type: ignore[arg-type]
        await wait_until(pilot, lambda: not isinstance(app.screen, BenchScreen))
        await wait_until(
            pilot,
            lambda: (
                main.models.backend.status.loaded is not None
                and main.models.backend.status.loaded.n_ctx == 2048
            ),
        )
        assert main.models.session.settings.n_threads == 1
        # The bench screen is gone at once: the chat says what changed.
        [said] = [text for text in notices(app) if text.startswith("The bench's best set-up:")]
        assert said == (
            "The bench's best set-up: n_ctx: 1024 → 2048; n_threads: auto → 1"
            " · /keep keeps it for the next start"
        )


async def test_quantize_from_the_drawer_adds_the_variant_to_the_catalog(model_copy: Path) -> None:
    app = make_app(model_copy)
    main = app.chat_screen
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: main.models.backend.status.state == BackendState.READY)
        await wait_until(pilot, lambda: main.catalog.gguf is not None)
        await pilot.press("f2")
        drawer = main.settings_drawer
        drawer.query_one("#quantize").focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, QuantizeScreen))
        await pilot.pause(0.5)
        await pilot.press("r")  # Q4_K_M is ticked by default
        await wait_until(pilot, lambda: not isinstance(app.screen, QuantizeScreen), within=60)
        created = model_copy.parent / "tiny-llama-Q4_K_M.gguf"
        assert created.exists()
        await wait_until(
            pilot,
            lambda: (
                main.catalog.gguf is not None
                and any(v.quant == "Q4_K_M" for g in main.catalog.gguf.groups for v in g.variants)
            ),
        )
        assert sorted(p.name for p in model_copy.parent.iterdir()) == [
            "tiny-llama-F16.gguf",
            "tiny-llama-Q4_K_M.gguf",
        ]
