"""A small translator for .NET custom date/time format strings (invariant culture).

Entra's FormatDateTime takes .NET format strings such as ``yyyyMMddHHmmss.fZ`` or
``M/d/yyyy hh:mm:ss tt``.  ``DotNetFormat(fmt)`` tokenizes such a string once and can then
``parse`` text with it (via a generated regex) and ``format`` a datetime with it.  Also here:
Entra's lenient date parsing for CDate, and Windows FILETIME (AD) conversions.

Timezone rule: like .NET with DateTimeStyles.RoundtripKind on Microsoft's UTC servers, a parsed
value that carries an offset is converted to UTC; a value without one is taken as UTC.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from .errors import FunctionError

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# .NET standard (single-letter) formats, invariant culture.
_STANDARD = {
    "d": "MM/dd/yyyy", "D": "dddd, dd MMMM yyyy", "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss", "g": "MM/dd/yyyy HH:mm", "G": "MM/dd/yyyy HH:mm:ss",
    "M": "MMMM dd", "m": "MMMM dd", "o": "yyyy-MM-ddTHH:mm:ss.fffffffK", "O": "yyyy-MM-ddTHH:mm:ss.fffffffK",
    "s": "yyyy-MM-ddTHH:mm:ss", "t": "HH:mm", "T": "HH:mm:ss", "u": "yyyy-MM-dd HH:mm:ssZ",
    "Y": "yyyy MMMM", "y": "yyyy MMMM",
}

_SPEC_CHARS = set("yMdHhmsfFtzKg")

# Windows FILETIME: 100 ns ticks since 1601-01-01 UTC (AD's accountExpires, lastLogonTimestamp).
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def _tokenize(fmt: str) -> list[tuple[str, str]]:
    """Split a .NET custom format into ("spec", "yyyy") / ("lit", "-") tokens."""
    if len(fmt) == 1 and fmt in _STANDARD:
        fmt = _STANDARD[fmt]
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch in "'\"":
            end = fmt.find(ch, i + 1)
            if end < 0:
                raise FunctionError(f"format {fmt!r} has an unclosed quote {ch}")
            tokens.append(("lit", fmt[i + 1:end]))
            i = end + 1
        elif ch == "\\":
            if i + 1 >= n:
                raise FunctionError(f"format {fmt!r} ends with a lone backslash")
            tokens.append(("lit", fmt[i + 1]))
            i += 2
        elif ch == "%":
            i += 1  # "%d" = the single-letter custom specifier d
        elif ch in _SPEC_CHARS:
            j = i
            while j < n and fmt[j] == ch:
                j += 1
            tokens.append(("spec", fmt[i:j]))
            i = j
        else:
            tokens.append(("lit", ch))
            i += 1
    return tokens


def _spec_regex(spec: str, idx: int) -> str:
    ch, n = spec[0], len(spec)
    g = f"g{idx}"
    if ch == "y":
        return rf"(?P<{g}>\d{{4}})" if n >= 3 else (rf"(?P<{g}>\d{{2}})" if n == 2 else rf"(?P<{g}>\d{{1,4}})")
    if ch in "MdHhms":
        if ch == "M" and n >= 3:
            names = MONTHS if n >= 4 else [m[:3] for m in MONTHS]
            return rf"(?P<{g}>{'|'.join(names)})"
        if ch == "d" and n >= 3:
            names = DAYS if n >= 4 else [d[:3] for d in DAYS]
            return rf"(?P<{g}>{'|'.join(names)})"
        return rf"(?P<{g}>\d{{2}})" if n >= 2 else rf"(?P<{g}>\d{{1,2}})"
    if ch == "f":
        return rf"(?P<{g}>\d{{{n}}})"
    if ch == "F":
        return rf"(?P<{g}>\d{{0,{n}}})"
    if ch == "t":
        return rf"(?P<{g}>AM|PM)" if n >= 2 else rf"(?P<{g}>A|P)"
    if ch == "z":
        if n >= 3:
            return rf"(?P<{g}>[+-]\d{{2}}:\d{{2}})"
        return rf"(?P<{g}>[+-]\d{{2}})" if n == 2 else rf"(?P<{g}>[+-]\d{{1,2}})"
    if ch == "K":
        return rf"(?P<{g}>Z|[+-]\d{{2}}:\d{{2}}|)"
    if ch == "g":
        return rf"(?P<{g}>A\.?D\.?)"
    raise FunctionError(f"unsupported format specifier {spec!r}")  # pragma: no cover


class DotNetFormat:
    """One compiled .NET custom date/time format: ``parse(text)`` and ``format(dt)``."""

    def __init__(self, fmt: str) -> None:
        if not isinstance(fmt, str) or not fmt:
            raise FunctionError("a date format must be non-empty text such as \"yyyy-MM-dd\"")
        self.source = fmt
        self.tokens = _tokenize(fmt)
        parts = []
        for idx, (kind, text) in enumerate(self.tokens):
            parts.append(_spec_regex(text, idx) if kind == "spec" else re.escape(text))
        self._regex = re.compile("".join(parts), re.IGNORECASE)

    def parse(self, text: str) -> datetime:
        m = self._regex.fullmatch(text)
        if m is None:
            raise FunctionError(f"the date value does not match the input format {self.source!r}")
        year, month, day, hour, minute, second, micro = 1, 1, 1, 0, 0, 0, 0
        pm: bool | None = None
        offset: timedelta | None = None
        for idx, (kind, spec) in enumerate(self.tokens):
            if kind != "spec":
                continue
            val = m.group(f"g{idx}")
            ch, n = spec[0], len(spec)
            if ch == "y":
                year = int(val)
                if n <= 2:  # .NET two-digit year window (2049 cut-off)
                    year += 2000 if year < 50 else 1900
            elif ch == "M":
                month = int(val) if n <= 2 else [x.lower() for x in (MONTHS if n >= 4 else [mo[:3] for mo in MONTHS])].index(val.lower()) + 1
            elif ch == "d" and n <= 2:
                day = int(val)
            elif ch in "Hh":
                hour = int(val)
            elif ch == "m":
                minute = int(val)
            elif ch == "s":
                second = int(val)
            elif ch in "fF":
                micro = int((val + "000000")[:6]) if val else 0
            elif ch == "t":
                pm = val.upper().startswith("P")
            elif ch in "zK":
                if val.upper() == "Z":
                    offset = timedelta(0)
                elif val:
                    sign = -1 if val[0] == "-" else 1
                    hh, _, mm = val[1:].partition(":")
                    offset = sign * timedelta(hours=int(hh), minutes=int(mm or 0))
        if pm is not None:
            if hour > 12:
                raise FunctionError("the date value has an hour above 12 together with AM/PM")
            hour = (hour % 12) + (12 if pm else 0)
        try:
            value = datetime(year, month, day, hour, minute, second, micro)
        except ValueError as exc:
            raise FunctionError(f"the date value is not a real date ({exc})") from None
        if offset is not None:
            try:
                return (value - offset).replace(tzinfo=UTC)
            except OverflowError:
                raise FunctionError("the date value is out of range") from None
        return value.replace(tzinfo=UTC)

    def format(self, value: datetime) -> str:
        out: list[str] = []
        for kind, spec in self.tokens:
            if kind == "lit":
                out.append(spec)
                continue
            ch, n = spec[0], len(spec)
            if ch == "y":
                out.append(str(value.year % 100).zfill(n) if n <= 2 else str(value.year).zfill(n))
                if n == 1:
                    out[-1] = str(value.year % 100)
            elif ch == "M":
                out.append(MONTHS[value.month - 1] if n >= 4 else MONTHS[value.month - 1][:3] if n == 3
                           else str(value.month).zfill(n))
            elif ch == "d":
                wd = DAYS[value.weekday()]
                out.append(wd if n >= 4 else wd[:3] if n == 3 else str(value.day).zfill(n))
            elif ch == "H":
                out.append(str(value.hour).zfill(min(n, 2)))
            elif ch == "h":
                out.append(str(value.hour % 12 or 12).zfill(min(n, 2)))
            elif ch == "m":
                out.append(str(value.minute).zfill(min(n, 2)))
            elif ch == "s":
                out.append(str(value.second).zfill(min(n, 2)))
            elif ch in "fF":
                digits = f"{value.microsecond:06d}0"[:n] if n <= 7 else f"{value.microsecond:06d}0".ljust(n, "0")
                out.append(digits.rstrip("0") if ch == "F" else digits)
            elif ch == "t":
                ampm = "AM" if value.hour < 12 else "PM"
                out.append(ampm if n >= 2 else ampm[0])
            elif ch == "z":
                off = value.utcoffset() or timedelta(0)
                total = int(off.total_seconds() // 60)
                sign = "-" if total < 0 else "+"
                hh, mm = divmod(abs(total), 60)
                out.append(f"{sign}{hh:02d}:{mm:02d}" if n >= 3 else f"{sign}{hh:02d}" if n == 2 else f"{sign}{hh}")
            elif ch == "K":
                out.append("Z")
            elif ch == "g":
                out.append("A.D.")
        return "".join(out)


@lru_cache(maxsize=256)
def dotnet_format(fmt: str) -> DotNetFormat:
    """Cached ``DotNetFormat`` for formats that are only known at evaluation time."""
    return DotNetFormat(fmt)


_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,7}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
_US = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(AM|PM)?)?\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
_GENERALIZED = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{4})?", re.IGNORECASE)


def _offset(text: str | None) -> timedelta:
    if not text or text.upper() == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))


def parse_datetime(text: str) -> datetime:
    """Entra's lenient date parsing (CDate, DateAdd, DateDiff, NumFromDate): result is UTC.

    Accepts ISO 8601 (``2009-06-15T01:45:30-07:00``, ``2020-03-16-07:00``), Entra's own output
    ``M/d/yyyy h:mm:ss tt`` and LDAP generalized time ``20150123105347.1Z``.
    """
    s = text.strip()
    try:
        if m := _ISO.fullmatch(s):
            y, mo, d, h, mi, sec, frac, off = m.groups()
            micro = int((frac + "000000")[:6]) if frac else 0
            value = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0), micro)
            return (value - _offset(off)).replace(tzinfo=UTC)
        if m := _US.fullmatch(s):
            mo, d, y, h, mi, sec, ampm, off = m.groups()
            hour = int(h or 0)
            if ampm:
                if hour > 12:
                    raise ValueError("hour above 12 with AM/PM")
                hour = hour % 12 + (12 if ampm.upper() == "PM" else 0)
            value = datetime(int(y), int(mo), int(d), hour, int(mi or 0), int(sec or 0))
            return (value - _offset(off)).replace(tzinfo=UTC)
        if m := _GENERALIZED.fullmatch(s):
            y, mo, d, h, mi, sec, frac, off = m.groups()
            micro = int((frac + "000000")[:6]) if frac else 0
            value = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), micro)
            return (value - _offset(off)).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        pass
    raise FunctionError(
        "the text is not a date Entra understands — use ISO 8601 (2021-06-30T08:00:00Z), "
        "M/d/yyyy h:mm:ss tt, or convert it first with FormatDateTime"
    )


def as_datetime(value: object, what: str) -> datetime:
    """A datetime argument: a datetime value or text that ``parse_datetime`` accepts."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return parse_datetime(value)
    if value is None:
        raise FunctionError(f"{what} is null — it must be a date; wrap text dates in CDate(...)")
    raise FunctionError(f"{what} must be a date; wrap text dates in CDate(...)")


def from_filetime(ticks: int) -> datetime:
    """AD/Windows FILETIME (100 ns since 1601-01-01 UTC) -> UTC datetime."""
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        raise FunctionError("the AD date number is outside the range of dates (years 1601-9999)") from None


def to_filetime(value: datetime) -> int:
    """UTC datetime -> AD/Windows FILETIME ticks."""
    delta = value.astimezone(UTC) - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


INTERVALS = ("yyyy", "q", "m", "y", "d", "w", "ww", "h", "n", "s")
_INTERVAL_HINTS = {"mm": "'n' for minutes or 'm' for months", "M": "'m' for months", "mi": "'n' for minutes",
                   "min": "'n' for minutes", "ss": "'s' for seconds", "hh": "'h' for hours",
                   "dd": "'d' for days", "yy": "'yyyy' for years", "year": "'yyyy' for years",
                   "month": "'m' for months", "day": "'d' for days", "week": "'ww' for weeks"}


def check_interval(interval: object) -> str:
    """Validate a DateAdd/DateDiff interval (VBA names: yyyy q m y d w ww h n s)."""
    if isinstance(interval, str) and interval in INTERVALS:
        return interval
    text = interval if isinstance(interval, str) else repr(interval)
    hint = _INTERVAL_HINTS.get(text) or _INTERVAL_HINTS.get(text.lower() if isinstance(text, str) else "")
    suffix = f" — use {hint}" if hint else f" — use one of {', '.join(INTERVALS)}"
    raise FunctionError(f"unknown interval {text!r}{suffix}")


def _add_months(value: datetime, months: int) -> datetime:
    total = value.year * 12 + (value.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise FunctionError("the resulting date is outside years 1-9999")
    day = min(value.day, calendar.monthrange(year, month + 1)[1])  # VBA clamps Jan 31 + 1 month to Feb 28/29
    return value.replace(year=year, month=month + 1, day=day)


def date_add(interval: str, number: int, value: datetime) -> datetime:
    """VBA DateAdd semantics."""
    try:
        if interval == "yyyy":
            return _add_months(value, 12 * number)
        if interval == "q":
            return _add_months(value, 3 * number)
        if interval == "m":
            return _add_months(value, number)
        if interval in ("y", "d", "w"):  # VBA: day of year and weekday both add days
            return value + timedelta(days=number)
        if interval == "ww":
            return value + timedelta(weeks=number)
        if interval == "h":
            return value + timedelta(hours=number)
        if interval == "n":
            return value + timedelta(minutes=number)
        if interval == "s":
            return value + timedelta(seconds=number)
    except OverflowError:
        raise FunctionError("the resulting date is outside years 1-9999") from None
    raise FunctionError(f"unknown interval {interval!r}")  # pragma: no cover


def _sunday_week_start(value: datetime):
    d = value.date()
    return d - timedelta(days=(d.weekday() + 1) % 7)


def date_diff(interval: str, first: datetime, second: datetime) -> int:
    """VBA DateDiff: counts interval *boundaries* crossed from ``first`` to ``second`` (UTC)."""
    first, second = first.astimezone(UTC), second.astimezone(UTC)
    if interval == "yyyy":
        return second.year - first.year
    if interval == "q":
        return (second.year * 4 + (second.month - 1) // 3) - (first.year * 4 + (first.month - 1) // 3)
    if interval == "m":
        return (second.year * 12 + second.month) - (first.year * 12 + first.month)
    if interval in ("y", "d"):
        return (second.date() - first.date()).days
    if interval == "w":  # whole weeks between the two dates
        days = (second.date() - first.date()).days
        return int(days / 7)
    if interval == "ww":  # calendar weeks: Sundays crossed
        return (_sunday_week_start(second) - _sunday_week_start(first)).days // 7
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    s1 = int((first - epoch).total_seconds() // 1)
    s2 = int((second - epoch).total_seconds() // 1)
    if interval == "h":
        return s2 // 3600 - s1 // 3600
    if interval == "n":
        return s2 // 60 - s1 // 60
    if interval == "s":
        return s2 - s1
    raise FunctionError(f"unknown interval {interval!r}")  # pragma: no cover


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


__all__ = ["DotNetFormat", "as_datetime", "check_interval", "date_add", "date_diff", "dotnet_format",
           "from_filetime", "parse_datetime", "timezone", "to_filetime", "utc"]
