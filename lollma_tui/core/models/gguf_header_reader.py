"""The byte-level half of the GGUF header reader: walk the header in an mmap, decode its values.

No tensor data is read and nothing heavier than `struct` and `mmap` is imported, because this
runs on the app's start-up path. Long arrays (vocabularies of 150k-262k tokens, merges, scores)
are not decoded: numeric ones are skipped in one step, string ones by walking their length
prefixes (or, for one seen before, by checking its bytes: `gguf_known_arrays`), and only their
element type and length are kept.

Layout (all integers little-endian unless the file is big-endian): magic ``GGUF``, u32 version,
u64 tensor count, u64 key/value count, the key/value entries, the tensor infos, padding to the
alignment, then tensor data. A key/value entry is a u64-length string key, a u32 value type and
the value; an array value is a u32 element type, a u64 length and the elements.

Import from `gguf_header`, which wraps `read_raw_header` in a `GGUFHeader` and re-exports the rest.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, TypeAlias

from lollma_tui.core.models.gguf_known_arrays import KNOWN_STRING_ARRAYS, MIN_STRINGS
from lollma_tui.core.models.quant_types import GGML_TYPES, ggml_type_name

MAGIC: Final = b"GGUF"
SUPPORTED_VERSIONS: Final = (2, 3)
DEFAULT_ALIGNMENT: Final = 32
SMALL_ARRAY_LIMIT: Final = 64
"""Arrays up to this many items are decoded (per-layer head counts); longer ones are skipped."""

_MAX_DIMS: Final = 4
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
    """A file that cannot be read as GGUF; `reason` is one line meant for the user."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


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
        if not self.name.startswith("blk."):
            return None
        index, _, _ = self.name[4:].partition(".")
        return int(index) if index.isdigit() else None


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


class _Parser:
    """One pass over the header bytes. `section` tracks what is being read, for error messages."""

    def __init__(self, path: Path, buf: mmap.mmap, size: int, endian: str) -> None:
        self.path = path
        self.buf = buf
        self.size = size
        self.endian = endian
        self.section = "file header"
        self._u32 = struct.Struct(endian + "I").unpack_from
        self._u64 = struct.Struct(endian + "Q").unpack_from

    def fail(self, reason: str) -> GGUFError:
        return GGUFError(self.path, reason)

    def u32(self, off: int) -> int:
        if off + 4 > self.size:
            raise _Truncated
        value: int = self._u32(self.buf, off)[0]
        return value

    def u64(self, off: int) -> int:
        if off + 8 > self.size:
            raise _Truncated
        value: int = self._u64(self.buf, off)[0]
        return value

    def string(self, off: int) -> tuple[str, int]:
        length = self.u64(off)
        off += 8
        if length > self.size - off:
            raise _Truncated
        return self.buf[off : off + length].decode("utf-8", "replace"), off + length

    def value(self, value_type: int, off: int, key: str) -> tuple[KVValue, int]:
        code = _SCALAR_CODES.get(value_type)
        if code is not None:
            size = _SCALAR_SIZES[value_type]
            if off + size > self.size:
                raise _Truncated
            scalar: Scalar = struct.unpack_from(self.endian + code, self.buf, off)[0]
            return scalar, off + size
        if value_type == T_STRING:
            return self.string(off)
        if value_type == T_ARRAY:
            return self.array(off, key)
        raise self.fail(f"unknown value type {value_type} for key {key!r} at offset {off}")

    def array(self, off: int, key: str) -> tuple[KVValue, int]:
        element_type = self.u32(off)
        length = self.u64(off + 4)
        off += 12
        code = _SCALAR_CODES.get(element_type)
        if code is not None:
            end = off + length * _SCALAR_SIZES[element_type]
            if end > self.size:
                raise _Truncated
            if length <= SMALL_ARRAY_LIMIT:
                items: tuple[Scalar, ...] = struct.unpack_from(f"{self.endian}{length}{code}", self.buf, off)
                return items, end
            return ArrayInfo(element_type, length, off), end
        if element_type == T_STRING:
            if length * 8 > self.size - off:
                raise _Truncated
            if length <= SMALL_ARRAY_LIMIT:
                strings: list[Scalar] = []
                end = off
                for _ in range(length):
                    text, end = self.string(end)
                    strings.append(text)
                return tuple(strings), end
            return ArrayInfo(element_type, length, off), self.skip_strings(off, length)
        if element_type == T_ARRAY:
            end = off
            for _ in range(length):
                _, end = self.array(end, key)
            return ArrayInfo(element_type, length, off), end
        raise self.fail(f"unknown array element type {element_type} for key {key!r} at offset {off}")

    def skip_strings(self, off: int, count: int) -> int:
        """Offset just past `count` length-prefixed strings starting at `off`."""
        if count < MIN_STRINGS:
            return self._walk_strings(off, count)
        end = KNOWN_STRING_ARRAYS.end_of(self.buf, off, count, self.size)
        if end is None:
            end = self._walk_strings(off, count)
            KNOWN_STRING_ARRAYS.remember(self.buf, off, count, end, self.size)
        return end

    def _walk_strings(self, off: int, count: int) -> int:
        if self.endian == "<" and _NATIVE_LITTLE:
            return _skip_strings_le(self.buf, off, count, self.size)
        u64 = self._u64
        buf = self.buf
        limit = self.size - 8
        for _ in range(count):
            if off > limit:
                raise _Truncated
            off += 8 + u64(buf, off)[0]
        if off > self.size:
            raise _Truncated
        return off

    def parse(self, version: int) -> RawHeader:
        n_tensors = self.u64(8)
        n_kv = self.u64(16)
        room = self.size - _FIXED_HEADER_SIZE
        if n_kv * _MIN_KV_SIZE > room:
            raise self.fail(f"implausible key/value count {n_kv} for a file of {self.size} bytes")
        if n_tensors * _MIN_TENSOR_INFO_SIZE > room:
            raise self.fail(f"implausible tensor count {n_tensors} for a file of {self.size} bytes")

        kv: dict[str, KVValue] = {}
        off = _FIXED_HEADER_SIZE
        for index in range(n_kv):
            self.section = f"key/value {index + 1} of {n_kv}"
            key, off = self.string(off)
            self.section = f"key/value {index + 1} of {n_kv} ({key!r})"
            value_type = self.u32(off)
            value, off = self.value(value_type, off + 4, key)
            if key in kv:
                raise self.fail(f"duplicate key {key!r}")
            kv[key] = value

        alignment = kv.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise self.fail(f"invalid general.alignment {alignment!r} (must be a power of two)")

        infos: list[tuple[str, int, tuple[int, ...], int]] = []
        for index in range(n_tensors):
            self.section = f"tensor info {index + 1} of {n_tensors}"
            name, off = self.string(off)
            self.section = f"tensor info {index + 1} of {n_tensors} ({name!r})"
            n_dims = self.u32(off)
            if n_dims > _MAX_DIMS:
                raise self.fail(f"tensor {name!r} has an implausible {n_dims} dimensions")
            off += 4
            if off + 8 * n_dims + 12 > self.size:
                raise _Truncated
            shape = struct.unpack_from(f"{self.endian}{n_dims}Q", self.buf, off)
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
                raise self.fail(f"duplicate tensor {name!r}")
            seen.add(name)
            layout = GGML_TYPES.get(ggml_type)
            if layout is None:
                raise self.fail(f"tensor {name!r} has unknown ggml type {ggml_type} (a newer format?)")
            if shape and shape[0] % layout.block_size:
                raise self.fail(
                    f"tensor {name!r}: row length {shape[0]} is not a multiple of the "
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
                    f"tensor data past the end of the file: {last_name!r} ends at byte {last_end} "
                    f"but the file has {self.size} bytes (incomplete download?)"
                )
            raise _Truncated

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


def _skip_strings_le(buf: mmap.mmap, off: int, count: int, size: int) -> int:
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
        raise _Truncated from None
    finally:
        for view in views:
            view.release()
        whole.release()
    if off > size:
        raise _Truncated
    return off


def _open_checked(path: Path) -> tuple[int, int]:
    """An open read-only descriptor and the file size, or a GGUFError saying why not."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise GGUFError(path, "file not found") from None
    except OSError as exc:
        raise GGUFError(path, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise GGUFError(path, "is a directory, not a GGUF file")
    if not stat.S_ISREG(info.st_mode):
        raise GGUFError(path, "not a regular file")
    if info.st_size == 0:
        raise GGUFError(path, "empty file (0 bytes)")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise GGUFError(path, f"cannot read: {exc.strerror or exc}") from None
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
    try:
        try:
            buf = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise GGUFError(file_path, f"cannot map the file: {exc}") from None
    finally:
        os.close(fd)
    with buf:
        version, endian = _check_preamble(file_path, buf[:8], size)
        parser = _Parser(file_path, buf, size, endian)
        try:
            return parser.parse(version)
        except _Truncated:
            raise GGUFError(file_path, f"truncated in {parser.section} (file is {size} bytes)") from None


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
        raise GGUFError(file_path, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    _, endian = _check_preamble(file_path, head, size)
    n_tensors, n_kv = struct.unpack_from(endian + "QQ", head, 8)
    room = size - _FIXED_HEADER_SIZE
    if n_kv * _MIN_KV_SIZE > room:
        raise GGUFError(file_path, f"implausible key/value count {n_kv} for a file of {size} bytes")
    if n_tensors * _MIN_TENSOR_INFO_SIZE > room:
        raise GGUFError(file_path, f"implausible tensor count {n_tensors} for a file of {size} bytes")
