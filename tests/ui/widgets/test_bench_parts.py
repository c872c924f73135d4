"""The bench screen's pure parts: reading the form, grouping and drawing the bars."""

from __future__ import annotations

import pytest

from lollma_tui.core.bench.protocol import BenchTest
from lollma_tui.core.bench.records import CHAT_TEST, BenchRecord
from lollma_tui.core.bench.sweep import SweepInputError
from lollma_tui.ui.widgets.bench_chart import FULL_BLOCK, bar_groups, bar_text
from lollma_tui.ui.widgets.bench_form import SweepForm, parse_gpu_layers, spec_from_form


def test_gpu_layers_take_counts_all_and_auto() -> None:
    assert parse_gpu_layers("0, auto,all 12") == (0, "auto", -1, 12)
    assert parse_gpu_layers("auto,auto") == ("auto",)
    with pytest.raises(SweepInputError, match="'many'"):
        parse_gpu_layers("0,many")
    with pytest.raises(SweepInputError, match="give a count"):
        parse_gpu_layers(" ")


def test_the_form_becomes_a_sweep_over_the_chosen_files() -> None:
    form = SweepForm(
        gpu_layers="0,auto", threads="1,2", n_prompt="64", n_gen="16", repetitions="2", chat=False
    )
    spec = spec_from_form(form, ["/m/a-Q8_0.gguf", "/m/a-F16.gguf"])
    assert spec.models == ("/m/a-Q8_0.gguf", "/m/a-F16.gguf") and spec.quants is None
    assert spec.gpu_layers == (0, "auto") and spec.threads == (1, 2)
    assert (spec.n_prompt, spec.n_gen, spec.repetitions, spec.chat) == ((64,), (16,), 2, False)
    # Empty threads: llama-bench's default (physical cores), left to the core.
    assert spec_from_form(SweepForm(), ["/m/a.gguf"]).threads is None


def test_an_emptied_field_means_what_it_shows_greyed_out_and_0_leaves_a_test_out() -> None:
    # An emptied -p showed "512" greyed out and measured no pp test at all.
    emptied = spec_from_form(SweepForm(n_prompt="", n_gen=" ", repetitions=""), ["/m/a.gguf"])
    typed = spec_from_form(SweepForm(n_prompt="512", n_gen="128", repetitions="5"), ["/m/a.gguf"])
    assert emptied.tests() == typed.tests() == (BenchTest(n_prompt=512), BenchTest(n_gen=128))
    assert emptied.repetitions == typed.repetitions
    no_prompt = spec_from_form(SweepForm(n_prompt="0", n_gen="16"), ["/m/a.gguf"])
    assert no_prompt.tests() == (BenchTest(n_gen=16),)


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        (SweepForm(threads="0"), "threads"),
        # Past any CPU: llama.cpp aborts setting up that many threads.
        (SweepForm(threads="100000"), "between 1 and 1024"),
        # str.isdigit() is true for these, but they are no number int() reads.
        (SweepForm(threads="²"), "threads"),
        (SweepForm(gpu_layers="0,²"), "GPU layers"),
        (SweepForm(n_prompt="-5"), "-p"),
        (SweepForm(repetitions="2,3"), "one repetition count"),
        (SweepForm(repetitions="0"), "-r"),
        (SweepForm(n_prompt="0", n_gen="0", chat=False), "nothing to measure"),
    ],
)
def test_bad_forms_are_refused_with_the_field_named(form: SweepForm, reason: str) -> None:
    with pytest.raises(SweepInputError, match=reason):
        spec_from_form(form, ["/m/a.gguf"])


def test_no_file_chosen_is_refused() -> None:
    with pytest.raises(SweepInputError, match="quant variant"):
        spec_from_form(SweepForm(), [])


def row(test: str, quant: str, rate: float, **fields: object) -> BenchRecord:
    n_prompt = int(test[2:]) if test.startswith("pp") else 0
    n_gen = int(test[2:]) if test.startswith("tg") else 0
    values: dict[str, object] = {
        "test": test,
        "quant": quant,
        "avg_ts": rate,
        "n_prompt": n_prompt,
        "n_gen": n_gen,
        "n_threads": 4,
        "model_name": "tiny",
    }
    values.update(fields)
    return BenchRecord(**values)  # type: ignore[arg-type]


def test_bars_group_by_test_leave_out_chat_rows_and_mark_the_fastest() -> None:
    records = [
        row("pp64", "Q8_0", 900.0),
        row("tg16", "Q8_0", 30.0),
        row("pp64", "Q4_K_M", 1200.0),
        row("tg16", "Q4_K_M", 45.5),
        row(CHAT_TEST, "Q4_K_M", 40.0, n_gen=16),
    ]
    groups = bar_groups(records)
    assert [(g.test, g.kind) for g in groups] == [("pp64", "pp"), ("tg16", "tg")]
    tg = groups[1]
    assert [(b.label, b.rate, b.best) for b in tg.bars] == [
        ("Q8_0 · ngl 0 · 4t", 30.0, False),
        ("Q4_K_M · ngl 0 · 4t", 45.5, True),
    ]
    # Two models in one sweep: the labels say which.
    mixed = bar_groups([row("tg16", "Q8_0", 30.0), row("tg16", "Q8_0", 20.0, model_name="other")])
    assert [b.label for b in mixed[0].bars] == ["tiny Q8_0 · ngl 0 · 4t", "other Q8_0 · ngl 0 · 4t"]


def test_bars_are_drawn_in_eighths_of_a_cell() -> None:
    assert bar_text(1.0, 10) == FULL_BLOCK * 10
    assert bar_text(0.5, 10) == FULL_BLOCK * 5
    assert bar_text(0.0625, 10) == "▋"  # five eighths of one cell
    assert bar_text(0.45, 10) == FULL_BLOCK * 4 + "▌"
    assert bar_text(0.0, 10) == "▏"  # a sliver: a measured row is never invisible
    assert bar_text(0.5, 0) == ""
