"""Entra's expression functions (everything in Microsoft's reference that applies outside
Workday/AD provisioning), each following the documented semantics.

Each function is registered in ``FUNCTIONS`` with its arity.  Most are *eager*: they receive
already-evaluated argument values.  IIF, Switch and Coalesce are *lazy*: they receive the
attribute dict and argument thunks so that only the branch taken is evaluated.  Some have a
*builder* that sees the argument syntax at compile time — Replace picks its documented form from
which arguments are present, literal regexes and date formats are compiled once.

Known Entra weakness kept on purpose: IIF fails when an attribute read by its *condition* is
null or empty (documented under "Known limitations" of IIF).  We keep that behaviour — the
evaluation raises ExpressionEvaluationError naming the attribute and suggesting Switch — and add
no hidden fallback.
"""

from __future__ import annotations

import base64
import re
import secrets
import string
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from . import dotnet_datetime as dt
from .diacritics import normalize_diacritics
from .dotnet_regex import compile_pattern, substitution
from .errors import FunctionError
from .parser import Attribute, Literal, Missing, Node, walk
from .values import is_empty, is_true, to_bool, to_int, to_str


class _IgnoreFlow:
    """Sentinel: "do not flow this attribute" (result of IgnoreFlowIfNullOrEmpty)."""

    _instance: _IgnoreFlow | None = None

    def __new__(cls) -> _IgnoreFlow:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "IGNORE_FLOW"

    def __reduce__(self):
        return (_IgnoreFlow, ())


IGNORE_FLOW = _IgnoreFlow()

Thunk = Callable[[dict], object]


@dataclass(frozen=True)
class FunctionSpec:
    """One function: name, arity, and how the compiler calls it."""

    name: str
    signature: str
    min_args: int
    max_args: int | None
    impl: Callable[..., object] | None = None
    lazy: bool = False
    builder: Callable[[tuple[Node, ...]], tuple[bool, Callable[..., object]]] | None = None
    arity_rule: Callable[[int], str | None] | None = field(default=None)


FUNCTIONS: dict[str, FunctionSpec] = {}


def _register(name: str, signature: str, min_args: int, max_args: int | None, impl=None, *, lazy=False,
              builder=None, arity_rule=None) -> None:
    FUNCTIONS[name] = FunctionSpec(name, signature, min_args, max_args, impl, lazy, builder, arity_rule)


# --------------------------------------------------------------------------- text functions

def _append(source, suffix):
    if source is None and suffix is None:
        return None
    return to_str(source) + to_str(suffix)


def _join(separator, *sources):
    sep = to_str(separator)
    parts: list[str] = []
    for value in sources:
        if isinstance(value, list | tuple):
            parts.extend(to_str(v) for v in value if v is not None and v != "")
        elif value is not None and value != "":
            parts.append(to_str(value))
    return sep.join(parts)


def _left(source, num_chars):
    if source is None:
        return ""
    text = to_str(source)
    n = to_int(num_chars, "NumChars")
    if n < 0:
        return text
    return text[:n]


def _mid(source, start, length):
    if source is None:
        return ""
    text = to_str(source)
    s = to_int(start, "start")
    n = to_int(length, "length")
    if s < 1:
        raise FunctionError("start is 1-based — use 1 for the first character")
    if n < 0:
        raise FunctionError("length must not be negative")
    return text[s - 1:s - 1 + n]


def _word(source, number, delimiters):
    if source is None:
        return ""
    text = to_str(source)
    n = to_int(number, "WordNumber")
    if n < 1:
        return ""
    words = [w for w in _delimiter_regex(to_str(delimiters)).split(text) if w] if delimiters else ([text] if text else [])
    return words[n - 1] if n <= len(words) else ""


@lru_cache(maxsize=128)
def _delimiter_regex(delimiters: str) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(c) for c in delimiters) + "]")


def _strip_spaces(source):
    return None if source is None else to_str(source).replace(" ", "")


_TURKIC = ("tr", "az")


def _culture_lang(culture) -> str | None:
    if culture is None or culture == "":
        return None
    text = to_str(culture)
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", text):
        raise FunctionError(f"culture {text!r} is not an RFC 4646 name such as en-US or ja-JP")
    return text.split("-")[0].lower()


def _simple_upper(text: str) -> str:
    up = text.upper()
    if len(up) == len(text):
        return up
    # .NET maps one character to one character (ß stays ß); Python's full mapping may grow.
    return "".join(u if len(u := c.upper()) == 1 else c for c in text)


def _simple_lower(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(lo if len(lo := c.lower()) == 1 else lo[0] for c in text)


def _to_lower(source, culture=None):
    if source is None:
        return None
    text = to_str(source)
    if _culture_lang(culture) in _TURKIC:
        text = text.replace("I", "ı").replace("İ", "i")
    return _simple_lower(text)


def _to_upper(source, culture=None):
    if source is None:
        return None
    text = to_str(source)
    if _culture_lang(culture) in _TURKIC:
        text = text.replace("i", "İ")
    return _simple_upper(text)


# .NET ToTitleCase word separators (the categories listed in the PCase remarks).
_SEPARATOR_CATEGORIES = frozenset(
    {"Zs", "Zl", "Zp", "Cc", "Cf", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"}
)
_ASCII_SEPARATORS = frozenset(chr(i) for i in range(128) if unicodedata.category(chr(i)) in _SEPARATOR_CATEGORIES)


def _is_default_separator(ch: str) -> bool:
    if ch < "\x80":
        return ch in _ASCII_SEPARATORS
    return unicodedata.category(ch) in _SEPARATOR_CATEGORIES


def _pcase(source, word_separators=None):
    if source is None:
        return None
    text = to_str(source)
    if word_separators is None:
        is_sep: Callable[[str], bool] = _is_default_separator
    else:
        seps = frozenset(to_str(word_separators))
        is_sep = seps.__contains__
    out: list[str] = []
    start = True
    for ch in text:
        if is_sep(ch):
            out.append(ch)
            start = True
        elif start:
            up = ch.upper()
            out.append(up if len(up) == 1 else ch)
            start = False
        else:
            low = ch.lower()
            out.append(low if len(low) == 1 else low[0])
    return "".join(out)


def _normalize_diacritics(source):
    return None if source is None else normalize_diacritics(to_str(source))


def _convert_to_base64(source):
    if source is None:
        return None
    return base64.b64encode(to_str(source).encode("utf-16-le")).decode("ascii")


def _convert_to_utf8_hex(source):
    if source is None:
        return None
    return to_str(source).encode("utf-8").hex().upper()


def _instr(value1, value2, start=None, compare_type=None):
    if value1 is None or value2 is None:
        return None
    haystack, needle = to_str(value1), to_str(value2)
    begin = 1 if start is None else to_int(start, "start")
    if begin < 1:
        raise FunctionError("start is 1-based — use 1 to search from the first character")
    if _compare_mode(compare_type) == 1:
        haystack, needle = haystack.lower(), needle.lower()
    return haystack.find(needle, begin - 1) + 1


VB_CONSTANTS: dict[str, object] = {"vbBinaryCompare": 0, "vbTextCompare": 1, "True": True, "False": False}


def _compare_mode(compare_type) -> int:
    if compare_type is None or compare_type == "":
        return 0
    if isinstance(compare_type, str) and compare_type in VB_CONSTANTS:
        return int(VB_CONSTANTS[compare_type])  # type: ignore[arg-type]
    mode = to_int(compare_type, "compareType")
    if mode not in (0, 1):
        raise FunctionError("compareType must be vbBinaryCompare or vbTextCompare")
    return mode


def _cstr(value):
    return None if value is None else to_str(value)


def _random_string(length, min_numbers, min_special, min_capital, min_lower, avoid=None):
    total = to_int(length, "Length")
    mins = [to_int(v, n) for v, n in ((min_numbers, "MinimumNumbers"), (min_special, "MinimumSpecialCharacters"),
                                      (min_capital, "MinimumCapital"), (min_lower, "MinimumLowerCase"))]
    if total < 1 or total > 256:
        raise FunctionError("Length must be between 1 and 256")
    if any(m < 0 for m in mins):
        raise FunctionError("minimum counts must not be negative")
    if sum(mins) > total:
        raise FunctionError("Length must be at least the sum of the minimum counts")
    banned = set(to_str(avoid)) if avoid is not None else set()
    # Character sets of the Windows password-complexity reference linked from the doc.
    pools = [string.digits, "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/", string.ascii_uppercase, string.ascii_lowercase]
    pools = ["".join(c for c in pool if c not in banned) for pool in pools]
    rng = secrets.SystemRandom()
    chars: list[str] = []
    for pool, count in zip(pools, mins, strict=True):
        if count and not pool:
            raise FunctionError("CharactersToAvoid removes every character of a required class")
        chars.extend(rng.choice(pool) for _ in range(count))
    everything = "".join(pools)
    if not everything:
        raise FunctionError("CharactersToAvoid removes every allowed character")
    chars.extend(rng.choice(everything) for _ in range(total - len(chars)))
    rng.shuffle(chars)
    return "".join(chars)


def _split(source, delimiter):
    if source is None:
        return None
    sep = to_str(delimiter)
    if sep == "":
        raise FunctionError('delimiter must not be empty — use for example ","')
    # The doc's example shows items without the space that followed each comma.
    return [part.strip() for part in to_str(source).split(sep)]


# --------------------------------------------------------------------------- multi-valued

def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _count(attribute):
    return len(_as_list(attribute))


def _item(attribute, index):
    i = to_int(index, "index")
    if i < 1:
        raise FunctionError("index is 1-based — use 1 for the first value (index 0 is not allowed)")
    values = _as_list(attribute)
    return values[i - 1] if i <= len(values) else None


def _remove_duplicates(attribute):
    if attribute is None:
        return None
    if not isinstance(attribute, list | tuple):
        return attribute
    seen: set = set()
    out = []
    for v in attribute:
        key = v if isinstance(v, str | int | float | bool) or v is None else repr(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


# --------------------------------------------------------------------------- predicates / logic

def _is_null(value):
    return value is None


def _is_null_or_empty(value):
    return is_empty(value)


def _is_present(value):
    return not is_empty(value)


def _is_string(value):
    return isinstance(value, str)


def _not(value):
    return not is_true(value)


def _cbool(value):
    if value is None:
        return False
    return to_bool(value, "CBool's expression")


def _bit_and(value1, value2):
    return to_int(value1, "value1") & to_int(value2, "value2")


def _ignore_flow(value):
    return IGNORE_FLOW if is_empty(value) else value


def _redact(value):
    return value  # the value flows; logs show "[Redact]" (CompiledExpression.redacted)


def _coalesce(attrs, *thunks):
    for thunk in thunks:
        value = thunk(attrs)
        if value is not None:
            return value
    return None


def _switch(attrs, source, default, *pairs):
    src = to_str(source(attrs))  # null source compares like "" (the doc's documented workaround)
    for i in range(0, len(pairs), 2):
        key = pairs[i](attrs)
        if key is not None and to_str(key) == src:
            return pairs[i + 1](attrs)
        if key is None and src == "":
            return pairs[i + 1](attrs)
    return default(attrs)


def _switch_arity(n: int) -> str | None:
    if n % 2:
        return (f"Switch takes an even number of arguments (source, defaultValue, then key/value pairs); got {n} — "
                "add the missing value or remove the extra key")
    return None


def _build_iif(nodes: tuple[Node, ...]):
    cond_attrs = tuple(dict.fromkeys(n.name for n in walk(nodes[0]) if isinstance(n, Attribute)))

    def iif(attrs, condition, if_true, if_false):
        for name in cond_attrs:
            value = attrs.get(name)
            if value is None or value == "":
                raise FunctionError(
                    f"IIF's condition reads [{name}], which is null or empty for this user; Entra fails here too "
                    f'(documented IIF limitation) — test for empty values with Switch([{name}], [{name}], "", "...")'
                )
        return if_true(attrs) if to_bool(condition(attrs), "IIF's condition") else if_false(attrs)

    return True, iif


# --------------------------------------------------------------------------- dates

def _now():
    return datetime.now(UTC)


def _guid():
    return str(uuid.uuid4())


def _cdate(value):
    if value is None:
        return None
    return dt.as_datetime(value, "CDate's expression")


def _check_literal_interval(node: Node) -> None:
    """A fixed interval argument is checked once, at compile time."""
    if isinstance(node, Literal):
        dt.check_interval(node.value)


def _build_date_add(nodes: tuple[Node, ...]):
    _check_literal_interval(nodes[0])

    def date_add(interval, value, when):
        if when is None:
            return None
        return dt.date_add(dt.check_interval(interval), to_int(value, "value"), dt.as_datetime(when, "dateTime"))

    return False, date_add


def _build_date_diff(nodes: tuple[Node, ...]):
    _check_literal_interval(nodes[0])

    def date_diff(interval, date1, date2):
        if date1 is None or date2 is None:
            return None
        return dt.date_diff(dt.check_interval(interval), dt.as_datetime(date1, "date1"), dt.as_datetime(date2, "date2"))

    return False, date_diff


def _date_from_num(value):
    if value is None:
        return None
    return dt.from_filetime(to_int(value, "value"))


def _num_from_date(value):
    if value is None:
        return None
    return dt.to_filetime(dt.as_datetime(value, "value"))


_DATETIME_STYLES = frozenset({
    "None", "AllowLeadingWhite", "AllowTrailingWhite", "AllowInnerWhite", "AllowWhiteSpaces",
    "NoCurrentDateDefault", "AdjustToUniversal", "AssumeLocal", "AssumeUniversal", "RoundtripKind",
})


def _check_styles(styles: object) -> None:
    if styles is None or styles == "":
        return
    for part in to_str(styles).replace("|", ",").split(","):
        name = part.strip().removeprefix("DateTimeStyles.")
        if name and name not in _DATETIME_STYLES:
            raise FunctionError(f"unknown dateTimeStyles value {name!r} — use names from .NET DateTimeStyles, "
                                "e.g. AdjustToUniversal, or leave the argument empty")


def _build_format_date_time(nodes: tuple[Node, ...]):
    # FormatDateTime(source, dateTimeStyles, inputFormat, outputFormat); the 3-argument form
    # FormatDateTime(source, inputFormat, outputFormat) of older docs is accepted too.
    four = len(nodes) == 4
    in_node, out_node = (nodes[2], nodes[3]) if four else (nodes[1], nodes[2])
    if four and isinstance(nodes[1], Literal):
        _check_styles(nodes[1].value)
    for node, what in ((in_node, "inputFormat"), (out_node, "outputFormat")):
        if isinstance(node, Missing):
            raise FunctionError(f"FormatDateTime needs {what} — write a .NET format such as \"yyyy-MM-dd\"")
    in_fixed = dt.DotNetFormat(in_node.value) if isinstance(in_node, Literal) and isinstance(in_node.value, str) else None
    out_fixed = dt.DotNetFormat(out_node.value) if isinstance(out_node, Literal) and isinstance(out_node.value, str) else None

    def format_date_time(source, *rest):
        if four:
            styles, in_fmt, out_fmt = rest
            _check_styles(styles)
        else:
            in_fmt, out_fmt = rest
        if source is None:
            return None
        parser = in_fixed or dt.dotnet_format(to_str(in_fmt))
        formatter = out_fixed or dt.dotnet_format(to_str(out_fmt))
        value = parser.parse(to_str(source).strip())
        return formatter.format(value)

    return False, format_date_time


# --------------------------------------------------------------------------- Replace

_REPLACE_FORMS = (
    "Replace needs one of the documented argument combinations: (oldValue, replacementValue), "
    "(oldValue, template), (regexPattern, replacementValue), (regexPattern, regexGroupName, replacementValue) "
    "or (regexPattern, regexGroupName, replacementAttributeName) — leave the other positions empty"
)


def _build_replace(nodes: tuple[Node, ...]):
    padded = tuple(nodes) + tuple(Missing(nodes[0].line, nodes[0].column) for _ in range(7 - len(nodes)))
    present = tuple(not isinstance(n, Missing) for n in padded)
    _, has_old, has_regex, has_group, has_repl, has_repl_attr, has_template = present
    if has_old and has_regex:
        raise FunctionError("Replace got both oldValue and regexPattern — use one of them. " + _REPLACE_FORMS)
    fixed_pattern = None
    if has_regex and isinstance(padded[2], Literal):
        fixed_pattern = compile_pattern(to_str(padded[2].value))
        if has_group and isinstance(padded[3], Literal):
            group = to_str(padded[3].value)
            if group not in fixed_pattern.groupindex:
                raise FunctionError(f"regexGroupName {group!r} is not a named group of the pattern — "
                                    f"name it with (?<{group}>...)")

    def pattern_of(value) -> re.Pattern[str]:
        return fixed_pattern or compile_pattern(to_str(value))

    if has_old and has_repl and not (has_template or has_group or has_repl_attr):
        def replace_old(source, old, _p, _g, repl, _a, _t):
            if source is None:
                return None
            old_text = to_str(old)
            return to_str(source).replace(old_text, to_str(repl)) if old_text else to_str(source)
        return False, replace_old

    if has_old and has_template and not (has_repl or has_group or has_repl_attr):
        def replace_template(source, old, _p, _g, _r, _a, template):
            if source is None or template is None:
                return None
            old_text = to_str(old)
            return to_str(template).replace(old_text, to_str(source)) if old_text else to_str(template)
        return False, replace_template

    if has_regex and has_group and has_repl_attr and not (has_repl or has_template):
        def replace_from_attribute(source, _o, pattern, group, _r, repl_attr, _t):
            if not is_empty(source):
                return source
            if repl_attr is None:
                return None
            m = pattern_of(pattern).search(to_str(repl_attr))
            if m is None:
                return None
            try:
                return m.group(to_str(group))
            except IndexError:
                raise FunctionError(f"regexGroupName {to_str(group)!r} is not a group of the pattern") from None
        return False, replace_from_attribute

    if has_regex and has_group and has_repl and not (has_repl_attr or has_template):
        def replace_group(source, _o, pattern, group, repl, _a, _t):
            if source is None:
                return None
            rx = pattern_of(pattern)
            name = to_str(group)
            if name not in rx.groupindex:
                raise FunctionError(f"regexGroupName {name!r} is not a named group of the pattern")
            text, new = to_str(source), to_str(repl)
            out: list[str] = []
            pos = 0
            for m in rx.finditer(text):
                start, end = m.span(name)
                if start < 0 or start < pos:
                    continue
                out.append(text[pos:start])
                out.append(new)
                pos = end
            out.append(text[pos:])
            return "".join(out)
        return False, replace_group

    if has_regex and has_repl and not (has_group or has_repl_attr or has_template):
        fixed_sub = None
        if fixed_pattern is not None and isinstance(padded[4], Literal):
            fixed_sub = substitution(to_str(padded[4].value), fixed_pattern)

        def replace_regex(source, _o, pattern, _g, repl, _a, _t):
            if source is None:
                return None
            rx = pattern_of(pattern)
            return rx.sub(fixed_sub or substitution(to_str(repl), rx), to_str(source))
        return False, replace_regex

    raise FunctionError(_REPLACE_FORMS)


# --------------------------------------------------------------------------- registry

_register("Append", "Append(source, suffix)", 2, 2, _append)
_register("BitAnd", "BitAnd(value1, value2)", 2, 2, _bit_and)
_register("CBool", "CBool(expression)", 1, 1, _cbool)
_register("CDate", "CDate(expression)", 1, 1, _cdate)
_register("Coalesce", "Coalesce(source1, source2, ..., defaultValue)", 1, None, _coalesce, lazy=True)
_register("ConvertToBase64", "ConvertToBase64(source)", 1, 1, _convert_to_base64)
_register("ConvertToUTF8Hex", "ConvertToUTF8Hex(source)", 1, 1, _convert_to_utf8_hex)
_register("Count", "Count(attribute)", 1, 1, _count)
_register("CStr", "CStr(value)", 1, 1, _cstr)
_register("DateAdd", "DateAdd(interval, value, dateTime)", 3, 3, builder=_build_date_add)
_register("DateDiff", "DateDiff(interval, date1, date2)", 3, 3, builder=_build_date_diff)
_register("DateFromNum", "DateFromNum(value)", 1, 1, _date_from_num)
_register("FormatDateTime", "FormatDateTime(source, dateTimeStyles, inputFormat, outputFormat)", 3, 4,
          builder=_build_format_date_time)
_register("Guid", "Guid()", 0, 0, _guid)
_register("IgnoreFlowIfNullOrEmpty", "IgnoreFlowIfNullOrEmpty(expression)", 1, 1, _ignore_flow)
_register("IIF", "IIF(condition, valueIfTrue, valueIfFalse)", 3, 3, builder=_build_iif)
_register("InStr", "InStr(value1, value2, start, compareType)", 2, 4, _instr)
_register("IsNull", "IsNull(expression)", 1, 1, _is_null)
_register("IsNullOrEmpty", "IsNullOrEmpty(expression)", 1, 1, _is_null_or_empty)
_register("IsPresent", "IsPresent(expression)", 1, 1, _is_present)
_register("IsString", "IsString(expression)", 1, 1, _is_string)
_register("Item", "Item(attribute, index)", 2, 2, _item)
_register("Join", "Join(separator, source1, source2, ...)", 2, None, _join)
_register("Left", "Left(string, numChars)", 2, 2, _left)
_register("Mid", "Mid(source, start, length)", 3, 3, _mid)
_register("NormalizeDiacritics", "NormalizeDiacritics(source)", 1, 1, _normalize_diacritics)
_register("Not", "Not(source)", 1, 1, _not)
_register("Now", "Now()", 0, 0, _now)
_register("NumFromDate", "NumFromDate(value)", 1, 1, _num_from_date)
_register("PCase", "PCase(source, wordSeparators)", 1, 2, _pcase)
_register("RandomString", "RandomString(length, minimumNumbers, minimumSpecialCharacters, minimumCapital, "
          "minimumLowerCase, charactersToAvoid)", 5, 6, _random_string)
_register("Redact", "Redact(attributeOrValue)", 1, 1, _redact)
_register("RemoveDuplicates", "RemoveDuplicates(attribute)", 1, 1, _remove_duplicates)
_register("Replace", "Replace(source, oldValue, regexPattern, regexGroupName, replacementValue, "
          "replacementAttributeName, template)", 3, 7, builder=_build_replace)
_register("Split", "Split(source, delimiter)", 2, 2, _split)
_register("StripSpaces", "StripSpaces(source)", 1, 1, _strip_spaces)
_register("Switch", "Switch(source, defaultValue, key1, value1, key2, value2, ...)", 4, None, _switch,
          lazy=True, arity_rule=_switch_arity)
_register("ToLower", "ToLower(source, culture)", 1, 2, _to_lower)
_register("ToUpper", "ToUpper(source, culture)", 1, 2, _to_upper)
_register("Word", "Word(string, wordNumber, delimiters)", 3, 3, _word)

# Case-insensitive lookup: the doc itself writes switch(...) in lower case.
FUNCTIONS_BY_LOWER: dict[str, FunctionSpec] = {k.lower(): v for k, v in FUNCTIONS.items()}

# Documented functions that only make sense for Workday/AD/SCIM provisioning.
NOT_SUPPORTED: dict[str, str] = {
    "appRoleAssignmentsComplex": "it only applies to SCIM app-role provisioning",
    "singleAppRoleAssignment": "it only applies to SCIM app-role provisioning",
    "selectUniqueValue": "it only works for Workday/SuccessFactors/API-driven provisioning to on-premises AD",
    "altSecIdFromNetId": "the cross-tenant matching attribute is internal to Entra",
}

__all__ = ["FUNCTIONS", "FUNCTIONS_BY_LOWER", "IGNORE_FLOW", "NOT_SUPPORTED", "VB_CONSTANTS", "FunctionSpec"]
