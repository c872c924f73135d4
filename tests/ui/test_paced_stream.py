"""Reply text reaches the Markdown widget in paced batches, complete and never late."""

from __future__ import annotations

import asyncio
import time

from textual.app import App, ComposeResult
from textual.widgets import Markdown

from lollma_tui.ui.paced_stream import UI_SHARE, PacedStream


class Recorder:
    """Stands in for Textual's MarkdownStream: notes each write and when it came."""

    def __init__(self) -> None:
        self.writes: list[tuple[float, str]] = []
        self.stopped = False

    async def write(self, markdown_fragment: str) -> None:
        self.writes.append((time.monotonic(), markdown_fragment))

    async def stop(self) -> None:
        self.stopped = True


async def test_fast_fragments_are_batched_and_nothing_is_lost() -> None:
    recorder = Recorder()
    stream = PacedStream(recorder, 0.05, 0.05)
    sent = [f"w{i} " for i in range(200)]
    started = time.monotonic()
    for piece in sent:
        await stream.write(piece)
        await asyncio.sleep(0.001)
    elapsed = time.monotonic() - started
    await stream.stop()
    assert "".join(text for _, text in recorder.writes) == "".join(sent)
    assert recorder.stopped
    # One write at once, then at most one per interval (and the last one from stop()).
    assert len(recorder.writes) <= elapsed / 0.05 + 3
    assert len(recorder.writes) < len(sent) / 4
    gaps = [b - a for (a, _), (b, _) in zip(recorder.writes, recorder.writes[1:-1], strict=False)]
    assert all(gap >= 0.045 for gap in gaps)


async def test_a_fragment_after_a_pause_is_shown_without_waiting_for_the_next() -> None:
    recorder = Recorder()
    stream = PacedStream(recorder, 0.05, 0.05)
    await stream.write("first ")
    assert [text for _, text in recorder.writes] == ["first "]  # the first goes out at once
    await stream.write("second ")  # inside the interval: booked, not written yet
    assert len(recorder.writes) == 1
    await asyncio.sleep(0.2)  # no further token comes
    assert [text for _, text in recorder.writes] == ["first ", "second "]
    assert recorder.writes[1][0] - recorder.writes[0][0] < 0.15
    await asyncio.sleep(0.1)
    await stream.write("third")  # after a quiet spell: at once again
    assert recorder.writes[-1][1] == "third"
    await stream.stop()


async def test_with_a_real_markdown_widget() -> None:
    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield Markdown()

    app = Host()
    async with app.run_test() as pilot:
        markdown = app.query_one(Markdown)
        stream = PacedStream(markdown.get_stream(markdown), 0.05, 0.05)
        for word in ["# Title\n\n", "Some ", "*streamed* ", "text."]:
            await stream.write(word)
        await stream.stop()
        await pilot.pause()
        assert markdown.source == "# Title\n\nSome *streamed* text."


class FakeCpu:
    """The UI process's CPU clock, advanced by a fixed cost per update."""

    def __init__(self, per_update_s: float) -> None:
        self.per_update_s = per_update_s
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.per_update_s
        return self.now


async def feed(stream: PacedStream, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await stream.write("tok ")
        await asyncio.sleep(0.005)


async def test_expensive_updates_thin_out_and_cheap_ones_keep_the_fastest_pace() -> None:
    # CPU per update in shares of the fastest interval: half the allowed share, and three times it.
    cheap = PacedStream(Recorder(), 0.02, 0.08, cpu_clock=FakeCpu(0.02 * UI_SHARE / 2))
    costly = PacedStream(Recorder(), 0.02, 0.08, cpu_clock=FakeCpu(0.02 * UI_SHARE * 3))
    await asyncio.gather(feed(cheap, 0.6), feed(costly, 0.6))
    # Well under the share at the fastest pace...
    assert cheap.interval_s == 0.02
    # ...three times over it: the pace slows to about three times the fastest interval.
    assert 0.045 < costly.interval_s < 0.075
    heavy = PacedStream(Recorder(), 0.02, 0.08, cpu_clock=FakeCpu(0.5))
    await feed(heavy, 0.5)
    assert heavy.interval_s == 0.08  # never slower than the slowest pace
    for stream in (cheap, costly, heavy):
        await stream.stop()


async def test_what_changes_with_the_text_is_told_just_before_each_write() -> None:
    recorder = Recorder()
    told: list[int] = []
    # Each call notes how many writes had happened: the write it announces is not one of them.
    stream = PacedStream(recorder, 0.05, 0.05, on_write=lambda: told.append(len(recorder.writes)))
    for i in range(40):
        await stream.write(f"w{i} ")
        await asyncio.sleep(0.004)
    written_before_stop = len(recorder.writes)
    await stream.write("last")
    await stream.stop()
    # The text left at stop is written untold: the stream has ended, there is nothing live to show.
    assert len(recorder.writes) == written_before_stop + 1 and recorder.writes[-1][1].endswith("last")
    assert written_before_stop >= 2
    assert told == list(range(written_before_stop))
