"""The quantize dialog driven from the keyboard, with llama.cpp's real quantizer."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psutil
from bench_support import HostApp, files_in
from gguf import LlamaFileType
from gguf_factory import quantize_gguf
from pilot_support import wait_until
from textual.pilot import Pilot
from textual.widgets import SelectionList, Static, Switch

from lollma_tui.core import paths
from lollma_tui.core.models.catalog import scan_models
from lollma_tui.ui.screens.quantize import QuantizeScreen


def static_text(screen: QuantizeScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


async def test_quantizes_to_q8_0_and_q4_k_m_and_returns_the_new_files(
    source_copy: Path, tmp_path: Path
) -> None:
    folder = source_copy.parent
    app = HostApp()
    screen = QuantizeScreen(source_copy, threads=1, log_path=tmp_path / "quantize.log")
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        await wait_until(pilot, lambda: bool(screen.plans))
        # Q4_K_M is ticked to begin with; tick Q8_0, the first in the list, with Space.
        assert screen.chosen_types == ("Q4_K_M",)
        assert app.focused is screen.query_one("#quantize-types", SelectionList)
        await pilot.press("home", "space")
        await wait_until(pilot, lambda: len(screen.plans) == 2)
        assert "tiny-llama-Q8_0.gguf" in static_text(screen, "#quantize-plan")
        await pilot.press("r")
        assert screen.running
        await wait_until(pilot, lambda: bool(app.results), within=60)

    [created] = app.results
    q8 = folder / "tiny-llama-Q8_0.gguf"
    q4 = folder / "tiny-llama-Q4_K_M.gguf"
    assert created == [q8, q4]
    assert source_copy.stat().st_size > q8.stat().st_size > q4.stat().st_size > 0
    # Nothing else was left in the folder (no partial files).
    assert files_in(folder) == sorted([source_copy.name, q8.name, q4.name])
    # Both files read as models, grouped with their source.
    catalog = scan_models([folder])
    assert not catalog.unreadable
    [group] = catalog.groups
    assert set(group.quants) == {"F16", "Q8_0", "Q4_K_M"}


async def test_an_already_quantized_source_is_refused_with_the_reason(
    f16_source: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "quantized"
    folder.mkdir()
    source = quantize_gguf(f16_source, folder / "tiny-llama-Q8_0.gguf", LlamaFileType.MOSTLY_Q8_0)
    app = HostApp()
    screen = QuantizeScreen(source, threads=1, log_path=tmp_path / "quantize.log")
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        await wait_until(pilot, lambda: screen.refusal is not None)
        assert "already quantized (Q8_0)" in (screen.refusal or "")
        assert "already quantized (Q8_0)" in static_text(screen, "#quantize-plan")
        assert screen.query_one("#quantize-plan").has_class("-refused")
        assert screen.query_one("#quantize-run").disabled
        # The key is disabled while refused (the footer greys it out): pressing it runs nothing.
        await pilot.press("r")
        await pilot.pause()
        assert not screen.running and screen.created == ()

        # Allowing re-quantizing lifts the refusal and warns about quality instead; nothing runs.
        screen.query_one("#quantize-requantize", Switch).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(screen.plans))
        assert screen.refusal is None
        assert "stacks both quantization errors" in static_text(screen, "#quantize-warnings")
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [[]]
    assert files_in(folder) == ["tiny-llama-Q8_0.gguf"]


async def writing(pilot: Pilot[None], app: HostApp, screen: QuantizeScreen) -> None:
    """Open `screen`, start the run, and return once the worker writes the output (a partial
    file exists right then)."""
    app.open(screen)
    await pilot.pause()
    await wait_until(pilot, lambda: bool(screen.plans))
    await pilot.press("r")
    await wait_until(pilot, lambda: "written" in static_text(screen, "#quantize-progress-text"))


async def test_esc_stops_a_running_quantization_and_leaves_no_partial_file(
    slow_source: Path, tmp_path: Path
) -> None:
    folder = slow_source.parent
    app = HostApp()
    screen = QuantizeScreen(slow_source, threads=1, log_path=tmp_path / "quantize.log")
    async with app.run_test(size=(80, 24)) as pilot:
        await writing(pilot, app, screen)
        assert any(name.endswith(".partial") for name in files_in(folder))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.running)
        assert screen.status.startswith("stopped: tiny-slow-Q4_K_M.gguf was not written")
        assert files_in(folder) == [slow_source.name]
        # Still open after the stop; Esc again closes it with nothing created.
        assert app.screen is screen
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [[]]
    assert files_in(folder) == [slow_source.name]


async def test_quitting_the_app_mid_run_stops_the_worker_and_leaves_no_partial_file(
    slow_source: Path, tmp_path: Path
) -> None:
    # Ctrl+Q (or SIGTERM, SIGHUP) while writing: the app's run ended before the cancelled run
    # cleaned up, and a hidden partial file of the model's size stayed behind for good.
    folder = slow_source.parent
    app = HostApp()
    screen = QuantizeScreen(slow_source, threads=1, log_path=tmp_path / "quantize.log")
    async with app.run_test(size=(80, 24)) as pilot:
        await writing(pilot, app, screen)
        workers = [p for p in psutil.Process().children() if "quantize" in " ".join(p.cmdline())]
        assert len(workers) == 1
        app.exit()
    assert files_in(folder) == [slow_source.name]
    # Killed: the kernel takes a moment to end it (seen 'running' right after, once in a suite).
    deadline = time.monotonic() + 5
    while not ended(workers[0]):
        assert time.monotonic() < deadline, "the worker outlived the app"
        time.sleep(0.02)


def ended(process: psutil.Process) -> bool:
    """Gone, or a zombie its parent has not reaped yet (reaped between two questions: gone)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_everything_is_reachable_from_the_keyboard_at_80x24(source_copy: Path, tmp_path: Path) -> None:
    app = HostApp()
    screen = QuantizeScreen(source_copy, threads=1, log_path=tmp_path / "quantize.log")
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        await wait_until(pilot, lambda: bool(screen.plans))
        expected = {"quantize-types", "quantize-requantize", "quantize-run", "quantize-close"}
        reached: set[str] = set()
        for _ in range(len(expected) + 1):
            await pilot.press("tab")
            focused = app.focused
            assert focused is not None and focused.id is not None
            reached.add(focused.id)
            assert screen.region.contains_region(focused.region) and focused.region.area > 0
        assert reached == expected
        # Every offered type is on screen at 80×24, so none hides below the fold.
        types = screen.query_one("#quantize-types", SelectionList)
        assert types.option_count == len(screen.types) and types.size.height >= len(screen.types)
        screen.query_one("#quantize-close").focus()
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [[]]


async def test_the_buttons_and_keys_stay_in_sight_in_a_small_terminal(
    source_copy: Path, tmp_path: Path
) -> None:
    # At 60×20 the Quantize and Close buttons and the keys line were never on screen, and at 80×24
    # a plan of every type pushed them off: the dialog could not scroll.
    app = HostApp()
    screen = QuantizeScreen(source_copy, threads=1, log_path=tmp_path / "quantize.log")
    async with app.run_test(size=(60, 20)) as pilot:
        app.open(screen)
        await wait_until(pilot, lambda: bool(screen.plans))
        screen.query_one("#quantize-types", SelectionList).select_all()
        await wait_until(pilot, lambda: len(screen.plans) == len(screen.types))
        await pilot.pause()
        dialog = screen.query_one("#quantize-dialog").region
        for selector in ("#quantize-run", "#quantize-close", ".dialog-keys"):
            shown = screen.query_one(selector).region
            assert shown.area > 0 and dialog.contains_region(shown), (selector, shown, dialog)
            assert shown.bottom <= 20
        # What does not fit above them scrolls into view.
        body = screen.query_one("#quantize-body")
        assert body.max_scroll_y > 0
        body.scroll_end(animate=False)
        await pilot.pause()
        status = screen.query_one("#quantize-plan").region
        assert status.area > 0 and body.region.y <= status.y < body.region.bottom


async def test_the_plan_says_which_folder_it_writes_to_when_not_the_source_s(
    source_copy: Path, tmp_path: Path
) -> None:
    blob = tmp_path / "blobs" / "sha256-77e1"  # Ollama's store: its files are not ours to add to
    blob.parent.mkdir()
    shutil.copyfile(source_copy, blob)
    app = HostApp()
    screen = QuantizeScreen(blob, threads=1, log_path=tmp_path / "quantize.log")
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await wait_until(pilot, lambda: bool(screen.plans))
        lines = static_text(screen, "#quantize-plan").splitlines()
        assert lines[0].startswith("→ tiny-llama-Q4_K_M.gguf")
        assert lines[1:] == [f"  in {paths.data_dir() / 'models'}"]
        await pilot.press("escape")
    assert files_in(blob.parent) == ["sha256-77e1"]
