"""What a reasoning model's thinking costs the UI, against the same tokens written as the answer.

    uv run python scripts/perf/thinking.py [--tokens 600] [--rate 60] [--rounds 2] [--quick]

A headless `LollmaApp` on the Ollama backend, talking over real HTTP to the Ollama-compatible
test server (in a thread of this process), streams one reply per side at a fixed pace:
- think: `--tokens` thinking tokens (folded away, as shipped), then a one-word answer;
- answer: the same tokens as the answer itself.
The figure is this process's CPU time over the reply's wall time (app and test server together;
the server's share is the same on both sides). Goal: thinking costs no more than writing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

from _support import QUICK_HELP, borrow_test_helpers

borrow_test_helpers()

from ollama_server import OllamaTestServer, Script  # noqa: E402
from pilot_support import wait_until  # noqa: E402

from lollma_tui.core.backends.ollama import OllamaBackend  # noqa: E402
from lollma_tui.core.settings import BackendKind, LoadSettings, SamplingSettings, StartupOptions  # noqa: E402
from lollma_tui.ui.app import LollmaApp  # noqa: E402


async def one_reply(server: OllamaTestServer, script: Script, tokens: int) -> float:
    """Percent of one core this process spent while the reply streamed."""
    options = StartupOptions(
        load=LoadSettings(backend=BackendKind.OLLAMA, model="qwen3:0.6b", n_ctx=4096),
        sampling=SamplingSettings(max_tokens=tokens + 64),
        ollama_host=server.host,
        new_conversation=True,
    )
    app = LollmaApp(options, backend=OllamaBackend(server.host, timeout_s=10.0, connect_timeout_s=1.0))
    main = app.chat_screen
    server.queue_reply(script)
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_until(pilot, lambda: main.models.ready, within=30)
        await pilot.press(*"2+2?", "enter")
        # Not "and generating": a --quick reply can end between two looks, and the wait failed.
        await wait_until(pilot, lambda: bool(main.chat_log.reply_turns()))
        wall, cpu = time.monotonic(), time.process_time()
        await wait_until(pilot, lambda: not main.is_generating, within=tokens)
        return 100 * (time.process_time() - cpu) / (time.monotonic() - wall)


async def measure(tokens: int, rate: float, rounds: int) -> None:
    words = " ".join(f"t{i}" for i in range(tokens))
    sides = {
        "think": Script(text="Four.", thinking=words, tokens_per_second=rate),
        "answer": Script(text=words, thinking="", tokens_per_second=rate),
    }
    figures: dict[str, list[float]] = {side: [] for side in sides}
    with OllamaTestServer() as server:
        for _ in range(rounds):
            for side, script in sides.items():  # alternating, so drift hits both alike
                figures[side].append(await one_reply(server, script, tokens))
    think, answer = (statistics.median(figures[side]) for side in sides)
    print(f"{tokens} tokens at {rate:g} tok/s, {rounds} round(s), median % of one core:")
    print(f"  thinking (folded): {think:5.1f} %   rounds {', '.join(f'{v:.1f}' for v in figures['think'])}")
    print(f"  answer text:       {answer:5.1f} %   rounds {', '.join(f'{v:.1f}' for v in figures['answer'])}")
    print(f"  thinking / answer: {think / answer:.2f} (goal: ≤ 1.00 within noise)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=600)
    parser.add_argument("--rate", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.rate, args.rounds = 30, 200.0, 1
    for name in ("DATA", "STATE", "CONFIG", "CACHE"):
        os.environ[f"LOLLMA_{name}_DIR"] = tempfile.mkdtemp(prefix=f"lollma-{name.lower()}-")
    asyncio.run(measure(args.tokens, args.rate, args.rounds))


if __name__ == "__main__":
    main()
