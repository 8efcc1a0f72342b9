"""Reading one JSON value of an agent's record as the type a format expects: a value of any
other type (or a missing one) reads as empty, never raises (tests/formats/test_wrong_types.py)."""

from __future__ import annotations

from typing import Any


def as_str(value: Any) -> str:
    """`value` if it is a str, else ""."""
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int:
    """A non-negative int from an int or a whole float below 2**63 (token counts); 0 for
    anything else (bools, fractions, NaN, negative numbers clamp to 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float) and not (value.is_integer() and 0 <= value < 2**63):
        return 0
    return max(int(value), 0)


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a dict, else {}."""
    return value if isinstance(value, dict) else {}
