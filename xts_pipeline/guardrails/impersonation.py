"""Block incoming users who look like a protected identity of the target (the CEO look-alike).

Judged on the identity fields of the record as it will stand after the write (displayName, givenName +
surname, mail and UPN local parts, mailNickname), two ways:
- skeleton equality of a whole value (confusables, case, diacritics, spacing, punctuation, ignorables);
- word matching: a protected name of >= min_words words matches when all its words (as skeletons) appear
  in the incoming value, in any order, extra words and punctuation allowed ("Bowen, Megan (CEO)"), or
  when its words run together in one incoming word ("meganbowen-it"). A single-word protected value
  matches only a whole value, so a protected "Megan" does not hold every Megan.
A real letter of difference ("Megan Brown" vs "Megan Bowen") is a different word and never matches.
Bidi controls (U+202A-U+202E, U+2066-U+2069) in an identity field are refused outright.

Set-based: protected values are indexed once (skeletons, joined words, words by their longest word), so
each incoming value costs a few dict lookups: 80,000 incoming against 4,000 protected stays linear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, permutations
from typing import Any

from .confusables import bidi_controls, describe_lookalikes, skeleton, skeletons, word_lines, words
from .gc_pause import gc_paused
from .policy import ExemptEntry, InboundPolicy
from .report import GuardrailResult, cap, per_user_result
from .rows import after, incoming, user_ref

NAME = "impersonation"
FIELDS = ("displayName", "mail", "userPrincipalName", "mailNickname")
# Fields of the post-write record that identify a person (bidi controls are refused in all of them).
IDENTITY_FIELDS = ("displayName", "givenName", "surname", "mail", "userPrincipalName", "mailNickname")
MAX_WORDS = 12  # longer values are cut for the adjacent-word joins (a name is not a paragraph)


@dataclass(frozen=True)
class ProtectedIdentity:
    """One value that must not be mimicked, with why it is protected (shown in messages)."""

    value: str
    label: str
    user_id: str | None = None  # the target user it belongs to, so that user's own update is not flagged


def _local(value: str) -> str:
    """The alias of a mail or UPN; for a B2B UPN (`alias_domain.com#EXT#@...`) the original alias."""
    upper = value.upper()
    if "#EXT#" in upper:
        alias = value[: upper.index("#EXT#")]
        return alias.rsplit("_", 1)[0] if "_" in alias else alias
    return value.split("@", 1)[0]


def identity_values(field: str, value: str | None) -> list[str]:
    """The comparable forms of one identity field: a mail/UPN also yields its local part."""
    if not value:
        return []
    if field in ("mail", "userPrincipalName"):
        if "#EXT#" in value.upper():
            return [_local(value)]
        return [value, _local(value)] if "@" in value else [value]
    return [value]


def _record_values(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, value) pairs of a record's identity: displayName, givenName + surname, mail, UPN, mailNickname."""
    out: list[tuple[str, str]] = []
    for f in FIELDS:
        v = record.get(f)
        if isinstance(v, str) and v:
            out.append((f, v))
    given, sur = record.get("givenName"), record.get("surname")
    if isinstance(given, str) and isinstance(sur, str) and given and sur:
        out.append(("givenName+surname", f"{given} {sur}"))
    return out


def protected_identities(
    policy: InboundPolicy,
    target_users: Iterable[Mapping[str, Any]] = (),
    role_assignable_members: Iterable[str] | Mapping[str, str] = (),
    role_holders: Iterable[str] | Mapping[str, str] = (),
) -> list[ProtectedIdentity]:
    """Protected identities: listed in the policy, plus members of role-assignable groups and role holders.

    An entry given as a mail or UPN also protects its local part at any domain. `role_assignable_members` /
    `role_holders` are target user ids, or `{user id: group/role name}` for messages.
    """
    imp = policy.impersonation
    out: list[ProtectedIdentity] = []
    for e in imp.entries():
        label = e.label or "listed in the inbound policy"
        forms = identity_values("mail", e.value) if "@" in e.value else [e.value]
        out.extend(ProtectedIdentity(v, label) for v in dict.fromkeys(forms))
    reasons: dict[str, str] = {}
    sources: list[tuple[bool, Iterable[str] | Mapping[str, str], str]] = [
        (imp.include_role_assignable_group_members, role_assignable_members, "member of role-assignable group"),
        (imp.include_directory_role_holders, role_holders, "holder of directory role"),
    ]
    for enabled, ids, why in sources:
        if not enabled:
            continue
        named = ids if isinstance(ids, Mapping) else dict.fromkeys(ids, "")
        for uid, what in named.items():
            reasons.setdefault(uid, f"{why} '{what}'" if what else why)
    if reasons:
        for user in target_users:
            uid = user.get("id")
            if uid in reasons:
                values = [v for f, raw in _record_values(user) for v in identity_values(
                    "mail" if f in ("mail", "userPrincipalName") else f, raw)]
                out.extend(ProtectedIdentity(v, reasons[uid], uid) for v in dict.fromkeys(values))
    return out


def _pair_key(a: str, b: str) -> str:
    return f"{a}\x00{b}" if a <= b else f"{b}\x00{a}"


def _pairs(ws: list[str]) -> list[str]:
    """Every unordered pair of words of a value (a repeated word pairs with itself)."""
    if len(ws) == 2:
        a, b = ws
        return [f"{a}\x00{b}" if a <= b else f"{b}\x00{a}"]
    uniq = sorted(set(ws))
    out = [f"{uniq[i]}\x00{uniq[j]}" for i in range(len(uniq)) for j in range(i + 1, len(uniq))]
    if len(uniq) < len(ws):
        out += [f"{w}\x00{w}" for w in uniq if ws.count(w) > 1]
    return out


@dataclass
class ProtectedIndex:
    """The protected values, indexed for O(1) lookups per incoming word."""

    whole: dict[str, list[ProtectedIdentity]] = field(default_factory=dict)  # skeleton of a whole value
    joined: dict[str, list[ProtectedIdentity]] = field(default_factory=dict)  # a multi-word name run together
    # a multi-word name by the pair of its two longest words: (its words, how often each must appear, identity)
    by_pair: dict[str, list[tuple[frozenset[str], dict[str, int] | None, ProtectedIdentity]]] = field(
        default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.whole or self.by_pair)


def build_index(protected: Sequence[ProtectedIdentity], min_length: int = 3, min_words: int = 2,
                min_word_length: int = 2) -> ProtectedIndex:
    index = ProtectedIndex()
    for p in protected:
        key = skeleton(p.value)
        if len(key) >= min_length:
            index.whole.setdefault(key, []).append(p)
        sig = [w for w in words(p.value) if len(w) >= min_word_length and not w.isdigit()]
        if len(sig) < min_words:
            continue
        wordset = frozenset(sig)
        repeats = {w: sig.count(w) for w in wordset} if len(wordset) < len(sig) else None
        a, b = sorted(sig, key=len, reverse=True)[:2]
        index.by_pair.setdefault(_pair_key(a, b), []).append((wordset, repeats, p))
        orders = permutations(sig) if len(sig) <= 3 else (tuple(sig), tuple(sig[::-1]))
        for order in dict.fromkeys(orders):
            index.joined.setdefault("".join(order), []).append(p)
    return index


def find_impersonations(
    rows: Iterable[Mapping[str, Any]],
    protected: Sequence[ProtectedIdentity] | ProtectedIndex,
    min_length: int = 3,
    exempt: Iterable[ExemptEntry] = (),
    source: str | None = None,
    verified_domains: Iterable[str] = (),
    min_words: int = 2,
    min_word_length: int = 2,
) -> list[dict[str, Any]]:
    """One violation dict per incoming plan row whose post-write identity resembles a protected identity,
    or carries a bidi control.

    `exempt` entries count only for `source` (this pair's source); an address entry only when its domain
    is one of `verified_domains` (the source tenant's verified domains; empty = none trusted).
    """
    with gc_paused():  # many small objects, no cycles (see gc_pause)
        return _find(rows, protected, min_length, exempt, source, verified_domains, min_words, min_word_length)


def _find(rows: Iterable[Mapping[str, Any]], protected: Sequence[ProtectedIdentity] | ProtectedIndex, min_length: int,
          exempt: Iterable[ExemptEntry], source: str | None, verified_domains: Iterable[str], min_words: int,
          min_word_length: int) -> list[dict[str, Any]]:
    index = protected if isinstance(protected, ProtectedIndex) else build_index(
        protected, min_length, min_words, min_word_length)
    ids, addresses = _exemptions(exempt, source, verified_domains)
    judged: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
    for row in incoming(rows):
        record = after(row)
        if record is None:
            continue
        if (ids or addresses) and _is_exempt(row, ids, addresses):
            continue
        judged.append((row, record))
    records = [rec for _, rec in judged]
    columns = {f: _column(records, f) for f in IDENTITY_FIELDS}
    plain = _all_ascii(columns, len(records))  # a bidi control is not ASCII: only the other records need `_bidi`
    suspect = suspects(records, index, columns) if index else [False] * len(records)
    found: list[dict[str, Any]] = []
    for (row, record), ascii_only, maybe in zip(judged, plain, suspect, strict=True):
        hit = None if ascii_only else _bidi(record)
        if hit is None and maybe:
            hit = _match(record, index, row.get("target_user_id"))
        if hit:
            found.append({**user_ref(row), **hit})
    return found


def _column(records: Sequence[Mapping[str, Any]], fld: str) -> list[str | None]:
    return [v if isinstance(v := r.get(fld), str) and v else None for r in records]


def _all_ascii(columns: Mapping[str, list[str | None]], n: int) -> list[bool]:
    """Per record: are all its identity fields ASCII (or absent)? One pass when the whole plan is ASCII."""
    if "".join(filter(None, chain.from_iterable(columns.values()))).isascii():
        return [True] * n
    return [all(v is None or v.isascii() for v in vs) for vs in zip(*columns.values(), strict=True)]


def suspects(records: Sequence[Mapping[str, Any]], index: ProtectedIndex,
             columns: Mapping[str, list[str | None]] | None = None) -> list[bool]:
    """Per record: could it match the index at all? True whenever `_candidates(record)` shares a key with
    the index (a superset: the exact `_match` decides), computed column by column over every record.

    Each distinct value is folded once (`skeletons`, `word_lines`: ASCII values together in a few C-level
    passes), so the exact `_match` runs only for the few records that share a key with a protected value.
    """
    keys = set(index.whole) | set(index.by_pair) | set(index.joined)
    col = (lambda f: columns[f]) if columns is not None else (lambda f: _column(records, f))
    # A value equal to another of the same record that is judged the same way (a UPN equal to the mail,
    # a mailNickname equal to the mail's local part, givenName + surname equal to displayName) adds nothing.
    dn, mail = col("displayName"), col("mail")
    upn = [u if u != m else None for u, m in zip(col("userPrincipalName"), mail, strict=True)]
    local_mail, local_upn = _locals(mail), _locals(upn)
    nick = [k if k != lm else None for k, lm in zip(col("mailNickname"), local_mail, strict=True)]
    full = [f if (f := f"{g} {s}" if g and s else None) != d else None
            for g, s, d in zip(col("givenName"), col("surname"), dn, strict=True)]
    texts = set(chain(dn, local_mail, local_upn, nick, full))  # distinct values, in no particular order
    forms = texts.union(mail, upn)
    texts.discard(None)
    forms.discard(None)
    form_list: list[str] = list(forms)  # type: ignore[arg-type]
    text_list: list[str] = list(texts)  # type: ignore[arg-type]
    bad = {f for f, key in zip(form_list, skeletons(form_list), strict=True) if key in keys}
    lines = word_lines(text_list)  # a value's words as one string: values with the same words are judged once
    bad_lines = {line for line in dict.fromkeys(lines) if not keys.isdisjoint(_word_keys(line.split()))}
    if bad_lines:
        bad.update(t for t, line in zip(text_list, lines, strict=True) if line in bad_lines)
    if not bad:
        return [False] * len(records)
    return [not bad.isdisjoint(vs) for vs in zip(dn, mail, local_mail, upn, local_upn, nick, full, strict=True)]


def _locals(values: list[str | None]) -> list[str | None]:
    """`[_local(v) if v else None for v in values]`; when no value holds '#EXT#' (one scan of them all), each
    is just cut at its first '@'."""
    if "#EXT#" in "\n".join(filter(None, values)).upper():
        return [_local(v) if v else None for v in values]
    return [v.split("@", 1)[0] if v else None for v in values]


def _word_keys(ws: list[str]) -> list[str]:
    """The keys a value's words can match: each word, every pair of words, runs of 2 and 3 adjacent words."""
    n = len(ws)
    if n < 2:
        return ws
    if n == 2:
        a, b = ws
        return [a, b, f"{a}\x00{b}" if a <= b else f"{b}\x00{a}", a + b]
    if n > MAX_WORDS:
        ws, n = ws[:MAX_WORDS], MAX_WORDS
    out = [*ws, *_pairs(ws), *(ws[i] + ws[i + 1] for i in range(n - 1))]
    if n > 2:
        out += [ws[i] + ws[i + 1] + ws[i + 2] for i in range(n - 2)]
    return out


def _exemptions(exempt: Iterable[ExemptEntry], source: str | None,
                verified: Iterable[str]) -> tuple[set[str], set[str]]:
    domains = {d.casefold() for d in verified}
    ids: set[str] = set()
    addresses: set[str] = set()
    for e in exempt:
        if source is None or e.source != source:
            continue  # an exemption belongs to one source: a row of another pair never matches it
        if e.object_id:
            ids.add(e.object_id.casefold())
        elif e.address and "@" in e.address and e.address.rsplit("@", 1)[1].casefold() in domains:
            addresses.add(e.address.casefold())
    return ids, addresses


def _is_exempt(row: Mapping[str, Any], ids: set[str], addresses: set[str]) -> bool:
    sid = row.get("source_object_id")
    if isinstance(sid, str) and sid.casefold() in ids:
        return True
    names = (row.get("user_principal_name"), row.get("mail"))
    return any(isinstance(n, str) and n.casefold() in addresses for n in names)


def _bidi(record: Mapping[str, Any]) -> dict[str, Any] | None:
    values = [v for f in IDENTITY_FIELDS if isinstance(v := record.get(f), str)]
    if "".join(values).isascii():
        return None
    for fld in IDENTITY_FIELDS:
        value = record.get(fld)
        found = bidi_controls(value) if isinstance(value, str) else []
        if found:
            why = f"{fld} contains bidi control {', '.join(found)}, refused in identity fields (it reorders what is shown)"
            return {"field": fld, "value": cap(value), "protected": "", "protected_because": "",
                    "how": ", ".join(found), "reason": why}
    return None


def _texts(record: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Distinct whole forms (values, and mail/UPN local parts) and distinct word texts of a record."""
    forms: list[str] = []
    texts: list[str] = []
    for fld, value in _record_values(record):
        fs = identity_values("mail" if fld in ("mail", "userPrincipalName") else fld, value)
        forms.extend(fs)
        texts.append(fs[-1] if fs else value)
    return list(dict.fromkeys(forms)), list(dict.fromkeys(texts))


def _candidates(record: Mapping[str, Any]) -> list[str]:
    """Every key a record could match in a ProtectedIndex: whole skeletons, words, word pairs, adjacent-word
    runs. A superset of what `_match` looks up, built in one pass (the hot loop of the guardrail)."""
    out: list[str] = []
    texts: set[str] = set()
    seen: set[str] = set()
    get = record.get
    given, sur = get("givenName"), get("surname")
    full = f"{given} {sur}" if isinstance(given, str) and isinstance(sur, str) and given and sur else None
    for fld in (*FIELDS, "givenName+surname"):
        value = full if fld == "givenName+surname" else get(fld)
        if not value or not isinstance(value, str):
            continue
        if fld in ("mail", "userPrincipalName"):
            forms = identity_values("mail", value)
            text = forms[-1]
        else:
            forms, text = (value,), value
        for f in forms:
            if f not in seen:
                seen.add(f)
                out.append(skeleton(f))
        if text in texts:
            continue
        texts.add(text)
        ws = words(text)[:MAX_WORDS]
        n = len(ws)
        if n > 1:
            out += ws
            out += _pairs(ws)
            out += [ws[i] + ws[i + 1] for i in range(n - 1)]
            if n > 2:
                out += [ws[i] + ws[i + 1] + ws[i + 2] for i in range(n - 2)]
        elif n:
            out.append(ws[0])
    return out


def _match(record: Mapping[str, Any], index: ProtectedIndex, own_id: Any) -> dict | None:
    """The first protected identity the record's identity values resemble: whole skeletons first, then words."""
    values = _record_values(record)
    texts: list[tuple[str, str, str]] = []  # (field, value, text to split into words), distinct texts only
    seen: set[str] = set()
    whole = index.whole
    for fld, value in values:
        kind = "mail" if fld in ("mail", "userPrincipalName") else fld
        forms = identity_values(kind, value)
        for form in forms:
            if form in seen:
                continue
            seen.add(form)
            for p in whole.get(skeleton(form), ()):
                if own_id is None or p.user_id != own_id:
                    return _hit(fld, value, form, p, None)
        text = forms[-1] if forms else value  # for a mail or UPN: its local part, never the domain
        if not any(t == text for _, _, t in texts):
            texts.append((fld, value, text))
    by_pair, joined = index.by_pair, index.joined
    for fld, value, text in texts:
        ws = words(text)[:MAX_WORDS]
        if not ws:
            continue
        wordset = set(ws)
        for key in _pairs(ws):
            for need, repeats, p in by_pair.get(key, ()):
                if need <= wordset and (repeats is None or all(ws.count(x) >= k for x, k in repeats.items())) \
                        and (own_id is None or p.user_id != own_id):
                    return _hit(fld, value, text, p,
                                f"has every word of '{cap(p.value)}' (any order, extra words allowed)")
        if not joined:
            continue
        n = len(ws)
        runs = ws if n < 2 else [*ws, *(ws[i] + ws[i + 1] for i in range(n - 1)),
                                 *(ws[i] + ws[i + 1] + ws[i + 2] for i in range(n - 2))]
        for w in runs:
            for p in joined.get(w, ()):
                if own_id is None or p.user_id != own_id:
                    return _hit(fld, value, text, p, f"runs the words of '{cap(p.value)}' together")
    return None


def _hit(fld: str, value: str, form: str, p: ProtectedIdentity, how: str | None) -> dict[str, Any]:
    return {"field": fld, "value": cap(value), "protected": cap(p.value), "protected_because": p.label,
            "how": how or _how(form, p.value)}


def _how(incoming_value: str, protected_value: str) -> str:
    """Say what differs, so the message names the trick: 'Cyrillic е', 'case', 'spacing/punctuation'."""
    if incoming_value == protected_value:
        return "identical"
    odd = [d for d in describe_lookalikes(incoming_value) if d not in describe_lookalikes(protected_value)]
    if odd:
        return ", ".join(odd[:5])
    if incoming_value.casefold() == protected_value.casefold():
        return "differs only in case"
    return "differs only in case, spacing, punctuation or look-alike letters (l/I/1, 0/O, rn/m)"


def check_impersonation(
    rows: Iterable[Mapping[str, Any]],
    protected: Sequence[ProtectedIdentity],
    policy: InboundPolicy,
    source: str | None = None,
    verified_domains: Iterable[str] = (),
) -> GuardrailResult:
    """The impersonation guardrail over one pair's plan (`source`: the pair's source, for exemptions)."""
    imp = policy.impersonation
    found = find_impersonations(rows, protected, imp.min_skeleton_length, imp.exempt, source, verified_domains,
                                imp.min_words, imp.min_word_length)
    blocked = {str(v["source_object_id"]) for v in found}
    message = ""
    if found:
        first = found[0]
        what = first.get("reason") or (f"{first['field']} '{first['value']}' resembles '{first['protected']}' "
                                       f"({first['protected_because']}): {first['how']}")
        message = (
            f"{NAME}: {len(blocked)} incoming user(s) resemble a protected identity or carry a bidi control; "
            f"first: {first['user']}: {what}. Fix the source user's attributes, exempt the person for this "
            f"source (impersonation.exempt), or remove the protected entry from the target's inbound policy if "
            f"it is wrong"
        )
    return per_user_result(
        NAME,
        policy.on_violation.impersonation,
        found,
        blocked,
        rule="post-write displayName, givenName + surname, mail/UPN local part or mailNickname equals or "
        "resembles a protected identity (skeleton: case, diacritics, confusables, ignorables, small capitals, "
        "spacing, punctuation; or all words of a multi-word protected name in any order); no bidi controls "
        "in identity fields",
        message=message,
    )
