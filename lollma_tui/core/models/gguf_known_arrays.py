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
    """Byte lengths of string arrays already walked, keyed by count and a digest of their start.

    ``buf[:size]`` is the file's first bytes as read so far (the rest of `buf` is not this
    file's); the caller makes sure it holds the bytes each call looks at: the first 4 KiB of
    the array (or up to the file's end) and, for `matches`, the whole candidate.
    """

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

    def candidates(self, buf: mmap.mmap, off: int, count: int, size: int) -> list[tuple[int, bytes]]:
        """(byte length, digest) of the arrays seen before that start like the one at `off`."""
        key = self._key(buf, off, count, size)
        with self._lock:
            found = list(self._entries.get(key, ()))
            if found:
                self._entries.move_to_end(key)
        return found

    @staticmethod
    def matches(buf: mmap.mmap, off: int, length: int, digest: bytes) -> bool:
        """Whether ``buf[off:off + length]`` (which the caller has read) is the array remembered."""
        return _digest(buf, off, off + length) == digest

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
