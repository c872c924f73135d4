"""Questions the benchmarks ask, shared so their figures compare like with like."""

QUESTIONS = [
    "explain quantum entanglement",
    "describe how a lighthouse works",
    "what makes bread rise",
    "why is the sky blue",
    "how do bees find flowers",
    "what is a compiler",
    "how does a river form",
]
