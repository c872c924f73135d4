"""The panel's texts and one-line charts."""

from __future__ import annotations

import dataclasses

import pytest
from panel_fakes import GiB, MiB, worker_process
from rich.cells import cell_len

from lollma_tui.core.hardware import Level
from lollma_tui.ui.widgets import hardware_format as fmt
from lollma_tui.ui.widgets.hardware_panel import ModelFootprint, footprint_lines


@pytest.mark.parametrize(
    ("used", "total", "text"),
    [
        (int(7.93 * GiB), 24 * GiB, "7.9/24 GiB"),
        (0, 8 * GiB, "0/8 GiB"),
        (11 * GiB, 32 * GiB, "11/32 GiB"),
        (int(123.4 * GiB), int(251.5 * GiB), "123/252 GiB"),
        (300 * MiB, 512 * MiB, "300/512 MiB"),
        (None, 24 * GiB, "—/24 GiB"),
        (412 * MiB, None, "412 MiB"),
        (None, None, "—"),
    ],
)
def test_used_of_total_shares_the_unit_of_the_total(used: int | None, total: int | None, text: str) -> None:
    assert fmt.used_of_total(used, total) == text


def test_small_figures() -> None:
    assert fmt.size(412 * MiB) == "412 MiB"
    assert fmt.size(6 * GiB) == "6.0 GiB"
    assert fmt.percent(None) == "—"
    assert fmt.percent(99.6) == "100%"
    assert fmt.temperature(71.4) == "71°C"
    assert fmt.power(215.2, 450.0) == "215/450 W"
    assert fmt.power(12.0, None) == "12 W"
    assert fmt.power(None, None) == "—"
    assert fmt.clock(2520) == "2.52 GHz"
    assert fmt.rate(77.34) == "77.3"
    assert fmt.rate(123.4) == "123"


def test_worst_level_wins_and_missing_values_count_as_ok() -> None:
    assert fmt.worst([Level.OK, None, Level.HOT, Level.WARM]) is Level.HOT
    assert fmt.worst([None, None]) is Level.OK


def test_spark_uses_a_fixed_scale_so_idle_noise_stays_low() -> None:
    assert fmt.spark([1.0, 3.0, 2.0], 3, scale=100.0) == "▁▁▁"
    assert fmt.spark([0.0, 50.0, 100.0], 3, scale=100.0) == "▁▅█"
    # Without a scale the largest value fills the cell.
    assert fmt.spark([1.0, 2.0, 4.0], 3) == "▃▅█"


def test_spark_puts_the_newest_sample_right_and_leaves_gaps_blank() -> None:
    assert fmt.spark([100.0], 4, scale=100.0) == "   █"
    assert fmt.spark([100.0, None, 100.0], 3, scale=100.0) == "█ █"
    assert fmt.spark([], 3, scale=100.0) == "   "


def test_spark_cells_keep_a_fixed_span_and_show_the_peak() -> None:
    # 12 samples over a window of 12 in 3 cells: 4 samples a cell, each cell its maximum.
    values = [0.0, 0.0, 100.0, 0.0] + [50.0] * 4 + [0.0] * 4
    assert fmt.spark(values, 3, scale=100.0, window=12) == "█▅▁"
    # Half the window so far: the left half is still empty.
    assert fmt.spark([100.0] * 6, 3, scale=100.0, window=12) == " ██"


def test_core_strip_folds_many_cores_into_the_width() -> None:
    assert fmt.core_strip([0.0, 100.0], 10) == "▁█"
    assert len(fmt.core_strip([50.0] * 64, 20)) <= 20
    assert fmt.core_strip([], 10) == ""


def test_footprint_lines_fit_the_sidebar_and_widen_to_one_line() -> None:
    footprint = ModelFootprint((worker_process(),), placement="72% GPU / 28% CPU", labels={4242: "worker"})
    narrow = footprint_lines(footprint)
    assert narrow == ["model: 72% GPU / 28% CPU", "worker: RSS 412 MiB", "  CPU 180% · VRAM 6.0 GiB"]
    assert all(len(line) <= 27 for line in narrow)
    assert footprint_lines(footprint, wide=True)[1] == (
        "worker (pid 4242): RSS 412 MiB · CPU 180% · VRAM 6.0 GiB"
    )
    assert footprint_lines(ModelFootprint()) == []


def test_footprint_lines_never_split_a_figure_in_the_sidebar() -> None:
    # The chat screen's label for its worker is longer than "worker": "…: RSS 252 MiB" would
    # wrap its unit onto a line of its own.
    footprint = ModelFootprint((worker_process(),), labels={4242: "llama.cpp worker"})
    narrow = footprint_lines(footprint)
    assert narrow == ["llama.cpp worker:", "  RSS 412 MiB · CPU 180%", "  VRAM 6.0 GiB"]
    assert all(len(line) <= 27 for line in narrow)


def test_footprint_lines_measure_a_wide_process_name_in_cells() -> None:
    # Nine CJK characters are 18 cells: with ": RSS 412 MiB" that is 22 characters but 31 cells,
    # more than the sidebar has.
    footprint = ModelFootprint((worker_process(),), labels={4242: "模型服务器进程名字"})
    narrow = footprint_lines(footprint)
    assert narrow == ["模型服务器进程名字:", "  RSS 412 MiB · CPU 180%", "  VRAM 6.0 GiB"]
    assert all(cell_len(line) <= 27 for line in narrow)


def test_footprint_lines_show_a_process_name_without_its_control_characters() -> None:
    # Any program can name itself; an escape sequence in the name must not reach the terminal.
    process = dataclasses.replace(worker_process(), name="evil\x1b]0;owned\x07\nname")
    (line, *_) = footprint_lines(ModelFootprint((process,)))
    assert line.startswith("evil name") and "owned" not in line
    assert not any(ord(c) < 32 for c in line)
