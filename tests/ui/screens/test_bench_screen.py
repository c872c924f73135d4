"""The bench screen driven from the keyboard, running real sweeps over a real tiny model."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from bench_support import HostApp, host_snapshot
from gguf import LlamaFileType
from gguf_factory import quantize_gguf
from pilot_support import wait_until
from terminal_output import screen_text
from textual.content import Content
from textual.message import Message
from textual.widgets import Checkbox, Input, SelectionList, Static

from lollma_tui.core.bench.records import BenchRecord
from lollma_tui.core.bench.store import ResultStore
from lollma_tui.core.models.catalog import Catalog, scan_models
from lollma_tui.core.session.budget import MemoryBudget
from lollma_tui.core.settings import LoadSettings
from lollma_tui.ui.screens.bench import BenchScreen
from lollma_tui.ui.widgets.bench_chart import EIGHTHS, FULL_BLOCK
from lollma_tui.ui.widgets.bench_form import SweepForm
from lollma_tui.ui.widgets.hardware_rows import MetricRow

SMALL_SWEEP = SweepForm(gpu_layers="0", threads="1", n_prompt="64", n_gen="16", repetitions="2", chat=False)
"""2 quants × 1 thread count: a pp64 and a tg16 row for each quant."""

LONGER_SWEEP = SweepForm(
    gpu_layers="0", threads="1,2", n_prompt="64", n_gen="32", repetitions="3", chat=False
)
"""4 configurations, each in a fresh worker: time to stop in the middle."""


def make_screen(models: Path, tmp_path: Path, form: SweepForm = SMALL_SWEEP) -> BenchScreen:
    return BenchScreen(
        scan_models([models]),
        form=form,
        store=ResultStore(tmp_path / "results.jsonl"),
        log_path=tmp_path / "bench.log",
    )


def finished(app: HostApp) -> BenchScreen.Finished | None:
    return next((m for m in app.messages if isinstance(m, BenchScreen.Finished)), None)


def applied(app: HostApp) -> list[BenchScreen.ApplyBest]:
    return [m for m in app.messages if isinstance(m, BenchScreen.ApplyBest)]


def row_cells(screen: BenchScreen, index: int) -> dict[str, str]:
    return dict(zip(screen.table.column_titles(), screen.table.row_texts(index), strict=True))


def saved_rows(store_path: Path) -> list[tuple[Any, ...]]:
    return [(r.run_id, r.test, r.quant, r.n_threads, r.avg_ts) for r in ResultStore(store_path).load()]


def row_keys(records: tuple[BenchRecord, ...]) -> list[tuple[Any, ...]]:
    return [(r.run_id, r.test, r.quant, r.n_threads, r.avg_ts) for r in records]


async def test_a_sweep_fills_table_and_chart_row_by_row_saves_and_applies_the_best(
    bench_models: Path, tmp_path: Path
) -> None:
    app = HostApp()
    rows_before_each: list[int] = []
    screen = make_screen(bench_models, tmp_path)

    def hook(message: Message) -> None:
        # Called before the screen handles the message: the table holds the earlier rows only.
        if isinstance(message, BenchScreen._Progressed) and message.progress.row is not None:
            rows_before_each.append(screen.table.row_count)

    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        app.open(screen)
        await pilot.pause()
        screen.snapshot = host_snapshot(used_gib=11)
        await pilot.press("r")
        assert screen.running
        screen.snapshot = host_snapshot(used_gib=12)
        await wait_until(pilot, lambda: finished(app) is not None, within=60)
        await pilot.pause()
        done = finished(app)
        assert done is not None and done.control is screen
        run = done.run
        assert not run.cancelled and not run.failures

        # The table: one row per record, in order, added one at a time.
        assert len(run.records) == 4 and screen.records == run.records
        assert rows_before_each == [0, 1, 2, 3]
        assert {r.quant for r in run.records} == {"F16", "Q8_0"}
        assert sorted(r.test for r in run.records) == ["pp64", "pp64", "tg16", "tg16"]
        for index, record in enumerate(run.records):
            cells = row_cells(screen, index)
            average, spread = cells["t/s"].split(" ± ")
            assert float(average) > 0 and float(spread) >= 0
            assert float(average) == pytest.approx(record.avg_ts, abs=0.01)
            assert cells["test"] == record.test
            assert cells["model"] == record.model_type and record.quant in cells["model"]
            assert cells["threads"] == "1" and cells["ngl"] == "0" and cells["backend"] == "CPU"
            assert cells["ttft"] == "—"  # no chat row in this sweep
            assert cells["peak RSS"].endswith("MiB")

        # The chart: one bar per tg row (and per pp row), with their rates.
        tg_rows = [r for r in run.records if r.kind == "tg"]
        groups = {group.test: group for group in screen.chart.groups}
        assert set(groups) == {"pp64", "tg16"}
        assert [bar.rate for bar in groups["tg16"].bars] == [r.avg_ts for r in tg_rows]
        lines = screen.chart.render()
        assert isinstance(lines, Content)
        drawn = lines.plain.splitlines()
        heading = drawn.index("tg16 · t/s")
        bars = drawn[heading + 1 : heading + 1 + len(tg_rows)]
        assert all(FULL_BLOCK in line or any(c in line for c in EIGHTHS[1:]) for line in bars)
        fastest = max(range(len(tg_rows)), key=lambda i: tg_rows[i].avg_ts)
        assert bars[fastest].count(FULL_BLOCK) == max(line.count(FULL_BLOCK) for line in bars)

        # At 80 columns the last columns sit to the right; the arrow keys bring them in.
        table = screen.table
        assert table.max_scroll_x > 0
        table.focus()
        await pilot.press(*["right"] * (table.max_scroll_x + 1))
        await wait_until(pilot, lambda: table.scroll_x == table.max_scroll_x, within=3)

        # Saved once the run ended, every row, as measured.
        assert done.saved == 4
        assert saved_rows(tmp_path / "results.jsonl") == row_keys(run.records)

        # The hardware panel beside the chart shows what the app handed down last.
        panel = screen.hardware_panel
        assert not panel.has_class("-waiting")
        assert panel.query_one("#hw-ram", MetricRow).value.text == "12/32 GiB"

        # Apply best: nothing fits a 1 MiB budget, so nothing is posted.
        screen.budget = MemoryBudget(free_ram=1 << 20)
        await pilot.press("a")
        await pilot.pause()
        assert applied(app) == []
        assert "free memory" in screen.status

        # With room for every row, the fastest tg row wins, on top of the app's settings.
        peak = max(r.peak_rss_bytes or 0 for r in run.records)
        screen.budget = MemoryBudget(free_ram=peak + 1)
        screen.base_settings = LoadSettings(n_ctx=2048, n_batch=256)
        screen.query_one("#bench-apply").focus()
        await pilot.press("enter")
        await pilot.pause()
        [message] = applied(app)
        best = max(tg_rows, key=lambda r: r.avg_ts)
        assert message.control is screen and message.record == best
        assert message.load.model == best.model_filename
        assert message.load.n_threads == best.n_threads == 1
        assert message.load.n_gpu_layers == best.n_gpu_layers
        assert (message.load.n_ctx, message.load.n_batch) == (2048, 256)
        # The screen stays for the app to decide.
        assert app.screen is screen


async def test_apply_best_after_a_chat_only_sweep_takes_the_fastest_chat_row(
    bench_models: Path, tmp_path: Path
) -> None:
    # -p 0 -n 0 with the chat test: no tg rows. Apply said "no generation row fits in the free
    # memory" (a false reason) and applied nothing.
    app = HostApp()
    form = SweepForm(gpu_layers="0", threads="1", n_prompt="0", n_gen="0", repetitions="1", chat=True)
    screen = make_screen(bench_models, tmp_path, form)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        await pilot.press("r")
        await wait_until(pilot, lambda: finished(app) is not None, within=120)
        run = finished(app).run  # type: ignore[union-attr]
        chat_rows = [r for r in run.records if r.kind == "chat" and r.avg_ts > 0]
        assert chat_rows and not any(r.kind == "tg" for r in run.records)
        await pilot.press("a")
        await pilot.pause()
        [message] = applied(app)
        assert message.record == max(chat_rows, key=lambda r: r.avg_ts)
        assert message.load.model == message.record.model_filename


async def test_a_sweep_runs_with_the_chat_s_flash_attention_and_kv_cache_and_apply_keeps_them(
    bench_models: Path, tmp_path: Path
) -> None:
    # The form has no such fields: the sweep ran with flash attention off and an f16 cache, and
    # "Apply best" turned the chat's off with no word.
    app = HostApp()
    form = SweepForm(gpu_layers="0", threads="1", n_prompt="16", n_gen="8", repetitions="1", chat=False)
    screen = make_screen(bench_models, tmp_path, form)
    screen.base_settings = LoadSettings(flash_attn=True, kv_cache_type="q8_0", n_ctx=2048)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        assert screen.status == "running with the chat's flash attention on and KV cache q8_0"
        await wait_until(pilot, lambda: finished(app) is not None, within=120)
        run = finished(app).run  # type: ignore[union-attr]
        assert run.records and all(r.avg_ts > 0 for r in run.records)
        assert all((r.flash_attn, r.type_k, r.type_v) == (True, "q8_0", "q8_0") for r in run.records)
        await pilot.press("a")
        await pilot.pause()
        [message] = applied(app)
        load = message.load
        assert (load.flash_attn, load.kv_cache_type, load.n_ctx) == (True, "q8_0", 2048)


@pytest.mark.parametrize("key", ["s", "escape"])
async def test_stopping_mid_sweep_keeps_and_saves_the_finished_rows(
    bench_models: Path, tmp_path: Path, key: str
) -> None:
    app = HostApp()
    screen = make_screen(bench_models, tmp_path, LONGER_SWEEP)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.table.row_count >= 1, within=30)
        await pilot.press(key)
        await wait_until(pilot, lambda: finished(app) is not None, within=30)
        await pilot.pause()
        done = finished(app)
        assert done is not None
        run = done.run
        assert run.cancelled
        # 4 configurations × (pp64, tg32) would be 8 rows.
        assert 1 <= len(run.records) < 8
        assert screen.records == run.records and screen.table.row_count == len(run.records)
        assert all(r.avg_ts > 0 for r in run.records)
        assert screen.status.startswith("stopped:")
        assert saved_rows(tmp_path / "results.jsonl") == row_keys(run.records)
        # Esc stopped the sweep; it did not close the screen.
        assert app.screen is screen and not screen.running
        assert app.results == []


async def test_quitting_the_app_mid_sweep_keeps_the_rows_measured(
    bench_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl+Q (or SIGTERM, SIGHUP) cancelled the sweep's worker before its save: the rows that
    # "s" keeps were lost. And a save the quit left running in a thread had not written them
    # yet when the app's run ended (seen on a loaded machine; a slow disk widens the gap here).
    real_save = ResultStore.save

    def slow_save(store: ResultStore, records: Iterable[BenchRecord]) -> int:
        time.sleep(0.5)
        return real_save(store, records)

    monkeypatch.setattr(ResultStore, "save", slow_save)
    app = HostApp()
    screen = make_screen(bench_models, tmp_path, LONGER_SWEEP)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.table.row_count >= 1, within=30)
        shown = row_keys(screen.records)
        app.exit()
    saved = saved_rows(tmp_path / "results.jsonl")
    assert saved and saved[: len(shown)] == shown


SLOW_FIRST_ROW = SweepForm(
    gpu_layers="0", threads="1", n_prompt="2048", n_gen="16", repetitions="20", chat=False
)
"""A first row that takes seconds, so a stop pressed at once lands before it on a loaded machine."""


async def test_the_clock_goes_on_between_progress_reports(bench_models: Path, tmp_path: Path) -> None:
    # The text changed only when a timed run ended: through a model's load, its warm-up and a
    # long first run it stood at "0/15 · 0:00 · … · loading".
    from lollma_tui.core.bench.context import BenchProgress

    app = HostApp()
    screen = make_screen(bench_models, tmp_path, SLOW_FIRST_ROW)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        screen.running = True  # as a sweep sets it, without one sending reports of its own
        shown = screen.query_one("#bench-progress-text", Static)
        # As the last report would stand three seconds after it came, the ticker's next beat:
        last = BenchProgress(done=0, total=20, elapsed_s=1.0, eta_s=10.0, label="tiny Q8_0 · loading")
        screen.post_message(BenchScreen._Progressed(last))
        await wait_until(pilot, lambda: screen._progress is not None and screen._progress[0] is last)
        screen._progress = (last, time.monotonic() - 3.0)
        moved = re.compile(r"0/20 · 0:0[4-6] · ETA 0:0[5-7] · tiny Q8_0 · loading")
        await wait_until(pilot, lambda: moved.fullmatch(str(shown.render())) is not None, within=4)
        screen.running = False
        assert screen._ticker is None


async def test_a_stop_before_any_row_saves_nothing(bench_models: Path, tmp_path: Path) -> None:
    app = HostApp()
    screen = make_screen(bench_models, tmp_path, SLOW_FIRST_ROW)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        await pilot.press("r", "s")
        await wait_until(pilot, lambda: not screen.running, within=30)
        await pilot.pause()
        assert screen.records == ()
        assert screen.status.startswith("stopped")
        assert not (tmp_path / "results.jsonl").exists()


async def test_bad_fields_are_refused_with_a_reason_and_nothing_runs(
    bench_models: Path, tmp_path: Path
) -> None:
    app = HostApp()
    screen = make_screen(bench_models, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        layers = screen.query_one("#bench-ngl", Input)
        layers.focus()
        await pilot.press("home", "ctrl+k", *"lots", "enter")
        await pilot.pause()
        assert not screen.running and screen.last_run is None
        assert "GPU layers" in screen.status and "'lots'" in screen.status
        assert screen.query_one("#bench-status").has_class("-error")

        layers.value = "0"
        everything = screen.query_one("#bench-all-quants", Checkbox)
        everything.focus()
        await pilot.press("space")
        quants = screen.query_one("#bench-quants", SelectionList)
        quants.deselect_all()
        await pilot.press("r")
        await pilot.pause()
        assert "choose at least one quant" in screen.status
        assert not screen.running and screen.table.row_count == 0
        assert not (tmp_path / "results.jsonl").exists()


async def test_a_new_catalog_refreshes_the_quant_list_and_keeps_the_ticks(
    bench_models: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    f16 = Path(shutil.copyfile(bench_models / "tiny-llama-f16.gguf", folder / "tiny-llama-f16.gguf"))
    app = HostApp()
    screen = BenchScreen(scan_models([], [f16]), model=str(f16))
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        assert screen.setup.selected_models == (str(f16),)

        q8 = shutil.copyfile(bench_models / "tiny-llama-Q8_0.gguf", folder / "tiny-llama-Q8_0.gguf")
        screen.catalog = scan_models([folder])
        await pilot.pause()
        assert set(screen.setup.selected_models) == {str(f16), str(q8)}
        quants = screen.query_one("#bench-quants", SelectionList)
        assert quants.option_count == 2

        # A hand-picked selection survives a rescan that finds a new variant (after quantizing).
        screen.query_one("#bench-all-quants", Checkbox).focus()
        await pilot.press("space")
        quants.deselect(str(f16))
        await pilot.pause()
        assert screen.setup.selected_models == (str(q8),)
        q4 = quantize_gguf(f16, folder / "tiny-llama-Q4_0.gguf", LlamaFileType.MOSTLY_Q4_0)
        screen.catalog = scan_models([folder])
        await pilot.pause()
        assert quants.option_count == 3
        assert str(q4) not in quants.selected
        assert screen.setup.selected_models == (str(q8),)


async def test_everything_is_reachable_from_the_keyboard_at_80x24(bench_models: Path, tmp_path: Path) -> None:
    app = HostApp()
    screen = make_screen(bench_models, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        everything = screen.query_one("#bench-all-quants", Checkbox)
        everything.focus()
        await pilot.press("space")  # untick "all": the quant list takes part in Tab
        assert not everything.value
        expected = {
            "bench-model",
            "bench-all-quants",
            "bench-quants",
            "bench-ngl",
            "bench-threads",
            "bench-p",
            "bench-n",
            "bench-r",
            "bench-chat",
            "bench-run",
            "bench-table",
            "bench-chart-scroll",
            "bench-side",
        }
        reached: set[str] = set()
        for _ in range(len(expected) + 2):
            await pilot.press("tab")
            focused = app.focused
            assert focused is not None and focused.id is not None
            reached.add(focused.id)
            # On screen, whole, at 80×24.
            assert screen.region.contains_region(focused.region) and focused.region.area > 0
        assert reached == expected

        # Enter opens the model list and Esc closes just the list, not the screen.
        screen.query_one("#bench-model").focus()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        # Idle, Esc closes the screen.
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen and app.results == [None]


async def test_once_all_is_unticked_space_in_the_quant_list_ticks_a_row(
    bench_models: Path, tmp_path: Path
) -> None:
    app = HostApp()
    screen = make_screen(bench_models, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open(screen)
        await pilot.pause()
        everything = screen.query_one("#bench-all-quants", Checkbox)
        everything.focus()
        await pilot.press("space", "tab")  # untick "all", into the list
        quants = screen.query_one("#bench-quants", SelectionList)
        assert app.focused is quants
        ticked = len(quants.selected)
        # Space ticked nothing: no row was highlighted until Down was pressed.
        await pilot.press("space")
        await wait_until(pilot, lambda: len(quants.selected) != ticked)
        # Ticked and unticked boxes differ in what they show, not only in colour: "all" is
        # unticked now, and so is one quant (Textual drew "X" in every box).
        await pilot.pause()
        text = screen_text(app)
        assert "▐ ▌ all" in text and "▐ ▌ chat" in text, text
        assert sum(line.count("▐X▌") for line in text.splitlines()) == len(quants.selected) == 1


async def test_without_any_model_the_screen_says_so(tmp_path: Path) -> None:
    app = HostApp()
    screen = BenchScreen(Catalog(), store=ResultStore(tmp_path / "results.jsonl"))
    async with app.run_test(size=(80, 24)) as pilot:
        app.open(screen)
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        assert not screen.running
        assert screen.status.startswith("no GGUF models found")
        assert screen.query_one("#bench-quants", SelectionList).option_count == 0
