"""Shared pieces of the fuzz tests (tests/fuzz): their Hypothesis settings and JSON strategies.

Inside the suite each target tries `FUZZ_EXAMPLES` cases (a few seconds each); for a long run:

    LOLLMA_FUZZ_EXAMPLES=20000 uv run pytest tests/fuzz -q --hypothesis-show-statistics
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings, strategies as st

FUZZ_EXAMPLES = int(os.environ.get("LOLLMA_FUZZ_EXAMPLES", "200"))

fuzz = settings(
    max_examples=FUZZ_EXAMPLES,
    # Shared CPUs make timings meaningless; a hang still fails the run.
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    print_blob=True,
)

# Numbers a parser must survive: huge, negative, non-finite, at the edges of 64 bits.
EDGE_INTS = st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30, -(2**63)])
ANY_INT = st.one_of(st.integers(-(2**70), 2**70), EDGE_INTS, st.integers(-(10**400), 10**400))
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
# Every code point, with lone surrogates and control characters drawn often.
ANY_TEXT = st.text(
    st.one_of(
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from(["\ud800", "\udfff", "\x1b", "\x00", "\x9b", "\n", "\u202e", "²"]),
    ),
    max_size=40,
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any value json.dumps can write (NaN and infinities as Python writes them)."""
    leaves = st.one_of(st.none(), st.booleans(), ANY_INT, ANY_FLOAT, ANY_TEXT)
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(ANY_TEXT, children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def paths_in(document: Any) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (dict keys and list indexes), the root as ()."""
    found: list[tuple[Any, ...]] = [()]
    if isinstance(document, dict):
        for key, value in document.items():
            found += [(key, *rest) for rest in paths_in(value)]
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += [(index, *rest) for rest in paths_in(value)]
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `document` with the value at `path` replaced (the root when `path` is empty)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: replaced(document[head], rest, value)}
    copy = list(document)
    copy[head] = replaced(copy[head], rest, value)
    return copy


@st.composite
def mutated_json(draw: st.DrawFn, document: Any, changes: int = 3) -> Any:
    """`document` with up to `changes` places replaced by arbitrary JSON values, or removed."""
    for _ in range(draw(st.integers(1, changes))):
        path = draw(st.sampled_from(paths_in(document)))
        if path and isinstance(document, dict | list) and draw(st.booleans()):
            document = _removed(document, path)
        else:
            document = replaced(document, path, draw(json_values()))
    return document


def _leaf_of_same_kind(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return ANY_INT
    if isinstance(value, float):
        return st.one_of(ANY_FLOAT, ANY_INT)
    if isinstance(value, str):
        return ANY_TEXT
    return st.none()


@st.composite
def same_shape_json(draw: st.DrawFn, document: Any, changes: int = 4) -> Any:
    """`document` with up to `changes` leaves replaced by hostile values of the same JSON kind
    (text with escapes and surrogates, huge and non-finite numbers): it keeps its shape, so
    a strict reader gets past the structure to the values."""
    leaves = [p for p in paths_in(document) if not isinstance(_at(document, p), dict | list)]
    for _ in range(draw(st.integers(1, changes))):
        path = draw(st.sampled_from(leaves))
        document = replaced(document, path, draw(_leaf_of_same_kind(_at(document, path))))
    return document


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def _removed(document: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if rest:
        return replaced(document, (head,), _removed(document[head], rest))
    if isinstance(document, dict):
        return {k: v for k, v in document.items() if k != head}
    return [v for i, v in enumerate(document) if i != head]
