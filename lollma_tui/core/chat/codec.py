"""Plain-JSON encoding of the frozen dataclasses a reply carries (ReplyStats, RunSetup, SamplingSettings).

The store keeps these as JSON columns and the exports embed the same objects, so one codec serves
both. It walks the dataclass fields and their type hints instead of listing names by hand: a field
added to `RunSetup` later is saved and restored without touching this module, and a field of a type
the codec does not know fails loudly in the round-trip test rather than being dropped.

Decoding is strict (unknown keys, wrong types and out-of-range settings are errors naming the
place) because the same code validates import files; missing keys fall back to the field's
default so that data written before a field existed still loads.
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from lollma_tui.core.backends.base import ReplyStats
from lollma_tui.core.safe_text import has_surrogates
from lollma_tui.core.settings import SamplingSettings

T = TypeVar("T")

INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
"""What SQLite stores; a larger integer in an import would fail the store's write."""


class FormatError(ValueError):
    """Data does not match the expected shape; the message starts with where in the data."""


def to_jsonable(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_jsonable(item) for item in value]
    return value


def dumps(value: object) -> str:
    # NaN/inf stay allowed: a zero-duration reply can report an infinite rate, and Python reads them back.
    return json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"))


class _Bad(Exception):
    """Internal: a decoding failure, with the path below the point that caught it."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


Decoder = Callable[[object], Any]


def from_jsonable(cls: type[T], data: object, where: str) -> T:
    try:
        return cast(T, _decoder(cast(Any, cls))(data))
    except _Bad as bad:
        raise FormatError(f"{where}{bad.path}: {bad.message}") from None


# Decoders are built once per type and cached: the store decodes stats for every reply it loads,
# and walking the type hints each time cost ~0.2 ms a message.
@cache
def _decoder(tp: Any) -> Decoder:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return _union_decoder(tp)
    if origin is tuple:
        return _tuple_decoder(_decoder(get_args(tp)[0]))
    if tp in _PRIMITIVES:
        return _PRIMITIVES[tp]
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _enum_decoder(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    raise TypeError(f"codec cannot handle the type {tp!r}")


def _union_decoder(tp: Any) -> Decoder:
    options = get_args(tp)
    nullable = type(None) in options
    inner = tuple(_decoder(option) for option in options if option is not type(None))
    description = _describe(tp)

    def decode(value: object) -> Any:
        if value is None:
            if nullable:
                return None
            raise _Bad("must not be null")
        if len(inner) == 1:
            return inner[0](value)  # keeps the inner error, which is more precise
        for option in inner:
            try:
                return option(value)
            except _Bad:
                continue
        raise _Bad(f"expected {description}, got {kind_of(value)}")

    return decode


def _tuple_decoder(item: Decoder) -> Decoder:
    def decode(value: object) -> Any:
        if type(value) is not list:
            raise _Bad(f"expected a list, got {kind_of(value)}")
        items = []
        for i, element in enumerate(value):
            try:
                items.append(item(element))
            except _Bad as bad:
                raise _Bad(bad.message, f"[{i}]{bad.path}") from None
        return tuple(items)

    return decode


def _enum_decoder(tp: type[Enum]) -> Decoder:
    choices = ", ".join(repr(member.value) for member in tp)

    def decode(value: object) -> Any:
        try:
            return tp(value)
        except (ValueError, TypeError):
            raise _Bad(f"expected one of {choices}, got {brief(value)}") from None

    return decode


def _dataclass_decoder(cls: type) -> Decoder:
    hints = get_type_hints(cls)
    specs = tuple(
        (
            field.name,
            _decoder(hints[field.name]),
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING,
        )
        for field in dataclasses.fields(cls)
    )
    names = frozenset(name for name, _, _ in specs)

    def decode(value: object) -> Any:
        if type(value) is not dict:
            raise _Bad(f"expected an object, got {kind_of(value)}")
        if not names.issuperset(value):
            unknown = sorted(str(key) for key in value if key not in names)
            raise _Bad(f"unknown field {unknown[0]!r}")
        kwargs: dict[str, Any] = {}
        for name, field_decoder, required in specs:
            if name in value:
                try:
                    kwargs[name] = field_decoder(value[name])
                except _Bad as bad:
                    raise _Bad(bad.message, f".{name}{bad.path}") from None
            elif required:
                raise _Bad("missing", f".{name}")
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            # Settings validate their own ranges (SettingsError is a ValueError).
            raise _Bad(str(exc)) from None

    return decode


def _primitive(tp: type, description: str) -> Decoder:
    # type() is, not isinstance: JSON true/false must not pass as the integers 1/0.
    def decode(value: object) -> Any:
        if type(value) is tp:
            if tp is int and not INT_MIN <= cast(int, value) <= INT_MAX:
                raise _Bad("integer out of range (64-bit)")
            if tp is str and has_surrogates(cast(str, value)):
                raise _Bad("text with an unpaired surrogate (\\ud800-\\udfff)")
            return value
        if tp is float and type(value) is int:
            try:
                return float(value)
            except OverflowError:
                raise _Bad("number out of range") from None
        raise _Bad(f"expected {description}, got {kind_of(value)}")

    return decode


_PRIMITIVES: dict[Any, Decoder] = {
    bool: _primitive(bool, "true/false"),
    int: _primitive(int, "an integer"),
    float: _primitive(float, "a number"),
    str: _primitive(str, "a string"),
}


def _describe(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in get_args(tp))
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def brief(value: object) -> str:
    """A short description of a value for an error message: never the whole of a huge one."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57]) + "…"
    if isinstance(value, bool | int | float) or value is None:
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "…"
    return kind_of(value)


def kind_of(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def stats_from_json(text: str | None, where: str) -> ReplyStats | None:
    if text is None:
        return None
    return from_jsonable(ReplyStats, json.loads(text), where)


def sampling_from_json(text: str | None, where: str) -> SamplingSettings | None:
    if text is None:
        return None
    return from_jsonable(SamplingSettings, json.loads(text), where)
