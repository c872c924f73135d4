"""Text the benchmarks use, shared so their figures compare like with like: questions to ask a
model, and filler for stored conversations."""

from lollma_tui.core.backends.base import ReplyStats, RunSetup
from lollma_tui.core.settings import BackendKind

QUESTIONS = [
    "explain quantum entanglement",
    "describe how a lighthouse works",
    "what makes bread rise",
    "why is the sky blue",
    "how do bees find flowers",
    "what is a compiler",
    "how does a river form",
]

WORDS = [
    "the",
    "model",
    "streams",
    "tokens",
    "while",
    "the",
    "store",
    "saves",
    "them",
    "once",
    "a",
    "second",
    "to",
    "disk",
]


def filler_text(i: int, words: int) -> str:
    """`words` words of message text, different for each `i`."""
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(words))


def sample_stats() -> ReplyStats:
    """Plausible stats for a stored reply (the store's cost does not depend on their values)."""
    setup = RunSetup(BackendKind.LLAMA_CPP, "gemma-3-270m", "Q4_K_M", 19, 18, 4096, 8, 512, False)
    return ReplyStats(setup, 0.19, 120, 120, 800.0, 200, 77.0, 2.8, None)
