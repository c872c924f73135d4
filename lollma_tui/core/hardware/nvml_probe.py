"""Calling NVML defensively: classify its errors and remember which calls a device lacks.

NVML raises one `NVMLError` subclass per return code; the code is on ``exc.value``. The codes
are part of the NVML C ABI, so they are spelled out here rather than read from whichever
`pynvml` module was injected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

NOT_SUPPORTED: Final = 3
NO_PERMISSION: Final = 4
DRIVER_NOT_LOADED: Final = 9
TIMEOUT: Final = 10
LIBRARY_NOT_FOUND: Final = 12
FUNCTION_NOT_FOUND: Final = 13
GPU_IS_LOST: Final = 15
LIB_RM_VERSION_MISMATCH: Final = 18
ARGUMENT_VERSION_MISMATCH: Final = 25
UNKNOWN: Final = 999
UNINITIALIZED: Final = 1

# A device will never answer these differently while the driver stays loaded.
_PERMANENT: Final = frozenset({NOT_SUPPORTED, NO_PERMISSION, FUNCTION_NOT_FOUND, ARGUMENT_VERSION_MISMATCH})


class GpuLostError(Exception):
    """A call on this device returned NVML_ERROR_GPU_IS_LOST."""


def nvml_error_code(exc: BaseException) -> int | None:
    """The NVML return code carried by `exc`, or None for a non-NVML exception."""
    if type(exc).__name__ == "NVMLLibraryMismatchError":
        # nvidia-ml-py raises this instead of FunctionNotFound for unversioned calls that the
        # installed driver lacks; it means the same thing to us.
        return FUNCTION_NOT_FOUND
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def _is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, (AttributeError, TypeError)):
        # The bindings lack the function or take other arguments: an older nvidia-ml-py.
        return True
    return nvml_error_code(exc) in _PERMANENT


class FieldProbe:
    """One metric of one device, read through the first call variant the device supports.

    Variants are tried in order on first use (newest API first); the one that answers is kept.
    When every variant is unsupported the field is dead for good: it reads None without calling
    NVML again, which is what keeps a GPU that lacks, say, fan speed from costing a failed call
    every tick. Transient errors (timeout, unknown) read None for that tick only.
    """

    __slots__ = ("_chosen", "_dead", "_variants", "missed", "refused_with")

    def __init__(self, *variants: Callable[[], Any]) -> None:
        self._variants = variants
        self._chosen: int | None = None
        self._dead = not variants
        self.missed = False
        """Whether the last read failed with an error worth retrying (timeout, unknown)."""
        self.refused_with: int | None = None
        """The NVML code of the last variant's refusal, once all failed for good (None for a
        binding that lacks the call)."""

    @property
    def supported(self) -> bool | None:
        """True once a variant answered, False once all failed for good, None before probing."""
        if self._dead:
            return False
        return True if self._chosen is not None else None

    def read(self) -> Any:
        if self._dead:
            return None
        start = self._chosen if self._chosen is not None else 0
        self.missed = False
        for i in range(start, len(self._variants)):
            try:
                value = self._variants[i]()
            except Exception as exc:
                if nvml_error_code(exc) == GPU_IS_LOST:
                    raise GpuLostError(str(exc)) from exc
                if _is_permanent(exc):
                    self.refused_with = nvml_error_code(exc)
                    continue
                self.missed = True
                return None
            self._chosen = i
            return value
        self._dead = True
        return None
