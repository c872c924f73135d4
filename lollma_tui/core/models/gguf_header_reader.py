"""The byte-level half of the GGUF header reader: walk the header's bytes, decode its values.

No tensor data is read and nothing heavier than `struct` is imported, because this runs on the
app's start-up path. Long arrays (vocabularies of 150k-262k tokens, merges, scores)
are not decoded: numeric ones are skipped in one step, string ones by walking their length
prefixes (or, for one seen before, by checking its bytes: `gguf_known_arrays`), and only their
element type and length are kept.

Layout (all integers little-endian unless the file is big-endian): magic ``GGUF``, u32 version,
u64 tensor count, u64 key/value count, the key/value entries, the tensor infos, padding to the
alignment, then tensor data. A key/value entry is a u64-length string key, a u32 value type and
the value; an array value is a u32 element type, a u64 length and the elements.

Any file in a models folder is read, so nothing in one may cost more than a bounded amount of
time or memory or end the scan: the file is opened ``O_NONBLOCK`` and checked with ``fstat``
(a FIFO or device is refused, never waited on), its header is read with ``pread`` as the walk
reaches it (never an mmap of the file, which dies with SIGBUS when it shrinks), and the limits
in `gguf_limits` make every hostile shape a `GGUFError` with a reason.

Import from `gguf_header`, which wraps `read_raw_header` in a `GGUFHeader` and re-exports the rest.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, TypeAlias

from lollma_tui.core.models.gguf_known_arrays import KNOWN_STRING_ARRAYS, MIN_STRINGS
from lollma_tui.core.models.gguf_limits import (
    MAX_ARRAY_DEPTH,
    MAX_HEADER_BYTES,
    MAX_ITEMS,
    MAX_NESTED_ELEMENTS,
    MAX_STRING_BYTES,
    check_block_count,
    layer_index,
)
from lollma_tui.core.models.quant_types import GGML_TYPES, ggml_type_name
from lollma_tui.core.safe_files import NotRegularFileError, open_regular_file, pread_into

MAGIC: Final = b"GGUF"
SUPPORTED_VERSIONS: Final = (2, 3)
DEFAULT_ALIGNMENT: Final = 32
SMALL_ARRAY_LIMIT: Final = 64
"""Arrays up to this many items are decoded (per-layer head counts); longer ones are skipped."""

_MAX_DIMS: Final = 4

_FIRST_READ: Final = 64 << 10
_READ_CHUNK: Final = 64 << 10
_STRING_BYTES_GUESS: Final = 24
"""Read-ahead per string of a long array; typical tokens and merges take 12-20 bytes."""
_FIXED_HEADER_SIZE: Final = 24
# Smallest possible encodings, used to reject counts the file cannot possibly hold.
_MIN_KV_SIZE: Final = 8 + 1 + 4 + 1
_MIN_TENSOR_INFO_SIZE: Final = 8 + 1 + 4 + 4 + 8

# GGUF value types.
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL = range(8)
T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(8, 13)

_SCALAR_CODES: Final = {
    T_UINT8: "B",
    T_INT8: "b",
    T_UINT16: "H",
    T_INT16: "h",
    T_UINT32: "I",
    T_INT32: "i",
    T_FLOAT32: "f",
    T_BOOL: "?",
    T_UINT64: "Q",
    T_INT64: "q",
    T_FLOAT64: "d",
}
_SCALAR_SIZES: Final = {t: struct.calcsize(code) for t, code in _SCALAR_CODES.items()}
VALUE_TYPE_NAMES: Final = {
    T_UINT8: "uint8",
    T_INT8: "int8",
    T_UINT16: "uint16",
    T_INT16: "int16",
    T_UINT32: "uint32",
    T_INT32: "int32",
    T_FLOAT32: "float32",
    T_BOOL: "bool",
    T_STRING: "string",
    T_ARRAY: "array",
    T_UINT64: "uint64",
    T_INT64: "int64",
    T_FLOAT64: "float64",
}


class GGUFError(ValueError):
    """A file that cannot be read as GGUF; `reason` is one line meant for the user. `transient`:
    the system refused the read (permissions, I/O), which says nothing lasting about the file."""

    def __init__(self, path: Path, reason: str, *, transient: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.transient = path, reason, transient


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """A long array left undecoded: what it holds and where."""

    element_type: int
    length: int
    offset: int
    """File offset of the first element."""

    @property
    def element_type_name(self) -> str:
        return VALUE_TYPE_NAMES.get(self.element_type, f"type{self.element_type}")


Scalar: TypeAlias = int | float | bool | str
KVValue: TypeAlias = Scalar | tuple[Scalar, ...] | ArrayInfo


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    ggml_type: int
    shape: tuple[int, ...]
    """ggml order: shape[0] is the row length (GGUF stores it this way)."""
    n_elements: int
    n_bytes: int
    offset: int
    """Absolute offset of the tensor's data in its file."""
    part: int = 0
    """Index of the file holding it, for models split over several files."""

    @property
    def type_name(self) -> str:
        return ggml_type_name(self.ggml_type)

    @property
    def layer(self) -> int | None:
        """The repeating-layer index for ``blk.N.*`` tensors, else None."""
        return layer_index(self.name)


@dataclass(frozen=True, slots=True)
class RawHeader:
    """What the header says, before `GGUFHeader` adds the views derived from it."""

    path: Path
    version: int
    kv: Mapping[str, KVValue]
    tensors: tuple[TensorInfo, ...]
    alignment: int
    data_offset: int
    file_size: int
    big_endian: bool


class _Truncated(Exception):
    """Raised inside the parser; turned into a GGUFError that names the section."""


class _RanOut(Exception):
    """A string walk reached the end of the bytes read so far, at file offset `at`."""

    def __init__(self, at: int) -> None:
        super().__init__(at)
        self.at = at


class _Parser:
    """One pass over the header bytes. `section` tracks what is being read, for error messages.

    `buf` holds the file's bytes from offset `base` up to `have`; `need` reads further, ahead
    of the walk, so a header costs a handful of ``pread`` calls. The walk only goes forward, so
    a long numeric array (token scores and types: megabytes nobody looks at) is jumped over by
    `skip_to` instead of read.
    """

    def __init__(self, path: Path, fd: int, size: int, endian: str, buf: mmap.mmap, have: int) -> None:
        self.path = path
        self.fd = fd
        self.size = size
        self.endian = endian
        self.buf = buf
        """The thread's scratch buffer: only ``buf[:have - base]`` is this file's, the rest is stale."""
        self.base = 0
        self.have = have
        self.section = "file header"
        self.items = 0
        self.nested = 0
        self._u32 = struct.Struct(endian + "I").unpack_from
        self._u64 = struct.Struct(endian + "Q").unpack_from

    def fail(self, reason: str) -> GGUFError:
        return GGUFError(self.path, reason)

    def need(self, end: int, ahead: int = 0) -> None:
        """Make `buf` cover the file up to `end`, and up to `ahead` bytes beyond where it has them."""
        if end + ahead <= self.have:
            return
        if end > self.size:
            raise _Truncated
        if end > MAX_HEADER_BYTES:
            raise self.fail(f"header larger than {MAX_HEADER_BYTES >> 20} MiB: not a model file")
        target = min(self.size, MAX_HEADER_BYTES, max(end + ahead, self.have + _READ_CHUNK))
        base = self.base
        if target - base > len(self.buf):
            self.buf = _grow_scratch(self.buf, self.have - base, target - base)
        try:
            with memoryview(self.buf) as whole, whole[self.have - base : target - base] as view:
                got = pread_into(self.fd, view, self.have)
        except OSError as exc:
            raise GGUFError(self.path, f"cannot read: {exc.strerror or exc}", transient=True) from None
        if got < target - self.have:
            raise self.fail(f"the file shrank to {self.have + got} bytes while being read")
        self.have = target

    def skip_to(self, off: int) -> None:
        """Nothing before `off` will be looked at again: drop it when `off` is past what is read."""
        if off > self.have:
            self.base = self.have = off

    def count(self, items: int) -> None:
        self.items += items
        if self.items > MAX_ITEMS:
            raise self.fail(f"more than {MAX_ITEMS} keys, tensors and array items: not a model file")

    def u32(self, off: int) -> int:
        if off + 4 > self.have:
            self.need(off + 4)
        value: int = self._u32(self.buf, off - self.base)[0]
        return value

    def u64(self, off: int) -> int:
        if off + 8 > self.have:
            self.need(off + 8)
        value: int = self._u64(self.buf, off - self.base)[0]
        return value

    def string(self, off: int) -> tuple[str, int]:
        length = self.u64(off)
        off += 8
        if length > self.size - off:
            raise _Truncated
        if length > MAX_STRING_BYTES:
            raise self.fail(f"a string of {length} bytes at offset {off - 8} (at most {MAX_STRING_BYTES})")
        end = off + length
        if end > self.have:
            self.need(end)
        base = self.base
        return self.buf[off - base : end - base].decode("utf-8", "replace"), end

    def value(self, value_type: int, off: int, key: str) -> tuple[KVValue, int]:
        code = _SCALAR_CODES.get(value_type)
        if code is not None:
            size = _SCALAR_SIZES[value_type]
            if off + size > self.have:
                self.need(off + size)
            scalar: Scalar = struct.unpack_from(self.endian + code, self.buf, off - self.base)[0]
            return scalar, off + size
        if value_type == T_STRING:
            return self.string(off)
        if value_type == T_ARRAY:
            return self.array(off, key, 1)
        raise self.fail(f"unknown value type {value_type} for key {key!r} at offset {off}")

    def array(self, off: int, key: str, depth: int) -> tuple[KVValue, int]:
        element_type = self.u32(off)
        length = self.u64(off + 4)
        off += 12
        code = _SCALAR_CODES.get(element_type)
        if code is not None:
            end = off + length * _SCALAR_SIZES[element_type]
            if length <= SMALL_ARRAY_LIMIT:
                self.need(end)
                layout = f"{self.endian}{length}{code}"
                items: tuple[Scalar, ...] = struct.unpack_from(layout, self.buf, off - self.base)
                return items, end
            if end > self.size:
                raise _Truncated
            self.skip_to(end)
            return ArrayInfo(element_type, length, off), end
        if element_type == T_STRING:
            if length * 8 > self.size - off:
                raise _Truncated
            self.count(length)
            if length <= SMALL_ARRAY_LIMIT:
                strings: list[Scalar] = []
                end = off
                for _ in range(length):
                    text, end = self.string(end)
                    strings.append(text)
                return tuple(strings), end
            return ArrayInfo(element_type, length, off), self.skip_strings(off, length)
        if element_type == T_ARRAY:
            if depth >= MAX_ARRAY_DEPTH:
                raise self.fail(f"key {key!r}: arrays nested more than {MAX_ARRAY_DEPTH} deep")
            if length * 12 > self.size - off:
                raise _Truncated
            self.nested += length
            if self.nested > MAX_NESTED_ELEMENTS:
                raise self.fail(f"key {key!r}: more than {MAX_NESTED_ELEMENTS} elements in nested arrays")
            self.count(length)
            end = off
            for _ in range(length):
                _, end = self.array(end, key, depth + 1)
            return ArrayInfo(element_type, length, off), end
        raise self.fail(f"unknown array element type {element_type} for key {key!r} at offset {off}")

    def skip_strings(self, off: int, count: int) -> int:
        """Offset just past `count` length-prefixed strings starting at `off`."""
        if count < MIN_STRINGS:
            return self._walk_strings(off, count)
        # The length prefixes alone take 8 bytes a string: enough to hold the array's first
        # bytes, which pick the candidates; each candidate's bytes are read before comparing.
        self.need(off + 8 * count)
        known = KNOWN_STRING_ARRAYS
        for length, digest in known.candidates(self.buf, off - self.base, count, self.have - self.base):
            if off + length <= min(self.size, MAX_HEADER_BYTES):
                self.need(off + length)
                if known.matches(self.buf, off - self.base, length, digest):
                    return off + length
        end = self._walk_strings(off, count)
        known.remember(self.buf, off - self.base, count, end - self.base, self.have - self.base)
        return end

    def _walk_strings(self, off: int, count: int) -> int:
        # The walk runs over what is read so far. Running out means reading as far again as it
        # got and walking again: at most twice the work, and rare, since `skip_strings` reads
        # ahead for typical string lengths.
        self.need(off + 8 * count, ahead=(_STRING_BYTES_GUESS - 8) * count)
        while True:
            base = self.base
            try:
                if self.endian == "<" and _NATIVE_LITTLE:
                    end = base + _skip_strings_le(self.buf, off - base, count, self.have - base)
                else:
                    end = base + self._walk_strings_generic(off - base, count)
            except _RanOut as ran_out:
                at = base + ran_out.at
                self.need(at + 8, ahead=at - off)
                continue
            if end > self.have:
                self.need(end)
            return end

    def _walk_strings_generic(self, off: int, count: int) -> int:
        """Like `_skip_strings_le`, for any byte order; offsets are relative to `base`."""
        u64 = self._u64
        buf = self.buf
        limit = self.have - self.base - 8
        for _ in range(count):
            if off > limit:
                raise _RanOut(off)
            off += 8 + u64(buf, off)[0]
        return off

    def parse(self, version: int) -> RawHeader:
        n_tensors = self.u64(8)
        n_kv = self.u64(16)
        room = self.size - _FIXED_HEADER_SIZE
        if n_kv * _MIN_KV_SIZE > room:
            raise self.fail(f"implausible key/value count {n_kv} for a file of {self.size} bytes")
        if n_tensors * _MIN_TENSOR_INFO_SIZE > room:
            raise self.fail(f"implausible tensor count {n_tensors} for a file of {self.size} bytes")
        self.count(n_kv + n_tensors)

        kv: dict[str, KVValue] = {}
        off = _FIXED_HEADER_SIZE
        for index in range(n_kv):
            self.section = f"key/value {index + 1} of {n_kv}"
            key, off = self.string(off)
            self.section = f"key/value {index + 1} of {n_kv} ({key[:80]!r})"
            value_type = self.u32(off)
            value, off = self.value(value_type, off + 4, key)
            if key in kv:
                raise self.fail(f"duplicate key {key[:80]!r}")
            kv[key] = value

        alignment = kv.get("general.alignment", DEFAULT_ALIGNMENT)
        if (
            isinstance(alignment, bool)
            or not isinstance(alignment, int)
            or alignment & (alignment - 1)
            or alignment <= 0
        ):
            raise self.fail(f"invalid general.alignment {alignment!r} (must be a power of two)")

        infos: list[tuple[str, int, tuple[int, ...], int]] = []
        for index in range(n_tensors):
            self.section = f"tensor info {index + 1} of {n_tensors}"
            name, off = self.string(off)
            self.section = f"tensor info {index + 1} of {n_tensors} ({name[:80]!r})"
            n_dims = self.u32(off)
            if n_dims > _MAX_DIMS:
                raise self.fail(f"tensor {name[:80]!r} has an implausible {n_dims} dimensions")
            off += 4
            if off + 8 * n_dims + 12 > self.have:
                self.need(off + 8 * n_dims + 12)
            shape = struct.unpack_from(f"{self.endian}{n_dims}Q", self.buf, off - self.base)
            off += 8 * n_dims
            ggml_type = self.u32(off)
            rel_offset = self.u64(off + 4)
            off += 12
            infos.append((name, ggml_type, shape, rel_offset))

        self.section = "tensor data"
        data_offset = -(-off // alignment) * alignment
        tensors: list[TensorInfo] = []
        seen: set[str] = set()
        last_end, last_name = data_offset if infos else off, ""
        for name, ggml_type, shape, rel_offset in infos:
            if name in seen:
                raise self.fail(f"duplicate tensor {name[:80]!r}")
            seen.add(name)
            layout = GGML_TYPES.get(ggml_type)
            if layout is None:
                raise self.fail(f"tensor {name[:80]!r} has unknown ggml type {ggml_type} (a newer format?)")
            if shape and shape[0] % layout.block_size:
                raise self.fail(
                    f"tensor {name[:80]!r}: row length {shape[0]} is not a multiple of the "
                    f"{layout.name} block size {layout.block_size}"
                )
            n_elements = 1
            for dim in shape:
                n_elements *= dim
            n_bytes = n_elements * layout.type_size // layout.block_size
            start = data_offset + rel_offset
            tensors.append(TensorInfo(name, ggml_type, tuple(shape), n_elements, n_bytes, start))
            if start + n_bytes > last_end:
                last_end, last_name = start + n_bytes, name
        if last_end > self.size:
            if last_name:
                raise self.fail(
                    f"tensor data past the end of the file: {last_name[:80]!r} ends at byte {last_end} "
                    f"but the file has {self.size} bytes (incomplete download?)"
                )
            raise _Truncated
        problem = check_block_count(kv)
        if problem is not None:
            raise self.fail(problem)

        return RawHeader(
            path=self.path,
            version=version,
            kv=MappingProxyType(kv),
            tensors=tuple(tensors),
            alignment=alignment,
            data_offset=data_offset,
            file_size=self.size,
            big_endian=self.endian == ">",
        )


_NATIVE_LITTLE: Final = struct.pack("=I", 1) == struct.pack("<I", 1)

_SCRATCH = threading.local()
"""Each thread reads headers into one buffer it keeps: fresh memory for every file costs a page
fault per 4 KiB, more than the parse itself for a large vocabulary. It is anonymous memory
(nothing backs it that could shrink) and page-aligned: the kernel copies into a destination
that is not 32-byte aligned up to 8x slower on some CPUs (measured on AMD EPYC)."""
_KEEP_SCRATCH: Final = 32 << 20


def _new_scratch(size: int) -> mmap.mmap:
    return mmap.mmap(-1, size)


def _grow_scratch(buf: mmap.mmap, have: int, target: int) -> mmap.mmap:
    bigger = _new_scratch(min(max(target, 2 * len(buf)), MAX_HEADER_BYTES))
    bigger[:have] = buf[:have]
    buf.close()
    return bigger


def _skip_strings_le(buf: mmap.mmap, off: int, count: int, size: int) -> int:
    """Offset past `count` strings at `off`; `_RanOut` when they run past ``buf[:size]``."""
    # Eight u64 views of the buffer, one per byte phase, so each length prefix is a single
    # index (views[off & 7][off >> 3]) instead of a struct call: the vocabulary walk is the
    # one hot loop of the whole header read.
    # Unrolled by four: about 10% less loop overhead.
    whole = memoryview(buf)
    views = [whole[k : k + (size - k) // 8 * 8].cast("Q") for k in range(min(8, size))]
    try:
        quads, rest = divmod(count, 4)
        for _ in range(quads):
            off += 8 + views[off & 7][off >> 3]
            off += 8 + views[off & 7][off >> 3]
            off += 8 + views[off & 7][off >> 3]
            off += 8 + views[off & 7][off >> 3]
        for _ in range(rest):
            off += 8 + views[off & 7][off >> 3]
    except IndexError:
        # `off` is where the length prefix that could not be read starts.
        raise _RanOut(off) from None
    finally:
        for view in views:
            view.release()
        whole.release()
    return off


def _open_checked(path: Path) -> tuple[int, int]:
    """An open read-only descriptor on a regular file and its size, or a GGUFError saying why not."""
    try:
        fd, info = open_regular_file(path)
    except FileNotFoundError:
        raise GGUFError(path, "file not found") from None
    except NotRegularFileError as exc:
        raise GGUFError(path, f"{exc.strerror}") from None
    except OSError as exc:
        raise GGUFError(path, f"cannot read: {exc.strerror or exc}", transient=True) from None
    if info.st_size == 0:
        os.close(fd)
        raise GGUFError(path, "empty file (0 bytes)")
    return fd, info.st_size


def _check_preamble(path: Path, head: bytes, size: int) -> tuple[int, str]:
    """Validate magic and version; return the version and the struct byte-order prefix."""
    if len(head) < 4 and MAGIC.startswith(head):
        raise GGUFError(path, f"truncated in the file header ({size} bytes)")
    if head[:4] != MAGIC:
        found = head[:4]
        raise GGUFError(path, f"not a GGUF file (starts with {found!r}, expected b'GGUF')")
    if len(head) < 8:
        raise GGUFError(path, f"truncated in the file header ({size} bytes)")
    version = struct.unpack_from("<I", head, 4)[0]
    endian = "<"
    # A big-endian file reads as a huge little-endian version with the low half zero.
    if version & 0xFFFF == 0 and version:
        version = struct.unpack_from(">I", head, 4)[0]
        endian = ">"
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise GGUFError(path, f"unsupported GGUF version {version} (supported: {supported})")
    if size < _FIXED_HEADER_SIZE:
        raise GGUFError(path, f"truncated in the file header ({size} bytes)")
    return version, endian


def read_raw_header(path: str | os.PathLike[str]) -> RawHeader:
    """Parse the header of the GGUF file at `path`. Raises GGUFError with a one-line reason."""
    file_path = Path(path)
    fd, size = _open_checked(file_path)
    buf: mmap.mmap = getattr(_SCRATCH, "buf", None) or _new_scratch(_FIRST_READ)
    try:
        first = min(size, _FIRST_READ)
        try:
            with memoryview(buf) as whole, whole[:first] as view:
                have = pread_into(fd, view, 0)
        except OSError as exc:
            raise GGUFError(file_path, f"cannot read: {exc.strerror or exc}", transient=True) from None
        version, endian = _check_preamble(file_path, bytes(buf[: min(have, 8)]), size)
        parser = _Parser(file_path, fd, size, endian, buf, have)
        try:
            return parser.parse(version)
        except _Truncated:
            raise GGUFError(file_path, f"truncated in {parser.section} (file is {size} bytes)") from None
        finally:
            buf = parser.buf
    finally:
        os.close(fd)
        if len(buf) > _KEEP_SCRATCH:
            buf.close()
            _SCRATCH.buf = None
        else:
            _SCRATCH.buf = buf


def quick_check(path: str | os.PathLike[str]) -> None:
    """Cheap validation of magic, version and counts against the file size; raises GGUFError.

    The end of the last tensor cannot be checked cheaply: the tensor table sits after the
    key/value section, whose size is only known by walking it (the vocabulary included). A full
    `read_gguf_header` does that in milliseconds, so use it when the tensor check matters.
    """
    file_path = Path(path)
    fd, size = _open_checked(file_path)
    try:
        head = os.pread(fd, _FIXED_HEADER_SIZE, 0)
    except OSError as exc:
        raise GGUFError(file_path, f"cannot read: {exc.strerror or exc}", transient=True) from None
    finally:
        os.close(fd)
    if len(head) < _FIXED_HEADER_SIZE <= size:
        raise GGUFError(file_path, f"the file shrank to {len(head)} bytes while being read")
    _, endian = _check_preamble(file_path, head, size)
    n_tensors, n_kv = struct.unpack_from(endian + "QQ", head, 8)
    room = size - _FIXED_HEADER_SIZE
    if n_kv * _MIN_KV_SIZE > room:
        raise GGUFError(file_path, f"implausible key/value count {n_kv} for a file of {size} bytes")
    if n_tensors * _MIN_TENSOR_INFO_SIZE > room:
        raise GGUFError(file_path, f"implausible tensor count {n_tensors} for a file of {size} bytes")
