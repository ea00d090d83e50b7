"""Value conversions shared by the functions: Entra's loose typing in one place.

Values flowing through an expression are ``None`` (null / absent attribute), ``str``, ``bool``,
``int``/``float``, ``list`` (multi-valued attribute) or ``datetime`` (from CDate/DateAdd/Now...,
always UTC).  A datetime that leaves the expression is rendered as Entra renders it:
``M/d/yyyy h:mm:ss tt``.
"""

from __future__ import annotations

from datetime import datetime

from .errors import FunctionError


def format_entra_datetime(value: datetime) -> str:
    """Entra's fixed output format for DateTime values: ``M/d/yyyy h:mm:ss tt`` (invariant)."""
    hour12 = value.hour % 12 or 12
    ampm = "AM" if value.hour < 12 else "PM"
    return f"{value.month}/{value.day}/{value.year} {hour12}:{value.minute:02d}:{value.second:02d} {ampm}"


def to_str(value: object) -> str:
    """Render a single value as text (null -> ""); multi-valued input is an error with a fix."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return format_entra_datetime(value)
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return to_str(value[0])
        raise FunctionError(
            f"got a multi-valued attribute ({len(value)} values) where one value is needed — "
            "pick one with Item(...) or combine them with Join(...)"
        )
    raise FunctionError(f"cannot use a {type(value).__name__} value as text")


def to_opt_str(value: object) -> str | None:
    """Like ``to_str`` but keeps null as ``None``."""
    return None if value is None else to_str(value)


def to_int(value: object, what: str) -> int:
    """Integer argument: accepts numbers, numeric text and &H hex text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        return round(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if text[:2] in ("&H", "&h"):
                return int(text[2:], 16)
            return int(text)
        except ValueError:
            try:
                return round(float(text))
            except ValueError:
                pass
    if value is None:
        raise FunctionError(f"{what} is null — it must be a whole number")
    raise FunctionError(f"{what} must be a whole number")


def to_number(value: object) -> int | float | None:
    """Number if ``value`` is numeric or numeric text, else ``None`` (used by comparisons)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def is_true(value: object) -> bool:
    """True for True, "True" (any case) and non-zero numbers — the doc's notion of a true value."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "true":
            return True
        num = to_number(low)
        return bool(num)
    if isinstance(value, int | float):
        return value != 0
    return False


def to_bool(value: object, what: str) -> bool:
    """Strict boolean for conditions: True/False, "True"/"False" (any case) or numbers."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
        num = to_number(low)
        if num is not None:
            return num != 0
        raise FunctionError(f'{what} must be True or False (or "True"/"False"), got text')
    if value is None:
        raise FunctionError(f"{what} is null — it must be True or False")
    raise FunctionError(f"{what} must be True or False")


def is_empty(value: object) -> bool:
    """Null, empty text or an empty multi-valued attribute."""
    return value is None or value == "" or (isinstance(value, list | tuple) and len(value) == 0)


def to_output(value: object) -> object:
    """Final value of an expression: datetimes become Entra's text form, tuples become lists."""
    if isinstance(value, datetime):
        return format_entra_datetime(value)
    if isinstance(value, tuple):
        return [to_output(v) for v in value]
    if isinstance(value, list):
        return [to_output(v) if isinstance(v, datetime | tuple) else v for v in value]
    return value
