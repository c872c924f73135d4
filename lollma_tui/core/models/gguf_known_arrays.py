"""Where string arrays seen before end (vocabularies, merges), recognised by their bytes.

The quantizations of one model, and the models of one family, carry the same tokenizer byte
for byte. Walking a 150k-262k token list costs 40-70 ms here; hashing the same bytes costs a
few. So the first walk of a long string array records its length in bytes with a digest of
them, and a later array with the same element count and the same first bytes is checked
against that digest instead of walked. Identical bytes walk to the identical end, so the
answer is exact; any difference means walking, as before.
"""

from __future__ import annotations

import hashlib
import mmap
import threading
from collections import OrderedDict

MIN_STRINGS = 4096
"""Shorter arrays are walked every time: a walk is cheaper than the bookkeeping."""

_PREFIX_BYTES = 4096
_MAX_ENTRIES = 64


def _digest(buf: mmap.mmap, start: int, end: int) -> bytes:
    # SHA-256 because CPUs hash it in hardware: 2-3x blake2b's speed here.
    with memoryview(buf) as whole, whole[start:end] as part:
        return hashlib.sha256(part).digest()


class KnownStringArrays:
    """Byte lengths of string arrays already walked, keyed by count and a digest of their start."""

    def __init__(self, max_entries: int = _MAX_ENTRIES) -> None:
        self._max_entries = max_entries
        # (count, digest of the first bytes) -> (byte length, digest of all of them)
        self._entries: OrderedDict[tuple[int, bytes], list[tuple[int, bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _key(self, buf: mmap.mmap, off: int, count: int, size: int) -> tuple[int, bytes]:
        return count, _digest(buf, off, min(size, off + _PREFIX_BYTES))

    def end_of(self, buf: mmap.mmap, off: int, count: int, size: int) -> int | None:
        """Offset just past the array at `off`, when its bytes match one seen before; else None."""
        key = self._key(buf, off, count, size)
        with self._lock:
            candidates = list(self._entries.get(key, ()))
            if candidates:
                self._entries.move_to_end(key)
        for length, digest in candidates:
            if off + length <= size and _digest(buf, off, off + length) == digest:
                return off + length
        return None

    def remember(self, buf: mmap.mmap, off: int, count: int, end: int, size: int) -> None:
        """Note that the `count` strings at `off` end at `end` (after walking them)."""
        key = self._key(buf, off, count, size)
        entry = (end - off, _digest(buf, off, end))
        with self._lock:
            known = self._entries.setdefault(key, [])
            if entry not in known:
                known.append(entry)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


KNOWN_STRING_ARRAYS = KnownStringArrays()
"""Shared by every header read in the process (scans run on one thread, loads on another)."""
