"""Statistics, records, output formats, saved results, comparison and the best pick: no processes."""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from lollma_tui.core.bench import (
    LLAMA_BENCH_FIELDS,
    BenchRecord,
    ResultStore,
    RowWriter,
    SweepInputError,
    SweepSpec,
    bench_test_name,
    best_configuration,
    compare_with_saved,
    format_comparison,
    format_records,
    load_settings_for,
)
from lollma_tui.core.bench.hardware_info import GpuInfo, HardwareInfo, PeakTracker
from lollma_tui.core.bench.protocol import BenchTest
from lollma_tui.core.bench.stats import summarize
from lollma_tui.core.hardware.snapshots import MemorySnapshot, ProcessSnapshot, SystemSnapshot
from lollma_tui.core.settings import BackendKind

HARDWARE = HardwareInfo(
    "Test CPU", 4, 8, 16 << 30, (GpuInfo("Test GPU", 8 << 30),), "550.1", "Linux", "x86_64"
)


def record(**changes: object) -> BenchRecord:
    summary = summarize([2_000_000, 2_500_000, 1_600_000], 128)
    base = BenchRecord(
        model_filename="/models/tiny-Q4_K_M.gguf",
        model_type="llama ?B Q4_K - Medium",
        model_size=900_000,
        model_n_params=1_440_000,
        n_threads=2,
        n_gen=128,
        test="tg128",
        quant="Q4_K_M",
        backends="CPU",
        fingerprint=HARDWARE.fingerprint(),
        run_id="new",
        hardware=HARDWARE,
    ).with_summary(summary)
    return replace(base, **changes)  # type: ignore[arg-type]


# --- statistics -----------------------------------------------------------------------------


def test_rates_are_the_mean_of_per_run_rates_with_sample_stddev() -> None:
    samples = [1_000_000, 2_000_000, 4_000_000]
    summary = summarize(samples, 100)
    rates = [100e9 / ns for ns in samples]
    assert summary.samples_ts == pytest.approx(rates)
    # Not total tokens over total time (that would be 300 / 7 ms = 42857 t/s).
    assert summary.avg_ts == pytest.approx(sum(rates) / 3)
    assert summary.avg_ts != pytest.approx(300e9 / sum(samples))
    assert summary.stddev_ts == pytest.approx(statistics.stdev(rates))  # n − 1
    assert summary.stddev_ts != pytest.approx(statistics.pstdev(rates))
    assert summary.avg_ns == round(statistics.fmean(samples))
    assert summary.stddev_ns == round(statistics.stdev(samples))


def test_one_sample_has_no_spread_and_counts_may_differ_per_run() -> None:
    assert summarize([5_000_000], 10).stddev_ts == 0.0
    mixed = summarize([1_000_000, 1_000_000], [10, 20])
    assert mixed.samples_ts == pytest.approx((10_000.0, 20_000.0))
    with pytest.raises(ValueError, match="one token count per sample"):
        summarize([1, 2], [1])
    with pytest.raises(ValueError, match="positive duration"):
        summarize([0], 1)


def test_test_names_follow_llama_bench() -> None:
    assert bench_test_name(512, 0) == "pp512"
    assert bench_test_name(0, 128) == "tg128"
    assert bench_test_name(0, 128, 512) == "tg128 @ d512"
    assert bench_test_name(512, 128) == "pp512+tg128"


def test_spec_lists_pp_tests_then_tg_tests_at_each_depth() -> None:
    spec = SweepSpec(models=("m",), n_prompt=(64, 0), n_gen=(16,), n_depth=(0, 32))
    assert spec.tests() == (
        BenchTest(n_prompt=64),
        BenchTest(n_prompt=64, n_depth=32),
        BenchTest(n_gen=16),
        BenchTest(n_gen=16, n_depth=32),
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"repetitions": 0}, "repetitions"),
        ({"n_prompt": (0,), "n_gen": (0,), "chat": False}, "nothing to measure"),
        ({"threads": (0,)}, "thread"),
        ({"gpu_layers": (-2,)}, "GPU layers"),
        ({"backend": BackendKind.OLLAMA, "n_depth": (512,)}, "-d is not available with Ollama"),
        ({"chat_tokens": 1}, "2 tokens"),
    ],
)
def test_spec_refuses_what_cannot_run(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SweepInputError, match=message):
        SweepSpec(models=("m",), **changes).validate()  # type: ignore[arg-type]


# --- records and formats --------------------------------------------------------------------


def test_record_json_starts_with_llama_bench_fields_in_order_and_round_trips() -> None:
    row = record(notes=("a note",))
    data = row.to_dict()
    assert list(data)[: len(LLAMA_BENCH_FIELDS)] == list(LLAMA_BENCH_FIELDS)
    assert data["backend_impl"] == "llama-cpp-python"
    assert data["samples_ts"] == list(row.samples_ts)
    assert data["hardware"]["gpus"] == [{"name": "Test GPU", "memory_total_bytes": 8 << 30}]
    assert BenchRecord.from_dict(json.loads(json.dumps(data))) == row


def test_llama_bench_json_reads_as_a_record() -> None:
    # Keys llama-bench has and we do not (cpu_mask, poll...) are ignored, not fatal.
    upstream = {
        "build_commit": "abc",
        "build_number": 42,
        "cpu_mask": "0x0",
        "poll": 50,
        "n_prompt": 512,
        "n_gen": 0,
        "avg_ts": 100.0,
        "samples_ts": [99.0, 101.0],
        "model_type": "qwen2 7B Q4_K - Medium",
    }
    parsed = BenchRecord.from_dict(upstream)
    assert (parsed.build_number, parsed.n_prompt, parsed.samples_ts) == (42, 512, (99.0, 101.0))


def test_markdown_table_has_llama_bench_columns_and_avg_plus_minus_stddev() -> None:
    rows = [record(), record(n_threads=1, test="pp512", n_prompt=512, n_gen=0)]
    text = format_records(rows, "md", build="abc123 (llama-cpp-python 0.3.36)")
    lines = text.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:6] == ["model", "size", "params", "backend", "ngl", "threads"]
    assert header[-3:] == ["test", "t/s", "peak RSS"]
    assert set(lines[1].replace("|", "").replace(" ", "")) <= {"-", ":"}
    first = [c.strip() for c in lines[2].strip("|").split("|")]
    assert first[header.index("test")] == "tg128"
    assert first[header.index("t/s")] == f"{rows[0].avg_ts:.2f} ± {rows[0].stddev_ts:.2f}"
    assert lines[-1] == "build: abc123 (llama-cpp-python 0.3.36)"


def test_a_models_own_name_reaches_the_table_without_its_escape_sequences() -> None:
    # The model column is the GGUF's metadata, printed to the terminal as it was.
    text = format_records([record(model_type="llama \x1b]0;pwned\x07?B \x1b[31mQ4_K")], "md")
    assert "\x1b" not in text and "\x07" not in text
    assert "| llama ?B Q4_K " in text


def test_non_default_batch_gets_a_column() -> None:
    text = format_records([record(n_batch=512)], "md")
    assert "n_batch" in text.splitlines()[0]
    assert "n_batch" not in format_records([record()], "md").splitlines()[0]


def test_csv_json_and_jsonl_carry_the_fields() -> None:
    rows = [record(), record(n_threads=1, flash_attn=True)]
    table = list(csv.DictReader(io.StringIO(format_records(rows, "csv"))))
    assert len(table) == 2
    # Flags as llama-bench's CSV writes them (scripts read them as numbers); JSON keeps true/false.
    assert [(r["flash_attn"], r["use_mmap"]) for r in table] == [("0", "1"), ("1", "1")]
    assert float(table[0]["avg_ts"]) == pytest.approx(rows[0].avg_ts)
    assert "samples_ts" not in table[0]  # as llama-bench's CSV
    document = json.loads(format_records(rows, "json"))
    assert [d["n_threads"] for d in document] == [2, 1]
    assert [d["flash_attn"] for d in document] == [False, True]
    lines = format_records(rows, "jsonl").splitlines()
    assert [json.loads(line)["samples_ns"] for line in lines] == [list(r.samples_ns) for r in rows]


def test_a_stopped_json_stream_is_still_a_valid_document() -> None:
    out = io.StringIO()
    writer = RowWriter("json", out)
    writer.finish()
    assert json.loads(out.getvalue()) == []
    out = io.StringIO()
    writer = RowWriter("json", out)
    writer.row(record())
    writer.finish()
    assert len(json.loads(out.getvalue())) == 1


# --- saved results and comparison -----------------------------------------------------------


def test_store_appends_rows_and_skips_damaged_lines(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "bench" / "results.jsonl")
    assert store.load() == []
    store.save([record(), record(fingerprint="other")])
    with open(store.path, "a") as out:
        out.write("{not json\n")
    store.save([record(run_id="later")])
    assert [r.run_id for r in store.load()] == ["new", "new", "later"]
    assert len(store.load(fingerprint="other")) == 1


def test_a_row_cut_off_mid_write_costs_that_row_only(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.jsonl")
    store.save([record(run_id="first")])
    # A crash or a full disk stopped the last append in the middle of a UTF-8 character.
    with open(store.path, "ab") as out:
        out.write(b'{"run_id":"cut","model_name":"caf\xc3')
    assert [r.run_id for r in store.load()] == ["first"]
    assert store.save([record(run_id="second"), record(run_id="third")]) == 2
    assert [r.run_id for r in store.load()] == ["first", "second", "third"]


def test_compare_uses_the_latest_saved_run_with_the_same_fingerprint_and_configuration() -> None:
    new = record(avg_ts=120.0, stddev_ts=1.0)
    saved = [
        record(run_id="old", avg_ts=50.0),
        record(run_id="older-but-later-in-file", avg_ts=100.0, stddev_ts=1.0),
        record(run_id="other-machine", avg_ts=10.0, fingerprint="elsewhere"),
        record(run_id="other-threads", avg_ts=10.0, n_threads=8),
        record(run_id="new", avg_ts=1.0),  # the new run itself, already saved
    ]
    (comparison,) = compare_with_saved([new], saved)
    assert comparison.previous is not None
    assert comparison.previous.run_id == "older-but-later-in-file"
    assert comparison.change == pytest.approx(0.2)
    assert comparison.significant
    text = format_comparison([comparison])
    assert "+20.0 %" in text


def test_compared_rows_keep_the_swept_columns_and_a_single_run_has_no_verdict() -> None:
    # A `--repack on,off` sweep compared: two pp rows that read the same, each with its own change.
    on, off = record(repack=True, avg_ts=100.0), record(repack=False, avg_ts=80.0)
    saved = [record(run_id="old", repack=True, avg_ts=90.0), record(run_id="old", repack=False, avg_ts=90.0)]
    header, _rule, *rows = format_comparison(compare_with_saved([on, off], saved)).splitlines()
    assert "repack" in header and len(set(rows)) == 2
    repack_at = [cell.strip() for cell in header.split("|")].index("repack")
    assert sorted(row.split("|")[repack_at].strip() for row in rows) == ["0", "1"]
    # Timed once (-r 1), a run has no spread: every change was shown as real, without "~".
    once = summarize([2_000_000], 128)
    (single,) = compare_with_saved([record().with_summary(once)], [record(run_id="old", avg_ts=60.0)])
    assert not single.significant and not single.noise_known
    assert format_comparison([single]).splitlines()[-1].rstrip(" |").endswith(" % ?")


def test_compare_says_new_when_nothing_matches() -> None:
    (comparison,) = compare_with_saved([record()], [record(run_id="old", quant="Q8_0")])
    assert comparison.previous is None and comparison.change is None
    assert "new" in format_comparison([comparison])


def test_chat_rows_of_other_reply_lengths_are_not_compared() -> None:
    # A chat row with 2-token replies was set against a saved 64-token one: "-41.7 %".
    short = record(test="chat", question="q", n_gen=2, chat_tokens=2, avg_ts=70.0)
    long = record(test="chat", question="q", n_gen=64, chat_tokens=64, run_id="old")
    (comparison,) = compare_with_saved([short], [long])
    assert comparison.previous is None
    # Replies that came a little short of the same length asked are the same set-up.
    ended_early = record(test="chat", question="q", n_gen=1, chat_tokens=2, run_id="old")
    (same,) = compare_with_saved([short], [ended_early])
    assert same.previous is not None


def test_best_configuration_is_the_fastest_that_fits_the_budget() -> None:
    rows = [
        record(avg_ts=100.0, n_threads=1, peak_rss_bytes=100),
        record(avg_ts=300.0, n_threads=2, peak_rss_bytes=900),
        record(avg_ts=200.0, n_threads=4, peak_rss_bytes=200),
        record(avg_ts=999.0, test="pp512", n_prompt=512, n_gen=0),
    ]
    assert best_configuration(rows) is rows[1]
    assert best_configuration(rows, ram_budget_bytes=500) is rows[2]
    assert best_configuration(rows, kind="pp") is rows[3]
    assert best_configuration(rows, ram_budget_bytes=10) is None
    settings = load_settings_for(rows[2])
    assert (settings.model, settings.n_threads, settings.n_gpu_layers) == ("/models/tiny-Q4_K_M.gguf", 4, 0)


# --- hardware -------------------------------------------------------------------------------


def test_fingerprint_ignores_ram_jitter_but_not_a_different_gpu() -> None:
    same = replace(HARDWARE, ram_total_bytes=HARDWARE.ram_total_bytes + (50 << 20), gpu_driver="560.0")
    assert same.fingerprint() == HARDWARE.fingerprint()
    other = replace(HARDWARE, gpus=(GpuInfo("Other GPU", 8 << 30),))
    assert other.fingerprint() != HARDWARE.fingerprint()
    assert HardwareInfo.from_dict(HARDWARE.to_dict()) == HARDWARE


def _snapshot(used: int, rss: int | None) -> SystemSnapshot:
    processes = () if rss is None else (ProcessSnapshot(1, "w", rss, None, None, total_rss_bytes=rss),)
    return SystemSnapshot(
        monotonic=0.0,
        wall_time=0.0,
        interval_s=0.25,
        tick=0,
        cpu=None,
        memory=MemorySnapshot(10_000, 10_000 - used, used, None, None),
        processes=processes,
    )


def test_peak_tracker_keeps_the_highest_readings_since_reset() -> None:
    tracker = PeakTracker()
    tracker.reset(_snapshot(used=500, rss=None))
    assert tracker.snapshot().ram_used_bytes == 500  # the baseline, before any tick
    for used, rss in ((700, 40), (600, 90), (650, 60)):
        tracker.observe(_snapshot(used, rss))
    tracker.note_rss(80)  # lower than what sampling saw: ignored
    peaks = tracker.snapshot()
    assert (peaks.ram_used_bytes, peaks.rss_bytes, peaks.samples) == (700, 90, 3)
    tracker.note_rss(120)
    assert tracker.snapshot().rss_bytes == 120
    tracker.reset()
    assert tracker.snapshot().rss_bytes is None


def test_a_worker_s_peak_rss_is_its_own_not_the_process_that_started_it() -> None:
    # Linux copies ru_maxrss at fork: a bench started from a 600 MiB app said 675 MiB for a
    # 60 MiB model, and "Apply best" weighed that against free RAM.
    import subprocess
    import sys

    held = bytearray(400 << 20)
    held[:: 1 << 12] = b"x" * len(range(0, len(held), 1 << 12))  # touched: resident, not just mapped
    code = "from lollma_tui.core.bench.bench_worker import peak_rss_bytes; print(peak_rss_bytes())"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    del held
    assert int(shown.stdout) < 200 << 20, shown.stdout
