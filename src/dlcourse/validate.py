"""Argument checks shared by every module.

Each check raises a ValueError that names the parameter, the bad value and what is allowed,
so that a bad notebook parameter fails before any data is loaded or any training starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def choice(param: str, value, choices: Iterable[str]) -> str:
    """Return `value` if it is one of `choices` (case-insensitive for strings)."""
    choices = list(choices)
    key = value.lower() if isinstance(value, str) else value
    if key not in choices:
        raise ValueError(f"{param}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")
    return key


def positive_int(param: str, value, allow_none: bool = False):
    """An integer > 0 (bools are rejected: True is not a batch size)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{param}={value!r} is not valid; it must be a positive integer")
    return value


def non_negative_int(param: str, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{param}={value!r} is not valid; it must be an integer >= 0")
    return value


def positive_float(param: str, value) -> float:
    """A finite real number > 0 (learning rates)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{param}={value!r} is not valid; it must be a finite number > 0")
    return float(value)


def non_negative_float(param: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{param}={value!r} is not valid; it must be a finite number >= 0")
    return float(value)


def fraction(param: str, value, upper_inclusive: bool = False) -> float:
    """A number in [0, 1) (dropout, momentum)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value and (
        value <= 1 if upper_inclusive else value < 1
    )
    if not ok:
        bound = "]" if upper_inclusive else ")"
        raise ValueError(f"{param}={value!r} is not valid; it must be a number in [0, 1{bound}")
    return float(value)


def int_list(param: str, value, allow_empty: bool = True) -> tuple[int, ...]:
    """A list of positive integers (hidden layer widths); a string is refused, not split."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(
            f"{param}={value!r} is not valid; it must be a list of positive integers, e.g. [100, 50]"
        )
    if not value and not allow_empty:
        raise ValueError(f"{param}={value!r} is not valid; it must hold at least one width")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(
                f"{param}={list(value)!r} is not valid: entry {i} is {v!r}; every width must be a positive integer"
            )
    return tuple(value)
