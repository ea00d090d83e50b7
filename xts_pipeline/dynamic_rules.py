"""Entra ID dynamic membership rules: parse once, evaluate fast against Graph-shaped user dicts.

Source: MicrosoftDocs/entra-docs docs/identity/users/groups-dynamic-membership.md (plus
groups-dynamic-rule-member-of.md and groups-dynamic-rule-more-efficient.md for more examples).
The guardrails use this to predict which target dynamic groups an incoming user would land in.

Semantics, and the choices the doc leaves open:

* Operators are case-insensitive and may be written with or without the leading hyphen (the doc
  says so); en/em dashes count as hyphens because the doc's own examples use them.
* Precedence: comparisons, then ``-not``, ``-and``, ``-or``. ``PROP -any (...)`` / ``-all`` is an
  atom; without parentheses (``device.devicePhysicalIds -any _ -startsWith "[ZTDId]"``) it takes
  exactly one comparison.
* String comparisons and ``-match`` ignore case; ``-match`` is an unanchored regex search.
* ``null`` only with ``-eq``/``-ne``; ``"null"`` in quotes is the literal text. A missing, ``None``,
  ``""`` or empty-list attribute is null.
* Every ``-not…`` operator (and ``-ne``) is the exact negation of its positive twin, so a null
  attribute satisfies ``-ne "x"`` and ``-notStartsWith "x"``. That keeps ``A -ne v`` equal to
  ``-not (A -eq v)``, which the doc implies but does not state.
* A comparison on a multi-valued property (``user.otherMails -startsWith "a"``) holds when any item
  matches; ``-all`` over an empty collection is true (the doc's "no assigned service plan" example).
* Property names: the doc says they are case-sensitive, yet its own examples spell
  ``mailNickname``/``mailNickName``, ``employeeHireDate``/``employeehiredate`` and
  ``memberOf``/``memberof``. Documented user properties are therefore matched ignoring case and
  read under their Graph names (``objectId`` -> ``id``, ``mobile`` -> ``mobilePhone``, ...);
  extension properties (``extension_<appid>_<name>``) and unknown names are read verbatim.
  ``extensionAttribute1``-``15`` are read flat or from ``onPremisesExtensionAttributes``.
* ``user.memberOf -any (group.objectId -in [...])`` reads ``user["memberOf"]``: a list of group ids
  or of ``{"id": ...}`` dicts. ``Direct Reports for "<id>"`` reads ``manager.id``, ``managerId`` or
  ``_managerId``.
* Device rules parse, but a user is never a member of a device group (``evaluate`` returns False).
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from .scoping import attribute_getter

__all__ = [
    "MAX_RULE_LENGTH",
    "CompiledRule",
    "RuleError",
    "compile_rule",
    "evaluate_rule",
    "explain",
    "rule_properties",
]

MAX_RULE_LENGTH = 3072  # "The total length of the body of your membership rule can't exceed 3,072 characters."
_MAX_DEPTH = 100

Fn = Callable[[Mapping[str, Any], Any], bool]


class RuleError(ValueError):
    """An invalid dynamic membership rule; ``line``/``column`` are 1-based positions in the rule."""

    def __init__(self, message: str, line: int = 1, column: int = 1, context: str | None = None) -> None:
        self.line = line
        self.column = column
        self.reason = message
        where = f"{context}: " if context else ""
        super().__init__(f"{where}membership rule line {line}, column {column}: {message}")


# ---------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------

# Documented user properties -> Graph key(s) to read: the Graph v1.0 name first, then the rule's own.
_USER_PROPERTIES: dict[str, tuple[str, ...]] = {
    "accountEnabled": ("accountEnabled",),
    "dirSyncEnabled": ("onPremisesSyncEnabled", "dirSyncEnabled"),
    "employeeHireDate": ("employeeHireDate",),
    "city": ("city",),
    "country": ("country",),
    "companyName": ("companyName",),
    "department": ("department",),
    "displayName": ("displayName",),
    "employeeId": ("employeeId",),
    "facsimileTelephoneNumber": ("faxNumber", "facsimileTelephoneNumber"),
    "givenName": ("givenName",),
    "jobTitle": ("jobTitle",),
    "mail": ("mail",),
    "mailNickname": ("mailNickname",),
    "memberOf": ("memberOf",),
    "mobile": ("mobilePhone", "mobile"),
    "objectId": ("id", "objectId"),
    "onPremisesDistinguishedName": ("onPremisesDistinguishedName",),
    "onPremisesSecurityIdentifier": ("onPremisesSecurityIdentifier",),
    "passwordPolicies": ("passwordPolicies",),
    "physicalDeliveryOfficeName": ("officeLocation", "physicalDeliveryOfficeName"),
    "postalCode": ("postalCode",),
    "preferredLanguage": ("preferredLanguage",),
    "sipProxyAddress": ("sipProxyAddress",),
    "state": ("state",),
    "streetAddress": ("streetAddress",),
    "surname": ("surname",),
    "telephoneNumber": ("businessPhones", "telephoneNumber"),
    "usageLocation": ("usageLocation",),
    "userPrincipalName": ("userPrincipalName",),
    "userType": ("userType",),
    "otherMails": ("otherMails",),
    "proxyAddresses": ("proxyAddresses",),
    "assignedPlans": ("assignedPlans",),
}
_BY_FOLD = {name.casefold(): name for name in _USER_PROPERTIES}
_EXT_ATTR = re.compile(r"extensionattribute([1-9]|1[0-5])", re.IGNORECASE)


def _user_getter(name: str, strict: bool, line: int, column: int) -> tuple[Callable[[Mapping], Any], str]:
    """Getter for ``user.<name>`` and the Graph property name it reads (for rule_properties)."""
    m = _EXT_ATTR.fullmatch(name)
    if m:
        key = f"extensionAttribute{m.group(1)}"
        return attribute_getter(key), key
    canonical = _BY_FOLD.get(name.casefold())
    if canonical is None:
        if strict and not name.startswith("extension_"):
            raise RuleError(f"unknown user property '{name}'{_did_you_mean(name)}", line, column)
        return (lambda u: u.get(name)), name
    keys = _USER_PROPERTIES[canonical]
    if len(keys) == 1:
        k = keys[0]
        return (lambda u: u.get(k)), k
    k0, k1 = keys

    def get_alias(u: Mapping) -> Any:
        v = u.get(k0)
        return u.get(k1) if v is None else v

    return get_alias, k0


def _did_you_mean(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(_USER_PROPERTIES), n=1, cutoff=0.7)
    return f" — did you mean 'user.{close[0]}'?" if close else ""


def _item_field(item: Any, name: str, fold: str) -> Any:
    """A field of a collection item: ``assignedPlan.servicePlanId``, ``group.objectId`` (id or str)."""
    if isinstance(item, Mapping):
        v = item.get(name)
        if v is None:
            if fold == "objectid":
                v = item.get("id")
            else:
                for k, val in item.items():
                    if isinstance(k, str) and k.casefold() == fold:
                        return val
        return v
    if fold in ("objectid", "id") and isinstance(item, str):
        return item
    return None


# ---------------------------------------------------------------------------------------------------
# AST
# ---------------------------------------------------------------------------------------------------

@dataclass(eq=False, slots=True)
class _Val:
    kind: str  # str | num | bool | null | dollar_null | array | date | now
    raw: Any
    text: str
    line: int
    column: int


@dataclass(eq=False, slots=True)
class _Ref:
    text: str  # as written: user.department, _, assignedPlan.service
    line: int
    column: int


@dataclass(eq=False, slots=True)
class _Compare:
    ref: _Ref
    op: str  # canonical spelling without hyphen, e.g. "startsWith"
    value: _Val
    line: int
    column: int


@dataclass(eq=False, slots=True)
class _Not:
    expr: Any


@dataclass(eq=False, slots=True)
class _Bool:
    kind: str  # and | or
    items: list[Any]


@dataclass(eq=False, slots=True)
class _Quant:
    ref: _Ref
    kind: str  # any | all
    pred: Any
    single: bool  # written without parentheses


@dataclass(eq=False, slots=True)
class _DirectReports:
    manager_id: str


_OPS = {o.casefold(): o for o in (
    "eq", "ne", "startsWith", "notStartsWith", "endsWith", "notEndsWith", "contains", "notContains",
    "match", "notMatch", "in", "notIn", "le", "ge")}
_NEGATED = {"ne": "eq", "notStartsWith": "startsWith", "notEndsWith": "endsWith",
            "notContains": "contains", "notMatch": "match", "notIn": "in"}


def _bare(token: str) -> str:
    return token.lstrip("-\u2013\u2014").casefold()


def _decode_dq(s: str) -> str:
    return re.sub(r"`(.)", r"\1", s[1:-1], flags=re.S)


def _render_str(s: str) -> str:
    return '"' + s.replace("`", "``").replace('"', '`"') + '"'


class _Builder(Transformer_NonRecursive):
    """lark tree -> small AST (non-recursive, so deep nesting cannot blow the stack here)."""

    def start(self, c: list) -> Any:
        return c[0]

    def direct_reports(self, c: list) -> _DirectReports:
        return _DirectReports(c[1].raw)

    def or_expr(self, c: list) -> _Bool:
        return _Bool("or", c)

    def and_expr(self, c: list) -> _Bool:
        return _Bool("and", c)

    def negation(self, c: list) -> _Not:
        return _Not(c[0])

    def subject(self, c: list) -> _Ref:
        t: Token = c[0]
        return _Ref(str(t), t.line or 1, t.column or 1)

    def comparison(self, c: list) -> _Compare:
        ref, op, val = c
        return _Compare(ref, _OPS[_bare(op)], val, op.line or 1, op.column or 1)

    def quantified(self, c: list) -> _Quant:
        prop, q, pred = c
        return _Quant(_Ref(str(prop), prop.line or 1, prop.column or 1), _bare(q), pred,
                      isinstance(pred, _Compare))

    def string(self, c: list) -> _Val:
        t: Token = c[0]
        s = str(t)
        if t.type == "DQ_STRING":
            v = _decode_dq(s)
        elif t.type == "SQ_STRING":
            v = s[1:-1].replace("''", "'")
        else:  # BT_STRING: `"Sales`" is the value "Sales" with its quotes
            v = '"' + s[2:-2].replace('`"', '"') + '"'
        return _Val("str", v, _render_str(v), t.line or 1, t.column or 1)

    def _tok(self, kind: str, t: Token, raw: Any) -> _Val:
        return _Val(kind, raw, str(t), t.line or 1, t.column or 1)

    def number(self, c: list) -> _Val:
        t = c[0]
        return self._tok("num", t, _num_text(float(t) if "." in t else int(t)))

    def true(self, c: list) -> _Val:
        return self._tok("bool", c[0], True)

    def false(self, c: list) -> _Val:
        return self._tok("bool", c[0], False)

    def null(self, c: list) -> _Val:
        return self._tok("null", c[0], None)

    def dollar_null(self, c: list) -> _Val:
        return self._tok("dollar_null", c[0], None)

    def datetime(self, c: list) -> _Val:
        t = c[0]
        return self._tok("date", t, _parse_dt(str(t)))

    def now(self, c: list) -> _Val:
        t = c[0]
        shift = None
        text = "system.now"
        if len(c) == 3:
            sign = -1 if _bare(c[1]) == "minus" else 1
            shift = (sign, _parse_duration(c[2]))
            text = f"system.now -{_bare(c[1])} {c[2]}"
        return _Val("now", shift, text, t.line or 1, t.column or 1)

    def array(self, c: list) -> _Val:
        items = [x for x in c if x is not None]
        line, col = (items[0].line, items[0].column) if items else (1, 1)
        return _Val("array", items, "[" + ", ".join(i.text for i in items) + "]", line, col)


# ---------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------

def _num_text(x: float | int) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x) if isinstance(x, int) else repr(x)


def _norm(v: Any) -> str | None:
    """Comparable text of an attribute value: lower-cased, bools as true/false, numbers as digits."""
    if isinstance(v, str):
        return v.lower()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return _num_text(v)
    return None


def _needle(val: _Val) -> str:
    if val.kind == "str":
        return val.raw.lower()
    if val.kind == "bool":
        return "true" if val.raw else "false"
    return val.raw  # num: already canonical text


def _parse_dt(text: str) -> datetime:
    s = text.strip().upper()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _to_dt(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, str):
        try:
            return _parse_dt(v)
        except ValueError:
            return None
    return None


_DURATION = re.compile(
    r"p(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?"
    r"(?:t(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?)?",
    re.IGNORECASE,
)


def _parse_duration(tok: Token) -> tuple[int, timedelta]:
    """ISO 8601 duration (``p1d``, ``P1Y2M``, ``PT12H``) -> (months, timedelta)."""
    m = _DURATION.fullmatch(str(tok))
    if not m or str(tok).upper() in ("P", "PT") or str(tok).upper().endswith("T"):
        raise RuleError(f"invalid duration '{tok}'; write an ISO 8601 duration such as p1d, p2w or pt12h",
                        tok.line or 1, tok.column or 1)
    y, mo, w, d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    months = y * 12 + mo
    days = w * 7 + d + (h + (mi + s / 60) / 60) / 24
    if months > 12_000 or days > 366_000:  # keeps system.now +/- shift inside datetime's range
        raise RuleError(f"duration '{tok}' is too long; keep it under 1000 years",
                        tok.line or 1, tok.column or 1)
    return int(months), timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)


def _add_months(dt: datetime, months: int) -> datetime:
    if not months:
        return dt
    total = dt.month - 1 + months
    year, month = dt.year + total // 12, total % 12 + 1
    return dt.replace(year=year, month=month, day=min(dt.day, calendar.monthrange(year, month)[1]))


# ---------------------------------------------------------------------------------------------------
# Compilation to closures
# ---------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Ctx:
    strict: bool
    clock: Callable[[], datetime]
    in_item: int = 0
    subjects: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)


def _ref_getter(ref: _Ref, ctx: _Ctx) -> Callable[[Mapping, Any], Any]:
    text = ref.text
    if text == "_":
        if not ctx.in_item:
            raise RuleError("'_' stands for an item of a collection and is only valid inside -any/-all, "
                            "e.g. user.proxyAddresses -any (_ -startsWith \"smtp:\")", ref.line, ref.column)
        return lambda u, i: i
    obj, _, name = text.partition(".")
    kind = obj.casefold()
    if kind in ("user", "device"):
        if "." in name:
            raise RuleError(f"'{text}' has too many parts; write {obj}.<property>", ref.line, ref.column)
        ctx.subjects.add(kind)
        if kind == "device":
            return lambda u, i: None
        get, prop = _user_getter(name, ctx.strict, ref.line, ref.column)
        ctx.properties.add(prop)
        return lambda u, i: get(u)
    if not ctx.in_item:
        raise RuleError(f"unknown object '{obj}' in '{text}'; properties start with 'user.' (or 'device.'); "
                        f"'{obj}.' is only valid inside -any/-all", ref.line, ref.column)
    if "." in name:
        raise RuleError(f"'{text}' has too many parts; write {obj}.<property>", ref.line, ref.column)
    fold = name.casefold()
    return lambda u, i: _item_field(i, name, fold)


def _positive_test(cmp: _Compare, ctx: _Ctx) -> Callable[[str], bool]:
    """Test on the normalized (lower-cased) text of one non-null value."""
    op, val = cmp.op, cmp.value
    base = _NEGATED.get(op, op)
    if base == "in":
        if val.kind != "array":
            raise RuleError(f"-{op} needs a list in brackets, e.g. [\"a\", \"b\"]", val.line, val.column)
        for item in val.raw:
            if item.kind == "null":
                raise RuleError("null can't be in a -in/-notIn list; use -eq null or -ne null",
                                item.line, item.column)
        options = frozenset(_needle(i) for i in val.raw)
        return options.__contains__
    if val.kind == "array":
        raise RuleError(f"-{op} compares with one value; use -in or -notIn for a list", val.line, val.column)
    if base == "match":
        if val.kind != "str":
            raise RuleError(f"-{op} needs a regular expression in double quotes", val.line, val.column)
        try:
            rx = re.compile(val.raw, re.IGNORECASE)
        except (re.error, OverflowError, RecursionError) as exc:
            raise RuleError(f"invalid regular expression {val.text}: {exc}", val.line, val.column) from None
        return lambda s: rx.search(s) is not None
    n = _needle(val)
    if base == "eq":
        return n.__eq__
    if base == "startsWith":
        return lambda s: s.startswith(n)
    if base == "endsWith":
        return lambda s: s.endswith(n)
    return lambda s: n in s  # contains


def _date_compare(cmp: _Compare, get: Callable[[Mapping, Any], Any], ctx: _Ctx) -> Fn:
    val = cmp.value
    if val.kind == "str":
        try:
            fixed: datetime | None = _parse_dt(val.raw)
        except ValueError:
            raise RuleError(f"-{cmp.op} compares dates; {val.text} is not a date such as "
                            "2020-06-10T18:13:20Z or system.now", val.line, val.column) from None
    elif val.kind == "date":
        fixed = val.raw
    elif val.kind == "now":
        fixed = None
    else:
        raise RuleError(f"-{cmp.op} compares dates; use a date such as 2020-06-10T18:13:20Z or "
                        "system.now -plus p1d", val.line, val.column)
    shift = val.raw if val.kind == "now" else None
    clock = ctx.clock

    def bound() -> datetime:
        if fixed is not None:
            return fixed
        now = clock()
        if shift:
            sign, (months, delta) = shift
            now = _add_months(now, sign * months) + sign * delta
        return now

    op = cmp.op

    def test(u: Mapping, i: Any) -> bool:
        d = _to_dt(get(u, i))
        if d is None:
            return op == "ne"
        b = bound()
        if op == "le":
            return d <= b
        if op == "ge":
            return d >= b
        return (d == b) == (op == "eq")

    return test


def _compile_compare(cmp: _Compare, ctx: _Ctx) -> Fn:
    get = _ref_getter(cmp.ref, ctx)
    op, val = cmp.op, cmp.value
    if val.kind == "dollar_null":
        raise RuleError("$null is not supported; write null (with -eq or -ne)", val.line, val.column)
    if val.kind == "null":
        if op not in ("eq", "ne"):
            raise RuleError(f"null can only be compared with -eq or -ne, not -{op}; "
                            "write \"null\" in quotes for the literal text", val.line, val.column)
        want_null = op == "eq"

        def null_test(u: Mapping, i: Any) -> bool:
            v = get(u, i)
            return (v is None or v == "" or (isinstance(v, list | tuple) and not v)) == want_null

        return null_test
    if op in ("le", "ge") or val.kind in ("date", "now"):
        if op not in ("le", "ge", "eq", "ne"):
            raise RuleError(f"-{op} can't compare with a date; use -le, -ge, -eq or -ne", val.line, val.column)
        return _date_compare(cmp, get, ctx)
    test = _positive_test(cmp, ctx)

    def positive(u: Mapping, i: Any) -> bool:
        v = get(u, i)
        if v.__class__ is str:
            return test(v.lower())
        if v is None:
            return False
        if isinstance(v, list | tuple):
            for x in v:
                s = _norm(x)
                if s is not None and test(s):
                    return True
            return False
        s = _norm(v)
        return s is not None and test(s)

    if op in _NEGATED:
        return lambda u, i: not positive(u, i)
    return positive


def _compile(node: Any, ctx: _Ctx, depth: int = 0) -> Fn:
    if depth > _MAX_DEPTH:
        raise RuleError(f"rule nests more than {_MAX_DEPTH} levels deep; simplify it")
    if isinstance(node, _Compare):
        return _compile_compare(node, ctx)
    if isinstance(node, _Not):
        inner = _compile(node.expr, ctx, depth + 1)
        return lambda u, i: not inner(u, i)
    if isinstance(node, _Bool):
        fns = [_compile(x, ctx, depth + 1) for x in node.items]
        if node.kind == "and":
            if len(fns) == 2:
                a, b = fns
                return lambda u, i: a(u, i) and b(u, i)
            return lambda u, i: all(f(u, i) for f in fns)
        if len(fns) == 2:
            a, b = fns
            return lambda u, i: a(u, i) or b(u, i)
        return lambda u, i: any(f(u, i) for f in fns)
    if isinstance(node, _Quant):
        coll = _ref_getter(node.ref, ctx)
        ctx.in_item += 1
        try:
            pred = _compile(node.pred, ctx, depth + 1)
        finally:
            ctx.in_item -= 1
        is_any = node.kind == "any"

        def quant(u: Mapping, i: Any) -> bool:
            items = coll(u, i)
            if items is None:
                items = ()
            elif not isinstance(items, list | tuple):
                items = (items,)
            if is_any:
                return any(pred(u, x) for x in items)
            return all(pred(u, x) for x in items)

        return quant
    if isinstance(node, _DirectReports):
        ctx.subjects.add("user")
        ctx.properties.add("manager")
        want = node.manager_id.casefold()
        return lambda u, i: (_manager_id(u) or "").casefold() == want
    raise AssertionError(f"unknown node {node!r}")  # pragma: no cover


def _manager_id(u: Mapping) -> str | None:
    m = u.get("manager")
    if isinstance(m, Mapping):
        m = m.get("id")
    if m is None:
        m = u.get("managerId") or u.get("_managerId")
    return m if isinstance(m, str) else None


# ---------------------------------------------------------------------------------------------------
# Parsing and errors
# ---------------------------------------------------------------------------------------------------

@functools.cache
def _parser() -> Lark:
    return Lark.open("dynamic_rules.lark", rel_to=__file__, parser="lalr", lexer="contextual",
                     maybe_placeholders=False)


_FRIENDLY = {
    "COMPARE_OP": "a comparison operator (-eq, -ne, -startsWith, -contains, -match, -in, ...)",
    "QUANTIFIER": "-any/-all", "_AND": "-and", "_OR": "-or", "_NOT": "-not",
    "PROPERTY": "a property such as user.department", "UNDERSCORE": "'_' (inside -any/-all)", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "SHIFT": "-plus/-minus",
    "DURATION": "a duration such as p1d", "DIRECT_REPORTS": "Direct Reports for",
    "$END": "the end of the rule",
}
_VALUE_TERMS = {"DQ_STRING", "SQ_STRING", "BT_STRING", "NUMBER", "TRUE", "FALSE", "NULL", "DATETIME",
                "SYSTEM_NOW", "DOLLAR_NULL"}


def _expected_text(expected: set[str]) -> str:
    parts = sorted({_FRIENDLY.get(e, e) for e in expected if e not in _VALUE_TERMS})
    if expected & _VALUE_TERMS:
        parts.insert(0, 'a value ("text", true, false, null, a number or ["a", "b"])')
    return ", ".join(parts) if parts else "something else"


def _syntax_error(rule: str, exc: UnexpectedInput) -> RuleError:
    line, column = exc.line if exc.line and exc.line > 0 else 1, exc.column if exc.column and exc.column > 0 else 1
    if isinstance(exc, UnexpectedCharacters):
        ch = rule[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(rule) else ""
        hint = ""
        if ch.isalpha():
            word = re.match(r"[\w$]+", rule[exc.pos_in_stream:])
            w = word.group(0) if word else ch
            if exc.allowed and exc.allowed & _VALUE_TERMS:
                hint = f'; string values need double quotes, e.g. "{w}"'
            else:
                hint = f"; '{w}' is not an operator or property here (properties look like user.department)"
        elif ch in "=!<>":
            hint = "; comparison operators are written -eq, -ne, -startsWith, ..."
        elif ch in "\"'":
            hint = "; a string is not closed — add the closing quote"
        return RuleError(f"unexpected character {ch!r}{hint}; expected {_expected_text(set(exc.allowed or ()))}",
                         line, column)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        got = "the rule ends too early" if tok.type == "$END" else f"unexpected {str(tok)!r}"
        hint = ""
        if tok.type == "PROPERTY" and exc.expected & _VALUE_TERMS:
            hint = " (the right side of a comparison must be a value, not a property)"
        if tok.type == "$END":
            line, column = _end_position(rule)
        return RuleError(f"{got}{hint}; expected {_expected_text(set(exc.expected))}", line, column)
    line, column = _end_position(rule)
    return RuleError("the rule ends too early; close every parenthesis and finish the comparison",
                     line, column)


def _end_position(rule: str) -> tuple[int, int]:
    lines = rule.split("\n")
    return len(lines), len(lines[-1]) + 1


def _parse(rule: str) -> Any:
    if not isinstance(rule, str):
        raise RuleError(f"a membership rule must be text, got {type(rule).__name__}")
    if len(rule) > MAX_RULE_LENGTH:
        line, column = _position(rule, MAX_RULE_LENGTH)
        raise RuleError(f"the rule is {len(rule)} characters long; Entra allows at most {MAX_RULE_LENGTH}",
                        line, column)
    if not rule.strip():
        raise RuleError("the rule is empty; write e.g. user.department -eq \"Sales\"")
    try:
        tree = _parser().parse(rule)
    except UnexpectedInput as exc:
        raise _syntax_error(rule, exc) from None
    except LarkError as exc:  # pragma: no cover - defensive
        raise RuleError(f"invalid rule: {exc}") from None
    try:
        return _Builder().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, RuleError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, ValueError | OverflowError):  # e.g. 2020-13-45 as a date
            tok = getattr(exc.obj, "children", [None])[0]
            line, column = (tok.line, tok.column) if isinstance(tok, Token) else (1, 1)
            raise RuleError(f"invalid value: {exc.orig_exc}", line or 1, column or 1) from None
        raise


def _position(rule: str, offset: int) -> tuple[int, int]:
    before = rule[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


# ---------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------

class CompiledRule:
    """A parsed, validated rule; ``evaluate(user)`` costs a few µs."""

    __slots__ = ("rule", "subject", "properties", "_fn", "_ast", "_strict")

    def __init__(self, rule: str, subject: str, properties: frozenset[str], fn: Fn, ast: Any,
                 strict: bool) -> None:
        self.rule = rule
        self.subject = subject  # "user" or "device"
        self.properties = properties
        self._fn = fn
        self._ast = ast
        self._strict = strict

    def evaluate(self, user: Mapping[str, Any]) -> bool:
        """True when the user satisfies the rule (always False for device rules)."""
        if self.subject != "user":
            return False
        return self._fn(user, None)

    def explain(self, user: Mapping[str, Any]) -> list[str]:
        """The clauses that hold for this user, as text, with ``-not`` pushed down to them.

        A clause under an odd number of ``-not`` is listed as ``-not (clause)`` when the clause is
        false, so every listed item is itself a rule the user satisfies. ``-any``/``-all`` clauses
        are listed whole.
        """
        ctx = _Ctx(self._strict, _utcnow)
        out = []
        for leaf, positive in _leaves(self._ast, True):
            if _compile(leaf, ctx)(user, None) == positive:
                out.append(_render(leaf) if positive else f"-not ({_render(leaf)})")
        return out

    def __repr__(self) -> str:
        return f"CompiledRule({self.rule!r})"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def compile_rule(rule: str, *, strict: bool = False, context: str | None = None,
                 clock: Callable[[], datetime] | None = None) -> CompiledRule:
    """Parse and validate ``rule`` once. ``strict`` rejects undocumented user properties (extension_*
    excepted); ``context`` (e.g. "group 'Finance' in tenant fabrikam") prefixes error messages;
    ``clock`` replaces the UTC now used by ``system.now``.
    """
    if clock is None and not strict and context is None:
        return _compile_cached(rule)
    return _compile_rule(rule, strict, context, clock or _utcnow)


@functools.lru_cache(maxsize=2048)
def _compile_cached(rule: str) -> CompiledRule:
    return _compile_rule(rule, False, None, _utcnow)


def _compile_rule(rule: str, strict: bool, context: str | None,
                  clock: Callable[[], datetime]) -> CompiledRule:
    try:
        ast = _parse(rule)
        ctx = _Ctx(strict, clock)
        fn = _compile(ast, ctx)
    except RuleError as exc:
        if context:
            raise RuleError(exc.reason, exc.line, exc.column, context) from None
        raise
    if ctx.subjects == {"user", "device"}:
        raise RuleError("a rule can't mix user and device properties; write one rule per group",
                        context=context)
    subject = "device" if "device" in ctx.subjects else "user"
    props = frozenset(ctx.properties) if subject == "user" else frozenset()
    return CompiledRule(rule, subject, props, fn, ast, strict)


def evaluate_rule(rule: str, user: Mapping[str, Any]) -> bool:
    """True when ``user`` (a Graph-shaped dict) satisfies the dynamic membership ``rule``."""
    return compile_rule(rule).evaluate(user)


def rule_properties(rule: str) -> set[str]:
    """User properties the rule reads, under their Graph names (e.g. {"department", "extension_ab_cc"})."""
    return set(compile_rule(rule).properties)


def explain(rule: str, user: Mapping[str, Any]) -> list[str]:
    """Clauses of ``rule`` that hold for ``user``, e.g. ``['user.department -eq "Treasury"']``."""
    return compile_rule(rule).explain(user)


def _leaves(node: Any, positive: bool) -> Iterator[tuple[Any, bool]]:
    """Leaf clauses with their polarity (False under an odd number of -not)."""
    if isinstance(node, _Not):
        yield from _leaves(node.expr, not positive)
    elif isinstance(node, _Bool):
        for x in node.items:
            yield from _leaves(x, positive)
    else:
        yield node, positive


def _render(node: Any) -> str:
    """Canonical text of a node; parses back to an equivalent rule."""
    if isinstance(node, _Compare):
        return f"{node.ref.text} -{node.op} {node.value.text}"
    if isinstance(node, _Not):
        return f"-not ({_render(node.expr)})"
    if isinstance(node, _Bool):
        return f" -{node.kind} ".join(
            f"({_render(x)})" if isinstance(x, _Bool) else _render(x) for x in node.items)
    if isinstance(node, _Quant):
        return f"{node.ref.text} -{node.kind} ({_render(node.pred)})"
    if isinstance(node, _DirectReports):
        return f"Direct Reports for {_render_str(node.manager_id)}"
    raise AssertionError(node)  # pragma: no cover
